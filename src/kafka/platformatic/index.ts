import type { SluiceConfig } from '../../config';
import type { KafkaClient, KafkaClientOptions, SendFailure } from '../api';
import { kafkajsClient } from '../kafkajs';
import { sendFailure as kafkajsSendFailure } from '../kafkajs/errors';
import { platformaticAdmin } from './admin';
import { platformaticBaseOptions } from './connection';
import { explainPlatformaticError, sendFailure as platformaticSendFailure } from './errors';
import { PlatformaticGroupConsumer } from './group';
import { platformaticProducer } from './producer';
import {
  brokersOfferConsumerProtocol,
  chooseGroupProtocol,
  ProtocolResolvingConsumer,
  type GroupProtocol,
} from './protocol';

/**
 * Sluice's Kafka client on @platformatic/kafka (incremental rebalancing: KIP-848 or cooperative-sticky).
 * The admin, the plain producers and the group member are platformatic's.
 *
 * Transactions are kafkajs's (its PartitionTransactions, and its producer for `producer({transactionalId})`,
 * as are idempotent producers, below):
 * platformatic's TxnOffsetCommit takes only a consumed message (committing its offset + 1 under the
 * consumer's generation) and sends no commit metadata, while Sluice stores its window-snapshot ids in
 * the committed offset's metadata and commits arbitrary offsets. Per-partition transactional ids fence
 * former owners without the group generation, so this stays correct under any group protocol.
 */
export function platformaticClient(config: Pick<SluiceConfig, 'kafka'>, options: KafkaClientOptions = {}): KafkaClient {
  const base = platformaticBaseOptions(config.kafka, options);
  const explain = (err: unknown) => explainPlatformaticError(config.kafka, err);
  let kafkajs: KafkaClient | undefined;
  const transactional = () => (kafkajs ??= kafkajsClient(config, options));

  // Asked of the brokers once per client, when its first member starts; a failed question is asked again.
  let protocol: Promise<GroupProtocol> | undefined;
  const groupProtocol = () =>
    (protocol ??= brokersOfferConsumerProtocol(base)
      .catch((err: unknown) => {
        protocol = undefined;
        throw explain(err);
      })
      .then((offered) => chooseGroupProtocol(config.kafka.groupProtocol, offered)));

  return {
    admin: () => platformaticAdmin(base, explain),
    // Idempotent producers too: after a failed send platformatic starts a new producer id, so the caller's
    // resend of a batch that was written but whose answer was lost is written twice; kafkajs keeps the id
    // and sequence numbers, and the broker drops the copy.
    producer: (producerOptions = {}) =>
      producerOptions.transactionalId || producerOptions.idempotent
        ? transactional().producer(producerOptions)
        : platformaticProducer(base, producerOptions, explain),
    consumer: (consumerOptions) =>
      new ProtocolResolvingConsumer(
        consumerOptions,
        groupProtocol,
        (o, resolved) => new PlatformaticGroupConsumer(base, o, resolved),
      ),
    transactions: (transactionOptions) => transactional().transactions(transactionOptions),
    sendFailure,
  };
}

/** Either library's failure: a transactional producer's are kafkajs's, the others platformatic's. */
function sendFailure(err: unknown): SendFailure {
  const failure = platformaticSendFailure(err);
  return failure === 'unavailable' ? kafkajsSendFailure(err) : failure;
}
