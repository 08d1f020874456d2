import type { DestinationStream } from 'pino';

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const LEVEL_COLOURS: Record<number, string> = { 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };
/** Fields every line has (or the terminal does not need): left out of the readable line. */
const OMITTED = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname', 'err']);

const value = (v: unknown) => {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return /[\s"=]/.test(text) ? JSON.stringify(text) : text;
};

/**
 * One JSON log line as a person reads it on a terminal: `10:42:07 WARN  msg key=value ...`, the error's
 * message and stack below. The JSON stays what pipes and files get; this is for a TTY only, and small on
 * purpose (pino-pretty is not a dependency).
 */
export function formatLogLine(json: string, colour = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = Number(entry.level);
  const name = (LEVEL_NAMES[level] ?? String(entry.level)).padEnd(5);
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const fields = Object.entries(entry)
    .filter(([k]) => !OMITTED.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
  const err = entry.err as { message?: string; stack?: string } | string | undefined;
  const errBody = err === undefined ? '' : typeof err === 'string' ? err : (err.stack ?? err.message ?? '');
  const errText = errBody ? `\n${errBody.replace(/^/gm, '    ')}` : '';
  const tint = colour ? (LEVEL_COLOURS[level] ?? '') : '';
  const line = `${time} ${tint}${name}${tint ? '\x1b[0m' : ''} ${String(entry.msg ?? '')}${fields ? `  ${fields}` : ''}`;
  return `${line}${errText}\n`;
}

/** Writes around whatever holds the terminal's last line (a progress bar): it clears the line, then redraws. */
export interface TerminalLine {
  clear(): void;
  redraw(): void;
}

let holder: TerminalLine | undefined;

/** A progress bar claims the terminal's last line while it runs; log lines then go above it. */
export function holdTerminalLine(line: TerminalLine | undefined): void {
  holder = line;
}

/** A pino destination that writes readable lines to a terminal, above a progress bar when one runs. */
export function terminalDestination(stream: NodeJS.WriteStream = process.stderr): DestinationStream {
  return {
    write(json: string) {
      const text = json
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => formatLogLine(l, stream.hasColors?.() ?? false))
        .join('');
      holder?.clear();
      stream.write(text);
      holder?.redraw();
    },
  };
}
