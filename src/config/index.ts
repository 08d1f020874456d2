export { loadConfig, redactConfig, redactedUrl, readSettingFile, settingName, ENV_SETTINGS } from './load';
export { identifier, type SluiceConfig, type StackConfig } from './schema';
