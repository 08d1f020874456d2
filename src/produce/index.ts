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
// A service importing only the SDK (`sluice/produce`) builds its configuration the way the CLI does.
export { loadConfig, type SluiceConfig } from '../config';
