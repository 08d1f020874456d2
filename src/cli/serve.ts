import type { Command } from 'commander';
import { loadConfig } from '../config';
import { ConfigError } from '../errors';
import { hashApiKey, startIngestServer } from '../ingest';
import { printLine } from './output';

export function registerServeCommands(program: Command): void {
  const serve = program
    .command('serve')
    .description('run the HTTP ingestion API: POST /v1/events -> validated against the Avro schema -> Kafka')
    .option('--port <port>', 'TCP port (ingest.port, SLUICE_INGEST_PORT)')
    .option('--host <host>', 'address to listen on (ingest.host)')
    .option('--topic <topic>', 'topic to produce to (ingest.topic)')
    .addHelpText(
      'after',
      [
        '',
        'API keys are configured hashed: SLUICE_INGEST_API_KEYS=<sha256 hex>[,...] or ingest.apiKeysFile.',
        'Examples:',
        '  sluice serve hash-key "$KEY"',
        '  SLUICE_INGEST_API_KEYS=$(sluice serve hash-key "$KEY") sluice serve --port 8088',
        "  curl -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' -d @event.json localhost:8088/v1/events",
      ].join('\n'),
    )
    .action(async (opts: { port?: string; host?: string; topic?: string }) => {
      const config = loadConfig();
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new ConfigError(`--port ${opts.port}: expected 0-65535`);
      const server = await startIngestServer(config, {
        settings: { ...(port !== undefined && { port }), ...(opts.host && { host: opts.host }), ...(opts.topic && { topic: opts.topic }) },
      });
      printLine(`ingest API listening on ${server.url} (POST /v1/events, GET /healthz, GET /readyz)`);
      // SIGTERM/SIGINT: stop accepting, let in-flight requests get their acknowledgements, then exit.
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve, resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });

  serve
    .command('hash-key <key>')
    .description('print the sha256 of an API key, the form ingest.apiKeys stores')
    .action((key: string) => {
      printLine(hashApiKey(key));
    });
}
