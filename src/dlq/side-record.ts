import { attemptsBefore, DLQ_HEADERS, headerString, headerText, LATE_HEADERS, RETRY_HEADERS } from './headers';
import { baseTopic, dlqTopic, isRetryTopic, lateTopic, retryTopic } from './topics';
import type { Message, ConsumedRecord } from '../kafka';
import type { DeadLetter, LateEvent } from './types';

/**
 * Where a record really came from: a record consumed from a retry topic names its origin in headers.
 * Only there: on any other topic those headers are whatever its producer wrote, and are not believed.
 */
export function originOf(source: ConsumedRecord): {
  topic: string;
  partition: string;
  offset: string;
  timestamp: string;
} {
  if (!isRetryTopic(source.topic))
    return {
      topic: source.topic,
      partition: String(source.partition),
      offset: source.offset,
      timestamp: source.timestamp,
    };
  const h = source.headers;
  // A retry topic's records come from the topic it belongs to and nowhere else: origin headers naming another
  // topic are not Sluice's (anyone who can write to the retry topic can set them), so they are not believed.
  const topic = baseTopic(source.topic);
  if (headerString(h, RETRY_HEADERS.originTopic) !== topic)
    return { topic, partition: String(source.partition), offset: source.offset, timestamp: source.timestamp };
  return {
    topic,
    partition: headerString(h, RETRY_HEADERS.originPartition) ?? String(source.partition),
    offset: headerString(h, RETRY_HEADERS.originOffset) ?? source.offset,
    timestamp: headerString(h, RETRY_HEADERS.originTimestamp) ?? source.timestamp,
  };
}

/**
 * Every side-topic record (dead letter, retry, late event) is its source record copied whole — key,
 * value and headers untouched, so a consumer of the side topic can read it as the original — plus
 * Sluice's headers, which replace older values of the same names (a record failing again on a retry
 * topic carries the newer attempt).
 */
export function sideMessage(topic: string, source: ConsumedRecord, headers: Record<string, string>): [string, Message] {
  return [topic, { key: source.key, value: source.value, headers: { ...source.headers, ...headers } }];
}

/**
 * The dead letter of a record, in `<origin topic>.dlq`; `entry.headers` describe a dead letter that is not a source record.
 * Its attempt counts those a redriven copy made before (`sluice.redrive.attempt`), so each redrive that fails again
 * raises it and `sluice dlq redrive --max-attempts` can stop a loop.
 */
export function deadLetterMessage(entry: DeadLetter, stream: string, now: Date): [string, Message] {
  const origin = originOf(entry.source);
  return sideMessage(dlqTopic(origin.topic), entry.source, {
    [DLQ_HEADERS.sourceTopic]: origin.topic,
    [DLQ_HEADERS.sourcePartition]: origin.partition,
    [DLQ_HEADERS.sourceOffset]: origin.offset,
    [DLQ_HEADERS.sourceTimestamp]: origin.timestamp,
    [DLQ_HEADERS.stream]: stream,
    [DLQ_HEADERS.errorClass]: entry.errorClass,
    [DLQ_HEADERS.errorMessage]: headerText(entry.message),
    [DLQ_HEADERS.attempt]: String(attemptsBefore(entry.source.headers) + entry.attempt),
    [DLQ_HEADERS.failedAt]: now.toISOString(),
    ...entry.headers,
  });
}

/** A record for a window that had closed, in `<origin topic>.late`. */
export function lateMessage(entry: LateEvent): [string, Message] {
  const origin = originOf(entry.source);
  return sideMessage(lateTopic(origin.topic), entry.source, {
    [LATE_HEADERS.windowStart]: new Date(entry.windowStart).toISOString(),
    [LATE_HEADERS.windowEnd]: new Date(entry.windowEnd).toISOString(),
    [LATE_HEADERS.watermark]: new Date(entry.watermark).toISOString(),
    [LATE_HEADERS.eventTime]: new Date(entry.eventTime).toISOString(),
    [LATE_HEADERS.reason]: entry.reason ?? 'after-allowed-lateness',
    [LATE_HEADERS.sourceTopic]: origin.topic,
    [LATE_HEADERS.sourcePartition]: origin.partition,
    [LATE_HEADERS.sourceOffset]: origin.offset,
  });
}

/** A transiently failed record in `<origin topic>.retry.<attempt>`, not to be processed before `notBefore` (epoch ms). */
export function retryMessage(entry: DeadLetter, notBefore: number): [string, Message] {
  const origin = originOf(entry.source);
  return sideMessage(retryTopic(origin.topic, entry.attempt), entry.source, {
    [RETRY_HEADERS.notBefore]: String(notBefore),
    [RETRY_HEADERS.attempt]: String(entry.attempt),
    [RETRY_HEADERS.originTopic]: origin.topic,
    [RETRY_HEADERS.originPartition]: origin.partition,
    [RETRY_HEADERS.originOffset]: origin.offset,
    [RETRY_HEADERS.originTimestamp]: origin.timestamp,
    [RETRY_HEADERS.errorClass]: entry.errorClass,
    [RETRY_HEADERS.errorMessage]: headerText(entry.message),
  });
}
