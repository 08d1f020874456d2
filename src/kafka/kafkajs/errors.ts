import type { SendFailure } from '../api';

/**
 * What a kafkajs failure means, decided in one place. kafkajs wraps the
 * broker's protocol error (its `type`, e.g. REBALANCE_IN_PROGRESS) in retry
 * and connection errors, so the chain is walked; a few failures kafkajs raises
 * itself carry no type, and only those are recognised by their wording.
 */

type KafkajsError = { type?: string; message?: string; cause?: unknown; originalError?: unknown };

function* chain(err: unknown): Generator<KafkajsError> {
  for (let e = err as KafkajsError | undefined; e; e = (e.originalError ?? e.cause) as KafkajsError | undefined)
    yield e;
}

/** Whether the failure, or one it wraps, is a protocol error of one of these types. */
export function hasProtocolError(err: unknown, types: ReadonlySet<string>): boolean {
  for (const e of chain(err)) if (e.type && types.has(e.type)) return true;
  return false;
}

/** Protocol errors that mean "your consumer-group generation is over", whatever the message says. */
export const GENERATION_OVER = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'FENCED_INSTANCE_ID',
]);

/** The group's members joined with protocols or assignors this member does not share. */
export const GROUP_PROTOCOL_REFUSED = new Set(['INCONSISTENT_GROUP_PROTOCOL']);

/** Protocol errors that mean "another producer holds this transactional id now". */
export const PRODUCER_FENCED = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING']);

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);
const TOPIC_MISSING = new Set(['UNKNOWN_TOPIC_OR_PARTITION']);

export function sendFailure(err: unknown): SendFailure {
  if (hasProtocolError(err, TOO_LARGE)) return 'too-large';
  if (hasProtocolError(err, TOPIC_MISSING)) return 'topic-missing';
  const text = [...chain(err)].map((e) => e.message ?? '').join('\n');
  // kafkajs words MESSAGE_TOO_LARGE as "...a message larger than the max message size...".
  if (/too large|larger than the max message size|MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/i.test(text))
    return 'too-large';
  // Its own metadata check, before any request: "This server does not host this topic-partition" or "... not present in metadata".
  if (/does not host this topic-partition|UNKNOWN_TOPIC_OR_PARTITION|not present in metadata/i.test(text))
    return 'topic-missing';
  return 'unavailable';
}
