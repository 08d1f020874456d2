import type { SluiceConfig } from '../../config';
import type { SendFailure } from '../api';
import { saslRefused, tlsFailed, TLS_FAILURE } from '../explain';

/**
 * What a @platformatic/kafka failure means, decided in one place. The library wraps the broker's
 * error (a ProtocolError whose `apiId` is Kafka's name for it, e.g. MESSAGE_TOO_LARGE) in a
 * ResponseError, and retries and connections wrap that again (MultipleErrors' `errors`, and
 * `cause`): the whole tree is walked, as kafkajs/errors.ts walks kafkajs's chain.
 */

interface PlatformaticError {
  code?: unknown;
  apiId?: unknown;
  message?: unknown;
  serverErrorMessage?: unknown;
  errors?: unknown;
  cause?: unknown;
}

/** The failure and every error inside it, outermost first. */
export function* errorTree(err: unknown): Generator<PlatformaticError> {
  const seen = new Set<unknown>();
  const pending: unknown[] = [err];
  while (pending.length > 0) {
    const e = pending.shift();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const error = e as PlatformaticError;
    yield error;
    if (Array.isArray(error.errors)) pending.push(...(error.errors as unknown[]));
    pending.push(error.cause);
  }
}

/** Whether the failure holds a broker error of one of these kinds (Kafka's names: UNKNOWN_TOPIC_OR_PARTITION, ...). */
export function hasApiError(err: unknown, ids: ReadonlySet<string>): boolean {
  for (const e of errorTree(err)) if (typeof e.apiId === 'string' && ids.has(e.apiId)) return true;
  return false;
}

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);
/** A produce or its metadata request for a topic the cluster does not have (topics are never auto-created). */
const TOPIC_MISSING = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_ID']);

/** `too-large` can never succeed, `topic-missing` waits for the topic, anything else may pass on retry. */
export function sendFailure(err: unknown): SendFailure {
  if (hasApiError(err, TOO_LARGE)) return 'too-large';
  if (hasApiError(err, TOPIC_MISSING)) return 'topic-missing';
  // The library's metadata call replaces the broker's UNKNOWN_TOPIC_OR_PARTITION with an error of its own,
  // without the original: its wording is the only sign left.
  for (const e of errorTree(err))
    if (e.code === 'PLT_KFK_USER' && /^Unknown topic /.test(String(e.message))) return 'topic-missing';
  return 'unavailable';
}

const firstLine = (text: unknown) => String(text).split('\n')[0]!;

/**
 * Turns a failure to connect into one line naming the setting to fix, when a setting can fix it
 * (credentials, certificates); other errors pass unchanged. A refused login is not retriable.
 */
export function explainPlatformaticError(kafka: SluiceConfig['kafka'], err: unknown): unknown {
  const tree = [...errorTree(err)];
  if (tree.some((e) => e.code === 'PLT_KFK_AUTHENTICATION')) {
    // The broker's own words ("Authentication failed during authentication due to invalid credentials ..."),
    // else the library's ("SASL authentication failed.", "Cannot find a suitable SASL mechanism.").
    const refused = tree.find((e) => e.apiId === 'SASL_AUTHENTICATION_FAILED' && e.serverErrorMessage);
    const reason = refused?.serverErrorMessage ?? tree.find((e) => e.code === 'PLT_KFK_AUTHENTICATION')?.message;
    return saslRefused(kafka, firstLine(reason), err);
  }
  // Node.js's TLS errors (the certificate's problem in its words), or the library's when the broker speaks no TLS.
  const tls = tree.find((e) => !String(e.code ?? '').startsWith('PLT_KFK_') && TLS_FAILURE.test(String(e.message)));
  const notTls = tree.find((e) => e.code === 'PLT_KFK_USER' && TLS_FAILURE.test(String(e.message)));
  const handshake = tls ?? notTls;
  if (handshake) return tlsFailed(kafka, firstLine(handshake.message), err);
  return withReasons(err);
}

/**
 * The library's outer message ("Producing messages failed.") names no reason; the broker's words are in
 * the errors it wraps. The failure is rethrown with them in its message, and itself as the cause, so
 * that `sendFailure` and callers still find everything inside.
 */
function withReasons(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const reasons = new Set<string>();
  for (const e of errorTree(err)) {
    const wraps = (Array.isArray(e.errors) && e.errors.length > 0) || e.cause !== undefined;
    if (e !== err && !wraps && e.message) reasons.add(firstLine(e.message));
  }
  if (reasons.size === 0) return err;
  return new Error(`${err.message.replace(/\.$/, '')}: ${[...reasons].join('; ')}`, { cause: err });
}
