import {
  Kafka,
  logLevel as KafkaLogLevel,
  type AdminConfig,
  type ConsumerConfig,
  type KafkaConfig,
  type ProducerConfig,
  type SASLOptions,
} from 'kafkajs';
import type { SluiceConfig } from '../../config';
import { processClientId } from '../client';
import { saslRefused, tlsFailed, TLS_FAILURE } from '../explain';
import { kafkaTlsOptions } from '../security';

type KafkaSettings = SluiceConfig['kafka'];

/** kafkajs's TLS and SASL options from `kafka.ssl` and `kafka.sasl`; certificate files are read here. */
export function kafkaSecurityOptions(kafka: KafkaSettings): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const options: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  const { sasl } = kafka;
  const tls = kafkaTlsOptions(kafka);
  if (tls) options.ssl = tls;
  if (sasl)
    options.sasl = { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
  return options;
}

/**
 * Turns a failure to connect into one line naming the setting to fix, when a
 * setting can fix it (credentials, certificates); other errors pass unchanged.
 * A refused login is not retriable: kafkajs gives up at once and so do we.
 */
export function explainKafkaError(kafka: KafkaSettings, err: unknown): unknown {
  const { name = '', message = String(err) } = (err ?? {}) as Partial<Error>;
  if (name === 'KafkaJSSASLAuthenticationError') {
    const reason = message
      .split('\n')[0]!
      .replace(/^SASL [A-Z0-9 -]+ (authentication failed|mechanism)[: ]*/i, '')
      .trim();
    return saslRefused(kafka, reason, err);
  }
  if (TLS_FAILURE.test(message)) return tlsFailed(kafka, message.split('\n')[0]!, err);
  return err;
}

/** Every client's connect() reports refused credentials and bad certificates through explainKafkaError. */
function explainConnect<C extends { connect(): Promise<void> }>(client: C, kafka: KafkaSettings): C {
  const connect = client.connect.bind(client);
  client.connect = async () => {
    try {
      await connect();
    } catch (err) {
      throw explainKafkaError(kafka, err);
    }
  };
  return client;
}

class ExplainingKafka extends Kafka {
  constructor(
    config: KafkaConfig,
    private readonly settings: KafkaSettings,
  ) {
    super(config);
  }
  override producer(config?: ProducerConfig) {
    return explainConnect(super.producer(config), this.settings);
  }
  override consumer(config: ConsumerConfig) {
    return explainConnect(super.consumer(config), this.settings);
  }
  override admin(config?: AdminConfig) {
    return explainConnect(super.admin(config), this.settings);
  }
}

/** The one place that builds kafkajs's client: every kafkajs object Sluice uses comes from it. */
export function createKafkajs(config: Pick<SluiceConfig, 'kafka'>, overrides: Partial<KafkaConfig> = {}): Kafka {
  // kafkajs warns about its v2 partitioner change on every producer; Sluice
  // chooses its partitioner explicitly, so the warning is noise.
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
  return new ExplainingKafka(
    {
      brokers: config.kafka.brokers,
      logLevel: KafkaLogLevel.NOTHING,
      connectionTimeout: 3000,
      ...kafkaSecurityOptions(config.kafka),
      ...overrides,
      clientId: processClientId(overrides.clientId ?? config.kafka.clientId),
    },
    config.kafka,
  );
}
