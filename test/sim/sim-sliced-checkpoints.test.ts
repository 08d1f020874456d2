import { CHAIN_LIMITS, ENCODING } from '../../src/window/incremental';
import { runScenario } from './scenario';

/**
 * The simulation with window-state checkpoints encoded across many event-loop turns and short chains.
 * At the default budgets (64 KB a turn) the simulation's small states are encoded within the turn that
 * takes them, so the copy-on-write of windows that change before they are encoded, and frequent bases
 * and chain fallbacks, would meet crashes, rebalances and Redis losses only in production. This module's
 * budgets are its own (jest loads each spec file in a fresh module registry).
 */
ENCODING.partBytes = 60;
ENCODING.turnBytes = 60;
CHAIN_LIMITS.deltas = 3;

const SEEDS = Number(process.env.SLUICE_SIM_SLICED_SEEDS ?? 100);
const PER_TEST = 50;

describe('simulation with checkpoints encoded a few bytes a turn', () => {
  for (let from = 1; from <= SEEDS; from += PER_TEST) {
    const to = Math.min(SEEDS, from + PER_TEST - 1);
    it(`seeds ${from}..${to}: every output equals the workload's answer`, async () => {
      const failed: string[] = [];
      for (let seed = from; seed <= to; seed++) {
        const { failures } = await runScenario(seed).catch((err: Error) => ({
          failures: [`the run threw: ${err.message}`],
        }));
        if (failures.length > 0) failed.push(`seed ${seed}: ${failures[0]}`);
      }
      expect(failed).toEqual([]);
    }, 120_000);
  }
});
