import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ClickHouseSettings } from '../../src/sink/clickhouse/client';

/**
 * Where the specs of the current engine find it: chdb, through
 * `createClickHouse` with a `chdb:///dir` URL (src/sink/clickhouse/chdb.ts).
 *
 * By default the npm package's engine (26.x) runs inside the jest process.
 * `SLUICE_CHDB_PYTHON=/venv/bin/python` (set by scripts/clickhouse-matrix.sh)
 * runs the engine of that interpreter's chdb package instead, in a child
 * process, so the same specs check the older releases users run.
 *
 * chdb binds one data directory per process, so there is one per jest
 * process (a worker or --runInBand), shared by its specs, each in its own
 * database; directories of processes that are gone are removed.
 */
const root = resolve(__dirname, '../../.sluice/chdb');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let swept = false;
function dataDir(): string {
  if (!swept) {
    swept = true;
    if (existsSync(root)) {
      for (const name of readdirSync(root)) {
        const pid = Number(/^jest-(\d+)$/.exec(name)?.[1]);
        if (pid && pid !== process.pid && !alive(pid)) rmSync(join(root, name), { recursive: true, force: true });
      }
    }
  }
  const dir = join(root, `jest-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The engine the specs run on: `chdb:///…` (npm, in process) or `chdb:///…?python=…` (the matrix). */
export function chdbUrl(): string {
  const python = process.env.SLUICE_CHDB_PYTHON;
  return `chdb://${dataDir()}${python ? `?python=${encodeURIComponent(resolve(python))}` : ''}`;
}

/** Client settings for that engine (chdb has no users: the credentials are not used). */
export function chdbSettings(): ClickHouseSettings {
  return { url: chdbUrl(), username: 'default', password: '' };
}
