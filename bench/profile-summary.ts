/**
 * Where a processor's CPU time goes, from a V8 `.cpuprofile` (`node
 * --cpu-prof`): each sample's time is charged to the nearest frame on its
 * stack that belongs to a project or package file (so time in V8 builtins
 * or node internals counts for the code that called them), then grouped by
 * stage of the data path, by file and by function.
 *
 *   tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--json]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** Time not idle: what the process actually computed. */
  busyMs: number;
  stages: { stage: string; ms: number; pctOfBusy: number }[];
  files: { file: string; ms: number; pctOfBusy: number }[];
  functions: { fn: string; ms: number; pctOfBusy: number }[];
}

/** Stage of the data path a file belongs to; first match wins. */
const STAGES: [RegExp, string][] = [
  [/node_modules\/(tsx|esbuild|typescript|source-map|get-tsconfig)\//, 'startup: TypeScript transpile (tsx)'],
  [/node_modules\/kafkajs\//, 'kafka client (kafkajs: fetch, decode record batches, group)'],
  [/node_modules\/@platformatic\/kafka\//, 'kafka client (platformatic: fetch, decode record batches, group)'],
  [/src\/kafka\/platformatic\//, 'kafka client (platformatic: fetch, decode record batches, group)'],
  [/src\/kafka\//, 'kafka client (kafkajs: fetch, decode record batches, group)'],
  [/node_modules\/avsc\/|src\/schema\//, 'decode: Avro (avsc + codec)'],
  [/src\/generator\/validation|streams\/.*\/index\.ts/, 'validate + map rows (stream definition)'],
  [
    /node_modules\/(ioredis|redis-parser|denque|cluster-key-slot|@ioredis)\//,
    'redis client (dedup round trips + state snapshots)',
  ],
  [/src\/dedup\//, 'dedup (claims, marks)'],
  [/src\/state\//, 'state snapshots'],
  [/src\/window\/|src\/process\/windows\.ts/, 'window updates (assign, aggregate, close)'],
  [/node_modules\/@clickhouse\/|src\/sink\//, 'sink: ClickHouse (rows, JSON, HTTP)'],
  [/src\/dlq\//, 'dead letters / late'],
  [/src\/process\/monitor\/|src\/ingest\/monitor\.ts/, 'logging + telemetry'],
  [/src\/process\//, 'runtime: task + runner + checkpoint'],
  [/node_modules\/pino|src\/telemetry\//, 'logging + telemetry'],
  [/node_modules\//, 'other packages'],
  [/^node:|^internal\//, 'node runtime (sockets, timers, streams)'],
];

function stageOf(file: string): string {
  if (file.startsWith('('))
    return file === '(garbage collector)' ? 'garbage collection' : file === '(idle)' ? 'idle' : `V8 ${file}`;
  for (const [pattern, stage] of STAGES) if (pattern.test(file)) return stage;
  return 'other project code';
}

function shortFile(url: string): string {
  const clean = url.replace(/^file:\/\//, '');
  const nm = clean.lastIndexOf('node_modules/');
  if (nm >= 0) return clean.slice(nm);
  for (const root of ['/src/', '/streams/', '/bench/', '/bin/', '/test/']) {
    const i = clean.lastIndexOf(root);
    if (i >= 0) return clean.slice(i + 1);
  }
  return clean;
}

export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Per node: the file and function its time is charged to (memoised).
  const charged = new Map<number, { file: string; fn: string }>();
  const chargeOf = (id: number): { file: string; fn: string } => {
    const known = charged.get(id);
    if (known) return known;
    const self = byId.get(id)!;
    let result: { file: string; fn: string } | undefined;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { url, functionName, lineNumber } = byId.get(cur)!.callFrame;
      if (url && !url.startsWith('node:')) {
        const file = shortFile(url);
        result = { file, fn: `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}` };
        break;
      }
    }
    if (!result) {
      const { url, functionName } = self.callFrame;
      const file = url || functionName || '(unknown)';
      result = { file, fn: `${functionName || '(anonymous)'} ${url}`.trim() };
    }
    charged.set(id, result);
    return result;
  };

  const files = new Map<string, number>();
  const fns = new Map<string, number>();
  const stages = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    const { file, fn } = chargeOf(id);
    const stage = stageOf(file);
    if (stage === 'idle') {
      idle += us;
      return;
    }
    files.set(file, (files.get(file) ?? 0) + us);
    fns.set(fn, (fns.get(fn) ?? 0) + us);
    stages.set(stage, (stages.get(stage) ?? 0) + us);
  });
  const busy = total - idle;
  const ranked = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pctOfBusy: Number(((100 * us) / busy).toFixed(1)) }));
  return {
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    stages: ranked(stages, 100).map(({ name, ...r }) => ({ stage: name, ...r })),
    files: ranked(files, top).map(({ name, ...r }) => ({ file: name, ...r })),
    functions: ranked(fns, top).map(({ name, ...r }) => ({ fn: name, ...r })),
  };
}

export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

function printTable(title: string, rows: { ms: number; pctOfBusy: number }[], label: (r: never) => string): void {
  process.stdout.write(`\n${title}\n`);
  for (const r of rows)
    process.stdout.write(
      `  ${String(r.ms).padStart(8)} ms ${r.pctOfBusy.toFixed(1).padStart(5)}%  ${label(r as never)}\n`,
    );
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const path = args.find((a) => !a.startsWith('--'));
  if (!path) {
    process.stderr.write('usage: tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--json]\n');
    process.exit(2);
  }
  const topIndex = args.indexOf('--top');
  const summary = summarizeProfile(readProfile(path), topIndex >= 0 ? Number(args[topIndex + 1]) : 25);
  if (args.includes('--json')) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    process.stdout.write(`profile ${path}: ${summary.totalMs} ms sampled, ${summary.busyMs} ms busy (not idle)\n`);
    printTable('by stage (% of busy time)', summary.stages, (r: { stage: string }) => r.stage);
    printTable('by file', summary.files, (r: { file: string }) => r.file);
    printTable(
      'by function (self time, builtins charged to their caller)',
      summary.functions,
      (r: { fn: string }) => r.fn,
    );
  }
}
