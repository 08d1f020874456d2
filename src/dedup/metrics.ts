import { Counter, register } from 'prom-client';

const FAIL_OPEN = 'sluice_dedup_fail_open_total';

/**
 * Records let through unchecked because Redis was unreachable and the store
 * was built fail-open. Created once per process: several stores share it,
 * labelled by namespace.
 */
export function dedupFailOpenCounter(): Counter<'namespace'> {
  const existing = register.getSingleMetric(FAIL_OPEN) as Counter<'namespace'> | undefined;
  return (
    existing ??
    new Counter({
      name: FAIL_OPEN,
      help: 'Records processed without a dedup check because Redis was unreachable (fail-open)',
      labelNames: ['namespace'],
    })
  );
}
