import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs on stderr (stdout stays for command output). Secrets
 * are redacted by path, so a config object logged by mistake shows none.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino(
    {
      level,
      base: { service: 'sluice', ...bindings },
      redact: { paths: ['password', '*.password', '*.*.password', 'apiKey', '*.apiKey', 'authorization', '*.authorization'], censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination(2),
  );
}

export type { Logger };
