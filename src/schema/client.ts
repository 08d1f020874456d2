import { ServiceError, SluiceError } from '../errors';

export const REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/**
 * The registry answered with a Confluent error (`{error_code, message}`):
 * a request that will fail the same way again (unknown subject, incompatible
 * schema, ...). `errorCode` is Confluent's code, e.g. 40401 or 409.
 */
export class RegistryError extends SluiceError {
  readonly status: number;
  readonly errorCode: number;
  constructor(status: number, errorCode: number, message: string) {
    super('REGISTRY_REJECTED', message);
    this.name = 'RegistryError';
    this.status = status;
    this.errorCode = errorCode;
  }
}

const STALE_SOCKET = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

function causeCode(err: unknown): string {
  return (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
}

export interface SubjectVersion {
  subject: string;
  version: number;
  id: number;
  schema: string;
}

/**
 * A small client for the Confluent REST API over fetch: the few calls Sluice
 * makes, each mapped to RegistryError (the registry said no) or a retriable
 * ServiceError (it could not be reached or failed inside).
 */
export class RegistryClient {
  readonly url: string;
  private readonly timeoutMs: number;

  constructor(url: string, options: { timeoutMs?: number } = {}) {
    this.url = url.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  private send(method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`${this.url}${path}`, {
      method,
      headers:
        body === undefined
          ? { accept: REGISTRY_CONTENT_TYPE }
          : { accept: REGISTRY_CONTENT_TYPE, 'content-type': REGISTRY_CONTENT_TYPE },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      try {
        response = await this.send(method, path, body);
      } catch (err) {
        // A pooled keep-alive socket the server closed while idle fails the request before
        // it reached the server; every registry call is safe to send once more.
        if (!STALE_SOCKET.has(causeCode(err))) throw err;
        response = await this.send(method, path, body);
      }
    } catch (err) {
      const cause = causeCode(err);
      throw new ServiceError(
        'registry',
        `schema registry at ${this.url} is unreachable (${cause}): start it with \`sluice stack up\` or point SLUICE_REGISTRY_URL at a running one`,
        { retriable: true, cause: err },
      );
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (response.ok) return json as T;
    const error = (json ?? {}) as { error_code?: number; message?: string };
    const message = error.message ?? (text.slice(0, 200) || response.statusText);
    if (response.status >= 500) {
      throw new ServiceError(
        'registry',
        `schema registry at ${this.url} failed (HTTP ${response.status}): ${message}`,
        {
          retriable: true,
        },
      );
    }
    throw new RegistryError(
      response.status,
      error.error_code ?? response.status,
      `schema registry: ${message} (error ${error.error_code ?? response.status})`,
    );
  }

  async register(subject: string, schemaText: string): Promise<number> {
    const { id } = await this.request<{ id: number }>('POST', `/subjects/${encodeURIComponent(subject)}/versions`, {
      schema: schemaText,
    });
    return id;
  }

  version(subject: string, version: number | 'latest'): Promise<SubjectVersion> {
    return this.request<SubjectVersion>('GET', `/subjects/${encodeURIComponent(subject)}/versions/${version}`);
  }

  async schemaById(id: number): Promise<string> {
    const { schema } = await this.request<{ schema: string }>('GET', `/schemas/ids/${id}`);
    return schema;
  }

  subjects(): Promise<string[]> {
    return this.request<string[]>('GET', '/subjects');
  }

  versions(subject: string): Promise<number[]> {
    return this.request<number[]>('GET', `/subjects/${encodeURIComponent(subject)}/versions`);
  }

  async setCompatibility(subject: string, level: string): Promise<void> {
    await this.request('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
  }

  async compatibility(subject: string): Promise<string> {
    const { compatibilityLevel } = await this.request<{ compatibilityLevel: string }>(
      'GET',
      `/config/${encodeURIComponent(subject)}?defaultToGlobal=true`,
    );
    return compatibilityLevel;
  }
}
