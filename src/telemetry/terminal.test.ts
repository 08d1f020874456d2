import { formatLogLine, holdTerminalLine, terminalDestination } from './terminal';

describe('terminal log lines', () => {
  it('reads as time, level, message and fields, without the fields every line has', () => {
    const json = JSON.stringify({
      level: 40,
      time: '2026-01-02T10:42:07.123Z',
      service: 'sluice',
      stream: 'event-counts',
      partition: 3,
      reason: 'lag grew while paused',
      msg: 'partition stuck',
    });
    expect(formatLogLine(json)).toBe(
      '10:42:07 WARN  partition stuck  stream=event-counts partition=3 reason="lag grew while paused"\n',
    );
  });

  it('puts the error stack under the line, indented', () => {
    const json = JSON.stringify({
      level: 50,
      time: '2026-01-02T10:42:07Z',
      msg: 'flush failed',
      err: { message: 'x', stack: 'Error: x\n  at y' },
    });
    expect(formatLogLine(json)).toBe('10:42:07 ERROR flush failed\n    Error: x\n      at y\n');
  });

  it('passes a line that is not JSON through', () => {
    expect(formatLogLine('plain')).toBe('plain');
  });

  it('writes above a progress bar: clears its line, writes, redraws it', () => {
    const written: string[] = [];
    const stream = { write: (s: string) => written.push(s), hasColors: () => false } as unknown as NodeJS.WriteStream;
    holdTerminalLine({ clear: () => written.push('<clear>'), redraw: () => written.push('<bar>') });
    try {
      terminalDestination(stream).write(`${JSON.stringify({ level: 30, time: '2026-01-02T10:00:00Z', msg: 'hi' })}\n`);
    } finally {
      holdTerminalLine(undefined);
    }
    expect(written).toEqual(['<clear>', '10:00:00 INFO  hi\n', '<bar>']);
  });
});
