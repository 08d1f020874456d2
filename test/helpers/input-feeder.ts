import { sleep } from '../../src/clock';
import { endOffsets, type KafkaAdmin } from '../../src/kafka';

/**
 * Keeps input arriving for as long as a scenario needs it: `first` records at
 * once, then `next` more whenever fewer than `floor` wait unread, until
 * `stop()`. Input that outruns the processor however fast the machine is: a
 * fixed amount sent once may be worked off before the fault ends.
 */
export class InputFeeder {
  private stopping = false;
  private produced = 0;
  private segments = 0;
  private readonly done: Promise<void>;

  constructor(
    /** Sends `count` more records (one call at a time). */
    private readonly send: (count: number) => Promise<void>,
    private readonly options: { first: number; next: number; floor: number; unread: () => Promise<number> },
  ) {
    this.done = this.run();
    this.done.catch(() => undefined); // surfaces in stop()
  }

  private async produce(count: number): Promise<void> {
    await this.send(count);
    this.produced += count;
    this.segments += 1;
  }

  private async run(): Promise<void> {
    await this.produce(this.options.first);
    while (!this.stopping) {
      const unread = await this.options.unread();
      // -1: Kafka cannot say right now; look again rather than guess.
      if (unread >= 0 && unread < this.options.floor) await this.produce(this.options.next);
      else await sleep(250);
    }
  }

  /** Stops after the segment in progress; resolves with what was produced (rejects if producing failed). */
  async stop(): Promise<{ produced: number; segments: number }> {
    this.stopping = true;
    await this.done;
    return { produced: this.produced, segments: this.segments };
  }
}

/**
 * Records waiting unread in the partitions the processor holds: per partition, the end offset minus its
 * position (partitions it holds no position for, e.g. while restoring them, count 0); -1 while Kafka cannot say.
 * Positions are read first, so a record arriving meanwhile counts as unread, as it is.
 */
export async function unreadOf(admin: KafkaAdmin, topic: string, positions: Record<number, string>): Promise<number> {
  const held = Object.entries(positions);
  try {
    const ends = await endOffsets(admin, topic);
    return held.reduce((n, [p, position]) => n + Number(ends.get(Number(p)) ?? 0n) - Number(position), 0);
  } catch {
    return -1;
  }
}
