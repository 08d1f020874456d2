import type { Config } from 'jest';

// ts-jest only transpiles here; `tsc --noEmit` in the test command type-checks.
const transform = { '^.+\\.ts$': ['ts-jest', {}] } as const;

const config: Config = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      // Specs beside the source need no services.
      testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/streams/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      // Brings the local stack up (idempotently) before any integration spec runs.
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      slowTestThreshold: 30,
    },
  ],
  testTimeout: 120_000,
};

export default config;
