/**
 * The Kafka client library Sluice uses (kafkajs, built by src/kafka), reading
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

  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 200,
    maxBytesPerPartition: 1024 * 1024,
    maxBytes: 64 * 1024 * 1024,
  });
  let records = 0;
  let bytes = 0;
  const started = process.hrtime.bigint();
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  if (remaining.size === 0) finish();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 8,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        records += 1;
        bytes += m.value?.length ?? 0;
      }
      const last = batch.messages[batch.messages.length - 1];
      if (last && BigInt(last.offset) + 1n >= ends.get(batch.partition)!) {
        remaining.delete(batch.partition);
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
