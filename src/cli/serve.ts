import type { Command } from 'commander';
import { loadConfig } from '../config';
import { ConfigError } from '../errors';
import { hashApiKey, startIngestServer } from '../ingest';
import { latestRegisteredSchema } from '../ingest/schema-choice';
import { printLine } from './output';

interface ServeOptions {
  port?: string;
  host?: string;
  topic?: string;
  schema?: string;
  adminPort?: string;
  adminHost?: string;
}

/** ingest.schema's default in the config: when it is still that, no one chose a schema. */
const BUILT_IN_SCHEMA = 'analytics_event';

export function registerServeCommands(program: Command): void {
  const serve = program
    .command('serve')
    .description('run the HTTP ingestion API: POST /v1/events -> validated against the Avro schema -> Kafka')
    .option('--port <port>', 'TCP port (ingest.port, SLUICE_INGEST_PORT)')
    .option('--host <host>', 'address to listen on (ingest.host)')
    .option('--topic <topic>', 'topic to produce to (ingest.topic)')
    .option(
      '--schema <name>',
      'Avro schema events must match, a file in avro/ (ingest.schema); default: the latest version registered under <topic>-value, else ingest.schema',
    )
    .option(
      '--admin-port <port>',
      'TCP port of the status page and metrics (ingest.adminPort, SLUICE_INGEST_ADMIN_PORT)',
    )
    .option('--admin-host <host>', 'address of the status page and metrics; loopback by default (ingest.adminHost)')
    .addHelpText(
      'after',
      [
        '',
        'API keys are configured hashed: SLUICE_INGEST_API_KEYS=<sha256 hex>[,...] or ingest.apiKeysFile.',
        'Events are checked against the Avro schema and the rules of the streams in streams/ that read the topic.',
        'The status page, /status.json and /metrics are served on --admin-host:--admin-port (127.0.0.1:9465), not the API port.',
        'Examples:',
        '  sluice serve hash-key "$KEY"',
        '  sluice serve --schema analytics_event        # pin v1 instead of the latest registered version',
        '  SLUICE_INGEST_API_KEYS=$(sluice serve hash-key "$KEY") sluice serve --port 8088',
        '  curl -H "Authorization: Bearer $KEY" -H \'Content-Type: application/json\' -d @event.json localhost:8088/v1/events',
      ].join('\n'),
    )
    .action(async (opts: ServeOptions) => {
      const config = loadConfig();
      const portOption = (flag: string, value: string | undefined) => {
        const port = value === undefined ? undefined : Number(value);
        if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
          throw new ConfigError(`${flag} ${value}: expected 0-65535`);
        return port;
      };
      const port = portOption('--port', opts.port);
      const adminPort = portOption('--admin-port', opts.adminPort);
      const settings = {
        ...(port !== undefined && { port }),
        ...(opts.host && { host: opts.host }),
        ...(opts.topic && { topic: opts.topic }),
        ...(adminPort !== undefined && { adminPort }),
        ...(opts.adminHost && { adminHost: opts.adminHost }),
      };
      // The same check as ingest.adminPort's in the config, for ports given here (0, a free port, never clashes).
      const [apiPort, statusPort] = [
        settings.port ?? config.ingest.port,
        settings.adminPort ?? config.ingest.adminPort,
      ];
      if (apiPort !== 0 && apiPort === statusPort) {
        throw new ConfigError(
          `--admin-port ${statusPort} is the API port too: the status page and metrics need a port of their own`,
        );
      }
      // The built-in default (v1) would refuse fields of the schema the stream reads: unless a schema is named, by
      // --schema or by setting ingest.schema to another file, take the latest one registered for the topic.
      const topic = settings.topic ?? config.ingest.topic;
      const schema =
        opts.schema ??
        (config.ingest.schema === BUILT_IN_SCHEMA
          ? ((await latestRegisteredSchema(config, topic)) ?? config.ingest.schema)
          : config.ingest.schema);
      const server = await startIngestServer(config, { settings: { ...settings, schema } });
      printLine(`ingest API listening on ${server.url} (POST /v1/events, GET /healthz, GET /readyz), schema ${schema}`);
      printLine(`status page and metrics on ${server.adminUrl} (GET /, /status.json, /metrics)`);
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
