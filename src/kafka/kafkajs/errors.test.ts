import { GENERATION_OVER, hasProtocolError, sendFailure } from './errors';

const protocol = (type: string, message = type) => Object.assign(new Error(message), { type });
const retriesExceeded = (originalError: unknown) => Object.assign(new Error('retries exceeded'), { originalError });

describe('kafkajs failures', () => {
  it('finds a protocol error type however deep kafkajs wrapped it', () => {
    expect(hasProtocolError(retriesExceeded(protocol('REBALANCE_IN_PROGRESS')), GENERATION_OVER)).toBe(true);
    expect(hasProtocolError(new Error('REBALANCE_IN_PROGRESS'), GENERATION_OVER)).toBe(false);
  });

  it('tells a record too large and a missing topic from an outage', () => {
    expect(sendFailure(protocol('MESSAGE_TOO_LARGE'))).toBe('too-large');
    expect(
      sendFailure(new Error('The request included a message larger than the max message size the server will accept')),
    ).toBe('too-large');
    expect(
      sendFailure(
        retriesExceeded(protocol('UNKNOWN_TOPIC_OR_PARTITION', 'This server does not host this topic-partition')),
      ),
    ).toBe('topic-missing');
    expect(sendFailure(new Error('Topic events.dlq not present in metadata'))).toBe('topic-missing');
    expect(sendFailure(new Error('Connection timeout'))).toBe('unavailable');
  });
});
