export {
  deleteStreamFootprint,
  findStreamFootprint,
  formatFootprint,
  isCompanionOf,
  streamKeyPatterns,
  type StreamFootprint,
} from './delete-stream';
