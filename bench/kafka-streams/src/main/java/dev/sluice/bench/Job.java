package dev.sluice.bench;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams peer of Sluice's `event-counts` stream, run bounded: it
 * captures the topic's end offsets at start, processes up to them, closes
 * every open window, flushes to ClickHouse and exits. Prints one JSON line
 * with its counters. Settings as `--name value` arguments (bench/run.ts).
 */
public final class Job {
  static final String DLQ_NODE = "dlq";
  static final String LATE_NODE = "late";

  final String registryUrl;
  final long commitIntervalMs;
  final Map<Integer, Long> endOffsets = new HashMap<>();
  final ClickHouseHttpSink sink;
  final LongAdder recordsIn = new LongAdder();
  final LongAdder deadLettered = new LongAdder();
  final LongAdder duplicates = new LongAdder();
  final LongAdder late = new LongAdder();
  final LongAdder windowed = new LongAdder();
  final LongAdder windowRows = new LongAdder();
  private final Set<Integer> unfinished = ConcurrentHashMap.newKeySet();
  private final CountDownLatch allFinished = new CountDownLatch(1);

  private Job(String registryUrl, long commitIntervalMs, ClickHouseHttpSink sink) {
    this.registryUrl = registryUrl;
    this.commitIntervalMs = commitIntervalMs;
    this.sink = sink;
  }

  void partitionFinished(int partition) {
    unfinished.remove(partition);
    if (unfinished.isEmpty()) allFinished.countDown();
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
    String brokers = args.getOrDefault("brokers", "127.0.0.1:9092");
    String topic = require(args, "topic");
    String appId = require(args, "application-id");
    String db = require(args, "clickhouse-database");
    int threads = Integer.parseInt(args.getOrDefault("threads", "1"));
    long commitMs = Long.parseLong(args.getOrDefault("commit-interval-ms", "1000"));
    long timeoutMs = Long.parseLong(args.getOrDefault("timeout-ms", "1800000"));
    if (!db.matches("^[A-Za-z_][A-Za-z0-9_]*$")) throw new IllegalArgumentException("bad database name " + db);

    ClickHouseHttpSink sink = new ClickHouseHttpSink(
        args.getOrDefault("clickhouse-url", "http://127.0.0.1:8123"),
        args.getOrDefault("clickhouse-user", "sluice"),
        args.getOrDefault("clickhouse-password", "sluice"),
        db,
        Integer.parseInt(args.getOrDefault("batch-rows", "20000")));
    Job job = new Job(args.getOrDefault("registry-url", "http://127.0.0.1:8081"), commitMs, sink);
    createTables(sink, db);

    long started = System.nanoTime();
    Properties adminProps = new Properties();
    adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    try (Admin admin = Admin.create(adminProps)) {
      TopicDescription description = admin.describeTopics(Set.of(topic)).allTopicNames().get().get(topic);
      Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
      Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
      description.partitions().forEach(p -> {
        latest.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest());
        earliest.put(new TopicPartition(topic, p.partition()), OffsetSpec.earliest());
      });
      var high = admin.listOffsets(latest).all().get();
      var low = admin.listOffsets(earliest).all().get();
      for (var e : high.entrySet()) {
        int p = e.getKey().partition();
        job.endOffsets.put(p, e.getValue().offset());
        if (e.getValue().offset() > low.get(e.getKey()).offset()) job.unfinished.add(p);
      }
    }
    if (job.unfinished.isEmpty()) job.allFinished.countDown();

    Topology topology = new Topology();
    topology.addSource("source", Serdes.ByteArray().deserializer(), Serdes.ByteArray().deserializer(), topic);
    topology.addProcessor("event-counts", () -> new EventCountsProcessor(job), "source");
    topology.addStateStore(
        Stores.windowStoreBuilder(
            Stores.persistentWindowStore(EventCountsProcessor.DEDUP_STORE, Duration.ofMillis(EventCountsProcessor.DEDUP_RETENTION_MS * 2),
                Duration.ofMillis(1), false),
            Serdes.String(), Serdes.Long()),
        "event-counts");
    topology.addStateStore(
        Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(EventCountsProcessor.WINDOW_STORE), Serdes.String(), Serdes.ByteArray()),
        "event-counts");
    topology.addSink(DLQ_NODE, args.getOrDefault("dlq-topic", topic + ".dlq"), Serdes.ByteArray().serializer(), Serdes.ByteArray().serializer(), "event-counts");
    topology.addSink(LATE_NODE, args.getOrDefault("late-topic", topic + ".late"), Serdes.ByteArray().serializer(), Serdes.ByteArray().serializer(), "event-counts");

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitMs);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args.getOrDefault("state-dir", "/tmp/sluice-bench-kafka-streams"));
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

    KafkaStreams streams = new KafkaStreams(topology, props);
    Throwable[] failure = new Throwable[1];
    streams.setUncaughtExceptionHandler(e -> {
      failure[0] = e;
      job.allFinished.countDown();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.start();
    long deadline = System.currentTimeMillis() + timeoutMs;
    boolean done = false;
    while (!done && System.currentTimeMillis() < deadline) {
      done = job.allFinished.await(10, TimeUnit.SECONDS);
      if (!done) System.err.println("kafka-streams job: " + job.recordsIn.sum() + " records in, partitions not finished: " + job.unfinished);
    }
    int exit = 0;
    if (failure[0] != null || !done) {
      System.err.println("kafka-streams job failed: " + (failure[0] != null ? failure[0] : "timed out after " + timeoutMs + " ms"));
      exit = 1;
    } else {
      sink.flushAndWait();
    }
    double seconds = (System.nanoTime() - started) / 1e9;
    streams.close(Duration.ofSeconds(30));
    sink.close();
    System.out.println("{\"records_in\":" + job.recordsIn.sum() + ",\"dead_lettered\":" + job.deadLettered.sum() + ",\"duplicates\":"
        + job.duplicates.sum() + ",\"late\":" + job.late.sum() + ",\"windowed\":" + job.windowed.sum() + ",\"window_rows\":"
        + job.windowRows.sum() + ",\"clickhouse_inserts\":" + sink.inserts.get() + ",\"rows_sent\":" + sink.rowsSent.get() + ",\"seconds\":"
        + String.format("%.3f", seconds) + ",\"end_offsets\":\""
        + job.endOffsets.entrySet().stream().map(e -> e.getKey() + ":" + e.getValue()).collect(Collectors.joining(",")) + "\"}");
    System.exit(exit);
  }

  private static String require(Map<String, String> args, String name) {
    String v = args.get(name);
    if (v == null) throw new IllegalArgumentException("--" + name + " is required");
    return v;
  }

  /** Same column types as Sluice's events_raw and event_counts_1m_partial, plain MergeTree tables. */
  private static void createTables(ClickHouseHttpSink sink, String db) {
    sink.command("CREATE DATABASE IF NOT EXISTS " + db);
    sink.command("CREATE TABLE IF NOT EXISTS " + db + ".events_raw (event_id String, event_type String, user_id String, campaign_id String,"
        + " ad_id String, event_time DateTime, event_time_ms UInt64, amount Nullable(Float64), property_keys Array(String),"
        + " property_values Array(String), channel String, kafka_topic String, kafka_partition UInt16, kafka_offset UInt64,"
        + " ingested_at DateTime, version UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(event_time) ORDER BY event_id");
    sink.command("CREATE TABLE IF NOT EXISTS " + db + ".window_partials (window_start DateTime, window_end DateTime, event_type String,"
        + " campaign_id String, source_partition UInt16, events UInt64, amount Float64, users Array(String))"
        + " ENGINE = MergeTree PARTITION BY toYYYYMMDD(window_start) ORDER BY (window_start, event_type, campaign_id, source_partition)");
    sink.command("CREATE VIEW IF NOT EXISTS " + db + ".event_counts_1m AS SELECT window_start, window_end, event_type, campaign_id,"
        + " sum(events) AS events, uniqExactArray(users) AS distinct_users_in_window, sum(amount) AS amount FROM " + db + ".window_partials"
        + " GROUP BY window_start, window_end, event_type, campaign_id");
  }
}
