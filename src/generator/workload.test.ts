import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Type } from 'avsc';
import { loadAvroSchema, parseAvroType } from '../schema';
import { createEventEncoder } from './encode';
import { formatLogLine, toLogEntry } from './log';
import { validateAnalyticsEvent, validateAnalyticsEventV2 } from '../../streams/event-counts/validate';
import {
  CHANNELS,
  DUPLICATE_LOOKBACK,
  INVALID_REASONS,
  LATE_AFTER_FRACTION,
  UNDECODABLE_REASONS,
  UNKNOWN_SCHEMA_ID,
  WorkloadOptionsError,
  generateWorkload,
  type WorkloadOptions,
  type WorkloadRecord,
} from './workload';

const SCHEMA_ID = 7;
const encode = createEventEncoder(SCHEMA_ID);
const type: Type = parseAvroType(loadAvroSchema('analytics_event.v2'));
const HOUR = 3_600_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const generate = (options: WorkloadOptions): WorkloadRecord[] => [...generateWorkload(options, encode)];

/** Decodes a value the way a consumer must, independently of the generator: framing, known id, whole body. */
function decode(value: Buffer): Record<string, unknown> | undefined {
  if (value.length < 5 || value[0] !== 0 || value.readInt32BE(1) !== SCHEMA_ID) return undefined;
  try {
    const { value: decoded, offset } = type.decode(value, 5);
    return offset === value.length ? (decoded as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

describe('generateWorkload', () => {
  const options = { count: 20_000, seed: 20261125, poisonRatio: 0.01 };
  const records = generate(options);
  const start = records.length > 0 ? Date.UTC(2026, 0, 1) : 0; // DEFAULT_START_TIME, spelled out

  it('is deterministic: the same seed gives the same log and the same bytes', () => {
    const digest = (rs: WorkloadRecord[]) => {
      const h = createHash('sha256');
      for (const r of rs)
        h.update(`${r.key}|`)
          .update(r.value)
          .update(formatLogLine(toLogEntry(r)));
      return h.digest('hex');
    };
    expect(digest(generate(options))).toBe(digest(records));
    expect(digest(generate({ ...options, seed: options.seed + 1 }))).not.toBe(digest(records));
  });

  it('emits each kind in the requested proportion', () => {
    const count = (kind: string) => records.filter((r) => r.kind === kind).length;
    expect(records).toHaveLength(20_000);
    expect(count('duplicate')).toBe(400); // 2% default
    expect(count('late')).toBe(100); // 0.5% default
    expect(count('poison')).toBe(200); // 1% asked
    expect(count('valid')).toBe(20_000 - 400 - 100 - 200);
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i));
  });

  it('keys every event by its id, and poison by a random uuid or no key', () => {
    // Mismatches are collected and asserted once: an expect per record would make the spec slow.
    expect(records.filter((r) => r.kind !== 'poison' && r.key !== r.event!.event_id).map((r) => r.seq)).toEqual([]);
    const poisonKeys = records.filter((r) => r.kind === 'poison').map((r) => r.key);
    const nullKeys = poisonKeys.filter((k) => k === null).length;
    expect(nullKeys).toBeGreaterThan(60);
    expect(nullKeys).toBeLessThan(140);
    for (const k of poisonKeys) if (k !== null) expect(k).toMatch(UUID);
    const ids = records.filter((r) => r.kind === 'valid' || r.kind === 'late').map((r) => r.event!.event_id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('writes valid events that decode and validate to exactly what was logged', () => {
    const mismatched = records
      .filter((r) => r.kind !== 'poison')
      .filter((r) => {
        // avsc decodes records into instances of a generated class: compare as plain objects.
        const decoded = decode(r.value);
        return (
          !decoded ||
          !isDeepStrictEqual({ ...decoded }, r.event) ||
          !isDeepStrictEqual(validateAnalyticsEventV2(decoded), { ok: true, event: r.event })
        );
      });
    expect(mismatched.map((r) => r.seq)).toEqual([]);
    // The check can fail: a changed byte is caught.
    const sample = Buffer.from(records[0]!.value);
    sample[sample.length - 2] = sample[sample.length - 2]! ^ 0x01;
    expect(isDeepStrictEqual({ ...decode(sample) }, records[0]!.event)).toBe(false);
  });

  it("fills v2's channel at top level, from every channel, and leaves it out of the properties", () => {
    const events = records.filter((r) => r.kind !== 'poison').map((r) => r.event!);
    expect(new Set(events.map((e) => e.channel))).toEqual(new Set(CHANNELS));
    expect(events.filter((e) => 'channel' in e.properties)).toEqual([]);
    // Each channel about a quarter of the events.
    for (const c of CHANNELS) expect(events.filter((e) => e.channel === c).length).toBeGreaterThan(events.length / 5);
  });

  it('keeps valid events within the out-of-order spread of everything before them', () => {
    const spread = 30_000;
    let maxSoFar = -Infinity;
    let worst = 0;
    let earliest = Infinity;
    for (const r of records.filter((r) => r.kind === 'valid')) {
      const t = r.event!.event_time;
      earliest = Math.min(earliest, t);
      maxSoFar = Math.max(maxSoFar, t);
      worst = Math.max(worst, maxSoFar - t);
    }
    expect(earliest).toBeGreaterThanOrEqual(start);
    // Never behind a watermark of (max seen - spread), yet the spread is really used.
    expect(worst).toBeLessThanOrEqual(spread);
    expect(worst).toBeGreaterThan(0.9 * spread);
    // 20k records at 100/s: ~200 s of event time.
    const times = records.filter((r) => r.kind === 'valid').map((r) => r.event!.event_time);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(190_000);
    expect(Math.max(...times) - Math.min(...times)).toBeLessThan(231_000);
  });

  it('puts late events 1-2 h before the start, after the first 20% of the records', () => {
    const late = records.filter((r) => r.kind === 'late');
    for (const r of late) {
      expect(r.seq).toBeGreaterThanOrEqual(LATE_AFTER_FRACTION * options.count);
      expect(r.event!.event_time).toBeLessThanOrEqual(start - HOUR);
      expect(r.event!.event_time).toBeGreaterThan(start - 2 * HOUR);
      expect(validateAnalyticsEvent(decode(r.value)!).ok).toBe(true);
    }
  });

  it('re-sends a recent valid event, same key and bytes, as each duplicate', () => {
    const bySeq = new Map(records.map((r) => [r.seq, r]));
    const validSeqs = records.filter((r) => r.kind === 'valid').map((r) => r.seq);
    for (const dup of records.filter((r) => r.kind === 'duplicate')) {
      const original = bySeq.get(dup.duplicateOf!)!;
      expect(original.kind).toBe('valid');
      expect(original.seq).toBeLessThan(dup.seq);
      expect(dup.key).toBe(original.key);
      expect(dup.value.equals(original.value)).toBe(true);
      const validBetween = validSeqs.filter((s) => s >= original.seq && s < dup.seq).length;
      expect(validBetween).toBeLessThanOrEqual(DUPLICATE_LOOKBACK);
    }
  });

  it('makes poison of every kind, each undecodable or invalid as its reason says', () => {
    const poison = records.filter((r) => r.kind === 'poison');
    const reasons = new Set(poison.map((r) => r.poisonReason));
    expect([...reasons].sort()).toEqual([...UNDECODABLE_REASONS, ...INVALID_REASONS].sort());
    for (const r of poison) {
      const decoded = decode(r.value);
      if ((UNDECODABLE_REASONS as readonly string[]).includes(r.poisonReason!)) {
        expect(decoded).toBeUndefined();
        if (r.poisonReason === 'unknown-schema-id') expect(r.value.readInt32BE(1)).toBe(UNKNOWN_SCHEMA_ID);
        if (r.poisonReason === 'wrong-magic-byte' || r.poisonReason === 'random-bytes') expect(r.value[0]).not.toBe(0);
      } else {
        expect(decoded).toBeDefined();
        const result = validateAnalyticsEvent(decoded!);
        expect(result.ok).toBe(false);
        // Exactly one rule broken, the one the reason names.
        if (!result.ok) expect(result.errors).toHaveLength(1);
      }
    }
  });

  it('honours the knobs: rate, start, spread, cardinality', () => {
    const startTime = Date.UTC(2025, 5, 1, 12);
    const small = generate({
      count: 5_000,
      seed: 1,
      ratePerSecond: 1000,
      startTime,
      outOfOrderMs: 0,
      users: 3,
      campaigns: 2,
      noCampaignShare: 0,
    });
    const valid = small.filter((r) => r.kind === 'valid').map((r) => r.event!);
    const times = valid.map((e) => e.event_time);
    expect(times).toEqual([...times].sort((a, b) => a - b)); // no spread: in order
    expect(Math.min(...times)).toBeGreaterThanOrEqual(startTime);
    expect(Math.max(...times)).toBeLessThan(startTime + 5_000);
    expect(new Set(valid.map((e) => e.user_id)).size).toBe(3);
    expect(new Set(valid.map((e) => e.campaign_id))).toEqual(new Set(['campaign-0', 'campaign-1']));
    expect(valid.filter((e) => e.amount !== null).every((e) => e.event_type === 'purchase')).toBe(true);
    expect(
      valid
        .filter((e) => e.event_type === 'purchase')
        .every((e) => e.amount !== null && Number.isInteger(Math.round(e.amount * 100))),
    ).toBe(true);
    expect(new Set(valid.map((e) => e.event_type)).size).toBe(5);
  });

  it('refuses options it cannot honour, saying which', () => {
    expect(() => generate({ count: 0, seed: 1 })).toThrow(WorkloadOptionsError);
    expect(() => generate({ count: 10, seed: 1.5 })).toThrow(/seed/);
    expect(() => generate({ count: 10, seed: 1, duplicateRatio: 0.3, poisonRatio: 0.3 })).toThrow(/half/);
    expect(() => generate({ count: 10, seed: 1, ratePerSecond: 0 })).toThrow(/rate/);
    expect(() => generate({ count: 10, seed: 1, lateRatio: -0.1 })).toThrow(/lateRatio/);
  });

  it('handles tiny workloads (record 0 is always valid)', () => {
    expect(generate({ count: 1, seed: 3, duplicateRatio: 0.45 }).map((r) => r.kind)).toEqual(['valid']);
    expect(generate({ count: 2, seed: 3, duplicateRatio: 0.45 }).map((r) => r.kind)).toEqual(['valid', 'duplicate']);
  });
});
