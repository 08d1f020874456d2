import { randomBytes } from 'node:crypto';
import { DLQ_HEADERS } from './headers';
import { SideRecords } from './publisher';

const source = (value: Buffer) => ({
  topic: 'events',
  partition: 2,
  offset: '40',
  timestamp: '1',
  key: Buffer.from('k'),
  value,
  headers: {},
});

describe('SideRecords', () => {
  const side = new SideRecords({ stream: 'event-counts', now: () => new Date(0), maxRecordBytes: 64 * 1024 });

  it('keeps a record over the limit whole when it fits compressed (side records are written compressed)', () => {
    const [record] = side.records(
      [{ source: source(Buffer.alloc(200 * 1024, 'x')), errorClass: 'EVENT_INVALID', message: 'no', attempt: 1 }],
      [],
    );
    expect(record!.value!.length).toBe(200 * 1024);
    expect(record!.headers[DLQ_HEADERS.valueOmitted]).toBeUndefined();
  });

  it('leaves out the value of a record too large even compressed, saying so, and keeps what names its source', () => {
    const [record] = side.records(
      [{ source: source(randomBytes(200 * 1024)), errorClass: 'EVENT_INVALID', message: 'no', attempt: 1 }],
      [],
    );
    expect(record!.value).toBeNull();
    expect(record!.headers[DLQ_HEADERS.valueOmitted]).toBe(String(200 * 1024));
    expect([
      record!.key?.toString(),
      record!.headers[DLQ_HEADERS.sourcePartition],
      record!.headers[DLQ_HEADERS.sourceOffset],
    ]).toEqual(['k', '2', '40']);
  });
});
