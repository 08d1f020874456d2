import { RETRY_HEADERS } from './headers';
import { provenanceOf, REDRIVE_ORIGIN_HEADERS } from './redrive';

const record = (headers = {}) => ({ topic: 'events', partition: 3, offset: '900', timestamp: '0', key: null, value: null, headers });

describe('provenanceOf', () => {
  it('is the record itself for an ordinary record', () => {
    expect(provenanceOf(record())).toEqual({ topic: 'events', partition: 3, offset: '900' });
  });
  it('is the original record for a retry and for a redriven record', () => {
    const retry = { ...record({ [RETRY_HEADERS.originTopic]: 'events', [RETRY_HEADERS.originPartition]: '1', [RETRY_HEADERS.originOffset]: '7' }), topic: 'events.retry.1', offset: '0' };
    expect(provenanceOf(retry)).toEqual({ topic: 'events', partition: 1, offset: '7' });
    const redriven = record({ [REDRIVE_ORIGIN_HEADERS.topic]: 'events', [REDRIVE_ORIGIN_HEADERS.partition]: Buffer.from('5'), [REDRIVE_ORIGIN_HEADERS.offset]: Buffer.from('42') });
    expect(provenanceOf(redriven)).toEqual({ topic: 'events', partition: 5, offset: '42' });
  });
});
