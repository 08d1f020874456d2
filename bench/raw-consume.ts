/**
 * The Kafka client Sluice uses (src/kafka's group consumer, on the `kafka.client` library), reading
 * a topic to the end offsets captured at start and doing nothing with the
 * records but counting them. Run as its own process by bench/run.ts so it is
 * measured like the others; prints one JSON line.
 *
 *   tsx bench/raw-consume.ts <topic> <group>
 *
 * The fetch settings are the stream runner's (src/process/runner.ts), so the
 * difference to Sluice is the work, not the fetching.
 */
import { loadConfig } from '../src/config';
import { createKafka, endOffsets, withAdmin } from '../src/kafka';

async function main(): Promise<void> {
  const [topic, groupId] = process.argv.slice(2);
  if (!topic || !groupId) throw new Error('usage: raw-consume.ts <topic> <group>');
  const kafka = createKafka(loadConfig());
  const ends = await withAdmin(kafka, (admin) => endOffsets(admin, topic));
  const remaining = new Set([...ends].filter(([, end]) => end > 0n).map(([p]) => p));

  // The stream runner's consumer (src/kafka), with its fetch settings: the difference to Sluice is the work.
  const consumer = kafka.consumer({ groupId, topic, sessionTimeoutMs: 30_000 });
  let records = 0;
  let bytes = 0;
  const started = process.hrtime.bigint();
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  if (remaining.size === 0) finish();
  await consumer.start({
    onAssignment: () => undefined,
    onCrash: () => undefined,
    onBatch: async (partition, batch, control) => {
      for (const m of batch) {
        records += 1;
        bytes += m.value?.length ?? 0;
      }
      control.resolve(control.lastOffset);
      const last = batch[batch.length - 1];
      if (last && BigInt(last.offset) + 1n >= ends.get(partition)!) {
        remaining.delete(partition);
        if (remaining.size === 0) finish();
      }
    },
  });
  await finished;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await consumer.disconnect();
  process.stdout.write(`${JSON.stringify({ records, value_bytes: bytes, seconds })}\n`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`raw-consume failed: ${err.message}\n`);
    process.exit(1);
  },
);
