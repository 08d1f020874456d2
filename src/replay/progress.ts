import { SingleBar, Presets } from 'cli-progress';
import { holdTerminalLine } from '../telemetry';

export interface ProgressReporter {
  update(done: bigint, total: bigint): void;
  stop(): void;
}

/**
 * Progress of a long operation: a bar with rate and ETA on a terminal, a
 * plain line every few seconds otherwise (logs, CI), nothing for --json.
 */
export function createProgress(
  label: string,
  options: { json?: boolean; stream?: NodeJS.WriteStream; intervalMs?: number } = {},
): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  if (options.json) return { update: () => undefined, stop: () => undefined };
  const started = Date.now();
  const rate = (done: bigint) => Math.round(Number(done) / Math.max(0.001, (Date.now() - started) / 1000));
  if (stream.isTTY) {
    const bar = new SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} events | {rate} events/s | ETA {eta_formatted}`,
        stream,
        hideCursor: true,
        etaBuffer: 20,
      },
      Presets.shades_classic,
    );
    let started_ = false;
    return {
      update(done, total) {
        if (!started_) {
          bar.start(Number(total), 0, { rate: 0 });
          started_ = true;
          // Log lines go above the bar instead of through it.
          holdTerminalLine({ clear: () => stream.write('\r\x1b[2K'), redraw: () => bar.render() });
        }
        bar.update(Number(done), { rate: rate(done) });
      },
      stop() {
        if (!started_) return;
        holdTerminalLine(undefined);
        bar.stop();
      },
    };
  }
  const interval = options.intervalMs ?? 5000;
  let last = 0;
  let lastDone = -1n;
  const line = (done: bigint, total: bigint) => {
    const r = rate(done);
    const eta = r > 0 ? Math.round(Number(total - done) / r) : null;
    const pct = total > 0n ? Math.floor((Number(done) * 100) / Number(total)) : 100;
    stream.write(`${label}: ${done}/${total} events (${pct}%), ${r} events/s, ETA ${eta === null ? '-' : `${eta}s`}\n`);
  };
  return {
    update(done, total) {
      if (Date.now() - last >= interval) {
        last = Date.now();
        lastDone = done;
        line(done, total);
      } else if (done === total && lastDone !== total) {
        lastDone = done;
        line(done, total);
      }
    },
    stop: () => undefined,
  };
}
