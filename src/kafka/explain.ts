import { settingName, type SluiceConfig } from '../config';
import { ServiceError, SluiceError } from '../errors';

type KafkaSettings = SluiceConfig['kafka'];

/**
 * The one-line explanations of a refused login and a failed TLS handshake, worded once: whichever client
 * library failed, the user reads the same sentence naming the setting to fix. Each client finds the
 * reason in its own errors (kafkajs/client.ts, platformatic/errors.ts) and hands it here.
 */

/** Wording of a failure that a certificate or TLS setting can fix, as Node.js and the libraries put it. */
export const TLS_FAILURE = /certificate|self[- ]signed|unable to verify|SSL routines|wrong version number|TLS/i;

const where = (kafka: KafkaSettings) => `Kafka at ${kafka.brokers.join(',')}`;

/** The broker refused the SASL login: not retriable (the same credentials fail again), and never shows the password. */
export function saslRefused(kafka: KafkaSettings, reason: string, cause: unknown): ServiceError {
  const { sasl } = kafka;
  const mechanism = sasl?.mechanism.toUpperCase() ?? 'SASL';
  return new ServiceError(
    'kafka',
    `${where(kafka)} refused the ${mechanism} login of user '${sasl?.username ?? ''}' (${reason}): check ${settingName('kafka.sasl.password')}, ${settingName('kafka.sasl.username')} and kafka.sasl.mechanism`,
    { cause },
  );
}

/** The TLS handshake failed: a certificate problem points at the CA file, anything else at whether TLS is on. */
export function tlsFailed(kafka: KafkaSettings, detail: string, cause: unknown): ServiceError {
  const setting = /certificate|self[- ]signed|unable to verify/i.test(detail)
    ? settingName('kafka.ssl.caFile')
    : settingName('kafka.ssl.enabled');
  return new ServiceError('kafka', `${where(kafka)}: TLS handshake failed (${detail}): check ${setting}`, { cause });
}

/**
 * The broker refused this member (INCONSISTENT_GROUP_PROTOCOL): the group's other members joined with a
 * protocol or assignor this one lacks — kafkajs's eager round-robin beside platformatic's cooperative-sticky
 * under the classic protocol. Not retriable: the same member is refused again, so the run stops saying why.
 */
export function groupProtocolMismatch(
  groupId: string,
  mine: { client: string; protocol: string },
  cause: unknown,
): SluiceError {
  return new SluiceError(
    'GROUP_PROTOCOL_MISMATCH',
    `group '${groupId}' refused this member (kafka.client=${mine.client}, kafka.groupProtocol=${mine.protocol}): its other members use another client or group protocol; run every process of the stream with the same ${settingName('kafka.client')} and ${settingName('kafka.groupProtocol')} (on brokers with KIP-848, kafka.groupProtocol=consumer lets the two clients share a group)`,
    { retriable: false, cause },
  );
}
