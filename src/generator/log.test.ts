import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEventEncoder } from './encode';
import { LogWriter, formatLogLine, parseLogLine, readLogFile, toLogEntry } from './log';
import { generateWorkload } from './workload';

describe('workload log', () => {
  const entries = [...generateWorkload({ count: 3_000, seed: 5, poisonRatio: 0.02 }, createEventEncoder(1))].map(
    toLogEntry,
  );

  it('round-trips through NDJSON, NaN amounts included', () => {
    const nan = entries.find((e) => e.poisonReason === 'nan-amount');
    expect(nan).toBeDefined();
    expect(formatLogLine(nan!)).toContain('"amount":"NaN"');
    for (const e of entries) expect(parseLogLine(formatLogLine(e))).toEqual(e);
  });

  it('reads a line of a generator that wrote v1 with the channel the stream read: unknown', () => {
    const line =
      '{"seq":0,"kind":"valid","key":"k","eventId":"k","event":{"event_id":"k","event_type":"click","user_id":"user-1",' +
      '"campaign_id":null,"ad_id":null,"event_time":1,"amount":null,"properties":{"channel":"ios"}}}';
    expect(parseLogLine(line).event).toMatchObject({ properties: { channel: 'ios' }, channel: 'unknown' });
    expect(entries.every((e) => e.event === undefined || typeof e.event.channel === 'string')).toBe(true);
  });

  it('keeps the exact value bytes of poison only', () => {
    expect(entries.filter((e) => e.kind === 'poison').every((e) => typeof e.value === 'string')).toBe(true);
    expect(entries.filter((e) => e.kind !== 'poison').every((e) => e.value === undefined)).toBe(true);
  });

  it('writes a file that reads back entry for entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-log-'));
    try {
      const path = join(dir, 'log.ndjson');
      const writer = new LogWriter(path);
      await writer.write(entries.slice(0, 1000));
      await writer.write(entries.slice(1000));
      await writer.close();
      const read = [];
      for await (const e of readLogFile(path)) read.push(e);
      expect(read).toEqual(entries);
      expect(() => new LogWriter(join(dir, 'missing', 'log.ndjson'))).toThrow(/ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
