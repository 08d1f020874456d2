import { describeSeeds } from './seeds';

/**
 * The seeded simulation in `npm test`: the real runtime against the models
 * of Kafka, Redis and ClickHouse, with faults at seeded points, each run
 * checked against the workload's own answer. More seeds: `npm run test:sim -- --seeds N`.
 */
describeSeeds('simulation of the runtime under faults', Number(process.env.SLUICE_SIM_SEEDS ?? 500));
