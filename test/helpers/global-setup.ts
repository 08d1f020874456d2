import { loadConfig } from '../../src/config';
import { stackUp } from '../../src/stack';

/** Integration specs run against the real local stack; start it unless it runs. */
export default async function globalSetup(): Promise<void> {
  if (process.env.SLUICE_TEST_EXTERNAL_STACK === '1') return; // pointed at services someone else runs
  await stackUp(loadConfig(), (line) => process.stderr.write(`[stack] ${line}\n`));
}
