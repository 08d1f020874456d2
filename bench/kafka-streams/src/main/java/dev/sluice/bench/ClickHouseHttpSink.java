package dev.sluice.bench;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Writes rows to ClickHouse through its HTTP interface as JSONEachRow, in
 * batches: one buffer per table, sent when it holds `batchRows` rows or when
 * `flush()` is called (every commit interval). Inserts run on one background
 * thread so the stream thread keeps processing; at most two batches are in
 * flight, then the stream thread waits (bounded memory, like Sluice's sink).
 */
final class ClickHouseHttpSink implements AutoCloseable {
  private static final JsonFactory JSON = new JsonFactory();

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
  private final String baseUrl;
  private final String authorization;
  private final String database;
  private final int batchRows;
  private final ExecutorService sender = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "clickhouse-sink");
    t.setDaemon(true);
    return t;
  });
  private final ArrayDeque<Future<?>> inFlight = new ArrayDeque<>();
  private final Table raw = new Table("events_raw");
  private final Table windows = new Table("window_partials");
  final java.util.concurrent.atomic.AtomicLong rowsSent = new java.util.concurrent.atomic.AtomicLong();
  final java.util.concurrent.atomic.AtomicLong inserts = new java.util.concurrent.atomic.AtomicLong();
  private long lastFlushAt = 0;

  ClickHouseHttpSink(String baseUrl, String user, String password, String database, int batchRows) {
    this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
    this.authorization = "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
    this.database = database;
    this.batchRows = batchRows;
  }

  /** Runs one statement and waits for it (DDL). */
  void command(String sql) {
    send(sql, new byte[0]);
  }

  synchronized JsonGenerator rawRow() {
    return raw.begin();
  }

  synchronized JsonGenerator windowRow() {
    return windows.begin();
  }

  /** Ends the row started by rawRow()/windowRow(); sends the buffer when it is full. */
  synchronized void endRow(JsonGenerator row) {
    Table table = row == raw.gen ? raw : windows;
    table.end();
    if (table.rows >= batchRows) submit(table);
  }

  /**
   * Every task's punctuation calls this; one flush per interval is enough
   * (and keeps inserts large, as ClickHouse wants).
   */
  synchronized void flushIfDue(long intervalMs) {
    long now = System.currentTimeMillis();
    if (now - lastFlushAt < intervalMs - 50) return;
    flush();
  }

  /** Sends whatever is buffered (does not wait for it). */
  synchronized void flush() {
    lastFlushAt = System.currentTimeMillis();
    if (raw.rows > 0) submit(raw);
    if (windows.rows > 0) submit(windows);
  }

  /** Sends everything buffered and waits until ClickHouse has acknowledged every insert. */
  void flushAndWait() {
    flush();
    while (true) {
      Future<?> next;
      synchronized (this) {
        next = inFlight.poll();
      }
      if (next == null) return;
      await(next);
    }
  }

  private void submit(Table table) {
    byte[] body = table.take();
    int rows = table.lastTakenRows;
    String sql = "INSERT INTO " + database + "." + table.name + " FORMAT JSONEachRow";
    inFlight.add(sender.submit(() -> {
      send(sql, body);
      // No lock here: the stream thread may hold the sink's monitor while it waits for this batch.
      rowsSent.addAndGet(rows);
      inserts.incrementAndGet();
    }));
    while (inFlight.size() > 2) await(inFlight.poll());
  }

  private static void await(Future<?> f) {
    try {
      f.get();
    } catch (Exception e) {
      throw new IllegalStateException("ClickHouse insert failed: " + e.getMessage(), e);
    }
  }

  private void send(String sql, byte[] body) {
    String url = baseUrl + "/?query=" + URLEncoder.encode(sql, StandardCharsets.UTF_8);
    HttpRequest request = HttpRequest.newBuilder(URI.create(url))
        .header("Authorization", authorization)
        .timeout(Duration.ofSeconds(120))
        .POST(HttpRequest.BodyPublishers.ofByteArray(body))
        .build();
    try {
      HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
      if (response.statusCode() != 200) {
        throw new IllegalStateException("ClickHouse answered " + response.statusCode() + ": " + response.body().trim());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    sender.shutdownNow();
  }

  /** One table's buffer of JSONEachRow rows. */
  private static final class Table {
    final String name;
    ByteArrayOutputStream out = new ByteArrayOutputStream(1 << 20);
    JsonGenerator gen;
    int rows = 0;
    int lastTakenRows = 0;

    Table(String name) {
      this.name = name;
      this.gen = open(out);
    }

    private static JsonGenerator open(ByteArrayOutputStream out) {
      try {
        return JSON.createGenerator(out);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    JsonGenerator begin() {
      try {
        gen.writeStartObject();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return gen;
    }

    void end() {
      try {
        gen.writeEndObject();
        gen.writeRaw('\n');
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      rows += 1;
    }

    byte[] take() {
      try {
        gen.flush();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      byte[] body = out.toByteArray();
      lastTakenRows = rows;
      out = new ByteArrayOutputStream(Math.max(1 << 20, body.length));
      gen = open(out);
      rows = 0;
      return body;
    }
  }
}
