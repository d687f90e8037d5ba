export { fixturePath, hasSharedData, repoRoot, sharedDataPath } from './paths';
