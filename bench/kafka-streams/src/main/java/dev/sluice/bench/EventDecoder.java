package dev.sluice.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;

/**
 * Confluent wire format (magic 0, int32 schema id, Avro body) decoded with
 * Apache Avro; writer schemas fetched from the registry by id and cached.
 * Then the reference validator's rules (streams/event-counts/validate.ts),
 * re-stated in Java.
 */
final class EventDecoder {
  /** A record that cannot be decoded or fails validation: it goes to the DLQ. */
  static final class Rejected extends Exception {
    final String errorClass;

    Rejected(String errorClass, String message) {
      super(message, null, false, false);
      this.errorClass = errorClass;
    }
  }

  static final class Event {
    String eventId;
    String eventType;
    String userId;
    String campaignId; // null: none
    String adId;
    long eventTime;
    Double amount;
    String[] propertyKeys;
    String[] propertyValues;
    String channel;
  }

  private static final long TIME_MIN = 946_684_800_000L; // 2000-01-01
  private static final long TIME_MAX = 4_102_444_800_000L; // 2100-01-01, exclusive
  private static final int MAX_ID = 256;
  private static final Pattern UUID = Pattern.compile("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  private static final Pattern EVENT_TYPE = Pattern.compile("^[a-z][a-z0-9_]{0,63}$");
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private final String registryUrl;
  private final HttpClient http = HttpClient.newHttpClient();
  /** Schema id -> reader; null value: the registry does not know the id. */
  private final Map<Integer, GenericDatumReader<GenericRecord>> readers = new HashMap<>();
  private BinaryDecoder decoder;
  private GenericRecord reuse;

  EventDecoder(String registryUrl) {
    this.registryUrl = registryUrl;
  }

  Event decode(byte[] value) throws Rejected {
    if (value == null || value.length < 5 || value[0] != 0) throw new Rejected("WIRE_FORMAT_INVALID", "not Confluent wire format");
    int schemaId = ByteBuffer.wrap(value, 1, 4).getInt();
    GenericDatumReader<GenericRecord> reader = readerFor(schemaId);
    if (reader == null) throw new Rejected("SCHEMA_UNKNOWN", "unknown schema id " + schemaId);
    GenericRecord r;
    try {
      decoder = DecoderFactory.get().binaryDecoder(value, 5, value.length - 5, decoder);
      r = reader.read(reuse, decoder);
      if (!decoder.isEnd()) throw new Rejected("AVRO_INVALID", "bytes left over after the Avro body");
    } catch (Rejected e) {
      throw e;
    } catch (Exception e) {
      throw new Rejected("AVRO_INVALID", "Avro body cannot be read: " + e);
    }
    reuse = r;
    return validate(r);
  }

  private Event validate(GenericRecord r) throws Rejected {
    Event e = new Event();
    e.eventId = str(r.get("event_id"));
    e.eventType = str(r.get("event_type"));
    e.userId = str(r.get("user_id"));
    e.campaignId = str(r.get("campaign_id"));
    e.adId = str(r.get("ad_id"));
    Object time = r.get("event_time");
    Object amount = r.get("amount");
    if (e.eventId == null || !UUID.matcher(e.eventId).matches()) throw invalid("event_id");
    if (e.eventType == null || !EVENT_TYPE.matcher(e.eventType).matches()) throw invalid("event_type");
    if (!isId(e.userId)) throw invalid("user_id");
    if (e.campaignId != null && !isId(e.campaignId)) throw invalid("campaign_id");
    if (e.adId != null && !isId(e.adId)) throw invalid("ad_id");
    if (!(time instanceof Long) || (Long) time < TIME_MIN || (Long) time >= TIME_MAX) throw invalid("event_time");
    e.eventTime = (Long) time;
    if (amount != null) {
      double a = (Double) amount;
      if (!Double.isFinite(a) || a < 0) throw invalid("amount");
      e.amount = a;
    }
    @SuppressWarnings("unchecked")
    Map<Object, Object> props = (Map<Object, Object>) r.get("properties");
    int n = props == null ? 0 : props.size();
    e.propertyKeys = new String[n];
    e.propertyValues = new String[n];
    int i = 0;
    if (props != null) {
      for (Map.Entry<Object, Object> p : props.entrySet()) {
        e.propertyKeys[i] = p.getKey().toString();
        e.propertyValues[i] = p.getValue().toString();
        i++;
      }
    }
    Schema.Field channel = r.getSchema().getField("channel");
    e.channel = channel == null ? "unknown" : str(r.get(channel.pos()));
    return e;
  }

  private static Rejected invalid(String field) {
    return new Rejected("EVENT_INVALID", field + " is invalid");
  }

  private static boolean isId(String s) {
    return s != null && !s.isEmpty() && s.length() <= MAX_ID;
  }

  private static String str(Object o) {
    return o == null ? null : o.toString();
  }

  private GenericDatumReader<GenericRecord> readerFor(int id) throws Rejected {
    if (readers.containsKey(id)) return readers.get(id);
    try {
      HttpResponse<String> res = http.send(
          HttpRequest.newBuilder(URI.create(registryUrl + "/schemas/ids/" + id)).GET().build(), HttpResponse.BodyHandlers.ofString());
      GenericDatumReader<GenericRecord> reader = null;
      if (res.statusCode() == 200) {
        JsonNode body = MAPPER.readTree(res.body());
        Schema schema = new Schema.Parser().parse(body.get("schema").asText());
        reader = new GenericDatumReader<>(schema);
      } else if (res.statusCode() != 404) {
        throw new IllegalStateException("registry answered " + res.statusCode() + " for schema id " + id);
      }
      readers.put(id, reader);
      return reader;
    } catch (java.io.IOException e) {
      throw new IllegalStateException("registry unreachable at " + registryUrl + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
