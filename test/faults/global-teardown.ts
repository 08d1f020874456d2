import { writeFileSync } from 'node:fs';
import { formatTable, readResults, resultsFile } from './results';
import { SCALE } from './scale';

/** The figures of every scenario of this run in one table, printed and kept beside the JSON lines. */
export default function globalTeardown(): void {
  const rows = readResults();
  if (rows.length === 0) return;
  const table = formatTable(rows);
  const path = resultsFile().replace(/\.jsonl$/, '.md');
  writeFileSync(path, `# Fault scenarios (${SCALE} scale, ${new Date().toISOString()})\n\n${table}\n`);
  process.stdout.write(`\nFault scenarios (${SCALE} scale), also in ${path}:\n${table}\n`);
}
