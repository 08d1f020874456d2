/**
 * A benchmark of a wrong result is not a result: each job's output is
 * checked against the answer computed from the generator's log alone, by the
 * same check the demo and the specs use (src/generator/check.ts).
 */
import { checkRun, type ExpectedAnswer, type RunOutputs } from '../../src/generator';

/** The fields a measurement line carries: valid, and what did not match when it is not. */
export type Verdict = { valid: true } | { valid: false; problems: string[] };

export async function verifyJob(outputs: RunOutputs, expected: ExpectedAnswer): Promise<Verdict> {
  const check = await checkRun(outputs, expected);
  return check.valid ? { valid: true } : { valid: false, problems: check.problems };
}
