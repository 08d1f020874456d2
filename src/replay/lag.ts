import type { KafkaAdmin } from '../kafka';
import type { Redis } from 'ioredis';
import type { SluiceConfig } from '../config';
import { snapshotsOf } from '../state';
import { partitionOffsets } from './groups';

export interface PartitionLag {
  partition: number;
  committed: string | null;
  end: string;
  /** Records not yet processed: end − committed (end − first retained offset without a commit). */
  lag: string;
  /** This partition's watermark as of its committed offset: max event time − out-of-orderness (ms); null if unknown. */
  watermark: number | null;
}

export interface LagReport {
  group: string;
  topic: string;
  epoch: number | null;
  partitions: PartitionLag[];
  totalLag: string;
  /** The stream watermark: the minimum over partitions with one. */
  watermark: number | null;
}

/**
 * A group's lag on a topic, and (for a windowed stream) its event-time
 * watermark as saved in the window-state snapshot each committed offset
 * names: what a restarted processor would resume with.
 */
export async function lagReport(
  admin: KafkaAdmin,
  target: { group: string; topic: string },
  state?: { redis: Redis; config: SluiceConfig; stream: string; epoch: number; outOfOrdernessMs: number },
): Promise<LagReport> {
  const offsets = await partitionOffsets(admin, target.group, target.topic);
  const partitions: PartitionLag[] = [];
  let total = 0n;
  for (const p of offsets) {
    const lag = p.high - (p.committed ?? p.low);
    total += lag > 0n ? lag : 0n;
    let watermark: number | null = null;
    const snapshot = state ? snapshotsOf(p.metadata, state.epoch)?.[0] : undefined;
    if (state && snapshot !== undefined) {
      const key = `${state.config.redis.keyPrefix}state:${state.stream}:${state.epoch}:${target.topic}:${p.partition}`;
      const raw = await state.redis.hget(key, snapshot);
      const max = raw
        ? (JSON.parse(raw) as { watermark?: { maxEventTimeMs?: number | null } }).watermark?.maxEventTimeMs
        : null;
      if (typeof max === 'number') watermark = max - state.outOfOrdernessMs;
    }
    partitions.push({
      partition: p.partition,
      committed: p.committed?.toString() ?? null,
      end: p.high.toString(),
      lag: (lag > 0n ? lag : 0n).toString(),
      watermark,
    });
  }
  const marks = partitions.map((p) => p.watermark).filter((w): w is number => w !== null);
  return {
    group: target.group,
    topic: target.topic,
    epoch: state?.epoch ?? null,
    partitions,
    totalLag: total.toString(),
    watermark: marks.length > 0 ? Math.min(...marks) : null,
  };
}

export function formatLag(report: LagReport): string[] {
  const time = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());
  const lines = [
    `group ${report.group}  topic ${report.topic}  lag ${report.totalLag}  watermark ${time(report.watermark)}`,
  ];
  lines.push(
    `  ${'partition'.padEnd(10)}${'committed'.padStart(14)}${'end'.padStart(14)}${'lag'.padStart(12)}  watermark`,
  );
  for (const p of report.partitions) {
    lines.push(
      `  ${String(p.partition).padEnd(10)}${(p.committed ?? '-').padStart(14)}${p.end.padStart(14)}${p.lag.padStart(12)}  ${time(p.watermark)}`,
    );
  }
  return lines;
}
