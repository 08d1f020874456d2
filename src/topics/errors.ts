import { SluiceError } from '../errors';

/** A file in `topics/` is not a valid declaration; the message names file and field. */
export class TopicDeclarationError extends SluiceError {
  constructor(message: string) {
    super('TOPIC_DECLARATION_INVALID', message);
    this.name = 'TopicDeclarationError';
  }
}

/** Drift was found and the caller asked to fail on it (`--fail-on-drift`). */
export class TopicDriftError extends SluiceError {
  constructor(message: string) {
    super('TOPIC_DRIFTED', message);
    this.name = 'TopicDriftError';
  }
}
