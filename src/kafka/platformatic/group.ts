import type { BaseOptions } from '@platformatic/kafka';
import type { GroupConsumer, GroupConsumerOptions } from '../group';

/** Placeholder until the consumer-group member on @platformatic/kafka is merged: it replaces this file. */
export class PlatformaticGroupConsumer implements GroupConsumer {
  constructor(base: BaseOptions, options: GroupConsumerOptions, groupProtocol: 'classic' | 'consumer') {
    void [base, options, groupProtocol];
    throw new Error('invariant: the platformatic group consumer is not built yet');
  }
  start = () => Promise.reject(new Error('invariant: unreachable'));
  pause = () => undefined;
  resume = () => undefined;
  seek = () => undefined;
  commit = () => Promise.reject(new Error('invariant: unreachable'));
  disconnect = () => Promise.resolve();
}
