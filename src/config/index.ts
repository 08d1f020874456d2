export { loadConfig, redactConfig, ENV_SETTINGS } from './load';
export { identifier, type SluiceConfig, type StackConfig } from './schema';
