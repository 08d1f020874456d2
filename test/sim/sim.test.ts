import { runScenario } from './scenario';

/**
 * The seeded simulation in `npm test`: the real runtime against the models
 * of Kafka, Redis and ClickHouse, with faults at seeded points, each run
 * checked against the workload's own answer. More seeds: `npm run test:sim -- --seeds N`.
 */
const SEEDS = Number(process.env.SLUICE_SIM_SEEDS ?? 500);
const PER_TEST = 50;

describe('simulation of the runtime under faults', () => {
  for (let from = 1; from <= SEEDS; from += PER_TEST) {
    const to = Math.min(SEEDS, from + PER_TEST - 1);
    it(`seeds ${from}..${to}: every output equals the workload's answer`, async () => {
      const failed: string[] = [];
      for (let seed = from; seed <= to; seed++) {
        const { failures } = await runScenario(seed).catch((err: Error) => ({
          failures: [`the run threw: ${err.message}`],
        }));
        if (failures.length > 0)
          failed.push(`seed ${seed}: ${failures[0]} (reproduce: npm run test:sim -- --seed ${seed})`);
      }
      expect(failed).toEqual([]);
    }, 120_000);
  }
});
