import { register, type Registry } from 'prom-client';

/**
 * The metric of that name already in the registry, or a new one. Several
 * processors, ingest apps or stores built in one process (tests, the demo)
 * share one registry, and prom-client refuses a second registration of a name.
 */
export function registeredMetric<T>(name: string, create: () => T, registry: Registry = register): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
