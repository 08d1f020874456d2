import type { ConnectionOptions } from 'node:tls';
import { readSettingFile, type SluiceConfig } from '../config';

/** The TLS options of `kafka.ssl`, certificate files read; undefined when TLS is off. Both clients take them as they are. */
export function kafkaTlsOptions(kafka: Pick<SluiceConfig['kafka'], 'ssl'>): ConnectionOptions | undefined {
  const { ssl } = kafka;
  if (!ssl?.enabled) return undefined;
  const tls: ConnectionOptions = { rejectUnauthorized: ssl.rejectUnauthorized };
  if (ssl.caFile) tls.ca = [readSettingFile(ssl.caFile, 'kafka.ssl.caFile')];
  if (ssl.certFile) tls.cert = readSettingFile(ssl.certFile, 'kafka.ssl.certFile');
  if (ssl.keyFile) tls.key = readSettingFile(ssl.keyFile, 'kafka.ssl.keyFile');
  return tls;
}
