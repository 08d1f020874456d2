import { formatDuration } from './duration';

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [850, '850ms'],
    [999.4, '999ms'],
    [999.6, '1s'],
    [1000, '1s'],
    [42_400, '42s'],
    [59_999, '59s'],
    [60_000, '1m 00s'],
    [125_000, '2m 05s'],
    [3_599_000, '59m 59s'],
    [3_600_000, '1h 00m'],
    [(3 * 3600 + 7 * 60 + 59) * 1000, '3h 07m'],
    [86_400_000, '1d 00h'],
    [(2 * 24 + 4) * 3_600_000, '2d 04h'],
    [-125_000, '-2m 05s'],
  ])('%p ms reads %p', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('shows a dash for what is not known', () => {
    expect(formatDuration(null)).toBe('–');
    expect(formatDuration(undefined)).toBe('–');
    expect(formatDuration(NaN)).toBe('–');
    expect(formatDuration(Infinity)).toBe('–');
  });
});
