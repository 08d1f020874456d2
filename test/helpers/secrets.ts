import { waitFor, type Child } from './processes';

/** Everything a client can read from a running process: metrics, the status page and its JSON. */
export async function publishedPages(url: string): Promise<string> {
  const pages = await Promise.all(
    ['/metrics', '/', '/status.json'].map(async (path) => (await fetch(`${url}${path}`)).text()),
  );
  return pages.join('\n');
}

/** SIGTERM, expect a clean exit, and return everything the process printed. */
export async function stopChild(child: Child): Promise<string> {
  child.process.kill('SIGTERM');
  expect(await child.exited).toBe(0);
  return child.output.join('');
}

/** The URL a `sluice serve` child prints once it listens. */
export async function ingestUrl(child: Child): Promise<string> {
  return printedUrl(child, 'the ingest API to listen', /ingest API listening on (http:\/\/\S+)/);
}

/** The operator address (status page, status.json, metrics) a `sluice serve` child prints. */
export async function ingestAdminUrl(child: Child): Promise<string> {
  return printedUrl(child, 'the ingest status page to listen', /status page and metrics on (http:\/\/\S+)/);
}

async function printedUrl(child: Child, what: string, pattern: RegExp): Promise<string> {
  let url = '';
  await waitFor(
    what,
    async () => {
      url = pattern.exec(child.output.join(''))?.[1] ?? '';
      return url !== '';
    },
    30_000,
  );
  return url;
}

/** POST /v1/events with a bearer key. */
export const postEvents = (url: string, key: string, body: unknown) =>
  fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** A valid event of the reference schema, with the given id. */
export const sampleEvent = (eventId: string) => ({
  event_id: eventId,
  event_type: 'click',
  user_id: 'u',
  event_time: 1_767_225_600_000,
});
