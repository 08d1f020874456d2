import { Counter, Registry } from 'prom-client';
import { labelProcessMetrics, processLabel } from './metrics';

describe('labelProcessMetrics', () => {
  it('labels every series with its owner and the process, adds the process metrics, and lets a metric keep its own labels', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'x_total', help: 'x', labelNames: ['stream'], registers: [registry] });
    labelProcessMetrics({ stream: 'event-counts', group: 'sluice.event-counts', unknown: undefined }, registry);
    counter.inc({ stream: 'own' });
    const text = await registry.metrics();
    const line = (name: string) => text.split('\n').find((l) => l.startsWith(`${name}{`)) ?? '';
    expect(line('x_total')).toContain('stream="own"');
    expect(line('x_total')).toContain('group="sluice.event-counts"');
    expect(line('x_total')).toContain(`process="${processLabel()}"`);
    expect(line('nodejs_heap_size_used_bytes')).toContain('stream="event-counts"');
    expect(line('nodejs_eventloop_lag_seconds')).toContain(`process="${processLabel()}"`);
    expect(text).not.toContain('unknown=');
    // A second call (another monitor in the same process) neither registers the process metrics twice nor drops labels.
    labelProcessMetrics({ service: 'ingest' }, registry);
    expect(await registry.metrics()).toContain(`service="ingest"`);
  });
});
