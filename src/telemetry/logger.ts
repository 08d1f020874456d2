import { trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';
import { rememberProblem } from './recent';
import { terminalDestination } from './terminal';

/** JSON where a program reads the logs (a pipe, a file, a collector); readable lines on a terminal. */
function defaultDestination(): pino.DestinationStream {
  return process.stderr.isTTY && process.env.SLUICE_LOG_FORMAT !== 'json' ? terminalDestination() : pino.destination(2);
}

/** Redacted wherever they appear in a logged object (config, request headers, connection options). */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  '*.*.*.password',
  'apiKey',
  '*.apiKey',
  'apiKeys',
  '*.apiKeys',
  '*.*.apiKeys',
  'authorization',
  '*.authorization',
  '*.*.authorization',
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
];

/** Passwords inside URLs (redis://:secret@host) survive path-based redaction; strip them from any string. */
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@/\s]+@/gi;
export const scrubSecrets = (text: string): string => text.replace(URL_CREDENTIALS, '$1***@');

/** Copies plain objects, arrays and errors with every string scrubbed; other objects (Buffers, class instances) pass as they are. */
function scrubDeep(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (!value || typeof value !== 'object' || depth > 6) return value;
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, depth + 1));
  if (value instanceof Error) {
    const copy = new Error(scrubSecrets(value.message));
    copy.name = value.name;
    copy.stack = value.stack === undefined ? undefined : scrubSecrets(value.stack);
    return copy;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) copy[key] = scrubDeep(v, depth + 1);
  return copy;
}

const LEVELS: Record<number, 'warn' | 'error' | 'fatal'> = { 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * Structured JSON logs on stderr (stdout stays for command output); on a
 * terminal the same entries as readable lines (SLUICE_LOG_FORMAT=json keeps JSON). Secrets
 * are redacted by path and credentials are cut out of URLs, so a config
 * object logged by mistake shows none. While a span is active, each line
 * carries its trace_id and span_id, so logs and traces join up. Warnings and
 * errors are also kept in memory for the status page.
 */
export function createLogger(
  level: string,
  bindings: Record<string, unknown> = {},
  destination: pino.DestinationStream = defaultDestination(),
): Logger {
  return pino(
    {
      level,
      base: { service: 'sluice', ...bindings },
      redact: { paths: REDACTED_PATHS, censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const context = trace.getActiveSpan()?.spanContext();
        return context ? { trace_id: context.traceId, span_id: context.spanId } : {};
      },
      hooks: {
        logMethod(args, method, levelValue) {
          for (let i = 0; i < args.length; i++)
            if (typeof args[i] === 'string') args[i] = scrubSecrets(args[i] as string);
          const first = args[0] as unknown;
          // A scrubbed copy: the caller's object stays as it was.
          if (first && typeof first === 'object') args[0] = scrubDeep(first, 0);
          const problemLevel = LEVELS[levelValue];
          if (problemLevel) {
            const fields = (first && typeof first === 'object' ? first : {}) as Record<string, unknown>;
            const msg = args.find((a, i) => typeof a === 'string' && (i > 0 || typeof first !== 'object')) as
              string | undefined;
            const err = fields.err;
            rememberProblem({
              time: new Date().toISOString(),
              level: problemLevel,
              msg: msg ?? '',
              err:
                err === undefined
                  ? undefined
                  : scrubSecrets(
                      typeof err === 'string' ? err : err instanceof Error ? err.message : JSON.stringify(err),
                    ),
            });
          }
          return method.apply(this, args as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

export type { Logger };
