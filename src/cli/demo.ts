import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { loadConfig, type SluiceConfig } from '../config';
import { createKafka } from '../kafka';
import { createRedis } from '../redis';
import { createClickHouse, explainClickHouseError } from '../sink/clickhouse/client';
import { stackUp } from '../stack';
import { printLine } from './output';

/**
 * The smoke pipeline: Kafka -> consumer group -> ClickHouse, with the run
 * recorded in Redis. It proves the three real services work together; the
 * reference stream replaces it as the main job.
 */
export async function runSmokePipeline(config: SluiceConfig, events: number, log: (line: string) => void): Promise<void> {
  const runId = randomUUID();
  const topic = 'sluice.smoke';
  const kafka = createKafka(config);
  const admin = kafka.admin();
  await admin.connect();
  if (!(await admin.listTopics()).includes(topic)) {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  }
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const started = Date.now();
  const messages = Array.from({ length: events }, (_, i) => ({
    key: `${runId}-${i}`,
    value: JSON.stringify({ run_id: runId, seq: i, produced_at: Date.now() }),
  }));
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
  log(`produced ${events} records to ${topic} (run ${runId})`);

  const ch = createClickHouse(config.clickhouse);
  const table = `${config.clickhouse.database}.smoke_events`;
  try {
    await ch.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.clickhouse.database}` });
    await ch.command({
      query: `CREATE TABLE IF NOT EXISTS ${table} (run_id String, seq UInt32, kafka_partition UInt16, kafka_offset UInt64)
              ENGINE = ReplacingMergeTree() ORDER BY (run_id, seq)`,
    });
  } catch (err) {
    throw explainClickHouseError(config.clickhouse, err);
  }

  // A fresh group per run reads from the start and keeps only this run's records.
  const consumer = kafka.consumer({ groupId: `sluice.smoke.${runId}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    void consumer.run({
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        const rows = batch.messages
          .map((m) => ({ m, v: JSON.parse(m.value!.toString()) as { run_id: string; seq: number } }))
          .filter(({ v }) => v.run_id === runId)
          .map(({ m, v }) => ({ run_id: v.run_id, seq: v.seq, kafka_partition: batch.partition, kafka_offset: m.offset }));
        // Into ClickHouse first, then the offsets: the commit never runs ahead of the sink.
        if (rows.length > 0) await ch.insert({ table, values: rows, format: 'JSONEachRow' }).catch(reject);
        for (const m of batch.messages) resolveOffset(m.offset);
        await heartbeat();
        seen += rows.length;
        if (seen >= events) resolve();
      },
    });
  });
  await consumer.disconnect();
  await admin.deleteGroups([`sluice.smoke.${runId}`]).catch(() => undefined);
  await admin.disconnect();

  const redis = createRedis(config);
  await redis.connect();
  const runs = await redis.incr(`${config.redis.keyPrefix}smoke:runs`);
  redis.disconnect();

  const query = `SELECT count() AS rows, uniqExact(seq) AS distinct_seq FROM ${table} FINAL WHERE run_id = '${runId}'`;
  const [result] = await (await ch.query({ query, format: 'JSONEachRow' })).json<{ rows: string; distinct_seq: string }>();
  await ch.close();
  log(`consumed ${seen} records and inserted them into ClickHouse ${table} in ${Date.now() - started} ms`);
  log(`redis counter ${config.redis.keyPrefix}smoke:runs = ${runs}`);
  log(`clickhouse> ${query}`);
  log(`rows=${result!.rows} distinct_seq=${result!.distinct_seq} (expected ${events})`);
  if (Number(result!.rows) !== events) throw new Error(`smoke pipeline lost or duplicated records: ${result!.rows} of ${events}`);
}

export function registerDemoCommand(program: Command): void {
  program
    .command('smoke')
    .description('start the local stack and push a few records through Kafka, Redis and ClickHouse')
    .option('--events <n>', 'records to send', '1000')
    .addHelpText('after', '\nExamples:\n  sluice smoke\n  sluice smoke --events 10000')
    .action(async (opts: { events: string }) => {
      const config = loadConfig();
      await stackUp(config, printLine);
      await runSmokePipeline(config, Number(opts.events), printLine);
    });
}
