/**
 * What a run prints: one JSON line per measurement on stdout, each also
 * appended to `bench/results/<run>/results.jsonl`, and progress notes on
 * stderr. A run is named by a short random id, which also names everything
 * it creates on the shared stack (topics, groups, databases, Redis keys).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');

export const note = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

export class RunReport {
  /** Six hex digits: `bench.<hex>.*` topics, `bench_<hex>_*` databases, `bench:<hex>:` Redis keys. */
  readonly hex = randomBytes(3).toString('hex');
  readonly runId = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 13)}_${this.hex}`;
  readonly resultsDir = join(ROOT, 'bench', 'results', this.runId);
  private readonly linesFile = join(this.resultsDir, 'results.jsonl');

  constructor() {
    mkdirSync(this.resultsDir, { recursive: true });
  }

  emit(line: Record<string, unknown>): void {
    const text = JSON.stringify(line);
    process.stdout.write(`${text}\n`);
    appendFileSync(this.linesFile, `${text}\n`);
  }
}
