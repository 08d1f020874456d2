/**
 * How big the fault scenarios are. `ci` (the default, run by `npm test`) is
 * bounded so that every scenario together stays well within the CI budget on a
 * loaded machine; `full` (`npm run test:faults`) is the size: 20
 * SIGKILLs over a 1M-event run, Kafka down 20 s, ClickHouse down 60 s.
 */
export type FaultScale = 'ci' | 'full';

export const SCALE: FaultScale = process.env.SLUICE_FAULTS_SCALE === 'full' ? 'full' : 'ci';

export interface FaultSizes {
  kills: { events: number; segments: number; kills: number; minGapMs: number; maxGapMs: number };
  storm: { events: number; segments: number; changes: number; minGapMs: number; maxGapMs: number; maxMembers: number };
  /** Records before and during each outage, and how long each service stays down at least (longer while the processor has not paused). */
  outages: { before: number; during: number; kafkaMs: number; redisMs: number; clickhouseMs: number };
  /** Records before and at the start of the slow period (more follow while little waits unread), the delay per response and how long it lasts at least. */
  slowSink: { before: number; during: number; delayMs: number; slowForMs: number };
  /** Jest timeout of one scenario. */
  timeoutMs: number;
}

const SIZES: Record<FaultScale, FaultSizes> = {
  ci: {
    kills: { events: 60_000, segments: 6, kills: 6, minGapMs: 2500, maxGapMs: 6000 },
    storm: { events: 60_000, segments: 6, changes: 10, minGapMs: 2000, maxGapMs: 5000, maxMembers: 3 },
    outages: { before: 15_000, during: 40_000, kafkaMs: 15_000, redisMs: 15_000, clickhouseMs: 20_000 },
    // The input keeps arriving while the sink is slow (`during` at once, then more whenever little waits unread), so it
    // piles up in Kafka whatever the machine's speed; a checkpoint (two inserts, each of every row it holds) takes 8 s.
    slowSink: { before: 10_000, during: 40_000, delayMs: 4000, slowForMs: 15_000 },
    timeoutMs: 240_000,
  },
  full: {
    kills: { events: 1_000_000, segments: 20, kills: 20, minGapMs: 3000, maxGapMs: 9000 },
    storm: { events: 300_000, segments: 10, changes: 40, minGapMs: 2000, maxGapMs: 6000, maxMembers: 4 },
    outages: { before: 50_000, during: 150_000, kafkaMs: 20_000, redisMs: 30_000, clickhouseMs: 60_000 },
    slowSink: { before: 50_000, during: 200_000, delayMs: 3000, slowForMs: 60_000 },
    timeoutMs: 1_800_000,
  },
};

export const sizes: FaultSizes = SIZES[SCALE];
