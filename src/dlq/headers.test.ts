import { ERROR_CODES } from '../errors';
import { currentErrorClass, DLQ_HEADERS, errorClassOf } from './headers';

describe('dead-letter error classes', () => {
  it('reads a former class name as the error code it became, every code as itself', () => {
    expect(currentErrorClass('ValidationError')).toBe('EVENT_INVALID');
    expect(currentErrorClass('TombstoneRecord')).toBe('VALUE_MISSING');
    expect(currentErrorClass('DecodeError')).toBe('VALUE_UNDECODABLE');
    expect(currentErrorClass('EventTimeAhead')).toBe('EVENT_TIME_AHEAD');
    expect(currentErrorClass('SinkRowRefused')).toBe('SINK_ROW_REFUSED');
    for (const code of Object.keys(ERROR_CODES)) expect(currentErrorClass(code)).toBe(code);
    expect(currentErrorClass('constructor')).toBe('constructor');
  });

  it('names a dead letter by its header, under the current name', () => {
    expect(errorClassOf({ [DLQ_HEADERS.errorClass]: Buffer.from('ValidationError') })).toBe('EVENT_INVALID');
    expect(errorClassOf({ [DLQ_HEADERS.errorClass]: 'WIRE_FORMAT_INVALID' })).toBe('WIRE_FORMAT_INVALID');
    expect(errorClassOf({})).toBe('unknown');
  });

  it('maps every former name to a declared code', () => {
    for (const name of ['ValidationError', 'TombstoneRecord', 'DecodeError', 'EventTimeAhead', 'SinkRowRefused'])
      expect(Object.keys(ERROR_CODES)).toContain(currentErrorClass(name));
  });
});
