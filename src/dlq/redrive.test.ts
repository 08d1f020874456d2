import { DLQ_HEADERS, RETRY_HEADERS } from './headers';
import { REDRIVE_ORIGIN_HEADERS, redrivenMessage } from './redrive';
import { originOf } from './side-record';

const record = (headers = {}) => ({
  topic: 'events',
  partition: 3,
  offset: '900',
  timestamp: '5',
  key: null,
  value: null,
  headers,
});
const retryHeaders = {
  [RETRY_HEADERS.originTopic]: 'events',
  [RETRY_HEADERS.originPartition]: '1',
  [RETRY_HEADERS.originOffset]: '7',
  [RETRY_HEADERS.originTimestamp]: '3',
};

describe('originOf', () => {
  it('is the record itself for an ordinary record', () => {
    expect(originOf(record())).toEqual({ topic: 'events', partition: '3', offset: '900', timestamp: '5' });
  });
  it('is the original record for a record read from a retry topic', () => {
    expect(originOf({ ...record(retryHeaders), topic: 'events.retry.1', offset: '0' })).toEqual({
      topic: 'events',
      partition: '1',
      offset: '7',
      timestamp: '3',
    });
  });
  it('ignores origin headers on a record of any other topic: anyone producing to it can write them', () => {
    expect(originOf(record(retryHeaders))).toEqual({ topic: 'events', partition: '3', offset: '900', timestamp: '5' });
  });
});

describe('redrivenMessage', () => {
  const deadLetter = (sourceTopic: string) => ({
    ...record({ [DLQ_HEADERS.sourceTopic]: sourceTopic, [DLQ_HEADERS.errorClass]: 'EVENT_INVALID' }),
    topic: 'events.dlq',
  });
  it('goes back to the topic the DLQ belongs to, not to one a header names: anyone writing to the DLQ can write headers', () => {
    const [target, message] = redrivenMessage(deadLetter('payments'), 'events.dlq', new Date(0));
    expect(target).toBe('events');
    expect(message.headers![REDRIVE_ORIGIN_HEADERS.topic]).toBe('events');
    expect(redrivenMessage(deadLetter('events'), 'events.dlq', new Date(0))[0]).toBe('events');
  });
});
