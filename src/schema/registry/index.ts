export {
  startRegistry,
  startMemoryRegistry,
  MemoryRegistryLog,
  registryApp,
  type RegistryOptions,
  type RunningRegistry,
} from './server';
export { DEFAULT_SCHEMAS_TOPIC } from './log';
export { RegistryState } from './store';
export { RegistryService } from './service';
