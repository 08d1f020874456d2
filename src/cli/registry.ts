import type { Command } from 'commander';
import { loadConfig } from '../config';
import { SluiceError, describeError } from '../errors';
import { DEFAULT_SCHEMAS_TOPIC, startRegistry, type RunningRegistry } from '../schema';
import { createLogger } from '../telemetry';
import { printLine } from './output';
import { sleep } from '../clock';

export function registerRegistryCommands(program: Command): void {
  const registry = program.command('registry').description('the embedded Confluent-compatible schema registry');

  registry
    .command('serve')
    .description('run the registry in the foreground (state in a compacted Kafka topic); SIGTERM stops it')
    .option('--port <port>', 'port to listen on (default: stack.registryPort, 8081)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--topic <topic>', 'compacted topic holding the schemas', DEFAULT_SCHEMAS_TOPIC)
    .option('--wait <seconds>', 'keep retrying this long while Kafka is unreachable (used by `stack up`)', '0')
    .addHelpText(
      'after',
      '\nExamples:\n  sluice registry serve\n  sluice registry serve --port 18081 --topic _schemas_staging',
    )
    .action(async (opts: { port?: string; host: string; topic: string; wait: string }) => {
      const config = loadConfig();
      const port = opts.port === undefined ? config.stack.registryPort : Number(opts.port);
      const logger = createLogger(config.log.level, { component: 'registry' });
      const deadline = Date.now() + Number(opts.wait) * 1000;
      let running: RunningRegistry;
      for (;;) {
        try {
          running = await startRegistry(config, { port, host: opts.host, topic: opts.topic, logger });
          break;
        } catch (err) {
          // Only an unreachable Kafka is worth waiting for; a taken port or bad config fails now.
          if (!(err instanceof SluiceError && err.retriable) || Date.now() >= deadline) throw err;
          logger.info(`waiting for Kafka: ${describeError(err)}`);
          await sleep(1000);
        }
      }
      printLine(`schema registry listening on ${running.url} (topic ${running.topic})`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          // A registry whose Kafka is already gone must still exit promptly.
          setTimeout(resolve, 5000).unref();
          running.close().then(resolve, resolve);
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
