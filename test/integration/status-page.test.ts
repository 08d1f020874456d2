import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { produceWorkload } from '../../src/generator';
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
  let browser: Browser | undefined;
  let profile: string;

  beforeAll(async () => {
    ensureDebianPackages({ chromium: 'chromium' }, (line) => console.log(line));
    ctx = await createTestContext('statuspage');
    topic = await ctx.createTopic('events', 2);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
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
    const env = { SLUICE_CLICKHOUSE_DATABASE: ctx.id, SLUICE_REDIS_KEY_PREFIX: ctx.config.redis.keyPrefix, SLUICE_LOG_LEVEL: 'info' };
    child = spawnSluice(['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--flush-interval', '300', '--http-port', '0'], env);
    const url = await observabilityUrl(child);

    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    browser = context.browser() ?? undefined;
    const page = context.pages()[0] ?? (await context.newPage());
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
    expect(await page.locator('#checks tbody tr').count()).toBe(5);

    mkdirSync(SCREENSHOTS, { recursive: true });
    const file = join(SCREENSHOTS, 'status-page-stream.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(statSync(file).size).toBeGreaterThan(10_000);
    await context.close();
    browser = undefined;

    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  }, 58_000);
});
