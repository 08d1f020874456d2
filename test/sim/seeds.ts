import { runScenario } from './scenario';

/** Seeds per jest test: each test stays well inside its timeout. */
const PER_TEST = 50;

/**
 * Registers `describe(title)` running seeds 1..`seeds` of the simulation, 50 to a test, each test
 * failing with every seed whose outputs differ from the workload's answer and how to reproduce it.
 */
export function describeSeeds(
  title: string,
  seeds: number,
  reproduce = (seed: number) => `npm run test:sim -- --seed ${seed}`,
): void {
  describe(title, () => {
    for (let from = 1; from <= seeds; from += PER_TEST) {
      const to = Math.min(seeds, from + PER_TEST - 1);
      it(`seeds ${from}..${to}: every output equals the workload's answer`, async () => {
        const failed: string[] = [];
        for (let seed = from; seed <= to; seed++) {
          const { failures } = await runScenario(seed).catch((err: Error) => ({
            failures: [`the run threw: ${err.message}`],
          }));
          if (failures.length > 0) failed.push(`seed ${seed}: ${failures[0]} (reproduce: ${reproduce(seed)})`);
        }
        expect(failed).toEqual([]);
      }, 120_000);
    }
  });
}
