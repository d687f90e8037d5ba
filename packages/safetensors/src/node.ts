export type { SafetensorsDirReader, SafetensorsReader } from './fs';
export { openSafetensors, openSafetensorsDir, writeFileAtomic, writeSafetensors } from './fs';
