import type { StreamCounters } from './task';

/**
 * Above this share of late events a run's summary, its status page and a
 * replay's summary warn. The reference workload sends 0.5% late on purpose
 * (events 1-2 h behind), and a healthy stream with 30 s of allowed disorder
 * and 30 s of lateness sees fewer still; more than 1% means events arrive
 * minutes or days behind their partitions (old data backfilled into a live
 * topic, a producer catching up after an outage, disorder or lateness set
 * too tight), and those events are in no window: a result worth a look,
 * and usually a range worth replaying.
 */
export const LATE_SHARE_WARNING = 0.01;

/**
 * Late events as a share of the events that reached the windows (valid,
 * not duplicates, inside the run's range); null before any did. A stream
 * without windows has none late: 0.
 */
export function lateShare(counters: StreamCounters): number | null {
  const windowed = counters.decoded - counters.deduplicated;
  if (windowed <= 0) return null;
  return counters.late / windowed;
}

export const formatShare = (share: number) => `${(share * 100).toFixed(share < 0.001 && share > 0 ? 3 : 1)}%`;

/** One line when the late share is above the threshold; the advice names the command that puts those events in windows. */
export function lateShareWarning(counters: StreamCounters, stream?: string): string | undefined {
  const share = lateShare(counters);
  if (share === null || share <= LATE_SHARE_WARNING) return undefined;
  const windowed = counters.decoded - counters.deduplicated;
  return (
    `${formatShare(share)} of the events were late (${counters.late} of ${windowed}; more than ${formatShare(LATE_SHARE_WARNING)}): ` +
    `their windows had closed, so they are in <topic>.late and in no window. Old data produced into a live topic does this; ` +
    `compute its windows with 'sluice replay ${stream ?? '<stream>'} --from <start> --to <end> --yes'`
  );
}
