import type { BaseOptions } from '@platformatic/kafka';
import type { SluiceConfig } from '../../config';
import type { KafkaClientOptions } from '../api';
import { processClientId } from '../client';
import { kafkaTlsOptions } from '../security';

type KafkaSettings = SluiceConfig['kafka'];

/** The SASL mechanism names @platformatic/kafka takes, by `kafka.sasl.mechanism`. */
const SASL_MECHANISMS = { plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const;

/**
 * What every @platformatic/kafka client of a process is built with: the brokers, the process's client
 * id, and TLS and SASL from `kafka.ssl` and `kafka.sasl` (certificate files are read here).
 */
export function platformaticBaseOptions(kafka: KafkaSettings, options: KafkaClientOptions = {}): BaseOptions {
  const base: BaseOptions = {
    clientId: processClientId(options.clientId ?? kafka.clientId),
    bootstrapBrokers: kafka.brokers,
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
  };
  const { sasl } = kafka;
  const tls = kafkaTlsOptions(kafka);
  if (tls) base.tls = tls;
  if (sasl)
    base.sasl = { mechanism: SASL_MECHANISMS[sasl.mechanism], username: sasl.username, password: sasl.password };
  return base;
}
