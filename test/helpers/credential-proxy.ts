import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy on loopback in front of the local ClickHouse that accepts
 * other credentials than the stack's fixed sluice/sluice: requests with the
 * given user and password are forwarded with the real ones, others are
 * refused as ClickHouse refuses a wrong password. So a test can run with a
 * ClickHouse password of its own choosing that is really checked.
 */
export interface CredentialProxy {
  url: string;
  /** Requests that presented the accepted credentials (proof they were used). */
  authenticated(): number;
  close(): Promise<void>;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export async function startCredentialProxy(
  upstream: { url: string; username: string; password: string },
  accepted: { username: string; password: string },
): Promise<CredentialProxy> {
  const target = new URL(upstream.url);
  let authenticated = 0;
  const server: Server = createServer((req, res) => {
    if (req.headers.authorization !== basic(accepted.username, accepted.password)) {
      req.resume();
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(
        `Code: 516. DB::Exception: ${accepted.username}: Authentication failed: password is incorrect, or there is no user with such name.\n`,
      );
      return;
    }
    authenticated += 1;
    const forwarded = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host, authorization: basic(upstream.username, upstream.password) },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    authenticated: () => authenticated,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
