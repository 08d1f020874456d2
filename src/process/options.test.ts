import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors';
import {
  defaultsOf,
  optionsTable,
  parseOption,
  PROCESSING_OPTIONS,
  resolveOptions,
  RUN_OPTIONS,
  type OptionDefinition,
} from './options';

const README = join(__dirname, '..', '..', 'README.md');

/** A markdown table's cells, whatever padding a formatter gave its columns. */
function cells(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim().replace(/^:?-+:?$/, '---')),
    );
}

describe('runtime options', () => {
  it.each(Object.entries(RUN_OPTIONS))(
    '%s: its default is a value it accepts from the command line',
    (_name, definition: OptionDefinition) => {
      expect(parseOption(definition, String(definition.default))).toEqual({ value: definition.default });
    },
  );

  it('gives every option its own flag', () => {
    const flags = Object.values(RUN_OPTIONS).map((d) => d.flag);
    expect(new Set(flags).size).toBe(flags.length);
  });

  it('refuses numbers out of range, fractions, exponents and words, saying what it expects', () => {
    const commit = PROCESSING_OPTIONS.commitIntervalMs;
    expect(parseOption(commit, '-5')).toEqual({ problem: 'expected a whole number of milliseconds from 0 to 3600000' });
    for (const text of ['3600001', '1.5', '1e3', '', 'soon', '0x10'])
      expect(parseOption(commit, text)).toHaveProperty('problem');
    expect(parseOption(commit, '0')).toEqual({ value: 0 });
    expect(parseOption(RUN_OPTIONS.httpPort, '65536')).toEqual({ problem: 'expected a port number from 0 to 65535' });
  });

  it('fills in defaults for what is not given, and keeps what is', () => {
    const resolved = resolveOptions(PROCESSING_OPTIONS, { flushIntervalMs: 300, sessionTimeoutMs: undefined });
    expect(resolved).toEqual({ ...defaultsOf(PROCESSING_OPTIONS), flushIntervalMs: 300 });
  });

  it('refuses a value out of range given in code, naming the option and its flag', () => {
    expect(() => resolveOptions(PROCESSING_OPTIONS, { maxPendingRows: 0 })).toThrow(ConfigError);
    expect(() => resolveOptions(PROCESSING_OPTIONS, { maxPendingRows: 0 })).toThrow(
      'invalid option maxPendingRows (--max-pending-rows): 0: expected a whole number of rows from 1 to 10000000',
    );
  });

  it('the README table is the one generated from the declarations (npm run docs:options)', () => {
    const readme = readFileSync(README, 'utf8');
    const table = /<!-- options:start -->\n([\s\S]*?)<!-- options:end -->/.exec(readme)?.[1];
    expect(table).toBeDefined();
    expect(cells(table!)).toEqual(cells(optionsTable()));
  });
});
