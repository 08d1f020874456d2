import { waitFor, type Child } from './processes';

/** The processor's observability URL, from its 'listening' log line. */
export async function observabilityUrl(child: Child): Promise<string> {
  let url = '';
  await waitFor(
    'the processor to serve metrics',
    async () => {
      const match = /"url":"(http:\/\/[^"]+)","stream"/.exec(child.output.join(''));
      url = match?.[1] ?? '';
      return url !== '';
    },
    40_000,
  );
  return url;
}

/** Sums every sample of a metric whose labels contain `labels` (Prometheus text format). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    found = true;
  }
  if (!found) throw new Error(`metric ${name} ${JSON.stringify(labels)} not found`);
  return sum;
}
