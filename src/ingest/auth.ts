import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors';
import type { SluiceConfig } from '../config';

/** What is stored at rest for an API key: its sha256, hex. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Whether `hash` (the sha256 hex of a presented key) is one of the accepted
 * digests. Every stored digest is compared, each with timingSafeEqual over
 * its 32 bytes, and the loop never stops early: the time taken depends on
 * the number of keys only, not on how much of any stored digest matched.
 * (A plain Set lookup would also be safe in practice, since its timing
 * depends on the hash of the attacker's input, which they cannot steer
 * byte by byte; this makes the property hold by construction.)
 */
export function isAcceptedKeyHash(accepted: Iterable<string>, hash: string): boolean {
  const presented = Buffer.from(hash, 'hex');
  if (presented.length !== 32) return false;
  let found = false;
  for (const digest of accepted) {
    const stored = Buffer.from(digest, 'hex');
    // Stored digests are validated as 64 hex chars at start-up; the length check only guards timingSafeEqual.
    if (stored.length === presented.length && timingSafeEqual(stored, presented)) found = true;
  }
  return found;
}

/** The accepted key hashes: `ingest.apiKeys` plus the lines of `ingest.apiKeysFile`. */
export function loadApiKeyHashes(settings: SluiceConfig['ingest']): Set<string> {
  const hashes = new Set(settings.apiKeys);
  if (settings.apiKeysFile) {
    let text: string;
    try {
      text = readFileSync(settings.apiKeysFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`ingest.apiKeysFile ${settings.apiKeysFile} cannot be read: ${(err as Error).message}`);
    }
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (line === '') return;
      if (!/^[0-9a-f]{64}$/.test(line)) {
        throw new ConfigError(
          `ingest.apiKeysFile ${settings.apiKeysFile} line ${i + 1}: expected the sha256 hex of an API key (\`sluice serve hash-key <key>\`), not the key`,
        );
      }
      hashes.add(line);
    });
  }
  return hashes;
}

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(headers: { authorization?: string; 'x-api-key'?: string | string[] }): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  if (bearer) return bearer[1];
  const header = headers['x-api-key'];
  const key = Array.isArray(header) ? header[0] : header;
  return key && key.trim() !== '' ? key.trim() : undefined;
}
