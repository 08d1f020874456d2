import { hostname } from 'node:os';
import { collectDefaultMetrics, register, type Registry } from 'prom-client';

/**
 * The metric of that name already in the registry, or a new one. Several
 * processors, ingest apps or stores built in one process (tests, the demo)
 * share one registry, and prom-client refuses a second registration of a name.
 */
export function registeredMetric<T>(name: string, create: () => T, registry: Registry = register): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** This process as the labels name it: host and pid, like the Kafka client id (`sluice groups`). */
export function processLabel(host = hostname(), pid = process.pid): string {
  return `${host}#${pid}`;
}

const labelled = new WeakMap<Registry, Record<string, string>>();

/**
 * Labels every series of the registry with what it belongs to (e.g. stream and group) and the process
 * (`process`: host#pid; not `instance`, which Prometheus sets from the scrape target and would rename
 * ours), and adds the process metrics (heap, event-loop lag, CPU, GC) once per registry: several
 * processors scraped into one dashboard stay apart, and a slow one shows whether its heap or event
 * loop is why. A metric's own label of the same name wins over these.
 */
export function labelProcessMetrics(labels: Record<string, string | undefined>, registry: Registry = register): void {
  const current = labelled.get(registry);
  if (current === undefined) collectDefaultMetrics({ register: registry });
  const known = Object.entries(labels).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '');
  const merged = { ...current, process: processLabel(), ...Object.fromEntries(known) };
  labelled.set(registry, merged);
  registry.setDefaultLabels(merged);
}
