import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | undefined;

/**
 * The heap this process still uses after a full garbage collection, in MB:
 * what it holds, not the garbage the collector has yet to reclaim (heapUsed
 * alone swings by hundreds of MB with the collector's timing under load).
 * A full collection stops the process for a moment: sample it every few seconds, not in a tight loop.
 */
export function liveHeapMb(): number {
  if (!collect) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) collect = exposed;
    else {
      // Without --expose-gc on the command line: the flag set now, and gc() taken from a fresh context that sees it.
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  collect();
  return Math.round(process.memoryUsage().heapUsed / 1048576);
}
