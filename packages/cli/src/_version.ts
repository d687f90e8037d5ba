import packageJson from '../package.json';

/** This package's version, inlined from package.json at build time. */
export const VERSION: string = packageJson.version;
