import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { makeCertificates, type TestCertificates } from '../../../test/helpers/certs';
import { loadConfig } from '../../config';
import { clickHouseTlsOptions, createClickHouse, explainClickHouseError } from './client';

/** An in-process HTTPS server answering ClickHouse's /ping, recording the client certificate of each request. */
describe('ClickHouse client TLS options', () => {
  let certs: TestCertificates;
  let server: Server;
  let url: string;
  const clients: string[] = [];
  beforeAll(async () => {
    certs = makeCertificates();
    server = createServer(
      {
        cert: readFileSync(certs.serverCertFile),
        key: readFileSync(certs.serverKeyFile),
        ca: readFileSync(certs.caFile),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
        clients.push(typeof peer?.subject?.CN === 'string' ? peer.subject.CN : '');
        res.end('Ok.\n');
      },
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  it('gives the CA only, or CA, certificate and key, and nothing for http://', () => {
    expect(clickHouseTlsOptions(loadConfig({}).clickhouse)).toBeUndefined();
    const basic = clickHouseTlsOptions(
      loadConfig({ SLUICE_CLICKHOUSE_URL: url, SLUICE_CLICKHOUSE_TLS_CA_FILE: certs.caFile }).clickhouse,
    );
    expect(Object.keys(basic ?? {})).toEqual(['ca_cert']);
  });

  it('a client built by createClickHouse trusts the configured CA and presents the client certificate', async () => {
    const config = loadConfig({
      SLUICE_CLICKHOUSE_URL: url,
      SLUICE_CLICKHOUSE_TLS_CA_FILE: certs.caFile,
      SLUICE_CLICKHOUSE_TLS_CERT_FILE: certs.clientCertFile,
      SLUICE_CLICKHOUSE_TLS_KEY_FILE: certs.clientKeyFile,
    });
    const client = createClickHouse(config.clickhouse);
    expect((await client.ping()).success).toBe(true);
    await client.close();
    expect(clients.at(-1)).toBe('sluice-client');
  });

  it('an untrusted server certificate fails in one line naming clickhouse.tls.caFile', async () => {
    const config = loadConfig({ SLUICE_CLICKHOUSE_URL: url, SLUICE_CLICKHOUSE_TLS_CA_FILE: certs.otherCaFile });
    const client = createClickHouse(config.clickhouse);
    const failure = await client.query({ query: 'SELECT 1' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    await client.close();
    expect(explainClickHouseError(config.clickhouse, failure).message).toMatch(
      new RegExp(
        `^ClickHouse at ${url}: TLS handshake failed \\(.*certificate.*\\): check clickhouse\\.tls\\.caFile \\(SLUICE_CLICKHOUSE_TLS_CA_FILE\\)$`,
      ),
    );
  });
});
