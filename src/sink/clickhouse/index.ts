export { createClickHouse, explainClickHouseError, clickHouseVersion, type ClickHouseSettings } from './client';
export { detectServerFeatures, featuresFromVersion, parseVersion, type ServerFeatures } from './features';
export {
  assertIdentifier,
  formatMigrationReport,
  InvalidIdentifierError,
  migrate,
  type Migration,
  type MigrationReport,
  type TableDefinition,
} from './migrations';
export { fetchColumns, rowProblems, valueProblem, type TableColumns } from './rows';
export { CircuitBreaker, type BreakerOptions, type BreakerState } from './breaker';
export {
  classifyClickHouseError,
  clickHouseErrorCode,
  isDataError,
  isSchemaError,
  SinkUnavailableError,
} from './errors';
export { ClickHouseSink, type AddResult, type ClickHouseSinkOptions, type RowRejection, type SinkStats } from './sink';
export { DEFAULT_VOLATILE_COLUMNS, insertDedupToken, type Row, type SinkPosition } from './token';
