import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TensorEntry, TensorInput } from '@qlora/safetensors';
import { openSafetensors, writeSafetensors } from '@qlora/safetensors/node';
import { TrainerError } from '../errors';
import type { OptimizerState, StateTensor } from '../optim/types';
import { hashFile, syncDirectory, writeFileSynced } from './_fs';
import type { RngState } from './prng';

/**
 * A JSON value (what `JSON.stringify` writes and `JSON.parse` gives back unchanged).
 *
 * @example
 * ```ts
 * const position: JsonValue = { epoch: 0, index: 480 };
 * ```
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * Everything a run needs to resume bit-identically from an optimizer step.
 *
 * @example
 * ```ts
 * const data: CheckpointData = {
 *   step: 20,
 *   adapter: { 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { dtype: 'F32', shape: [16, 2048], data } },
 *   optimizer: optimizer.stateDict(),
 *   rng: { data: dataRng.state() },
 *   dataPosition: { epoch: 0, index: 160 },
 *   config: { lr: 2e-4, r: 16 },
 * };
 * ```
 */
export interface CheckpointData {
  /** Optimizer steps done. */
  step: number;
  /** Adapter tensors (PEFT names), written as `adapter_model.safetensors`. */
  adapter: Readonly<Record<string, TensorInput>>;
  /** `__metadata__` of the adapter file (default `{ format: 'pt' }`). */
  adapterMetadata?: Readonly<Record<string, string>>;
  /** The optimizer's state dict. */
  optimizer: OptimizerState;
  /** Named RNG streams (e.g. data order, dropout). */
  rng: Readonly<Record<string, RngState>>;
  /** Where the data loader stands (epoch, index in the epoch order, …). */
  dataPosition: JsonValue;
  /** The run configuration, stored for inspection and for checking a resume. */
  config: JsonValue;
}

/**
 * `manifest.json` of a checkpoint, written last: its presence and every file's size and sha256
 * mark the checkpoint complete.
 *
 * @example
 * ```ts
 * const manifest: CheckpointManifest = { format: 'qlora-ts-checkpoint/1', step: 20, files: { 'rng_state.json': { bytes: 61, sha256: '…' } } };
 * ```
 */
export interface CheckpointManifest {
  format: typeof MANIFEST_FORMAT;
  step: number;
  files: Record<string, { bytes: number; sha256: string }>;
}

/**
 * A checkpoint read back by {@link loadCheckpoint}.
 *
 * @example
 * ```ts
 * const { step, optimizer, rng } = await loadCheckpoint(found.path);
 * ```
 */
export interface LoadedCheckpoint {
  path: string;
  step: number;
  adapter: Record<string, TensorEntry>;
  adapterMetadata: Record<string, string> | undefined;
  optimizer: OptimizerState;
  rng: Record<string, RngState>;
  dataPosition: JsonValue;
  config: JsonValue;
  manifest: CheckpointManifest;
}

/**
 * Where {@link writeCheckpoint} is; a throwing callback stops the write there exactly as a
 * crash would (for tests and for fault injection).
 *
 * @example
 * ```ts
 * const phase: CheckpointPhase = 'files-written';
 * ```
 */
export type CheckpointPhase = 'files-written' | 'manifest-written' | 'renamed' | 'pointer-written';

/**
 * Options of {@link writeCheckpoint}.
 *
 * @example
 * ```ts
 * const options: WriteCheckpointOptions = { keepLast: 3 };
 * ```
 */
export interface WriteCheckpointOptions {
  /** Keep only the newest K complete checkpoints (default: keep all). */
  keepLast?: number;
  /** Called after each phase; throwing aborts the write as a crash would. */
  onPhase?: (phase: CheckpointPhase) => void | Promise<void>;
}

const MANIFEST_FORMAT = 'qlora-ts-checkpoint/1';
const MANIFEST = 'manifest.json';
const ADAPTER_FILE = 'adapter_model.safetensors';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const RNG_FILE = 'rng_state.json';
const TRAINER_STATE_FILE = 'trainer_state.json';
const CONFIG_FILE = 'run_config.json';
const LATEST = 'latest';
const CHECKPOINT_DIR = /^checkpoint-(\d+)$/;
const LEFTOVER_DIR = /^checkpoint-\d+\.(tmp|old)-\d+$/;

/**
 * Writes `checkpoint-<step>/` into `runDir` so that a crash at any moment leaves either the
 * previous checkpoints intact or the new one complete: files go to `checkpoint-<step>.tmp-<pid>/`
 * (each fsynced), `manifest.json` with every file's size and sha256 is written last, the
 * directory is fsynced and renamed to `checkpoint-<step>`, the run directory fsynced, and the
 * `latest` pointer replaced by temp file + rename. Then only the newest `keepLast` complete
 * checkpoints are kept. Leftover temp directories of earlier crashes are removed first (one
 * writer per run directory). Returns the checkpoint's path.
 *
 * Files: `adapter_model.safetensors`, `optimizer.safetensors` (state tensors; metadata: kind and
 * steps), `rng_state.json`, `trainer_state.json` (step, data position), `run_config.json`,
 * `manifest.json`.
 *
 * @example
 * ```ts
 * const path = await writeCheckpoint('runs/alpaca', data, { keepLast: 2 });
 * // 'runs/alpaca/checkpoint-20'; runs/alpaca/latest reads 'checkpoint-20'
 * ```
 */
export async function writeCheckpoint(
  runDir: string,
  data: CheckpointData,
  options: WriteCheckpointOptions = {},
): Promise<string> {
  const { step } = data;
  if (!Number.isInteger(step) || step < 0) {
    throw new TrainerError(
      'E_CHECKPOINT',
      `Checkpoint step: expected an integer ≥ 0, got ${step}.`,
    );
  }
  if (
    options.keepLast !== undefined &&
    !(Number.isInteger(options.keepLast) && options.keepLast >= 1)
  ) {
    throw new TrainerError(
      'E_CHECKPOINT',
      `keepLast: expected an integer ≥ 1, got ${options.keepLast}.`,
    );
  }
  await mkdir(runDir, { recursive: true });
  await removeLeftovers(runDir);
  const name = `checkpoint-${step}`;
  const temp = join(runDir, `${name}.tmp-${process.pid}`);
  const final = join(runDir, name);
  await mkdir(temp);

  await writeSafetensors(
    join(temp, ADAPTER_FILE),
    data.adapter,
    data.adapterMetadata ?? { format: 'pt' },
  );
  await writeSafetensors(join(temp, OPTIMIZER_FILE), data.optimizer.tensors, {
    format: 'pt',
    kind: data.optimizer.kind,
    steps: JSON.stringify(data.optimizer.steps),
  });
  await writeFileSynced(join(temp, RNG_FILE), `${JSON.stringify(data.rng)}\n`);
  await writeFileSynced(
    join(temp, TRAINER_STATE_FILE),
    `${JSON.stringify({ step, data_position: data.dataPosition })}\n`,
  );
  await writeFileSynced(join(temp, CONFIG_FILE), `${JSON.stringify(data.config, null, 2)}\n`);
  await options.onPhase?.('files-written');

  const files: CheckpointManifest['files'] = {};
  for (const file of [ADAPTER_FILE, OPTIMIZER_FILE, RNG_FILE, TRAINER_STATE_FILE, CONFIG_FILE]) {
    files[file] = await hashFile(join(temp, file));
  }
  const manifest: CheckpointManifest = { format: MANIFEST_FORMAT, step, files };
  await writeFileSynced(join(temp, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  await syncDirectory(temp);
  await options.onPhase?.('manifest-written');

  // Re-writing a step (after a resume) replaces the old directory; a crash in between leaves
  // only the .old directory, which readers skip, and the previous checkpoints.
  const old = join(runDir, `${name}.old-${process.pid}`);
  const replaced = await exists(final);
  if (replaced) await rename(final, old);
  await rename(temp, final);
  await syncDirectory(runDir);
  if (replaced) await rm(old, { recursive: true, force: true });
  await options.onPhase?.('renamed');

  const pointerTemp = join(runDir, `${LATEST}.tmp-${process.pid}`);
  await rm(pointerTemp, { force: true });
  await writeFileSynced(pointerTemp, `${name}\n`);
  await rename(pointerTemp, join(runDir, LATEST));
  await syncDirectory(runDir);
  await options.onPhase?.('pointer-written');

  if (options.keepLast !== undefined) await pruneCheckpoints(runDir, options.keepLast);
  return final;
}

/**
 * Checks a checkpoint directory against its `manifest.json` (format, step, and the size and
 * sha256 of every listed file) and returns the manifest; throws `E_CHECKPOINT` saying what is
 * wrong otherwise.
 *
 * @example
 * ```ts
 * const manifest = await verifyCheckpoint('runs/alpaca/checkpoint-20');
 * manifest.step; // 20
 * ```
 */
export async function verifyCheckpoint(path: string): Promise<CheckpointManifest> {
  const bad = (what: string, got: string, cause?: unknown): never => {
    throw new TrainerError(
      'E_CHECKPOINT',
      `Checkpoint ${path} is incomplete or corrupt: expected ${what}, got ${got}. An earlier checkpoint will be used.`,
      { cause },
    );
  };
  let text: string;
  try {
    text = await readFile(join(path, MANIFEST), 'utf8');
  } catch (cause) {
    return bad(MANIFEST, 'no readable file', cause);
  }
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(text);
  } catch (cause) {
    return bad(`${MANIFEST} to be JSON`, `${text.length} bytes that do not parse`, cause);
  }
  if (manifest === null || typeof manifest !== 'object' || manifest.format !== MANIFEST_FORMAT) {
    return bad(
      `format ${MANIFEST_FORMAT}`,
      JSON.stringify((manifest as { format?: unknown })?.format),
    );
  }
  const dirStep = CHECKPOINT_DIR.exec(path.split(/[\\/]/).pop() ?? '')?.[1];
  if (
    !Number.isInteger(manifest.step) ||
    (dirStep !== undefined && Number(dirStep) !== manifest.step)
  ) {
    return bad(`step ${dirStep ?? 'an integer'}`, String(manifest.step));
  }
  const files = manifest.files ?? {};
  for (const required of [
    ADAPTER_FILE,
    OPTIMIZER_FILE,
    RNG_FILE,
    TRAINER_STATE_FILE,
    CONFIG_FILE,
  ]) {
    if (files[required] === undefined) return bad(`${required} in the manifest`, 'no entry');
  }
  for (const [file, expected] of Object.entries(files)) {
    if (file.includes('/') || file.includes('\\') || file === '..')
      return bad('plain file names', file);
    let actual: { sha256: string; bytes: number };
    try {
      actual = await hashFile(join(path, file));
    } catch (cause) {
      return bad(`${file}`, 'no readable file', cause);
    }
    if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
      return bad(
        `${file} of ${expected.bytes} bytes, sha256 ${expected.sha256.slice(0, 12)}…`,
        `${actual.bytes} bytes, sha256 ${actual.sha256.slice(0, 12)}…`,
      );
    }
  }
  return manifest;
}

/**
 * A complete checkpoint found by {@link findLatestCheckpoint}.
 *
 * @example
 * ```ts
 * const found: FoundCheckpoint = { path: 'runs/a/checkpoint-20', step: 20, manifest };
 * ```
 */
export interface FoundCheckpoint {
  path: string;
  step: number;
  manifest: CheckpointManifest;
}

/**
 * The newest complete checkpoint of a run directory, or `undefined`: scans `checkpoint-<n>`
 * directories from the highest step down, ignores temp (`.tmp-<pid>`) and `.old-<pid>` leftovers,
 * and returns the first that {@link verifyCheckpoint} accepts. Rejected ones are reported through
 * `onRejected` (the `latest` pointer is for people and tools; integrity decides).
 *
 * @example
 * ```ts
 * const found = await findLatestCheckpoint('runs/alpaca', {
 *   onRejected: (path, reason) => log.warn(`skipping ${path}: ${reason}`),
 * });
 * if (found) console.log(`resuming at step ${found.step}`);
 * ```
 */
export async function findLatestCheckpoint(
  runDir: string,
  options: { onRejected?: (path: string, reason: string) => void } = {},
): Promise<FoundCheckpoint | undefined> {
  for (const { path, step } of await listCheckpointDirs(runDir)) {
    try {
      const manifest = await verifyCheckpoint(path);
      return { path, step, manifest };
    } catch (error) {
      if (!(error instanceof TrainerError)) throw error;
      options.onRejected?.(path, error.message);
    }
  }
  return undefined;
}

/**
 * Verifies and reads a checkpoint written by {@link writeCheckpoint}.
 *
 * @example
 * ```ts
 * const ckpt = await loadCheckpoint('runs/alpaca/checkpoint-20');
 * optimizer.loadStateDict(ckpt.optimizer);
 * const rng = Rng.fromState(ckpt.rng.data);
 * ```
 */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const manifest = await verifyCheckpoint(path);
  const adapterFile = await openSafetensors(join(path, ADAPTER_FILE));
  const adapter: Record<string, TensorEntry> = {};
  let adapterMetadata: Record<string, string> | undefined;
  try {
    for (const name of adapterFile.names) adapter[name] = await adapterFile.read(name);
    adapterMetadata = adapterFile.metadata;
  } finally {
    await adapterFile.close();
  }
  const optimizerFile = await openSafetensors(join(path, OPTIMIZER_FILE));
  const tensors: Record<string, StateTensor> = {};
  let kind: string | undefined;
  let steps: Record<string, number>;
  try {
    for (const name of optimizerFile.names) {
      const entry = await optimizerFile.read(name);
      if (entry.dtype === 'F32')
        tensors[name] = { dtype: 'F32', shape: entry.shape, data: entry.data as Float32Array };
      else if (entry.dtype === 'U8')
        tensors[name] = { dtype: 'U8', shape: entry.shape, data: entry.data as Uint8Array };
      else {
        throw new TrainerError(
          'E_CHECKPOINT',
          `Optimizer tensor ${name} in ${path}: expected F32 or U8, got ${entry.dtype}.`,
        );
      }
    }
    kind = optimizerFile.metadata?.kind;
    steps = JSON.parse(optimizerFile.metadata?.steps ?? '{}');
  } finally {
    await optimizerFile.close();
  }
  if (kind !== 'adamw' && kind !== 'adamw8bit') {
    throw new TrainerError(
      'E_CHECKPOINT',
      `Optimizer kind in ${path}: expected adamw or adamw8bit, got ${kind}.`,
    );
  }
  const trainerState = JSON.parse(await readFile(join(path, TRAINER_STATE_FILE), 'utf8')) as {
    step: number;
    data_position: JsonValue;
  };
  return {
    path,
    step: manifest.step,
    adapter,
    adapterMetadata,
    optimizer: { kind, steps, tensors },
    rng: JSON.parse(await readFile(join(path, RNG_FILE), 'utf8')),
    dataPosition: trainerState.data_position,
    config: JSON.parse(await readFile(join(path, CONFIG_FILE), 'utf8')),
    manifest,
  };
}

/**
 * Deletes all but the newest `keepLast` complete checkpoints (by step) of a run directory, and
 * crash leftovers; returns the removed paths. Incomplete `checkpoint-<n>` directories newer than
 * the kept ones are removed too (they can never be resumed from).
 *
 * @example
 * ```ts
 * await pruneCheckpoints('runs/alpaca', 2); // ['runs/alpaca/checkpoint-10']
 * ```
 */
export async function pruneCheckpoints(runDir: string, keepLast: number): Promise<string[]> {
  const removed: string[] = [];
  let kept = 0;
  for (const { path } of await listCheckpointDirs(runDir)) {
    let complete = true;
    if (kept < keepLast) {
      try {
        await verifyCheckpoint(path);
      } catch (error) {
        if (!(error instanceof TrainerError)) throw error;
        complete = false;
      }
      if (complete) {
        kept++;
        continue;
      }
    }
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  removed.push(...(await removeLeftovers(runDir)));
  return removed;
}

async function listCheckpointDirs(runDir: string): Promise<{ path: string; step: number }[]> {
  let entries: string[];
  try {
    entries = await readdir(runDir);
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .map((entry) => ({ entry, match: CHECKPOINT_DIR.exec(entry) }))
    .filter((e): e is { entry: string; match: RegExpExecArray } => e.match !== null)
    .map(({ entry, match }) => ({ path: join(runDir, entry), step: Number(match[1]) }))
    .sort((a, b) => b.step - a.step);
}

async function removeLeftovers(runDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(runDir)) {
    if (LEFTOVER_DIR.test(entry) || /^latest\.tmp-\d+$/.test(entry)) {
      const path = join(runDir, entry);
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    }
  }
  return removed;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
