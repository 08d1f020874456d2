import type { ErrorCode } from '../errors';
import type { ConsumedRecord } from '../kafka';
import type { Lateness } from '../window';

/** A record that goes to `<topic>.dlq`, or through a retry topic first. */
export interface DeadLetter {
  source: ConsumedRecord;
  /** What went wrong, as an error code (e.g. EVENT_INVALID, WIRE_FORMAT_INVALID): `dlq list` counts by it and redrives filter on it. */
  errorClass: ErrorCode;
  message: string;
  /** Attempts made so far, this one included (1 = failed once). */
  attempt: number;
  /** Headers that describe what the dead letter is, when it is not a source record (a refused window partial). */
  headers?: Record<string, string>;
}

/** An event that arrived after its window closed; goes to `<topic>.late`. */
export interface LateEvent extends Lateness {
  source: ConsumedRecord;
  /** Defaults to `after-allowed-lateness`. */
  reason?: string;
}
