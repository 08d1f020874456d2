import { hashApiKey, isAcceptedKeyHash } from './auth';

describe('isAcceptedKeyHash', () => {
  const accepted = ['key-one', 'key-two', 'key-three'].map(hashApiKey);

  it('accepts the hash of any configured key and nothing else', () => {
    for (const key of ['key-one', 'key-two', 'key-three'])
      expect(isAcceptedKeyHash(accepted, hashApiKey(key))).toBe(true);
    expect(isAcceptedKeyHash(accepted, hashApiKey('key-four'))).toBe(false);
    expect(isAcceptedKeyHash([], hashApiKey('key-one'))).toBe(false);
  });

  it('refuses a hash that differs from a stored one in its last byte only', () => {
    const stored = accepted[1]!;
    const lastByte = stored.slice(-2) === '00' ? '01' : '00';
    expect(isAcceptedKeyHash(accepted, stored.slice(0, -2) + lastByte)).toBe(false);
  });

  it('refuses input that is not a 32-byte hex digest (short, long, or not hex) without throwing', () => {
    const stored = accepted[0]!;
    for (const odd of ['', stored.slice(0, 62), `${stored}00`, 'zz'.repeat(32)])
      expect(isAcceptedKeyHash(accepted, odd)).toBe(false);
  });
});
