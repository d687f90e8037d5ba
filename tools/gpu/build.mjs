// Builds .carry/gpu/: the Node benchmark bundle for the GPU host and the runtime packages it loads
// by name (tfjs-core, the webgpu and cpu backends, the `webgpu` Dawn binding for linux-x64); the
// fixtures travel with the working tree (test-fixtures/trainer). The host has no Node and no
// registry, so everything travels; dawn.node (21 MB) travels xz-compressed and run-on-gpu.sh
// unpacks it, which keeps tree + .gpu + .carry/gpu well under the 64 MiB a call may carry.
// Usage (repo root): node tools/gpu/build.mjs   → prints the sizes; carry ['.gpu', '.carry/gpu'].
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, '.carry', 'gpu');
const trainer = join(root, 'packages', 'trainer');
// esbuild is not a root dependency; tsup brings it.
const requireFromTsup = createRequire(createRequire(join(root, 'package.json')).resolve('tsup'));
const esbuild = requireFromTsup('esbuild');
const requireFromTrainer = createRequire(join(trainer, 'package.json'));
const packageDir = (name, from = requireFromTrainer) =>
  dirname(from.resolve(`${name}/package.json`));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// Everything tfjs stays external: the backends register into the tfjs-core instance they
// require(), and backend.ts imports the webgpu backend by a runtime name, so one copy of
// tfjs-core must be resolvable beside the bundle for both.
await esbuild.build({
  entryPoints: [join(root, 'tools', 'gpu', 'gpu-bench.ts')],
  outfile: join(out, 'bundle.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['@qlora/source'],
  external: ['@tensorflow/*', 'webgpu'],
  logLevel: 'warning',
  // bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
});

const modules = join(out, 'node_modules');
function copyPackage(name, files, from) {
  const src = packageDir(name, from);
  for (const file of ['package.json', ...files]) {
    const target = join(modules, name, file);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(src, file), target, { recursive: true, dereference: true });
  }
  return src;
}
copyPackage('@tensorflow/tfjs-core', ['dist/tf-core.node.js']);
copyPackage('@tensorflow/tfjs-backend-webgpu', ['dist/tf-backend-webgpu.node.js']);
const cpu = copyPackage('@tensorflow/tfjs-backend-cpu', ['dist/tf-backend-cpu.node.js']);
copyPackage(
  'seedrandom',
  ['index.js', 'lib', 'seedrandom.js'],
  createRequire(join(cpu, 'package.json')),
);
const webgpu = copyPackage('webgpu', ['index.js']);
const dawn = join(modules, 'webgpu', 'dist', 'linux-x64');
mkdirSync(dawn, { recursive: true });
execFileSync('sh', [
  '-c',
  `xz -T0 -6 -c '${join(webgpu, 'dist', 'linux-x64', 'dawn.node')}' > '${join(dawn, 'dawn.node.xz')}'`,
]);

// Data of the hellaswag stage (from ../shared/data; never committed): lm-eval's preprocessed
// validation set and a tokenizer for the random 1B model (TinyLlama's, whose ids fit its vocab).
const shared = join(root, '..', 'shared', 'data');
const data = join(out, 'data');
mkdirSync(data, { recursive: true });
execFileSync('sh', [
  '-c',
  `xz -T0 -6 -c '${join(shared, 'hellaswag', 'hellaswag_val_preprocessed.jsonl')}' > '${join(data, 'hellaswag_val_preprocessed.jsonl.xz')}'`,
]);
for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
  cpSync(join(shared, 'tokenizers', 'tinyllama', file), join(data, file));

// The pretrained model of the w8a8-accuracy stage: stories260K, converted by our own CLI.
execFileSync(
  'pnpm',
  [
    '--silent',
    'qlora',
    'convert',
    'llama2c',
    join(shared, 'models', 'stories260K', 'stories260K.bin'),
    join(shared, 'models', 'stories260K', 'tok512.bin'),
    join(out, 'stories260k'),
  ],
  { cwd: root, stdio: 'inherit' },
);

function size(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((sum, entry) => sum + size(join(path, entry)), 0);
}
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
for (const entry of readdirSync(out))
  console.log(`build: ${relative(root, join(out, entry))} ${mib(size(join(out, entry)))}`);
const gpuKit = join(root, '.gpu');
let total = size(out);
try {
  total += size(gpuKit);
  console.log(`build: .gpu ${mib(size(gpuKit))}`);
} catch {
  console.log('build: .gpu missing: run bash ../shared/tools/gpu-kit.sh');
}
console.log(`build: carried in all ${mib(total)} (plus the working tree)`);
