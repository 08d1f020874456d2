import { RETRY_HEADERS } from './headers';
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
