import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors';
import type { SluiceConfig } from '../config';

/** What is stored at rest for an API key: its sha256, hex. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
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
