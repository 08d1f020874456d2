import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cycles, folderGraph } from '../scripts/layers';

/**
 * The layering the code keeps (docs/design.md §1.2), checked so that a change
 * which bends it fails here instead of in a later reader's head.
 */
const SRC = join(__dirname);

function libraryFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return libraryFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Every TypeScript file of a folder, specs included. */
function allTypeScript(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'results') return [];
    if (statSync(path).isDirectory()) return allTypeScript(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** An import (static, dynamic or require) of a Kafka client library, or of a module inside one. */
const KAFKA_LIBRARY =
  /(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"](?:kafkajs|@platformatic\/kafka|node-rdkafka|@confluentinc\/kafka-javascript)(?:\/[^'"]*)?['"]/;

describe('the layers of src/', () => {
  const graph = folderGraph();

  it('point one way: no two folders import each other, directly or around a loop', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('keep telemetry a base layer that knows nothing of the runtime it observes', () => {
    expect([...(graph.get('telemetry') ?? [])].sort()).toEqual(['errors']);
  });

  it('keep the library free of applications: only the workload generator imports streams/', () => {
    const importers = libraryFiles(SRC)
      .filter((file) => /from '(\.\.\/)+streams\//.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file).split('/')[0]);
    expect([...new Set(importers)]).toEqual(['generator']);
  });

  it('keep the Kafka client library behind src/kafka: nothing else imports one, specs, bench and scripts included', () => {
    const root = join(SRC, '..');
    const kafka = join(SRC, 'kafka');
    const importers = ['src', 'streams', 'bench', 'scripts', 'test']
      .flatMap((dir) => allTypeScript(join(root, dir)))
      .filter((file) => !file.startsWith(kafka + '/'))
      .filter((file) => KAFKA_LIBRARY.test(readFileSync(file, 'utf8')))
      .map((file) => relative(root, file));
    expect(importers).toEqual([]);
  });
});
