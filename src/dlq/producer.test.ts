import type { Message } from '../kafka';
import { messageBytes, requestsOf } from './producer';

const message = (bytes: number, key = 'k'): Message => ({
  key,
  value: Buffer.alloc(bytes),
  headers: { 'sluice.dlq.stream': 'event-counts' },
});

describe('requestsOf', () => {
  it('keeps every record, in order, in requests no larger than the limit unless one record is larger alone', () => {
    const big = [
      message(600_000, 'a'),
      message(600_000, 'b'),
      message(10, 'c'),
      message(2_000_000, 'd'),
      message(10, 'e'),
    ];
    const requests = requestsOf(
      new Map([
        ['events.dlq', big],
        ['events.late', [message(10, 'f')]],
      ]),
      1_000_000,
    );
    const keys = requests.map((r) => [...r].map(([topic, list]) => `${topic}:${list.map((m) => m.key).join('')}`));
    expect(keys).toEqual([['events.dlq:a'], ['events.dlq:bc'], ['events.dlq:d'], ['events.dlq:e', 'events.late:f']]);
    for (const r of requests) {
      const list = [...r.values()].flat();
      expect(list.length === 1 || list.reduce((n, m) => n + messageBytes(m), 0) <= 1_000_000).toBe(true);
    }
  });

  it('counts key, value and headers', () => {
    expect(
      messageBytes({ key: 'abc', value: Buffer.alloc(100), headers: { h: 'xy', many: ['1', Buffer.from('22')] } }),
    ).toBe(32 + 3 + 100 + 1 + 2 + 4 + 3);
    expect(requestsOf(new Map())).toEqual([]);
  });
});
