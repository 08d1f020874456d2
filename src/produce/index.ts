export {
  createEventProducer,
  ProduceError,
  type EventProducer,
  type EventProducerOptions,
  type ProducerCompression,
  type ProducerStats,
  type SentEvent,
} from './producer';
export { validateEvent, EventValidationError, type FieldIssue } from './validate';
export { streamRules, streamsReading, type StreamRules } from './stream-rules';
