package dev.sluice.bench;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * The reference job for one source partition (one Kafka Streams task):
 * decode + validate (failures forwarded to the DLQ sink node), dedup by event
 * id in a windowed state store, the raw row to ClickHouse, then 1-minute
 * tumbling windows per (event_type, campaign_id) on this partition's event
 * time: a window closes when the partition's max event time passes its end
 * plus the grace (out-of-orderness 30 s + allowed lateness 30 s), events
 * for closed windows go to the late sink node.
 *
 * Open windows live in a HashMap and are written to a changelogged
 * key-value store at every punctuation (as Sluice snapshots them at every
 * checkpoint), so serialising the set of users is not paid per record.
 */
final class EventCountsProcessor implements Processor<byte[], byte[], byte[], byte[]> {
  static final String DEDUP_STORE = "dedup";
  static final String WINDOW_STORE = "windows";
  static final long WINDOW_MS = 60_000;
  static final long GRACE_MS = 30_000 + 30_000;
  static final long DEDUP_RETENTION_MS = Duration.ofHours(24).toMillis();
  private static final String WATERMARK_KEY = "~watermark";

  private final Job job;
  private ProcessorContext<byte[], byte[]> ctx;
  private WindowStore<String, Long> dedup;
  private KeyValueStore<String, byte[]> snapshots;
  private EventDecoder decoder;
  private int partition = -1;
  private long endOffset = -1;
  private boolean finished = false;
  private long maxEventTime = Long.MIN_VALUE;
  /** Open windows by start time, then by group key. */
  private final TreeMap<Long, Map<String, Agg>> open = new TreeMap<>();
  private final Set<String> dirty = new HashSet<>();

  EventCountsProcessor(Job job) {
    this.job = job;
  }

  /** One window partial: (event_type, campaign) in one window of one partition. */
  static final class Agg {
    final long windowStart;
    final String eventType;
    final String campaignId;
    long events;
    long cents;
    final Set<String> users = new HashSet<>();

    Agg(long windowStart, String eventType, String campaignId) {
      this.windowStart = windowStart;
      this.eventType = eventType;
      this.campaignId = campaignId;
    }

    String key() {
      return storeKey(windowStart, eventType, campaignId);
    }

    byte[] serialize() {
      try {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(64 + users.size() * 12);
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeLong(windowStart);
        out.writeUTF(eventType);
        out.writeUTF(campaignId);
        out.writeLong(events);
        out.writeLong(cents);
        out.writeInt(users.size());
        for (String u : users) out.writeUTF(u);
        return bytes.toByteArray();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    static Agg deserialize(byte[] data) {
      try {
        DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(data));
        Agg a = new Agg(in.readLong(), in.readUTF(), in.readUTF());
        a.events = in.readLong();
        a.cents = in.readLong();
        for (int n = in.readInt(); n > 0; n--) a.users.add(in.readUTF());
        return a;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  /** Zero-padded start first: the store's byte order is window order. */
  static String storeKey(long windowStart, String eventType, String campaign) {
    String start = Long.toString(windowStart);
    return "0".repeat(Math.max(0, 15 - start.length())) + start + '\u0000' + eventType + '\u0000' + campaign;
  }

  @Override
  public void init(ProcessorContext<byte[], byte[]> context) {
    this.ctx = context;
    this.dedup = context.getStateStore(DEDUP_STORE);
    this.snapshots = context.getStateStore(WINDOW_STORE);
    this.decoder = new EventDecoder(job.registryUrl);
    this.partition = context.taskId().partition();
    this.endOffset = job.endOffsets.getOrDefault(partition, 0L);
    // Restore open windows and the watermark (after a restart; empty on a fresh application id).
    try (KeyValueIterator<String, byte[]> it = snapshots.all()) {
      while (it.hasNext()) {
        KeyValue<String, byte[]> kv = it.next();
        if (kv.key.equals(WATERMARK_KEY)) {
          maxEventTime = java.nio.ByteBuffer.wrap(kv.value).getLong();
        } else {
          Agg a = Agg.deserialize(kv.value);
          open.computeIfAbsent(a.windowStart, k -> new HashMap<>()).put(a.key(), a);
        }
      }
    }
    context.schedule(Duration.ofMillis(job.commitIntervalMs), PunctuationType.WALL_CLOCK_TIME, now -> checkpoint());
  }

  @Override
  public void process(Record<byte[], byte[]> record) {
    RecordMetadata meta = ctx.recordMetadata().orElseThrow();
    job.recordsIn.increment();
    EventDecoder.Event event = null;
    try {
      event = decoder.decode(record.value());
    } catch (EventDecoder.Rejected rejected) {
      job.deadLettered.increment();
      Headers h = record.headers();
      h.add("sluice.dlq.source.topic", meta.topic().getBytes(StandardCharsets.UTF_8));
      h.add("sluice.dlq.source.partition", Integer.toString(meta.partition()).getBytes(StandardCharsets.UTF_8));
      h.add("sluice.dlq.source.offset", Long.toString(meta.offset()).getBytes(StandardCharsets.UTF_8));
      h.add("sluice.dlq.error.class", rejected.errorClass.getBytes(StandardCharsets.UTF_8));
      h.add("sluice.dlq.error.message", String.valueOf(rejected.getMessage()).getBytes(StandardCharsets.UTF_8));
      ctx.forward(record, Job.DLQ_NODE);
    }
    if (event != null) handle(record, meta, event);
    if (meta.offset() >= endOffset - 1) finish();
  }

  private void handle(Record<byte[], byte[]> record, RecordMetadata meta, EventDecoder.Event e) {
    // Dedup: a mark per event id, kept 24 h of event time (Sluice: 24 h TTL in Redis).
    try (WindowStoreIterator<Long> seen = dedup.fetch(e.eventId, e.eventTime - DEDUP_RETENTION_MS, e.eventTime + DEDUP_RETENTION_MS)) {
      if (seen.hasNext()) {
        job.duplicates.increment();
        return;
      }
    }
    dedup.put(e.eventId, meta.offset(), e.eventTime);
    writeRaw(e, meta);

    long windowStart = Math.floorDiv(e.eventTime, WINDOW_MS) * WINDOW_MS;
    if (maxEventTime != Long.MIN_VALUE && windowStart + WINDOW_MS + GRACE_MS <= maxEventTime) {
      job.late.increment();
      record.headers().add("sluice.late.reason", "window closed".getBytes(StandardCharsets.UTF_8));
      ctx.forward(record, Job.LATE_NODE);
      return;
    }
    String campaign = e.campaignId == null ? "" : e.campaignId;
    Map<String, Agg> groups = open.computeIfAbsent(windowStart, k -> new HashMap<>());
    String key = storeKey(windowStart, e.eventType, campaign);
    Agg agg = groups.get(key);
    if (agg == null) {
      agg = new Agg(windowStart, e.eventType, campaign);
      groups.put(key, agg);
    }
    agg.events += 1;
    agg.users.add(e.userId);
    agg.cents += e.amount == null ? 0 : Math.round(e.amount * 100);
    dirty.add(key);
    job.windowed.increment();

    if (e.eventTime > maxEventTime) {
      maxEventTime = e.eventTime;
      closeWindows(maxEventTime - GRACE_MS);
    }
  }

  /** Emits and forgets every window whose end is at or before `closeAt`. */
  private void closeWindows(long closeAt) {
    while (!open.isEmpty() && open.firstKey() + WINDOW_MS <= closeAt) {
      Map.Entry<Long, Map<String, Agg>> first = open.pollFirstEntry();
      for (Agg a : first.getValue().values()) {
        emit(a);
        snapshots.delete(a.key());
        dirty.remove(a.key());
      }
    }
  }

  private void emit(Agg a) {
    JsonGenerator row = job.sink.windowRow();
    try {
      row.writeNumberField("window_start", a.windowStart / 1000);
      row.writeNumberField("window_end", (a.windowStart + WINDOW_MS) / 1000);
      row.writeStringField("event_type", a.eventType);
      row.writeStringField("campaign_id", a.campaignId);
      row.writeNumberField("source_partition", partition);
      row.writeNumberField("events", a.events);
      row.writeNumberField("amount", a.cents / 100.0);
      row.writeArrayFieldStart("users");
      for (String u : a.users) row.writeString(u);
      row.writeEndArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    job.sink.endRow(row);
    job.windowRows.increment();
  }

  private void writeRaw(EventDecoder.Event e, RecordMetadata meta) {
    JsonGenerator row = job.sink.rawRow();
    try {
      row.writeStringField("event_id", e.eventId);
      row.writeStringField("event_type", e.eventType);
      row.writeStringField("user_id", e.userId);
      row.writeStringField("campaign_id", e.campaignId == null ? "" : e.campaignId);
      row.writeStringField("ad_id", e.adId == null ? "" : e.adId);
      row.writeNumberField("event_time", Math.floorDiv(e.eventTime, 1000));
      row.writeNumberField("event_time_ms", e.eventTime);
      if (e.amount == null) row.writeNullField("amount");
      else row.writeNumberField("amount", e.amount);
      row.writeArrayFieldStart("property_keys");
      for (String k : e.propertyKeys) row.writeString(k);
      row.writeEndArray();
      row.writeArrayFieldStart("property_values");
      for (String v : e.propertyValues) row.writeString(v);
      row.writeEndArray();
      row.writeStringField("channel", e.channel);
      row.writeStringField("kafka_topic", meta.topic());
      row.writeNumberField("kafka_partition", meta.partition());
      row.writeNumberField("kafka_offset", meta.offset());
      row.writeNumberField("ingested_at", System.currentTimeMillis() / 1000);
      row.writeNumberField("version", 0);
    } catch (IOException ex) {
      throw new UncheckedIOException(ex);
    }
    job.sink.endRow(row);
  }

  /** Every commit interval: send buffered rows, and snapshot the changed open windows and the watermark. */
  private void checkpoint() {
    job.sink.flushIfDue(job.commitIntervalMs);
    if (finished) return;
    for (String key : dirty) {
      Agg a = findOpen(key);
      if (a != null) snapshots.put(key, a.serialize());
    }
    dirty.clear();
    if (maxEventTime != Long.MIN_VALUE) snapshots.put(WATERMARK_KEY, java.nio.ByteBuffer.allocate(8).putLong(maxEventTime).array());
  }

  private Agg findOpen(String key) {
    long start = Long.parseLong(key.substring(0, 15));
    Map<String, Agg> groups = open.get(start);
    return groups == null ? null : groups.get(key);
  }

  /** Bounded run: this partition reached the end offset captured at start; close every window. */
  private void finish() {
    if (finished) return;
    finished = true;
    closeWindows(Long.MAX_VALUE);
    for (Iterator<String> it = dirty.iterator(); it.hasNext(); ) {
      it.next();
      it.remove();
    }
    job.partitionFinished(partition);
  }

  @Override
  public void close() {}
}
