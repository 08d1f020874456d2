import { loadConfig } from '../../config';
import { ServiceError } from '../../errors';
import { nodeRunsPlatformatic } from '../client';
import { explainPlatformaticError, sendFailure } from './errors';

// The library is an ES module Node.js before 22.22 cannot load: there only the kafkajs client runs.
const onPlatformatic = nodeRunsPlatformatic() ? describe : describe.skip;
const library = () => require('@platformatic/kafka') as typeof import('@platformatic/kafka');

/** A broker's error answer as the library raises it: a ResponseError around a ProtocolError, retried once. */
function brokerError(code: number, message: string | null = null) {
  const { MultipleErrors, ResponseError } = library();
  const response = new ResponseError(0, 9, { '/topics/0/partitions/0': [code, message] }, {});
  return new MultipleErrors('produce failed 2 times.', [new Error('first attempt'), response]);
}

onPlatformatic('platformatic failures', () => {
  it('tells a record too large and a missing topic from an outage, however deep the broker error is', () => {
    const { NetworkError, UserError, MultipleErrors } = library();
    expect(sendFailure(brokerError(10))).toBe('too-large'); // MESSAGE_TOO_LARGE
    expect(sendFailure(brokerError(18))).toBe('too-large'); // RECORD_LIST_TOO_LARGE
    expect(sendFailure(brokerError(3))).toBe('topic-missing'); // UNKNOWN_TOPIC_OR_PARTITION
    // The library's metadata call words a missing topic itself.
    expect(
      sendFailure(new MultipleErrors('Producing messages failed.', [new UserError('Unknown topic events.dlq.')])),
    ).toBe('topic-missing');
    expect(sendFailure(new NetworkError('Connection to 127.0.0.1:9092 failed.'))).toBe('unavailable');
    expect(sendFailure(brokerError(6))).toBe('unavailable'); // NOT_LEADER_OR_FOLLOWER
    expect(sendFailure(new Error('Unknown topic x.'))).toBe('unavailable');
  });

  const config = loadConfig({
    SLUICE_KAFKA_BROKERS: '127.0.0.1:19093',
    SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
    SLUICE_KAFKA_SASL_USERNAME: 'app',
    SLUICE_KAFKA_SASL_PASSWORD: 'pw-Secret-9',
  });

  it('explains a refused SASL login naming the settings, never the password, and not retriable', () => {
    const { AuthenticationError, NetworkError, MultipleErrors } = library();
    // As the connection raises it, inside the retry of the request that opened the connection.
    const refused = new MultipleErrors('Listing topics failed.', [
      new NetworkError('Connection to 127.0.0.1:19093 failed.', {
        cause: new AuthenticationError('SASL authentication failed.', {
          cause: brokerError(
            58,
            'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
          ),
        }),
      }),
    ]);
    const explained = explainPlatformaticError(config.kafka, refused) as ServiceError;
    expect(explained).toBeInstanceOf(ServiceError);
    expect(explained.retriable).toBe(false);
    expect(explained.message).toBe(
      `Kafka at 127.0.0.1:19093 refused the SCRAM-SHA-512 login of user 'app' (Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512): check kafka.sasl.password (SLUICE_KAFKA_SASL_PASSWORD), kafka.sasl.username (SLUICE_KAFKA_SASL_USERNAME) and kafka.sasl.mechanism`,
    );
    expect(explained.message).not.toContain('pw-Secret-9');
    // A mechanism the broker does not offer is refused by the library, in its words.
    const noMechanism = new NetworkError('Connection to 127.0.0.1:19093 failed.', {
      cause: new AuthenticationError('Cannot find a suitable SASL mechanism.'),
    });
    expect((explainPlatformaticError(config.kafka, noMechanism) as Error).message).toContain(
      "login of user 'app' (Cannot find a suitable SASL mechanism.)",
    );
  });

  it('explains a failed TLS handshake naming kafka.ssl.caFile for a certificate, kafka.ssl.enabled otherwise', () => {
    const { NetworkError, UserError } = library();
    const untrusted = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    const explained = explainPlatformaticError(
      config.kafka,
      new NetworkError('Connection to 127.0.0.1:19093 failed.', { cause: untrusted }),
    ) as Error;
    expect(explained.message).toBe(
      'Kafka at 127.0.0.1:19093: TLS handshake failed (self-signed certificate in certificate chain): check kafka.ssl.caFile (SLUICE_KAFKA_SSL_CA_FILE)',
    );
    const plaintextBroker = new NetworkError('Connection to 127.0.0.1:19093 failed.', {
      cause: new UserError('TLS handshake failed. Please verify the broker supports TLS.', {
        cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      }),
    });
    expect((explainPlatformaticError(config.kafka, plaintextBroker) as Error).message).toMatch(
      /TLS handshake failed \(TLS handshake failed\. Please verify the broker supports TLS\.\): check kafka\.ssl\.enabled/,
    );
    const other = new NetworkError('Connection to 127.0.0.1:19093 failed.', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:19093'), { code: 'ECONNREFUSED' }),
    });
    // Not a setting's fault: passed on with the wrapped reason in its message and the original as its cause.
    const passedOn = explainPlatformaticError(config.kafka, other) as Error;
    expect(passedOn.message).toBe('Connection to 127.0.0.1:19093 failed: connect ECONNREFUSED 127.0.0.1:19093');
    expect(passedOn.cause).toBe(other);
  });
});
