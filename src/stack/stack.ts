import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { SluiceConfig } from '../config';
import { describeError } from '../errors';
import { ensureDebianPackages } from './packages';
import { assertPortFree, runningPid, servicePaths, stopProcess, waitHealthy } from './processes';
import { localServices, type LocalService } from './services';

export interface ServiceStatus {
  name: string;
  pid?: number;
  healthy: boolean;
  detail: string;
  ports: number[];
}

type Log = (line: string) => void;

function selected(config: SluiceConfig, names?: string[]): LocalService[] {
  const all = localServices(config);
  return names && names.length > 0 ? all.filter((s) => names.includes(s.name)) : all;
}

/**
 * Starts each local service unless it already runs, then waits until each is
 * healthy. Idempotent: a second call finds everything up and changes nothing.
 */
export async function stackUp(config: SluiceConfig, log: Log, names?: string[]): Promise<ServiceStatus[]> {
  const stackDir = resolve(config.stack.dir);
  const services = selected(config, names);
  ensureDebianPackages(Object.assign({}, ...services.map((s) => s.packages)), log);
  const timeoutMs = config.stack.startTimeoutSeconds * 1000;

  return Promise.all(
    services.map(async (service): Promise<ServiceStatus> => {
      const paths = servicePaths(stackDir, service.name);
      const started = Date.now();
      let pid = runningPid(paths);
      if (pid === undefined) {
        for (const { port, setting } of service.ports) await assertPortFree(service.name, port, setting);
        service.prepare(log);
        pid = service.start(paths);
        log(`${service.name}: started (pid ${pid}), waiting until healthy`);
      }
      let detail = '';
      await waitHealthy(
        service.name,
        paths,
        pid,
        async () => {
          detail = await service.probe();
          return true;
        },
        timeoutMs,
      );
      log(`${service.name}: healthy in ${((Date.now() - started) / 1000).toFixed(1)}s: ${detail}`);
      return { name: service.name, pid, healthy: true, detail, ports: service.ports.map((p) => p.port) };
    }),
  );
}

export async function stackDown(config: SluiceConfig, log: Log, names?: string[]): Promise<void> {
  const stackDir = resolve(config.stack.dir);
  // Reverse order of dependence does not matter for these three; stop them together.
  await Promise.all(
    selected(config, names).map(async (service) => {
      const stopped = await stopProcess(servicePaths(stackDir, service.name));
      log(`${service.name}: ${stopped ? 'stopped' : 'not running'}`);
    }),
  );
}

export async function stackStatus(config: SluiceConfig, names?: string[]): Promise<ServiceStatus[]> {
  const stackDir = resolve(config.stack.dir);
  return Promise.all(
    selected(config, names).map(async (service) => {
      const pid = runningPid(servicePaths(stackDir, service.name));
      const ports = service.ports.map((p) => p.port);
      if (pid === undefined) return { name: service.name, healthy: false, detail: 'not running', ports };
      try {
        return { name: service.name, pid, healthy: true, detail: await service.probe(), ports };
      } catch (err) {
        return {
          name: service.name,
          pid,
          healthy: false,
          detail: `running but not healthy: ${describeError(err)}`,
          ports,
        };
      }
    }),
  );
}

/** The last `lines` lines of each service's log. */
export function stackLogs(
  config: SluiceConfig,
  lines: number,
  names?: string[],
): { name: string; file: string; text: string }[] {
  const stackDir = resolve(config.stack.dir);
  return selected(config, names).map((service) => {
    const { logFile } = servicePaths(stackDir, service.name);
    const text = existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .slice(-lines - 1)
          .join('\n')
      : '(no log yet)';
    return { name: service.name, file: logFile, text };
  });
}
