/**
 * A registry answer in Confluent's error shape: HTTP status plus
 * `{error_code, message}`. The codes are Confluent's, so existing clients
 * (and people who know them) read them unchanged.
 */
export class RegistryHttpError extends Error {
  readonly status: number;
  readonly errorCode: number;
  constructor(status: number, errorCode: number, message: string) {
    super(message);
    this.name = 'RegistryHttpError';
    this.status = status;
    this.errorCode = errorCode;
  }
}

export const subjectNotFound = (subject: string) =>
  new RegistryHttpError(404, 40401, `Subject '${subject}' not found.`);
export const versionNotFound = (subject: string, version: number | string) =>
  new RegistryHttpError(404, 40402, `Version ${version} not found for subject '${subject}'.`);
export const schemaNotFound = (detail = 'Schema not found') => new RegistryHttpError(404, 40403, detail);
export const subjectNotSoftDeleted = (subject: string) =>
  new RegistryHttpError(404, 40405, `Subject '${subject}' was not deleted first before being permanently deleted`);
export const versionNotSoftDeleted = (subject: string, version: number) =>
  new RegistryHttpError(
    404,
    40407,
    `Subject '${subject}' Version ${version} was not deleted first before being permanently deleted`,
  );
export const subjectLevelNotConfigured = (subject: string) =>
  new RegistryHttpError(404, 40408, `Subject '${subject}' does not have subject-level compatibility configured`);
export const incompatibleSchema = (subject: string, details: string[]) =>
  new RegistryHttpError(
    409,
    409,
    `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: ${details.join('; ')}`,
  );
export const invalidSchema = (detail: string) => new RegistryHttpError(422, 42201, `Invalid schema: ${detail}`);
export const invalidVersion = (version: string) =>
  new RegistryHttpError(
    422,
    42202,
    `The specified version '${version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
  );
export const invalidCompatibility = (level: unknown) =>
  new RegistryHttpError(
    422,
    42203,
    `Invalid compatibility level ${JSON.stringify(level)}. Valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE`,
  );
export const storeError = (detail: string) =>
  new RegistryHttpError(500, 50001, `Error in the backend data store: ${detail}`);
