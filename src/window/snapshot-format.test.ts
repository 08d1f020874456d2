import { approxDistinct, count, distinct, max, min, sum } from './aggregations';
import { hopping, session, tumbling, type WindowAssigner } from './assigners';
import { defineWindows, groupByFields } from './definition';
import { PartitionWindows } from './partition-windows';

/*
 * Window state of format 1 as it was written to Redis, byte for byte. A change
 * to how windows are stored or encoded must still read these and write them
 * back unchanged: checkpoints saved by the running version are restored by the
 * next one. Never regenerate a sample to make this spec pass; add a new format.
 */
const SAMPLES: Record<string, { assigner: WindowAssigner; text: string }> = {
  tumbling: {
    assigner: tumbling(10),
    text: String.raw`{"format":1,"definition":"tumbling(size=10ms,offset=0ms);n=count,total=sum,users=distinct,approxUsers=approxDistinct(p=4),lo=min,hi=max","watermark":20,"windows":[{"start":10,"end":20,"key":"[\"b\"]","fields":{"k":"b"},"states":[2,2.5,["y"],{"p":4,"dense":"AAAAAAAAAQAAAAAAAAAAAA=="},2.5,2.5],"changed":true},{"start":10,"end":20,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,7,["z"],{"p":4,"dense":"AgAAAAAAAAAAAAAAAAAAAA=="},7,7],"changed":false},{"start":20,"end":30,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,-3,["x"],{"p":4,"dense":"AAAAAQAAAAAAAAAAAAAAAA=="},-3,-3],"changed":true}]}`,
  },
  hopping: {
    assigner: hopping(10, 5),
    text: String.raw`{"format":1,"definition":"hopping(size=10ms,advance=5ms,offset=0ms);n=count,total=sum,users=distinct,approxUsers=approxDistinct(p=4),lo=min,hi=max","watermark":20,"windows":[{"start":10,"end":20,"key":"[\"b\"]","fields":{"k":"b"},"states":[2,2.5,["y"],{"p":4,"dense":"AAAAAAAAAQAAAAAAAAAAAA=="},2.5,2.5],"changed":true},{"start":10,"end":20,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,7,["z"],{"p":4,"dense":"AgAAAAAAAAAAAAAAAAAAAA=="},7,7],"changed":false},{"start":15,"end":25,"key":"[\"b\"]","fields":{"k":"b"},"states":[1,2.5,["y"],{"p":4,"dense":"AAAAAAAAAQAAAAAAAAAAAA=="},2.5,2.5],"changed":true},{"start":25,"end":35,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,-3,["x"],{"p":4,"dense":"AAAAAQAAAAAAAAAAAAAAAA=="},-3,-3],"changed":true},{"start":20,"end":30,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,-3,["x"],{"p":4,"dense":"AAAAAQAAAAAAAAAAAAAAAA=="},-3,-3],"changed":true}]}`,
  },
  session: {
    assigner: session(10),
    text: String.raw`{"format":1,"definition":"session(gap=10ms);n=count,total=sum,users=distinct,approxUsers=approxDistinct(p=4),lo=min,hi=max","watermark":20,"windows":[{"start":12,"end":22,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,7,["z"],{"p":4,"dense":"AgAAAAAAAAAAAAAAAAAAAA=="},7,7],"changed":false},{"start":27,"end":37,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,-3,["x"],{"p":4,"dense":"AAAAAQAAAAAAAAAAAAAAAA=="},-3,-3],"changed":true},{"start":14,"end":26,"key":"[\"b\"]","fields":{"k":"b"},"states":[2,2.5,["y"],{"p":4,"dense":"AAAAAAAAAQAAAAAAAAAAAA=="},2.5,2.5],"changed":true}]}`,
  },
};

interface Ev {
  k: string;
  v: number | null;
  u: string;
}

function definitionFor(assigner: WindowAssigner) {
  return defineWindows({
    assigner,
    groupBy: groupByFields((e: Ev) => ({ k: e.k })),
    aggregate: {
      n: count(),
      total: sum((e: Ev) => e.v),
      users: distinct((e: Ev) => e.u),
      approxUsers: approxDistinct((e: Ev) => e.u, 4),
      lo: min((e: Ev) => e.v),
      hi: max((e: Ev) => e.v),
    },
    allowedLatenessMs: 5,
    earlyEmitIntervalMs: 100,
  });
}

/** The input the samples were written from: closed, early-emitted (changed: false) and open windows. */
function windowsOfSampleInput(assigner: WindowAssigner) {
  const w = new PartitionWindows(definitionFor(assigner));
  w.add({ k: 'a', v: 1, u: 'x' }, 1, -Infinity);
  w.add({ k: 'b', v: null, u: 'y' }, 14, 3);
  w.add({ k: 'a', v: 7, u: 'z' }, 12, 3);
  w.emitEarly(0);
  w.add({ k: 'b', v: 2.5, u: 'y' }, 16, 4);
  w.add({ k: 'a', v: -3, u: 'x' }, 27, 4);
  w.closeUpTo(20);
  return w;
}

describe.each(Object.entries(SAMPLES))('window state of format 1 (%s)', (_, { assigner, text }) => {
  it('is still what the same input writes', () => {
    const w = windowsOfSampleInput(assigner);
    expect(w.snapshotJson()).toBe(text);
    expect(JSON.stringify(w.snapshot())).toBe(text);
  });

  it('restores and writes itself back unchanged', () => {
    const restored = PartitionWindows.restore(definitionFor(assigner), JSON.parse(text));
    expect(restored.snapshotJson()).toBe(text);
    expect(restored.watermark).toBe(20);
  });

  it('restores windows that go on exactly like the ones that wrote it', () => {
    const live = windowsOfSampleInput(assigner);
    const restored = PartitionWindows.restore(definitionFor(assigner), JSON.parse(text));
    for (const w of [live, restored]) w.add({ k: 'b', v: 4, u: 'q' }, 24, 20);
    expect(restored.emitEarly(200)).toEqual(live.emitEarly(200));
    expect(restored.closeUpTo(30)).toEqual(live.closeUpTo(30));
    expect(restored.closeAll()).toEqual(live.closeAll());
  });
});

/*
 * Window state of format 2 (incremental: a base, then a delta) as it is written to Redis, byte for
 * byte: the record's head and each part's text. Same rule as format 1: never regenerate these.
 */
const CHAIN_SAMPLES: Record<string, { assigner: WindowAssigner; links: { head: string; parts: string[] }[] }> = {
  tumbling: {
    assigner: tumbling(10),
    links: [
      {
        head: String.raw`{"format":2,"kind":"base","definition":"tumbling(size=10ms,offset=0ms);n=count,total=sum,users=distinct,approxUsers=approxDistinct(p=4),lo=min,hi=max","watermark":3,"nextId":3}`,
        parts: [
          String.raw`{"r":[],"w":[{"id":0,"start":0,"end":10,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,1,["x"],{"p":4,"dense":"AAAAAQAAAAAAAAAAAAAAAA=="},1,1],"changed":false},{"id":1,"start":10,"end":20,"key":"[\"b\"]","fields":{"k":"b"},"states":[1,0,["y"],{"p":4,"dense":"AAAAAAAAAQAAAAAAAAAAAA=="},null,null],"changed":false},{"id":2,"start":10,"end":20,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,7,["z"],{"p":4,"dense":"AgAAAAAAAAAAAAAAAAAAAA=="},7,7],"changed":false}]}`,
        ],
      },
      {
        head: String.raw`{"format":2,"kind":"delta","definition":"tumbling(size=10ms,offset=0ms);n=count,total=sum,users=distinct,approxUsers=approxDistinct(p=4),lo=min,hi=max","watermark":20,"nextId":4}`,
        parts: [
          String.raw`{"r":[0],"w":[{"id":1,"start":10,"end":20,"key":"[\"b\"]","fields":{"k":"b"},"states":[2,2.5,["y"],{"p":4,"dense":"AAAAAAAAAQAAAAAAAAAAAA=="},2.5,2.5],"changed":true},{"id":3,"start":20,"end":30,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,-3,["x"],{"p":4,"dense":"AAAAAQAAAAAAAAAAAAAAAA=="},-3,-3],"changed":true}]}`,
        ],
      },
    ],
  },
  session: {
    assigner: session(10),
    links: [
      {
        head: String.raw`{"format":2,"kind":"base","definition":"session(gap=10ms);n=count,total=sum,users=distinct,approxUsers=approxDistinct(p=4),lo=min,hi=max","watermark":3,"nextId":3}`,
        parts: [
          String.raw`{"r":[],"w":[{"id":0,"start":1,"end":11,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,1,["x"],{"p":4,"dense":"AAAAAQAAAAAAAAAAAAAAAA=="},1,1],"changed":false},{"id":2,"start":12,"end":22,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,7,["z"],{"p":4,"dense":"AgAAAAAAAAAAAAAAAAAAAA=="},7,7],"changed":false},{"id":1,"start":14,"end":24,"key":"[\"b\"]","fields":{"k":"b"},"states":[1,0,["y"],{"p":4,"dense":"AAAAAAAAAQAAAAAAAAAAAA=="},null,null],"changed":false}]}`,
        ],
      },
      {
        head: String.raw`{"format":2,"kind":"delta","definition":"session(gap=10ms);n=count,total=sum,users=distinct,approxUsers=approxDistinct(p=4),lo=min,hi=max","watermark":20,"nextId":4}`,
        parts: [
          String.raw`{"r":[0],"w":[{"id":1,"start":14,"end":26,"key":"[\"b\"]","fields":{"k":"b"},"states":[2,2.5,["y"],{"p":4,"dense":"AAAAAAAAAQAAAAAAAAAAAA=="},2.5,2.5],"changed":true},{"id":3,"start":27,"end":37,"key":"[\"a\"]","fields":{"k":"a"},"states":[1,-3,["x"],{"p":4,"dense":"AAAAAQAAAAAAAAAAAAAAAA=="},-3,-3],"changed":true}]}`,
        ],
      },
    ],
  },
};

/** The sample input again, checkpointed where the samples were: after the early emission (base), and at the end (delta). */
async function checkpointsOfSampleInput(assigner: WindowAssigner) {
  const w = new PartitionWindows(definitionFor(assigner));
  w.add({ k: 'a', v: 1, u: 'x' }, 1, -Infinity);
  w.add({ k: 'b', v: null, u: 'y' }, 14, 3);
  w.add({ k: 'a', v: 7, u: 'z' }, 12, 3);
  w.emitEarly(0);
  const base = w.checkpoint();
  const links = [{ head: JSON.stringify(base.head), parts: await base.parts }];
  w.add({ k: 'b', v: 2.5, u: 'y' }, 16, 4);
  w.add({ k: 'a', v: -3, u: 'x' }, 27, 4);
  w.closeUpTo(20);
  const delta = w.checkpoint();
  links.push({ head: JSON.stringify(delta.head), parts: await delta.parts });
  return { windows: w, links };
}

describe.each(Object.entries(CHAIN_SAMPLES))('window state of format 2 (%s)', (_, { assigner, links }) => {
  const chain = () => ({ links: links.map((l) => ({ windows: JSON.parse(l.head) as unknown, parts: l.parts })) });

  it('is still what the same input writes', async () => {
    expect((await checkpointsOfSampleInput(assigner)).links).toEqual(links);
  });

  it('restores the same state as format 1 holds, and windows that go on exactly like the ones that wrote it', async () => {
    const { windows: live } = await checkpointsOfSampleInput(assigner);
    const restored = PartitionWindows.restore(definitionFor(assigner), chain());
    const sorted = (text: string) => {
      const s = JSON.parse(text) as { windows: { start: number; key: string }[] };
      s.windows.sort((a, b) => a.start - b.start || (a.key < b.key ? -1 : 1));
      return s;
    };
    expect(sorted(restored.snapshotJson())).toEqual(sorted(SAMPLES[assigner.kind]!.text));
    for (const w of [live, restored]) w.add({ k: 'b', v: 4, u: 'q' }, 24, 20);
    expect(restored.emitEarly(200)).toEqual(live.emitEarly(200));
    expect(restored.closeUpTo(30)).toEqual(live.closeUpTo(30));
    expect(restored.closeAll()).toEqual(live.closeAll());
  });
});
