export { relativeError } from './compare';
export type { DependencyWalk } from './dependencies';
export { TFJS_NAMES, walkDependencies } from './dependencies';
export { fixturePath, hasSharedData, repoRoot, sharedDataPath } from './paths';
