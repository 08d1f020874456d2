import { topicOffsets, withAdmin, type KafkaClient } from '../kafka';
import { readTopic } from './reader';

/**
 * The number of records in a side topic, as a read_committed reader sees
 * them. Offsets cannot say: side topics are written in transactions, and
 * every transaction leaves a commit marker that takes an offset too. Each
 * call reads only what was added since the last one (a side topic grows by
 * dead letters and late events, not by the stream's whole input), and counts
 * again from the start when retention deleted records it had counted.
 */
export class SideTopicCounter {
  private counted = 0;
  private readonly upTo = new Map<number, bigint>();

  constructor(
    private readonly kafka: KafkaClient,
    private readonly topic: string,
  ) {}

  async count(): Promise<number> {
    const offsets = await withAdmin(this.kafka, (admin) => topicOffsets(admin, this.topic));
    if ([...offsets].some(([p, { low }]) => low > (this.upTo.get(p) ?? 0n))) {
      this.counted = 0;
      this.upTo.clear();
    }
    let added = 0;
    const ends = await readTopic(this.kafka, this.topic, () => (added += 1), { from: this.upTo });
    this.counted += added;
    for (const [p, end] of ends) this.upTo.set(p, end);
    return this.counted;
  }
}
