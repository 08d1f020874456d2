import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SluiceError } from '../errors';
import { defineStream, type StreamDefinition } from './definition';

/** Where stream definitions live: `streams/<name>/index.ts` in the project. */
export const STREAMS_DIR = resolve(__dirname, '..', '..', 'streams');

export function listStreams(): string[] {
  if (!existsSync(STREAMS_DIR)) return [];
  return readdirSync(STREAMS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(STREAMS_DIR, d.name, 'index.ts')))
    .map((d) => d.name)
    .sort();
}

/** Loads a stream definition by name (or by path to its module). */
export function loadStream(nameOrPath: string): StreamDefinition<unknown> {
  const path = nameOrPath.includes('/') ? resolve(nameOrPath) : join(STREAMS_DIR, nameOrPath);
  if (!existsSync(path) && !existsSync(`${path}.ts`) && !existsSync(join(path, 'index.ts'))) {
    throw new SluiceError(
      'STREAM_NOT_FOUND',
      `no stream '${nameOrPath}': expected ${join(path, 'index.ts')} (streams here: ${listStreams().join(', ') || 'none'})`,
    );
  }
  const mod = require(path) as { default?: StreamDefinition<unknown> };
  if (!mod.default || typeof mod.default.validate !== 'function') {
    throw new SluiceError('STREAM_INVALID', `${path} must export a stream definition as default (defineStream({...}))`);
  }
  // A module may export a plain object: its names get the checks defineStream makes.
  return defineStream(mod.default);
}
