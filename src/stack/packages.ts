import { execFileSync, spawnSync } from 'node:child_process';
import { StackError } from '../errors';

function onPath(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Installs the Debian packages that provide missing binaries (binary -> package).
 * `apt-get update` runs first, since a fresh machine has no package lists.
 */
export function ensureDebianPackages(needed: Record<string, string>, log: (line: string) => void): void {
  const missing = [
    ...new Set(
      Object.entries(needed)
        .filter(([bin]) => !onPath(bin))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new StackError(
      `missing Debian packages ${missing.join(', ')}: run 'sudo apt-get install -y ${missing.join(' ')}'`,
    );
  }
  log(`installing Debian packages: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n').at(-1) ?? '';
    throw new StackError(`apt-get could not install ${missing.join(', ')}: ${stderr}`, err);
  }
}
