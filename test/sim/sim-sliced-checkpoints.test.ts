import { SAVING } from '../../src/state/snapshots';
import { CHAIN_LIMITS, ENCODING } from '../../src/window/incremental';
import { describeSeeds } from './seeds';

/**
 * The simulation with window-state checkpoints encoded across many event-loop turns and short chains.
 * At the default budgets (64 KB a turn) the simulation's small states are encoded within the turn that
 * takes them, so the copy-on-write of windows that change before they are encoded, and frequent bases
 * and chain fallbacks, would meet crashes, rebalances and Redis losses only in production; so would a save
 * cut into several pipelines (a Redis crash between two). This module's budgets are its own (jest loads
 * each spec file in a fresh module registry).
 */
ENCODING.partBytes = 60;
ENCODING.turnBytes = 60;
CHAIN_LIMITS.deltas = 3;
SAVING.pipelineBytes = 200;

describeSeeds(
  'simulation with checkpoints encoded a few bytes a turn',
  Number(process.env.SLUICE_SIM_SLICED_SEEDS ?? 100),
  (seed) =>
    `SLUICE_SIM_SLICED_SEEDS=${seed} npx jest test/sim/sim-sliced-checkpoints.test.ts (seed ${seed} is the last)`,
);
