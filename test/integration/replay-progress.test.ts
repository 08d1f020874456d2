import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { produceWorkload } from '../../src/generator';
import { createTestContext, type TestContext } from '../helpers/context';

/** The replay's progress bar in a real pseudo-terminal (util-linux `script`), and plain lines without one. */
describe('sluice replay progress', () => {
  let ctx: TestContext;
  let topic: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    ctx = await createTestContext('replayprog');
    topic = await ctx.createTopic('events', 2);
    await produceWorkload({ config: ctx.config, topic, count: 4000, seed: 3 });
    env = { ...process.env, ...ctx.childEnv('warn') };
  }, 60_000);
  afterAll(async () => ctx.cleanup());

  const args = () => ['replay', 'event-counts', '--topic', topic, '--group', ctx.group, '--to-earliest', '--yes'];

  it('renders a bar with events/s and ETA on a terminal, and finishes at 100%', () => {
    const command = [process.execPath, join(__dirname, '..', '..', 'bin', 'sluice.js'), ...args()]
      .map((a) => `'${a}'`)
      .join(' ');
    const result = spawnSync('script', ['-qec', command, '/dev/null'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(0);
    const screen = result.stdout;
    expect(screen).toMatch(/\[[\u2588\u2591]+\] \d+% \| \d+\/4000 events \| \d+ events\/s \| ETA/); // drawn while running
    expect(screen).toContain('100% | 4000/4000 events');
    expect(screen).toContain('\u001b[1G'); // redrawn in place, not printed line by line
    expect(screen).toMatch(/replayed 4000 records/);
  }, 90_000);

  it('prints plain progress lines when not on a terminal', () => {
    const result = spawnSync(process.execPath, [join(__dirname, '..', '..', 'bin', 'sluice.js'), ...args()], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/^replay event-counts: 4000\/4000 events \(100%\), \d+ events\/s, ETA 0s$/m);
    expect(result.stderr).not.toContain('\u001b[');
  }, 90_000);
});
