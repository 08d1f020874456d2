import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const ROOT = join(__dirname, '..', '..');

/** A Kubernetes memory quantity (e.g. 1Gi, 512Mi) in MiB. */
const mebibytes = (q: string) =>
  Number(/^\d+/.exec(q)![0]) * ({ Gi: 1024, Mi: 1, Ki: 1 / 1024 }[q.replace(/^\d+/, '')] ?? 1 / 1024 ** 2);

/**
 * The Helm chart: scripts/helm-check.sh lints it, renders it and validates
 * every manifest against the Kubernetes schemas (helm and kubeconform built
 * from the Go module proxy, cached in .sluice/tools; the first run on a new
 * machine compiles them). Then the rendered manifests are read for what the
 * schemas cannot judge.
 */
describe('helm chart', () => {
  it('lints, renders and validates; processors probe /healthz and /readyz and outlive their final flush', () => {
    const run = spawnSync('bash', [join(ROOT, 'scripts', 'helm-check.sh')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 540_000,
    });
    if (run.status !== 0) throw new Error(`helm-check failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
    expect(run.stdout).toMatch(/Valid: 21, Invalid: 0, Errors: 0/);

    const docs = parseAllDocuments(readFileSync(join(ROOT, '.sluice', 'helm', 'full.yaml'), 'utf8'))
      .map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> } | null)
      .filter((d): d is NonNullable<typeof d> => d !== null);
    const deployments = docs.filter((d) => d.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([
      'sluice-event-counts',
      'sluice-events-raw',
      'sluice-ingest',
    ]);
    for (const deployment of deployments) {
      const pod = (
        deployment.spec.template as {
          spec: { terminationGracePeriodSeconds: number; containers: Record<string, unknown>[] };
        }
      ).spec;
      const [container] = pod.containers;
      expect(container!.livenessProbe).toMatchObject({ httpGet: { path: '/healthz' } });
      expect(container!.readinessProbe).toMatchObject({ httpGet: { path: '/readyz' } });
      expect(container!.resources).toHaveProperty('requests');
      const args = (container!.args as string[] | undefined) ?? [];
      const shutdown = args.find((a) => a.startsWith('--shutdown-timeout='));
      if (shutdown) expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(shutdown.split('=')[1]));
      if (deployment.metadata.name !== 'sluice-ingest') {
        // Processors cap the V8 heap, below the container's memory limit, so the heap cannot grow into an OOM kill.
        const heap = ((container!.command as string[]).find((a) => a.startsWith('--max-old-space-size=')) ?? '').split(
          '=',
        )[1];
        expect(Number(heap)).toBeGreaterThan(0);
        const limit = (container!.resources as { limits?: { memory?: string } }).limits?.memory;
        if (limit) expect(Number(heap)).toBeLessThan(mebibytes(limit));
        expect(args.some((a) => a.startsWith('--commit-interval='))).toBe(true);
      }
    }
    expect(docs.filter((d) => d.kind === 'PodDisruptionBudget')).toHaveLength(3);
    expect(docs.filter((d) => d.kind === 'ServiceMonitor')).toHaveLength(1);
    expect(docs.find((d) => d.metadata.name === 'sluice-dashboard')).toBeDefined();
    // The ingest API's status page and metrics: on a ClusterIP Service of their own, never on the public one.
    const service = (name: string) =>
      docs.find((d) => d.kind === 'Service' && d.metadata.name === name) as
        { spec: { type: string; ports: { name: string }[] } } | undefined;
    expect(service('sluice-ingest-metrics')?.spec).toMatchObject({ type: 'ClusterIP', ports: [{ name: 'metrics' }] });
    expect(service('sluice-ingest')!.spec.ports.map((p) => p.name)).toEqual(['http']);
  }, 600_000);

  it('the Grafana dashboard (chart and docker-compose) queries only metrics Sluice exports', () => {
    const dashboard = readFileSync(join(ROOT, 'helm', 'sluice', 'dashboards', 'sluice.json'), 'utf8');
    const declared = [
      ['process', 'monitor', 'metrics.ts'],
      ['ingest', 'monitor.ts'],
    ]
      .map((f) => readFileSync(join(ROOT, 'src', ...f), 'utf8'))
      .join('\n');
    const queried = [
      ...new Set([...dashboard.matchAll(/sluice_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))),
    ];
    expect(queried.length).toBeGreaterThanOrEqual(10);
    for (const name of queried) expect(declared).toContain(`'${name}'`);
    const compose = parseAllDocuments(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'))[0]!.toJS({
      maxAliasCount: 100,
    }) as { services: Record<string, unknown> };
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['registry', 'event-counts', 'ingest', 'prometheus', 'grafana']),
    );
  });
});
