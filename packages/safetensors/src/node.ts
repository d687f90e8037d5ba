export type { SafetensorsDirReader, SafetensorsReader } from './fs';
export { openSafetensors, openSafetensorsDir, writeSafetensors } from './fs';
