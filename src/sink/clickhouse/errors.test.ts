import { classifyClickHouseError, clickHouseErrorCode, isDataError, isSchemaError } from './errors';

const settings = { url: 'http://ch:8123', username: 'u', password: 'p' };

describe('classifyClickHouseError', () => {
  it('reads the code from 18.16-style messages', () => {
    expect(clickHouseErrorCode(new Error('Code: 252, e.displayText() = DB::Exception: Too many parts'))).toBe(252);
    expect(clickHouseErrorCode(new Error('socket hang up'))).toBeUndefined();
  });

  it('retries load, limits and network trouble; never bad queries, bad data or bad credentials', () => {
    const retriable = (m: string) => classifyClickHouseError(settings, new Error(m)).retriable;
    expect(retriable('Code: 252, e.displayText() = DB::Exception: Too many parts (300)')).toBe(true);
    expect(retriable('Code: 241, e.displayText() = DB::Exception: Memory limit exceeded')).toBe(true);
    expect(retriable('connect ECONNREFUSED 127.0.0.1:8123')).toBe(true);
    for (const m of [
      'connect ETIMEDOUT 10.0.0.7:8123',
      'getaddrinfo EAI_AGAIN ch',
      'connect ENETUNREACH 10.0.0.7:8123',
    ])
      expect(retriable(m)).toBe(true);
    expect(
      classifyClickHouseError(settings, Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })).retriable,
    ).toBe(true);
    expect(retriable('Code: 27, e.displayText() = DB::Exception: Cannot parse input')).toBe(false);
    expect(retriable('Code: 60, e.displayText() = DB::Exception: Table x.y does not exist')).toBe(false);
    expect(retriable('Code: 516, e.displayText() = DB::Exception: default: Authentication failed')).toBe(false);
  });

  it('classifies by the server code when there is one: a refusal quoting a transport word is no outage', () => {
    const answered = (m: string, code: string) =>
      classifyClickHouseError(settings, Object.assign(new Error(m), { code }));
    const data = answered("Code: 6. DB::Exception: Cannot parse string 'ETIMEDOUT' as UInt64: syntax error", '6');
    expect([data.retriable, isDataError(data)]).toEqual([false, true]);
    const schema = answered('Code: 60. DB::Exception: Table sluice.session_timeouts does not exist.', '60');
    expect([schema.retriable, isSchemaError(schema)]).toEqual([false, true]);
  });

  it('still takes a server that says it timed out, under any other code, for an outage', () => {
    // As the client builds them: the code apart, the message without its `Code: N` prefix.
    const replies: [string, string][] = [
      ['439', 'Cannot schedule a task: no free thread (timeout=0) (threads=16, jobs=16)'],
      ['1000', 'Timeout: connect timed out: 10.0.0.9:9000'],
      ['279', 'All connection tries failed. Log: Timeout exceeded while connecting to socket'],
    ];
    for (const [code, message] of replies)
      expect(classifyClickHouseError(settings, Object.assign(new Error(message), { code })).retriable).toBe(true);
  });
});
