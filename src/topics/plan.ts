import type { KafkaAdmin } from '../kafka';
import { ServiceError } from '../errors';
import type { TopicSpec } from './declarations';
import { sleep } from '../clock';

/** One config that apply will change: `from`/`to` undefined means "not set on the topic" (broker default). */
export interface ConfigChange {
  name: string;
  from?: string;
  to?: string;
}

export type TopicAction =
  | { kind: 'create'; topic: string; spec: TopicSpec }
  | { kind: 'addPartitions'; topic: string; from: number; to: number; spec: TopicSpec }
  | { kind: 'alterConfig'; topic: string; changes: ConfigChange[]; config: Record<string, string>; spec: TopicSpec };

/** A difference apply will not fix, because Kafka cannot do it in place. */
export interface TopicDrift {
  topic: string;
  setting: 'partitions' | 'replicationFactor';
  declared: number;
  actual: number;
  reason: string;
}

export interface TopicPlan {
  actions: TopicAction[];
  drift: TopicDrift[];
  /** Declared topics that already match. */
  unchanged: string[];
}

interface TopicState {
  partitions: number;
  replicationFactor: number;
  /** Effective value of every config Kafka describes. */
  values: Map<string, string>;
  /** Configs set on the topic itself (overrides), as opposed to broker defaults. */
  overrides: Set<string>;
}

async function readState(admin: KafkaAdmin, names: string[]): Promise<Map<string, TopicState>> {
  const state = new Map<string, TopicState>();
  if (names.length === 0) return state;
  const topics = await admin.fetchTopicMetadata(names);
  const configs = await admin.describeConfigs(names.map((name) => ({ type: 'topic', name })));
  for (const t of topics) {
    const entries = configs.get(t.name) ?? [];
    state.set(t.name, {
      partitions: t.partitions.length,
      replicationFactor: Math.max(0, ...t.partitions.map((p) => p.replicas.length)),
      values: new Map(entries.map((e) => [e.name, e.value])),
      overrides: new Set(entries.filter((e) => e.setOnTopic).map((e) => e.name)),
    });
  }
  return state;
}

function configChanges(spec: TopicSpec, state: TopicState): ConfigChange[] {
  const changes: ConfigChange[] = [];
  for (const [name, to] of Object.entries(spec.config)) {
    const from = state.values.get(name);
    // A declared value equal to the broker default still becomes an override on
    // the next alter, but that is not a difference anyone can observe.
    if (from !== to) changes.push({ name, from: state.overrides.has(name) ? from : undefined, to });
  }
  // AlterConfigs replaces a topic's whole override set, so overrides nobody
  // declared would silently revert to the broker default: list them.
  for (const name of state.overrides) {
    if (!(name in spec.config)) changes.push({ name, from: state.values.get(name), to: undefined });
  }
  return changes;
}

/** Compares the declarations with the cluster. Reads only; changes nothing. */
export async function planTopics(admin: KafkaAdmin, specs: TopicSpec[]): Promise<TopicPlan> {
  let existing: Set<string>;
  let state: Map<string, TopicState>;
  try {
    existing = new Set(await admin.listTopics());
    state = await readState(
      admin,
      specs.map((s) => s.name).filter((n) => existing.has(n)),
    );
  } catch (err) {
    throw new ServiceError(
      'kafka',
      `cannot read topics from Kafka (${(err as Error).message}): is the cluster up? ('sluice stack status')`,
      {
        retriable: true,
        cause: err,
      },
    );
  }
  const plan: TopicPlan = { actions: [], drift: [], unchanged: [] };
  for (const spec of specs) {
    const current = state.get(spec.name);
    if (!existing.has(spec.name) || !current) {
      plan.actions.push({ kind: 'create', topic: spec.name, spec });
      continue;
    }
    let changed = false;
    if (spec.partitions > current.partitions) {
      plan.actions.push({
        kind: 'addPartitions',
        topic: spec.name,
        from: current.partitions,
        to: spec.partitions,
        spec,
      });
      changed = true;
    } else if (spec.partitions < current.partitions) {
      plan.drift.push({
        topic: spec.name,
        setting: 'partitions',
        declared: spec.partitions,
        actual: current.partitions,
        reason: 'Kafka cannot remove partitions: raise the declaration, or recreate the topic (data loss)',
      });
    }
    if (spec.replicationFactor !== current.replicationFactor) {
      plan.drift.push({
        topic: spec.name,
        setting: 'replicationFactor',
        declared: spec.replicationFactor,
        actual: current.replicationFactor,
        reason:
          'changing replication needs a partition reassignment (kafka-reassign-partitions), which apply does not do',
      });
    }
    const changes = configChanges(spec, current);
    if (changes.length > 0) {
      plan.actions.push({ kind: 'alterConfig', topic: spec.name, changes, config: spec.config, spec });
      changed = true;
    }
    if (!changed && !plan.drift.some((d) => d.topic === spec.name)) plan.unchanged.push(spec.name);
  }
  return plan;
}

/** Carries out the plan's actions; drift is left alone. Creations first, then partitions, then configs. */
export async function applyPlan(admin: KafkaAdmin, plan: TopicPlan): Promise<void> {
  const creates = plan.actions.filter((a) => a.kind === 'create');
  const partitions = plan.actions.filter((a) => a.kind === 'addPartitions');
  const alters = plan.actions.filter((a) => a.kind === 'alterConfig');
  try {
    if (creates.length > 0) {
      await admin.createTopics(
        creates.map(({ spec }) => ({
          topic: spec.name,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configEntries: Object.entries(spec.config).map(([name, value]) => ({ name, value })),
        })),
      );
    }
    if (partitions.length > 0) {
      await admin.createPartitions(partitions.map((a) => ({ topic: a.topic, count: a.to })));
    }
    if (alters.length > 0) {
      // The full declared set: the overrides nobody declared were listed as changes (configChanges).
      await admin.alterTopicConfigs(alters.map((a) => ({ topic: a.topic, config: a.config })));
    }
  } catch (err) {
    throw new ServiceError('kafka', `applying topic declarations failed: ${(err as Error).message}`, { cause: err });
  }
  await waitUntilApplied(admin, [...new Map(plan.actions.map((a) => [a.topic, a.spec])).values()]);
}

/**
 * The broker applies new partitions and configs asynchronously (KRaft
 * propagates them through its metadata log), so right after the requests a
 * describe can still show the old values. Waits until a fresh plan for the
 * touched topics is empty, so that `apply` returning means "applied" and an
 * immediate second apply finds nothing to do.
 */
async function waitUntilApplied(admin: KafkaAdmin, specs: TopicSpec[], timeoutMs = 15_000): Promise<void> {
  if (specs.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = (await planTopics(admin, specs)).actions;
    if (pending.length === 0) return;
    if (Date.now() > deadline) {
      throw new ServiceError(
        'kafka',
        `the cluster did not show the applied topic changes within ${timeoutMs / 1000} s (${pending.map((a) => a.topic).join(', ')}): run apply again`,
        {
          retriable: true,
        },
      );
    }
    await sleep(200);
  }
}

/** Human-readable plan, one line per action, drift and unchanged topic, then a summary line. */
export function formatPlan(plan: TopicPlan, dryRun: boolean): string[] {
  const lines: string[] = [];
  const show = (v?: string) => v ?? '(default)';
  for (const a of plan.actions) {
    if (a.kind === 'create') {
      const cfg = Object.entries(a.spec.config)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      lines.push(
        `+ create ${a.topic}: partitions ${a.spec.partitions}, replication ${a.spec.replicationFactor}, ${cfg}`,
      );
    } else if (a.kind === 'addPartitions') {
      lines.push(`~ partitions ${a.topic}: ${a.from} -> ${a.to}`);
    } else {
      lines.push(
        `~ config ${a.topic}: ${a.changes.map((c) => `${c.name} ${show(c.from)} -> ${show(c.to)}`).join(', ')}`,
      );
    }
  }
  for (const d of plan.drift) {
    lines.push(
      `! drift ${d.topic}: ${d.setting} declared ${d.declared}, actual ${d.actual} (not changed: ${d.reason})`,
    );
  }
  for (const t of plan.unchanged) lines.push(`= ${t} up to date`);
  const creates = plan.actions.filter((a) => a.kind === 'create').length;
  const changed = new Set(plan.actions.filter((a) => a.kind !== 'create').map((a) => a.topic)).size;
  lines.push(
    `${dryRun ? 'dry run: would create' : 'created'} ${creates}, ${dryRun ? 'would change' : 'changed'} ${changed}, drift ${plan.drift.length}, up to date ${plan.unchanged.length}` +
      (dryRun ? ' (nothing changed)' : ''),
  );
  return lines;
}
