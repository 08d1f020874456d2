import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { produceWorkload } from '../../src/generator';
import { hashApiKey, startIngestServer } from '../../src/ingest';
import { ensureDebianPackages } from '../../src/stack/packages';
import { createTestContext, type TestContext } from '../helpers/context';
import { spawnSluice, waitFor, type Child } from '../helpers/processes';
import { observabilityUrl } from '../helpers/telemetry';

const SCREENSHOTS = join(__dirname, '..', '..', '.sluice', 'screenshots');

/** The number shown on a card of the status page. */
async function cardValue(page: import('playwright-core').Page, metric: string): Promise<number> {
  const text = await page.locator(`[data-metric="${metric}"] .value`).textContent();
  return Number((text ?? '').replace(/,/g, ''));
}

/**
 * The processor's status page in a real headless Chromium: it loads, and the
 * numbers it shows follow the events flowing through the stream.
 */
describe('status page in a browser', () => {
  let ctx: TestContext;
  let topic: string;
  let child: Child | undefined;
  let browser: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    ensureDebianPackages({ chromium: 'chromium' }, (line) => console.log(line));
    ctx = await createTestContext('statuspage');
    topic = await ctx.createTopic('events', 2);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    rmSync(profile, { recursive: true, force: true });
    if (child && child.process.exitCode === null) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    await ctx.cleanup();
  });

  it('shows live numbers that change while events flow, and leaves a screenshot', async () => {
    const env = ctx.childEnv('info');
    child = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--flush-interval', '300', '--http-port', '0'],
      env,
    );
    const url = await observabilityUrl(child);

    const page = await browser.newPage();
    await page.goto(url);
    await page.locator('#state').filter({ hasText: /ready/ }).waitFor({ timeout: 20_000 });
    expect(await page.title()).toBe('Sluice · event-counts');
    expect(await cardValue(page, 'recordsIn')).toBe(0);

    // First wave: the page shows exactly what was produced, without a reload.
    await produceWorkload({ config: ctx.config, topic, count: 2000, seed: 3, poisonRatio: 0.01 });
    await waitFor('the page to show 2000 records', async () => (await cardValue(page, 'recordsIn')) === 2000, 30_000);
    const deadLetteredFirst = await cardValue(page, 'deadLettered');
    expect(deadLetteredFirst).toBeGreaterThan(0);

    // Second wave: the same page, still not reloaded, follows.
    await produceWorkload({ config: ctx.config, topic, count: 3000, seed: 4, poisonRatio: 0.01 });
    await waitFor('the page to show 5000 records', async () => (await cardValue(page, 'recordsIn')) === 5000, 30_000);
    expect(await cardValue(page, 'deadLettered')).toBeGreaterThan(deadLetteredFirst);
    expect(await page.locator('#partitions tbody tr').count()).toBe(2);
    // End offsets in the table add up to everything produced; the DLQ card catches up once the checkpoint committed.
    const endOffsets = async () =>
      (await page.locator('#partitions tbody tr td:nth-child(3)').allTextContents()).reduce(
        (sum, t) => sum + Number(t.replace(/,/g, '')),
        0,
      );
    await waitFor('the partition table to show the end offsets', async () => (await endOffsets()) === 5000, 20_000);
    const deadLettered = await cardValue(page, 'deadLettered');
    await waitFor(
      'the DLQ card to show the dead letters',
      async () => (await cardValue(page, 'dlq')) === deadLettered,
      20_000,
    );
    expect(await page.locator('#checks tbody tr').count()).toBe(5);

    mkdirSync(SCREENSHOTS, { recursive: true });
    const file = join(SCREENSHOTS, 'status-page-stream.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(statSync(file).size).toBeGreaterThan(10_000);
    await page.close();

    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  }, 120_000);

  it('the ingest API serves the same page: accepted events appear as they are posted', async () => {
    const key = 'status-page-test-key';
    const ingestTopic = await ctx.createTopic('ingested', 2);
    const server = await startIngestServer(ctx.config, {
      logger: pino({ level: 'silent' }),
      settings: { port: 0, topic: ingestTopic, apiKeys: [hashApiKey(key)], rateLimitPerSecond: 100_000 },
    });
    try {
      const page = await browser.newPage();
      await page.goto(server.adminUrl);
      await page
        .locator('#state')
        .filter({ hasText: /^ready$/ })
        .waitFor({ timeout: 20_000 });
      expect(await cardValue(page, 'accepted')).toBe(0);
      const post = (body: unknown) =>
        fetch(`${server.url}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      const event = (i: number) => ({
        event_id: randomUUID(),
        event_type: 'click',
        user_id: `u-${i}`,
        campaign_id: 'c-1',
        ad_id: null,
        event_time: 1_700_000_000_000 + i,
        amount: null,
        properties: {},
      });
      for (let batch = 0; batch < 3; batch++)
        expect((await post(Array.from({ length: 25 }, (_, i) => event(batch * 25 + i)))).status).toBe(202);
      expect((await post({ nonsense: true })).status).toBe(400);
      await waitFor(
        'the page to show 75 accepted events',
        async () => (await cardValue(page, 'accepted')) === 75,
        20_000,
      );
      await waitFor(
        'the page to show one rejected request',
        async () => (await cardValue(page, 'rejected')) === 1,
        20_000,
      );
      const ends = async () =>
        (await page.locator('#partitions tbody tr td:nth-child(2)').allTextContents()).reduce(
          (sum, t) => sum + Number(t.replace(/,/g, '')),
          0,
        );
      // 75 records, and a commit marker for each request's transaction in each partition it wrote to.
      await waitFor(
        'the topic end offsets to add up to the 75 records and their commit markers',
        async () => (await ends()) > 75 && (await ends()) <= 75 + 3 * 2,
        20_000,
      );
      const metrics = await (await fetch(`${server.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/^sluice_ingest_events_accepted_total\{[^}]*service="ingest"[^}]*\} 75$/m);
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, 'status-page-ingest.png'), fullPage: true });
      await page.close();
    } finally {
      await server.close();
    }
  }, 120_000);
});
