export { DLQ_HEADERS, LATE_HEADERS, REDRIVE_HEADERS, RETRY_HEADERS, headerString } from './headers';
export { dlqTopic, lateTopic, retryTopic, baseTopic, isRetryTopic } from './topics';
export type { DeadLetter, LateEvent } from './types';
export { DeadLetterPublisher, SideRecords } from './publisher';
export { deadLetterMessage, lateMessage, originOf, retryMessage, sideMessage } from './side-record';
export {
  attemptOf,
  DEFAULT_RETRY_POLICY,
  retryDelayMs,
  RetryGate,
  RetryRouter,
  retryWaitMs,
  routeRetry,
  type RetryPolicy,
  type RetryRoute,
} from './retry';
export { readTopic } from './reader';
export { SideTopicCounter } from './count';
export {
  bytesSnippet,
  findSideRecords,
  firstDeadLetters,
  formatDeadLetter,
  formatSideRecord,
  sideRecordJson,
  sideTopicKind,
  summarizeDeadLetters,
  type DeadLetterSummary,
  type ShownValue,
  type SideRecordFilter,
  type SideTopicKind,
} from './inspect';
export {
  DEFAULT_MAX_ATTEMPTS,
  redrive,
  redriveGroup,
  redriveTransactionalId,
  REDRIVE_ORIGIN_HEADERS,
  type RedriveOptions,
  type RedrivePlanRow,
  type RedriveResult,
} from './redrive';
export {
  classKind,
  DEAD_LETTER_CLASSES,
  describeDeadLetterClasses,
  isPermanentClass,
  isReplayOnlyClass,
  type DeadLetterClass,
} from './classes';
