import { RETRY_HEADERS } from './headers';
import { originOf } from './side-record';

const onRetryTopic = (headers: Record<string, string>) => ({
  topic: 'events.retry.1',
  partition: 3,
  offset: '7',
  timestamp: '5',
  key: null,
  value: null,
  headers,
});

describe('originOf a record read from a retry topic', () => {
  it('takes the origin its headers name when that is the topic the retry topic belongs to', () => {
    expect(
      originOf(
        onRetryTopic({
          [RETRY_HEADERS.originTopic]: 'events',
          [RETRY_HEADERS.originPartition]: '1',
          [RETRY_HEADERS.originOffset]: '42',
          [RETRY_HEADERS.originTimestamp]: '9',
        }),
      ),
    ).toEqual({ topic: 'events', partition: '1', offset: '42', timestamp: '9' });
  });

  it('never believes an origin in another topic: a writer of the retry topic cannot route a record anywhere else', () => {
    const forged = onRetryTopic({ [RETRY_HEADERS.originTopic]: 'payments', [RETRY_HEADERS.originOffset]: '1' });
    expect(originOf(forged)).toEqual({ topic: 'events', partition: '3', offset: '7', timestamp: '5' });
  });
});
