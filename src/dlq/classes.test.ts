import { ERROR_CODES } from '../errors';
import {
  classKind,
  DEAD_LETTER_CLASSES,
  describeDeadLetterClasses,
  isPermanentClass,
  isReplayOnlyClass,
} from './classes';
import { DLQ_HEADERS, REDRIVE_HEADERS } from './headers';
import { redrivenMessage } from './redrive';
import { deadLetterMessage } from './side-record';

describe('dead-letter classes', () => {
  it('are error codes, and only undecodable bytes are permanent', () => {
    for (const c of Object.keys(DEAD_LETTER_CLASSES)) expect(Object.hasOwn(ERROR_CODES, c)).toBe(true);
    expect(Object.keys(DEAD_LETTER_CLASSES).filter(isPermanentClass).sort()).toEqual([
      'AVRO_INVALID',
      'SCHEMA_UNKNOWN',
      'VALUE_MISSING',
      'VALUE_UNDECODABLE',
      'WIRE_FORMAT_INVALID',
    ]);
    expect(isPermanentClass('SOMETHING_NEW')).toBe(false);
  });

  it('are listed with their kind and meaning', () => {
    expect(describeDeadLetterClasses()).toContainEqual(
      expect.stringMatching(/^ {2}SCHEMA_UNKNOWN\s+permanent\s+the value names a schema id/),
    );
    expect(describeDeadLetterClasses()).toContainEqual(expect.stringMatching(/^ {2}EVENT_INVALID\s+transient\s+/));
  });

  it('say a refused row is never redriven but replayed: its event was claimed (and counted) when the row was refused', () => {
    expect(Object.keys(DEAD_LETTER_CLASSES).filter(isReplayOnlyClass)).toEqual(['SINK_ROW_REFUSED']);
    expect(classKind('SINK_ROW_REFUSED')).toBe('replay');
    expect(describeDeadLetterClasses()).toContainEqual(
      expect.stringMatching(/^ {2}SINK_ROW_REFUSED\s+replay\s+.*never redriven.*duplicate.*sluice replay/),
    );
    expect(describeDeadLetterClasses().join('\n')).not.toMatch(/column that can hold the value/);
  });
});

describe('attempts across redrives', () => {
  const record = (headers: Record<string, string>) => ({
    topic: 'events',
    partition: 1,
    offset: '7',
    timestamp: '1',
    key: null,
    value: Buffer.from('x'),
    headers,
  });
  const now = new Date(0);
  const deadLetter = (headers: Record<string, string>) =>
    deadLetterMessage({ source: record(headers), errorClass: 'EVENT_INVALID', message: 'no', attempt: 1 }, 's', now)[1];

  it('a redriven copy that fails again is dead-lettered one attempt further', () => {
    const first = deadLetter({});
    expect(first.headers![DLQ_HEADERS.attempt]).toBe('1');
    const dlqRecord = { ...record(first.headers as Record<string, string>), topic: 'events.dlq', offset: '3' };
    const [, copy] = redrivenMessage(dlqRecord, 'events.dlq', now);
    expect(copy.headers![REDRIVE_HEADERS.attempt]).toBe('1');
    const second = deadLetter(copy.headers as Record<string, string>);
    expect(second.headers![DLQ_HEADERS.attempt]).toBe('2');
  });

  it('counts a copy an older redrive made (no attempt header) as having failed once', () => {
    expect(deadLetter({ [REDRIVE_HEADERS.fromTopic]: 'events.dlq' }).headers![DLQ_HEADERS.attempt]).toBe('2');
    expect(deadLetter({ [REDRIVE_HEADERS.attempt]: 'junk' }).headers![DLQ_HEADERS.attempt]).toBe('1');
  });
});
