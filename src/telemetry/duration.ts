/**
 * Durations as people read them: "850ms", "42s", "2m 05s", "3h 07m", "2d 04h". The status page runs
 * this same source in the browser (it has no build step), so the page and its specs cannot disagree.
 */
export const FORMAT_DURATION_JS = `function formatDuration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '–';
  var sign = ms < 0 ? '-' : '';
  ms = Math.abs(ms);
  if (Math.round(ms) < 1000) return sign + Math.round(ms) + 'ms';
  var s = Math.floor(Math.round(ms) / 1000);
  var pad = function (n) { return n < 10 ? '0' + n : String(n); };
  if (s < 60) return sign + s + 's';
  var m = Math.floor(s / 60);
  if (m < 60) return sign + m + 'm ' + pad(s % 60) + 's';
  var h = Math.floor(m / 60);
  if (h < 24) return sign + h + 'h ' + pad(m % 60) + 'm';
  return sign + Math.floor(h / 24) + 'd ' + pad(h % 24) + 'h';
}`;

// The same source the page runs, compiled here once.
export const formatDuration = new Function(`${FORMAT_DURATION_JS}; return formatDuration;`)() as (
  ms: number | null | undefined,
) => string;
