import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { sleep } from '../../src/clock';

/**
 * A TCP proxy on loopback that can hold back everything the upstream sends
 * (e.g. ClickHouse's HTTP responses) by a settable delay: a slow sink, made
 * slow below the client library, so nothing in Sluice knows it is a test.
 * Requests pass at once; each response chunk is forwarded `delayMs` after it
 * arrived, in order (a delay lowered mid-stream never lets a chunk overtake).
 */
export interface SlowProxy {
  /** The proxy's port on 127.0.0.1. */
  port: number;
  /** Takes effect for chunks arriving from now on. */
  setDelay(ms: number): void;
  /** Response chunks forwarded so far (a liveness figure for reports). */
  forwardedChunks(): number;
  close(): Promise<void>;
}

export async function startSlowProxy(upstream: { host: string; port: number }, initialDelayMs = 0): Promise<SlowProxy> {
  let delayMs = initialDelayMs;
  let forwarded = 0;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // either side closing is the other side's business, handled by 'close'
  };

  const server: Server = createServer((client) => {
    const target = createConnection(upstream);
    track(client);
    track(target);
    client.pipe(target);
    // Each chunk waits for its own due time and for the chunk before it.
    let previous = Promise.resolve();
    target.on('data', (chunk: Buffer) => {
      const due = Date.now() + delayMs;
      previous = previous.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        if (!client.destroyed) {
          client.write(chunk);
          forwarded += 1;
        }
      });
    });
    target.on('close', () => void previous.then(() => client.end()));
    client.on('close', () => target.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });

  return {
    port: (server.address() as { port: number }).port,
    setDelay(ms) {
      delayMs = ms;
    },
    forwardedChunks: () => forwarded,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
