/**
 * One error root for everything a user can hit. `code` is stable (scripts and
 * tests match on it), `retriable` is the only thing retry logic reads, and the
 * message is one line that says what is wrong and what to do.
 */
export class SluiceError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** A setting is missing or invalid; raised at start-up, before any work. */
export class ConfigError extends SluiceError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

/** A local service of the stack could not be installed, started or reached. */
export class StackError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('STACK_FAILED', message, { cause });
    this.name = 'StackError';
  }
}

/** An outside service (Kafka, Redis, ClickHouse, registry) refused or is unreachable. */
export class ServiceError extends SluiceError {
  readonly service: string;
  constructor(service: string, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super('SERVICE_UNAVAILABLE', message, options);
    this.name = 'ServiceError';
    this.service = service;
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? String(err);
  return String(err);
}
