import { constants } from 'node:fs';
import { access, type FileHandle, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import { parseHeader, readHeaderLength } from './_header';
import { didYouMean, quote } from './_messages';
import { viewOrCopy } from './_views';
import type { TensorEntry, TensorInfo } from './dtypes';
import { SafetensorsError } from './errors';
import { layoutSafetensors, type MetadataToWrite, type TensorsToWrite } from './serialize';

/**
 * A safetensors checkpoint opened for lazy reads: the header is in memory, tensor data is read
 * on demand. One interface for a single file ({@link openSafetensors}) and for a sharded
 * directory ({@link openSafetensorsDir}).
 *
 * @example
 * ```ts
 * const file: SafetensorsReader = await openSafetensors('model.safetensors');
 * for (const name of file.names) console.log(name, file.tensors[name]?.shape);
 * await file.close();
 * ```
 */
export interface SafetensorsReader {
  /** `__metadata__` of the file (of the first shard for a directory), or `undefined`. */
  readonly metadata: Record<string, string> | undefined;
  /** Tensor names in file order (shard by shard for a directory). */
  readonly names: readonly string[];
  /** Header entry per name: dtype, shape, byte offsets in its file's data buffer. */
  readonly tensors: Readonly<Record<string, TensorInfo>>;
  /** Whether `name` is in the checkpoint. */
  has(name: string): boolean;
  /**
   * Reads one tensor with positioned reads into a fresh, aligned buffer (never a view of a
   * larger one), so memory stays bounded by the largest tensor asked for.
   */
  read(name: string): Promise<TensorEntry>;
  /** Closes the file handle(s); later reads throw `IO`. Safe to call twice. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A reader over a checkpoint directory (see {@link openSafetensorsDir}), which also says which
 * shard holds which tensor.
 *
 * @example
 * ```ts
 * const model: SafetensorsDirReader = await openSafetensorsDir('Llama-3.2-1B');
 * model.shardOf('lm_head.weight'); // 'model.safetensors'
 * ```
 */
export interface SafetensorsDirReader extends SafetensorsReader {
  /** Shard file names (relative to the directory), sorted. */
  readonly shards: readonly string[];
  /** The index's `metadata` object (e.g. `{ total_size: 13472 }`), or `undefined` for one file. */
  readonly indexMetadata: Record<string, unknown> | undefined;
  /** The shard file holding `name`. */
  shardOf(name: string): string | undefined;
}

/**
 * Opens a safetensors file for lazy, bounded-memory reads: reads the 8-byte length and the
 * header only (after checking the length against 100 MB and the file size, so a hostile length
 * allocates nothing), validates the header like {@link parseSafetensors}, then reads each
 * tensor on demand with `FileHandle.read` at its offset. A 2.5 GB checkpoint thus loads tensor
 * by tensor. Close it when done (or `await using`).
 *
 * @example
 * ```ts
 * const file = await openSafetensors('Llama-3.2-1B/model.safetensors');
 * file.metadata; // { format: 'pt' }
 * const w = await file.read('model.embed_tokens.weight'); // { dtype: 'BF16', shape: [128256, 2048], … }
 * await file.close();
 * ```
 */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  const handle = await openHandle(path);
  try {
    const { size } = await handle.stat();
    const prefix = await readExactly(handle, path, 0, Math.min(8, size));
    const headerLength = readHeaderLength(prefix, size);
    const headerBytes = await readExactly(handle, path, 8, headerLength);
    const header = parseHeader(headerBytes, size);
    return new FileReader(
      path,
      handle,
      8 + headerLength,
      header.metadata,
      header.names,
      header.tensors,
    );
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

class FileReader implements SafetensorsReader {
  readonly tensors: Readonly<Record<string, TensorInfo>>;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
    private readonly dataStart: number,
    readonly metadata: Record<string, string> | undefined,
    readonly names: readonly string[],
    infos: Map<string, TensorInfo>,
  ) {
    const tensors: Record<string, TensorInfo> = Object.create(null);
    for (const [name, info] of infos) tensors[name] = info;
    this.tensors = tensors;
  }

  has(name: string): boolean {
    return Object.hasOwn(this.tensors, name);
  }

  async read(name: string): Promise<TensorEntry> {
    const info = this.has(name) ? this.tensors[name] : undefined;
    if (info === undefined) throw notFound(name, this.names, this.path);
    if (this.closed) {
      throw new SafetensorsError(
        'IO',
        'file-open',
        `Cannot read ${quote(name)}: ${this.path} is closed.`,
        {
          tensor: name,
        },
      );
    }
    const [begin, end] = info.dataOffsets;
    const bytes = await readExactly(this.handle, this.path, this.dataStart + begin, end - begin);
    return {
      dtype: info.dtype,
      shape: [...info.shape],
      data: viewOrCopy(info.dtype, bytes.buffer, bytes.byteOffset, bytes.byteLength),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const INDEX_FILE = 'model.safetensors.index.json';
/** One positioned read or write moves at most this much (fs refuses lengths ≥ 2 GiB). */
const MAX_IO_CHUNK = 1 << 30;
const SINGLE_FILE = 'model.safetensors';

/**
 * Opens a Hugging Face checkpoint directory as one lazy reader. With
 * `model.safetensors.index.json` (or `indexFile`), every shard of its `weight_map` is opened and
 * checked: each file exists inside the directory, each listed name is in the shard it is mapped
 * to, and each tensor of each shard is listed for that shard (no extra or missing names). Without
 * an index, `model.safetensors` is opened alone.
 *
 * @example
 * ```ts
 * const model = await openSafetensorsDir('TinyLlama-1.1B-Chat-v1.0');
 * model.shards; // ['model.safetensors']
 * const norm = await model.read('model.norm.weight');
 * await model.close();
 * ```
 */
export async function openSafetensorsDir(
  dir: string,
  options: { indexFile?: string } = {},
): Promise<SafetensorsDirReader> {
  const indexPath = join(dir, options.indexFile ?? INDEX_FILE);
  let indexText: string | undefined;
  try {
    indexText = await readFile(indexPath, 'utf8');
  } catch (cause) {
    if (options.indexFile !== undefined || (cause as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SafetensorsError(
        'IO',
        'index-readable',
        `Cannot read ${indexPath}: ${(cause as Error).message}.`,
        {
          cause,
        },
      );
    }
  }
  if (indexText === undefined) {
    const single = join(dir, SINGLE_FILE);
    try {
      await access(single, constants.R_OK);
    } catch (cause) {
      throw new SafetensorsError(
        'IO',
        'checkpoint-present',
        `No checkpoint in ${dir}: expected ${INDEX_FILE} or ${SINGLE_FILE}, found neither. ` +
          'Pickled .bin/.pt weights are not read; convert them to safetensors.',
        { cause },
      );
    }
    const reader = await openSafetensors(single);
    return new DirReader([SINGLE_FILE], [reader], undefined);
  }

  const { weightMap, metadata } = parseIndex(indexText, indexPath);
  // Sorted, so model-00001-of-… comes first whatever order weight_map lists names in.
  const shards = [...new Set(weightMap.values())].sort();
  const readers: SafetensorsReader[] = [];
  try {
    for (const shard of shards) {
      const shardPath = join(dir, shard);
      try {
        await access(shardPath, constants.R_OK);
      } catch (cause) {
        throw new SafetensorsError(
          'INVALID_INDEX',
          'index-files-exist',
          `Shard listed in ${INDEX_FILE} is missing: expected ${shardPath} to exist, got no file. ` +
            'Was the download interrupted?',
          { cause },
        );
      }
      readers.push(await openSafetensors(shardPath));
    }
    shards.forEach((shard, i) => {
      const reader = readers[i] as SafetensorsReader;
      for (const name of reader.names) {
        const mapped = weightMap.get(name);
        if (mapped !== shard) {
          throw new SafetensorsError(
            'INVALID_INDEX',
            'index-names-agree',
            `Tensor ${quote(name)} of ${shard} is not mapped to it in ${INDEX_FILE}: expected weight_map to say ${quote(shard)}, got ${mapped === undefined ? 'no entry' : quote(mapped)}.`,
            { tensor: name },
          );
        }
      }
    });
    for (const [name, shard] of weightMap) {
      const reader = readers[shards.indexOf(shard)] as SafetensorsReader;
      if (!reader.has(name)) {
        throw new SafetensorsError(
          'INVALID_INDEX',
          'index-names-agree',
          `Tensor ${quote(name)} is mapped to ${shard} in ${INDEX_FILE} but that shard does not hold it: expected the name in its header, got none.${didYouMean(name, reader.names)}`,
          { tensor: name },
        );
      }
    }
  } catch (error) {
    await Promise.all(readers.map((r) => r.close().catch(() => undefined)));
    throw error;
  }
  return new DirReader(shards, readers, metadata);
}

function parseIndex(
  text: string,
  path: string,
): { weightMap: Map<string, string>; metadata: Record<string, unknown> | undefined } {
  const bad = (what: string, got: string, cause?: unknown): never => {
    throw new SafetensorsError(
      'INVALID_INDEX',
      'index-format',
      `Invalid ${path}: expected ${what}, got ${got}.`,
      {
        cause,
      },
    );
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    return bad('JSON', 'unparseable text', cause);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return bad('an object', typeof json);
  const { weight_map: weightMapJson, metadata } = json as {
    weight_map?: unknown;
    metadata?: unknown;
  };
  if (weightMapJson === null || typeof weightMapJson !== 'object' || Array.isArray(weightMapJson)) {
    return bad('a "weight_map" object', String(weightMapJson));
  }
  const weightMap = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMapJson as Record<string, unknown>)) {
    if (typeof file !== 'string')
      return bad(`weight_map[${quote(name)}] to be a file name`, typeof file);
    // Shards live in the checkpoint directory: refuse paths that would leave it.
    if (file === '' || isAbsolute(file) || normalize(file).split(/[\\/]/).includes('..')) {
      return bad(`weight_map[${quote(name)}] to be a file inside the directory`, quote(file));
    }
    weightMap.set(name, file);
  }
  const meta =
    metadata !== null && typeof metadata === 'object' && !Array.isArray(metadata)
      ? (metadata as Record<string, unknown>)
      : undefined;
  return { weightMap, metadata: meta };
}

class DirReader implements SafetensorsDirReader {
  readonly metadata: Record<string, string> | undefined;
  readonly names: readonly string[];
  readonly tensors: Readonly<Record<string, TensorInfo>>;
  private readonly owner = new Map<string, number>();

  constructor(
    readonly shards: readonly string[],
    private readonly readers: readonly SafetensorsReader[],
    readonly indexMetadata: Record<string, unknown> | undefined,
  ) {
    this.metadata = readers[0]?.metadata;
    const names: string[] = [];
    const tensors: Record<string, TensorInfo> = Object.create(null);
    readers.forEach((reader, i) => {
      for (const name of reader.names) {
        names.push(name);
        this.owner.set(name, i);
        tensors[name] = reader.tensors[name] as TensorInfo;
      }
    });
    this.names = names;
    this.tensors = tensors;
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  shardOf(name: string): string | undefined {
    const i = this.owner.get(name);
    return i === undefined ? undefined : this.shards[i];
  }

  read(name: string): Promise<TensorEntry> {
    const i = this.owner.get(name);
    const reader = i === undefined ? undefined : this.readers[i];
    if (reader === undefined) return Promise.reject(notFound(name, this.names, 'this checkpoint'));
    return reader.read(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Writes a safetensors file atomically: the bytes (laid out exactly as
 * {@link serializeSafetensors} lays them out) go to a temporary file in the same directory, are
 * fsynced, and the temporary file is renamed over `path`. If anything fails, the temporary file
 * is removed and an existing file at `path` is left untouched. Tensor data is written tensor by
 * tensor, never concatenated into one buffer.
 *
 * @example
 * ```ts
 * await writeSafetensors('out/adapter_model.safetensors', {
 *   'lora_A.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
 * }, { format: 'pt' });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorsToWrite,
  metadata?: MetadataToWrite,
): Promise<void> {
  const layout = layoutSafetensors(tensors, metadata);
  const chunks = [layout.prefix, ...layout.ordered.map((t) => t.bytes)];
  const lengths = chunks.map((c) => c.byteLength);
  await replaceFileAtomic(path, async (handle) => {
    let position = 0;
    for (const [i, chunk] of chunks.entries()) {
      // A buffer detached (transferred) while we awaited would silently write 0 bytes.
      if (chunk.byteLength !== lengths[i]) {
        throw new SafetensorsError(
          'INVALID_TENSOR',
          'tensor-input',
          `Tensor data changed during the write: expected ${lengths[i]} bytes, got ${chunk.byteLength} (was its buffer transferred?).`,
        );
      }
      let written = 0;
      while (written < chunk.byteLength) {
        const { bytesWritten } = await handle.write(
          chunk,
          written,
          Math.min(chunk.byteLength - written, MAX_IO_CHUNK),
          position + written,
        );
        written += bytesWritten;
      }
      position += chunk.byteLength;
    }
  });
}

/**
 * Writes a file atomically, as {@link writeSafetensors} does: `data` (a string is written as
 * UTF-8) goes to a temporary file in the same directory, is fsynced, and the temporary file is
 * renamed over `path`. If anything fails, the temporary file is removed, an existing file at
 * `path` is left untouched, and a {@link SafetensorsError} with code `IO` is thrown (the
 * underlying error is its `cause`).
 *
 * @example
 * ```ts
 * await writeFileAtomic('out/adapter/adapter_config.json', `${JSON.stringify(config, null, 2)}\n`);
 * await writeFileAtomic('out/tokens.bin', new Uint8Array([1, 2, 3]));
 * ```
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await replaceFileAtomic(path, async (handle) => {
    await handle.writeFile(data);
  });
}

/** Temp file beside `path`, filled by `write`, fsynced, renamed over `path`; the rename made durable. */
async function replaceFileAtomic(
  path: string,
  write: (handle: FileHandle) => Promise<void>,
): Promise<void> {
  const temp = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`,
  );
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx');
    await write(handle);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (cause) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    if (cause instanceof SafetensorsError) throw cause;
    throw new SafetensorsError(
      'IO',
      'write-atomic',
      `Cannot write ${path}: ${(cause as Error).message}. The previous file, if any, is unchanged.`,
      { cause },
    );
  }
  // Make the rename itself durable; not every platform lets a directory be opened for fsync.
  try {
    const dirHandle = await open(dirname(path), 'r');
    await dirHandle.sync().finally(() => dirHandle.close());
  } catch {
    // best effort
  }
}

async function openHandle(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (cause) {
    throw new SafetensorsError(
      'IO',
      'file-readable',
      `Cannot open ${path}: ${(cause as Error).message}.`,
      {
        cause,
      },
    );
  }
}

/** Reads exactly `length` bytes at `position` into a fresh buffer (FileHandle.read may return less). */
async function readExactly(
  handle: FileHandle,
  path: string,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    // fs caps one read at 2 GiB − 1 bytes; big tensors (a 128k-vocab embedding) take several.
    const { bytesRead } = await handle.read(
      bytes,
      done,
      Math.min(length - done, MAX_IO_CHUNK),
      position + done,
    );
    if (bytesRead === 0) {
      throw new SafetensorsError(
        'IO',
        'file-complete',
        `Short read from ${path}: expected ${length} bytes at offset ${position}, got ${done}. Did the file shrink while open?`,
      );
    }
    done += bytesRead;
  }
  return bytes;
}

function notFound(name: string, names: readonly string[], where: string): SafetensorsError {
  return new SafetensorsError(
    'TENSOR_NOT_FOUND',
    'tensor-present',
    `No tensor ${quote(name)} in ${where}: expected one of ${names.length} names, got none.${didYouMean(name, names)}`,
    { tensor: name },
  );
}
