import { Command, CommanderError } from 'commander';
import { defaultsOf, RUN_OPTIONS, SERVING_OPTIONS } from '../process/options';
import { addOptionFlags, readOptionFlags } from './option-flags';

function command(): Command {
  const program = new Command('test')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  return addOptionFlags(program, RUN_OPTIONS);
}

describe('option flags', () => {
  it('reads typed values by option name, defaults for flags not given', () => {
    const program = command().parse(['--flush-interval', '300', '--http-port=0', '--stuck-after', '30'], {
      from: 'user',
    });
    const { values, given } = readOptionFlags(program, RUN_OPTIONS);
    expect(values).toEqual({ ...defaultsOf(RUN_OPTIONS), flushIntervalMs: 300, httpPort: 0, stuckAfterSeconds: 30 });
    expect([...given].sort()).toEqual(['flushIntervalMs', 'httpPort', 'stuckAfterSeconds']);
  });

  it('tells a default port from the same port given', () => {
    const port = String(SERVING_OPTIONS.httpPort.default);
    expect(readOptionFlags(command().parse([], { from: 'user' }), SERVING_OPTIONS).given.has('httpPort')).toBe(false);
    expect(
      readOptionFlags(command().parse(['--http-port', port], { from: 'user' }), SERVING_OPTIONS).given.has('httpPort'),
    ).toBe(true);
  });

  it('fails at parse time on a value out of range, naming the flag', () => {
    expect(() => command().parse(['--commit-interval', '-5'], { from: 'user' })).toThrow(CommanderError);
    expect(() => command().parse(['--commit-interval', '-5'], { from: 'user' })).toThrow(
      "option '--commit-interval <ms>' argument '-5' is invalid. expected a whole number of milliseconds from 0 to 3600000",
    );
  });
});
