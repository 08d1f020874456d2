import { appendFileSync, mkdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioCounts } from '../helpers/reference';
import { SCALE, type FaultScale } from './scale';

/** One scenario's line in the fault table: the common counts, plus figures of its own. */
export interface ScenarioRow extends ScenarioCounts {
  scenario: string;
  scale: FaultScale;
  seconds: number;
  figures: Record<string, number | string | boolean>;
}

/** Rows of the current run, one JSON line each, read back by the global teardown for the table (bench/results is git-ignored). */
export const resultsFile = (scale: FaultScale = SCALE) =>
  join(__dirname, '..', '..', 'bench', 'results', `faults-${scale}.jsonl`);

export function resetResults(scale: FaultScale = SCALE): void {
  mkdirSync(join(resultsFile(scale), '..'), { recursive: true });
  writeFileSync(resultsFile(scale), '');
}

/** Prints the row as one JSON line and keeps it for the table. */
export function recordScenario(row: Omit<ScenarioRow, 'scale'>): void {
  const full: ScenarioRow = { ...row, scale: SCALE };
  const line = JSON.stringify(full);
  console.log(line);
  mkdirSync(join(resultsFile(), '..'), { recursive: true });
  appendFileSync(resultsFile(), `${line}\n`);
}

export function readResults(scale: FaultScale = SCALE): ScenarioRow[] {
  if (!existsSync(resultsFile(scale))) return [];
  return readFileSync(resultsFile(scale), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ScenarioRow);
}

/** The table the issue asks for, as Markdown. */
export function formatTable(rows: ScenarioRow[]): string {
  const head = [
    'scenario',
    'produced',
    'raw rows exp/found',
    'window rows exp/found',
    'lost',
    'duplicated',
    'dead-lettered (exp)',
    'late (exp)',
    's',
  ];
  const lines = rows.map((r) => [
    r.scenario,
    r.eventsProduced,
    `${r.rawRowsExpected}/${r.rawRowsFound}`,
    `${r.windowRowsExpected}/${r.windowRowsFound}`,
    r.lost,
    r.duplicated,
    `${r.deadLettered} (${r.deadLetteredExpected})`,
    `${r.late} (${r.lateExpected})`,
    Math.round(r.seconds),
  ]);
  const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  const figures = rows.map(
    (r) =>
      `- ${r.scenario}: ${Object.entries(r.figures)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
  );
  return [row(head), row(head.map(() => '---')), ...lines.map(row), '', ...figures].join('\n');
}
