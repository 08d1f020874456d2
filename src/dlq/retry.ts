import type { KafkaClient, Message, RecordHeaders } from '../kafka';
import { headerString, RETRY_HEADERS } from './headers';
import { byTopic, SideTopicProducer } from './producer';
import { deadLetterMessage, retryMessage } from './side-record';
import type { DeadLetter } from './types';

export interface RetryPolicy {
  /** Retry topics `<topic>.retry.1..maxAttempts`; after the last one the record goes to `<topic>.dlq`. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 2, baseDelayMs: 1000, maxDelayMs: 60_000 };

/**
 * Delay before retry `attempt` (1-based): exponential, capped, with "equal
 * jitter" — half fixed, half random — so retries of many records spread out
 * but each still waits at least half the nominal backoff.
 */
export function retryDelayMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const nominal = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(nominal / 2 + random() * (nominal / 2));
}

export type RetryRoute = { topic: string; kind: 'retry' | 'dlq'; message: Message };

/**
 * Where a transiently failed record goes next. `entry.attempt` counts the
 * attempts made so far: attempts 1..maxAttempts go to `.retry.<attempt>`
 * with a not-before time; a record failing after that goes to the DLQ.
 */
export function routeRetry(
  entry: DeadLetter,
  policy: RetryPolicy,
  stream: string,
  now: Date,
  random: () => number = Math.random,
): RetryRoute {
  if (entry.attempt > policy.maxAttempts) {
    const [topic, message] = deadLetterMessage(entry, stream, now);
    return { topic, kind: 'dlq', message };
  }
  const [topic, message] = retryMessage(entry, now.getTime() + retryDelayMs(entry.attempt, policy, random));
  return { topic, kind: 'retry', message };
}

/** Sends transient failures to their next retry topic, or to the DLQ after the last attempt. */
export class RetryRouter {
  private readonly producer: SideTopicProducer;

  constructor(
    kafka: KafkaClient,
    private readonly options: {
      stream: string;
      policy?: Partial<RetryPolicy>;
      now?: () => Date;
      random?: () => number;
    },
  ) {
    this.producer = new SideTopicProducer(kafka);
  }

  get policy(): RetryPolicy {
    return { ...DEFAULT_RETRY_POLICY, ...this.options.policy };
  }

  /** Resolves once every record is acknowledged; returns where each went, in order. */
  async route(entries: DeadLetter[]): Promise<RetryRoute[]> {
    const now = (this.options.now ?? (() => new Date()))();
    const routes = entries.map((e) => routeRetry(e, this.policy, this.options.stream, now, this.options.random));
    await this.producer.send(byTopic(routes, (r) => [r.topic, r.message]));
    return routes;
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}

/** The attempt a record consumed from a retry topic is on (0 for a record from the source topic). */
export function attemptOf(headers: RecordHeaders | undefined): number {
  const n = Number(headerString(headers, RETRY_HEADERS.attempt) ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** Milliseconds until a retry record may be processed; 0 when due (or when it carries no not-before). */
export function retryWaitMs(headers: RecordHeaders | undefined, nowMs: number): number {
  const notBefore = Number(headerString(headers, RETRY_HEADERS.notBefore));
  return Number.isFinite(notBefore) ? Math.max(0, notBefore - nowMs) : 0;
}

/**
 * Holds a retry topic's partitions until their next record is due, without
 * blocking the others: a record that is not due pauses only its partition and
 * schedules the resume. Records of one retry topic are due in order (same
 * delay, appended in time order), so the first not-due record gates the rest.
 *
 * The consumer must not resolve the gated record's offset, so it is fetched
 * again after the resume (kafkajs: return from eachBatch without resolving it).
 */
export class RetryGate {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * true: process the record now. false: its partition was paused via
   * `pause()` (which returns the resume function, as kafkajs' eachBatch
   * `pause` does) and will be resumed when the record is due.
   */
  admit(topic: string, partition: number, headers: RecordHeaders | undefined, pause: () => () => void): boolean {
    const wait = retryWaitMs(headers, this.now());
    if (wait === 0) return true;
    const key = `${topic}/${partition}`;
    if (!this.timers.has(key)) {
      const resume = pause();
      const timer = setTimeout(() => {
        this.timers.delete(key);
        resume();
      }, wait);
      timer.unref();
      this.timers.set(key, timer);
    }
    return false;
  }

  /** Partitions currently held back. */
  heldPartitions(): string[] {
    return [...this.timers.keys()];
  }

  /** Forgets pending resumes (on revoke or shutdown); the partitions stay paused. */
  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
