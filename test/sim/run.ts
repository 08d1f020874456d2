import { Command } from 'commander';
import { FAULT_KINDS, runScenario, type FaultKind } from './scenario';

/**
 * `npm run test:sim -- --seeds N`: runs N seeded scenarios of the runtime on
 * simulated time and prints each failing seed with a one-line reproduction.
 */
const program = new Command()
  .name('test:sim')
  .option('--seeds <n>', 'how many seeds to run', '500')
  .option('--from <seed>', 'first seed', '1')
  .option('--seed <seed>', 'run one seed and print what happened in it')
  .option('--records <n>', 'records per scenario', '300')
  .option('--log', 'print the runtime log of every process (with --seed)')
  .option('--without <kinds>', `fault kinds to leave out, comma-separated (${FAULT_KINDS.join(', ')})`, '')
  .parse();

const opts = program.opts<{
  seeds: string;
  from: string;
  seed?: string;
  records: string;
  without: string;
  log?: boolean;
}>();
if (opts.log) process.env.SLUICE_SIM_LOG = 'info';
const without = new Set(opts.without.split(',').filter(Boolean) as FaultKind[]);

async function main(): Promise<void> {
  const seeds = opts.seed
    ? [Number(opts.seed)]
    : Array.from({ length: Number(opts.seeds) }, (_, i) => Number(opts.from) + i);
  const started = Date.now();
  let failed = 0;
  for (const seed of seeds) {
    const result = await runScenario(seed, { records: Number(opts.records), without }).catch((err: Error) => ({
      seed,
      failures: [`the run threw: ${err.message}`],
      events: [] as string[],
      stats: undefined,
    }));
    if (opts.seed) for (const e of result.events) console.log(`  ${e}`);
    if (result.failures.length > 0) {
      failed += 1;
      console.log(`seed ${seed}: ${result.failures.length} failure(s), first: ${result.failures[0]}`);
      console.log(`  reproduce: npm run test:sim -- --seed ${seed}${opts.without ? ` --without ${opts.without}` : ''}`);
      if (opts.seed) for (const f of result.failures.slice(0, 30)) console.log(`  - ${f}`);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(`${seeds.length} seed(s), ${failed} failed, ${seconds.toFixed(1)} s`);
  process.exitCode = failed > 0 ? 1 : 0;
}

void main();
