import type { Config } from 'jest';

// ts-jest only transpiles here; `tsc --noEmit` in the test command type-checks.
const transform = { '^.+\\.ts$': ['ts-jest', {}] } as const;
// Not .sluice: the local stack's files, and the Node.js distributions scripts/ensure-node.sh unpacks
// there, whose package.json files jest would otherwise index (and report as colliding).
const modulePathIgnorePatterns = ['<rootDir>/.sluice/'];

// The specs start `sluice` processes with process.execPath: they run on jest's Node.js, the one
// under test, instead of handing over to the project's Node.js 24 (bin/node-handover.js).
process.env.SLUICE_NODE ??= 'system';

const config: Config = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      modulePathIgnorePatterns,
      // Specs beside the source need no services.
      testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/streams/**/*.test.ts'],
    },
    {
      // The seeded simulation (test/sim): the runtime on simulated time against models of the services.
      displayName: 'sim',
      testEnvironment: 'node',
      transform,
      modulePathIgnorePatterns,
      testMatch: ['<rootDir>/test/sim/**/*.test.ts'],
    },
    {
      // The project's ClickHouse SQL on a current engine: chdb (npm, 26.x) inside the jest process,
      // no services. `npm run test:clickhouse-matrix` runs the same specs on 24.8, 25.8 and 26.9.
      displayName: 'clickhouse',
      testEnvironment: 'node',
      transform,
      modulePathIgnorePatterns,
      testMatch: ['<rootDir>/test/clickhouse/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      modulePathIgnorePatterns,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      // Brings the local stack up (idempotently) before any integration spec runs.
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      slowTestThreshold: 30,
    },
    {
      // Fault scenarios (issue 9): bounded by default (SLUICE_FAULTS_SCALE=ci, in `npm test`),
      // the full size with `npm run test:faults`. The teardown prints the table of their figures.
      displayName: 'faults',
      testEnvironment: 'node',
      transform,
      modulePathIgnorePatterns,
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      globalSetup: '<rootDir>/test/faults/global-setup.ts',
      globalTeardown: '<rootDir>/test/faults/global-teardown.ts',
      slowTestThreshold: 120,
    },
  ],
  testTimeout: 120_000,
};

export default config;
