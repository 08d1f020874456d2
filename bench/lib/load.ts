/**
 * The topic every consume measurement reads: six partitions of the
 * reference workload with its side topics, and the answer the generator
 * says a correct job produces from it.
 */
import type { SluiceConfig } from '../../src/config';
import { ExpectedAnswerBuilder, produceWorkload, type ExpectedAnswer } from '../../src/generator';
import { createKafka, withAdmin } from '../../src/kafka';
import { round } from './measure';
import { note, type RunReport } from './report';

export const PARTITIONS = 6;
export const OUT_OF_ORDER_MS = 30_000;

/** `<topic>` and its side topics, Sluice's and the Kafka Streams peer's (`extraSides`: e.g. `kstreams.`). */
export async function createBenchTopics(config: SluiceConfig, topic: string, extraSides: string[] = []): Promise<void> {
  const sides = ['', ...extraSides].flatMap((prefix) => [`${topic}.${prefix}dlq`, `${topic}.${prefix}late`]);
  await withAdmin(createKafka(config), (admin) =>
    admin.createTopics([{ topic, numPartitions: PARTITIONS }, ...sides.map((t) => ({ topic: t, numPartitions: 1 }))]),
  );
}

/** Loads the topic with the reference workload; the expected answer is built from the log as it streams by. */
export async function preload(
  config: SluiceConfig,
  topic: string,
  load: { events: number; seed: number },
  report: RunReport,
): Promise<ExpectedAnswer> {
  note(`pre-loading ${load.events} reference records into ${topic}`);
  const builder = new ExpectedAnswerBuilder();
  let lastNote = Date.now();
  const produced = await produceWorkload({
    config,
    topic,
    count: load.events,
    seed: load.seed,
    duplicateRatio: 0.02,
    outOfOrderMs: OUT_OF_ORDER_MS,
    lateRatio: 0.005,
    poisonRatio: 0.001,
    onLogEntry: (entry) => builder.add(entry),
    onProgress: (sent, total) => {
      if (Date.now() - lastNote > 10_000) {
        lastNote = Date.now();
        note(`  ${sent}/${total}`);
      }
    },
  });
  const expected = builder.result();
  report.emit({
    bench: 'preload',
    name: 'produce',
    events: produced.records,
    seconds: round(produced.seconds),
    events_per_s: Math.round(produced.recordsPerSecond),
    value_mb: round(produced.valueBytes / 1024 / 1024, 1),
    by_kind: produced.byKind,
    expected_distinct_events: expected.eventIds.size,
    expected_window_rows: expected.windows.length,
    expected_dead_letters: expected.deadLetters.length,
    expected_late: expected.lateEventIds.size,
  });
  return expected;
}
