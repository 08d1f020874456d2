/**
 * Schemas: the Avro files in avro/, the codec every producer and processor
 * uses (Confluent wire format through a schema registry), compatibility
 * rules, and the embedded registry itself.
 */
export {
  SchemaCodec,
  DecodeError,
  EncodeError,
  MAGIC_BYTE,
  WIRE_HEADER_BYTES,
  type Decoded,
  type DecodeOptions,
  type DecodeErrorCode,
} from './codec';
export {
  loadAvroSchema,
  parseAvroType,
  canonicalSchemaText,
  SchemaInvalidError,
  AVRO_DIR,
  type AvroSchemaJson,
} from './avro';
export { RegistryClient, RegistryError, REGISTRY_CONTENT_TYPE, type SubjectVersion } from './client';
export {
  checkCompatibility,
  readIncompatibility,
  isCompatibilityLevel,
  COMPATIBILITY_LEVELS,
  DEFAULT_COMPATIBILITY,
  type CompatibilityLevel,
  type CompatibilityResult,
} from './compatibility';
export { startRegistry, startMemoryRegistry, DEFAULT_SCHEMAS_TOPIC, type RunningRegistry } from './registry';
export {
  loadCatalog,
  checkCatalog,
  SUBJECTS_FILE,
  type SchemaFamily,
  type SchemaVersionFile,
  type FamilyCheck,
} from './catalog';
export { registerSchemas, formatRegistration, type FamilyRegistration, type RegisterSchemasOptions } from './register';
