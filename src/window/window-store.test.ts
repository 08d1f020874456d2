import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { count } from './aggregations';
import { session, tumbling, type WindowAssigner } from './assigners';
import { defineWindows } from './definition';
import { WindowOperator } from './operator';
import { PartitionWindows } from './partition-windows';

// A real collection, so that what the window engine still holds shows.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Ev {
  k: string;
  t: number;
}

const definitionOf = (assigner: WindowAssigner, fields: (e: Ev) => { k: string }) =>
  // The definition lives as long as its stream: a module-level constant in a processor.
  defineWindows({
    assigner,
    groupBy: { key: (e: Ev) => e.k, fields },
    aggregate: { n: count() },
    allowedLatenessMs: 0,
  });

type Definition = ReturnType<typeof definitionOf>;

/**
 * Whether a group's fields object is still reachable once its windows closed (or its partition
 * was given up), while `run`'s result (a processor's operator, say) is kept.
 */
async function fieldsOutliveTheirWindows(
  assigner: WindowAssigner,
  run: (definition: Definition, events: Ev[]) => unknown,
): Promise<boolean> {
  const made: WeakRef<object>[] = [];
  const definition = definitionOf(assigner, (e) => {
    const fields = { k: e.k };
    made.push(new WeakRef(fields));
    return fields;
  });
  const kept = run(
    definition,
    Array.from({ length: 100 }, (_, i) => ({ k: `key-${i}`, t: 1 })),
  );
  // WeakRef targets stay alive to the end of the job that made them.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  const alive = made.filter((r) => r.deref() !== undefined).length;
  expect(made).toHaveLength(100);
  expect([definition, kept]).toBeDefined();
  return alive > 0;
}

function closedIn(windows: PartitionWindows<Ev, { k: string }, Definition['aggregate']>, events: Ev[]): void {
  for (const e of events) windows.add(e, e.t, -Infinity);
  expect(windows.closeAll()).toHaveLength(events.length);
}

describe('window stores: shared group keys and fields', () => {
  it('release the fields of closed windows (tumbling): nothing holds the keys of windows gone', async () => {
    expect(
      await fieldsOutliveTheirWindows(tumbling(10), (d, events) => closedIn(new PartitionWindows(d), events)),
    ).toBe(false);
  });

  it('release the fields of closed sessions', async () => {
    expect(await fieldsOutliveTheirWindows(session(10), (d, events) => closedIn(new PartitionWindows(d), events))).toBe(
      false,
    );
  });

  it('release the fields of a partition revoked with its windows open, while the operator runs on', async () => {
    const outlive = await fieldsOutliveTheirWindows(tumbling(10), (d, events) => {
      const operator = new WindowOperator(d, { outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
      operator.assign(0, undefined, 0);
      for (const e of events) operator.add(0, e, e.t, 0);
      expect(operator.openWindowCount(0)).toBe(events.length);
      operator.revoke(0);
      return operator;
    });
    expect(outlive).toBe(false);
  });
});
