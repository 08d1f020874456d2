import { SluiceError } from '../errors';

/** A window definition (assigner, lateness, aggregations, grouping) is invalid; raised when it is built. */
export class WindowDefinitionError extends SluiceError {
  constructor(message: string) {
    super('WINDOW_DEFINITION_INVALID', message);
    this.name = 'WindowDefinitionError';
  }
}

/**
 * Saved window or watermark state cannot be restored: it is malformed, or it
 * was written by a different window definition (size, lateness or
 * aggregations changed). Retrying cannot help; the stream needs a new state
 * epoch (a replay) or its old definition back.
 */
export class WindowStateError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('WINDOW_STATE_INVALID', message, { cause });
    this.name = 'WindowStateError';
  }
}

/** An event's time is not a finite number of epoch milliseconds; the stream's validation should have rejected it. */
export class EventTimeError extends SluiceError {
  constructor(eventTimeMs: unknown) {
    super(
      'EVENT_TIME_INVALID',
      `event time ${String(eventTimeMs)} is not a finite epoch-millisecond number; reject such events in the stream's validate()`,
    );
    this.name = 'EventTimeError';
  }
}
