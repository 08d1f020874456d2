import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM files for TLS tests, made with openssl in a temp dir: a CA, a server and a client certificate it signed, and an unrelated CA. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  /** Server certificate for 127.0.0.1 / localhost, and its key (unencrypted PKCS#8). */
  serverCertFile: string;
  serverKeyFile: string;
  /** Key followed by certificate: what Kafka's PEM keystore reads. */
  serverKeystoreFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** A CA that signed nothing here: trusting it must fail the handshake. */
  otherCaFile: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function selfSignedCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
}

function signed(dir: string, name: string, subject: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`);
  openssl(dir, [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-certs-'));
  selfSignedCa(dir, 'ca');
  selfSignedCa(dir, 'other-ca');
  signed(dir, 'server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  signed(dir, 'client', '/CN=sluice-client', 'extendedKeyUsage=clientAuth');
  const file = (name: string) => join(dir, name);
  writeFileSync(
    file('server-keystore.pem'),
    readFileSync(file('server.key'), 'utf8') + readFileSync(file('server.pem'), 'utf8'),
  );
  return {
    dir,
    caFile: file('ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    serverKeystoreFile: file('server-keystore.pem'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    otherCaFile: file('other-ca.pem'),
  };
}

/** An in-process TLS server on loopback that records who completed a handshake, then closes the connection. */
export interface HandshakeRecorder {
  port: number;
  /** The CN of each client certificate presented in a completed handshake ('' when none). */
  handshakes: string[];
  close(): Promise<void>;
}

export async function recordHandshakes(
  certs: TestCertificates,
  options: { requireClientCert?: boolean } = {},
): Promise<HandshakeRecorder> {
  const handshakes: string[] = [];
  const server = createTlsServer(
    {
      cert: readFileSync(certs.serverCertFile),
      key: readFileSync(certs.serverKeyFile),
      ca: readFileSync(certs.caFile),
      requestCert: options.requireClientCert ?? false,
      rejectUnauthorized: options.requireClientCert ?? false,
    },
    (socket: TLSSocket) => {
      const peer = socket.getPeerCertificate();
      handshakes.push(typeof peer?.subject?.CN === 'string' ? peer.subject.CN : '');
      socket.destroy();
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    handshakes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** For a describe block: certificates now, and a recorder demanding a client certificate while its tests run. */
export function useHandshakeRecorder(): { certs: TestCertificates; server: () => HandshakeRecorder } {
  const certs = makeCertificates();
  let server: HandshakeRecorder | undefined;
  beforeAll(async () => {
    server = await recordHandshakes(certs, { requireClientCert: true });
  });
  afterAll(async () => server?.close());
  return { certs, server: () => server! };
}
