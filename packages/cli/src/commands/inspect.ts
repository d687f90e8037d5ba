import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseLmEvalResults } from '@qlora/metrics';
import type { TensorInfo } from '@qlora/safetensors';
import {
  openSafetensors,
  openSafetensorsDir,
  type SafetensorsReader,
} from '@qlora/safetensors/node';
import { formatBytes, formatColumns, formatCount, formatParams } from '../_format';
import { resolvePath } from '../_fs';
import { CliError } from '../errors';
import type { CliIo } from '../io';
import { stringifyReportJson } from '../report';

/**
 * Options of `qlora inspect`.
 *
 * @example
 * const options: InspectCommandOptions = { path: 'model.safetensors', all: true };
 */
export interface InspectCommandOptions {
  path: string;
  json?: boolean;
  /** List every tensor (default: the first 20 in human output; JSON always lists all). */
  all?: boolean;
}

/**
 * One tensor of a header.
 *
 * @example
 * const t: TensorSummary = { name: 'lm_head.weight', dtype: 'BF16', shape: [128256, 2048], parameters: 262668288, bytes: 525336576 };
 */
export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  parameters: number;
  bytes: number;
  shard?: string;
}

/**
 * What bitsandbytes 4-bit tensors in a checkpoint say (from their `quant_state` JSON blobs).
 *
 * @example
 * const q: Bnb4bitSummary = { weights: 112, quantTypes: { nf4: 112 }, blocksizes: [64], doubleQuant: true, dtypes: ['bfloat16'], parameters: 973078528, packedBytes: 486539264, example: { … } };
 */
export interface Bnb4bitSummary {
  /** Number of 4-bit weights (one per `*.weight.quant_state.bitsandbytes__*` key). */
  weights: number;
  quantTypes: Record<string, number>;
  blocksizes: number[];
  /** True when every 4-bit weight has `nested_absmax`. */
  doubleQuant: boolean;
  /** Original dtypes recorded in the blobs. */
  dtypes: string[];
  /** Parameters of the 4-bit weights, from the shapes in their blobs. */
  parameters: number;
  /** Bytes of the packed 4-bit data alone. */
  packedBytes: number;
  /** The first weight's name and decoded quant_state blob. */
  example: { name: string; quantState: Record<string, unknown> };
}

/**
 * A safetensors file (or sharded checkpoint) summarised from its header.
 *
 * @example
 * (await inspectSafetensors('model.safetensors')).parameters; // 1235814400
 */
export interface SafetensorsSummary {
  kind: 'safetensors';
  path: string;
  shards: string[];
  metadata: Record<string, string> | undefined;
  tensorCount: number;
  /** Stored elements (a packed 4-bit weight counts its bytes). */
  storedElements: number;
  /** Model parameters: 4-bit weights counted by their original shape, their quant-state tensors not at all. */
  parameters: number;
  dataBytes: number;
  byDtype: Record<string, { tensors: number; elements: number; bytes: number }>;
  bnb4bit?: Bnb4bitSummary;
  tensors: TensorSummary[];
}

/**
 * A PEFT LoRA adapter folder.
 *
 * @example
 * (await inspectPath('runs/ft/adapter')).kind; // 'adapter'
 */
export interface AdapterSummary {
  kind: 'adapter';
  path: string;
  peftType: unknown;
  baseModel: unknown;
  r: unknown;
  alpha: unknown;
  dropout: unknown;
  targetModules: unknown;
  useRslora: boolean;
  /** alpha / r, or alpha / √r with rsLoRA (undefined when r or alpha is missing). */
  scaling: number | undefined;
  config: Record<string, unknown>;
  /** Trainable parameters (every tensor of adapter_model.safetensors). */
  trainableParameters?: number;
  /** Adapter tensors per target module name (e.g. q_proj: 32). */
  tensorsByModule?: Record<string, number>;
  weights?: SafetensorsSummary;
}

/**
 * A Hugging Face model folder: config.json summary, files, weights.
 *
 * @example
 * (await inspectPath('models/Llama-3.2-1B')).kind; // 'model'
 */
export interface ModelSummary {
  kind: 'model';
  path: string;
  architecture: unknown;
  modelType: unknown;
  config: Record<string, unknown>;
  quantizationConfig?: unknown;
  files: string[];
  warnings: string[];
  weights?: SafetensorsSummary;
}

/**
 * Any other folder (a run directory or unknown layout): entries recognised by name and content.
 *
 * @example
 * (await inspectPath('runs/llama')).entries.map((e) => e.kind); // ['folder', 'lm-eval results', 'jsonl', …]
 */
export interface DirectorySummary {
  kind: 'directory';
  path: string;
  entries: Array<{ path: string; kind: string; bytes?: number; detail?: string }>;
}

/**
 * What `qlora inspect` found.
 *
 * @example
 * const result: InspectResult = await inspectPath('model.safetensors');
 */
export type InspectResult = SafetensorsSummary | AdapterSummary | ModelSummary | DirectorySummary;

const QUANT_BLOB = /^(.*\.weight)\.quant_state\.bitsandbytes__(nf4|fp4)$/;
const QUANT_AUX =
  /\.weight\.(absmax|quant_map|nested_absmax|nested_quant_map|quant_state\.bitsandbytes__(nf4|fp4))$/;

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

async function summarizeReader(
  reader: SafetensorsReader,
  path: string,
  shards: string[],
  shardOf?: (name: string) => string | undefined,
): Promise<SafetensorsSummary> {
  const tensors: TensorSummary[] = [];
  const byDtype: SafetensorsSummary['byDtype'] = {};
  let storedElements = 0;
  let dataBytes = 0;
  for (const name of reader.names) {
    const info = reader.tensors[name] as TensorInfo;
    const parameters = product(info.shape);
    const bytes = info.dataOffsets[1] - info.dataOffsets[0];
    const t: TensorSummary = { name, dtype: info.dtype, shape: info.shape, parameters, bytes };
    const shard = shardOf?.(name);
    if (shard !== undefined && shards.length > 1) t.shard = shard;
    tensors.push(t);
    storedElements += parameters;
    dataBytes += bytes;
    const d = byDtype[info.dtype] ?? { tensors: 0, elements: 0, bytes: 0 };
    byDtype[info.dtype] = d;
    d.tensors++;
    d.elements += parameters;
    d.bytes += bytes;
  }

  const blobs = reader.names.filter((n) => QUANT_BLOB.test(n));
  let bnb4bit: Bnb4bitSummary | undefined;
  const packedWeights = new Set<string>();
  if (blobs.length > 0) {
    const quantTypes: Record<string, number> = {};
    const blocksizes = new Set<number>();
    const dtypes = new Set<string>();
    let parameters = 0;
    let packedBytes = 0;
    let doubleQuant = true;
    let example: Bnb4bitSummary['example'] | undefined;
    for (const blobName of blobs) {
      const [, weight, quantType] = QUANT_BLOB.exec(blobName) as unknown as [
        string,
        string,
        string,
      ];
      packedWeights.add(weight);
      const entry = await reader.read(blobName);
      let state: Record<string, unknown>;
      try {
        state = JSON.parse(new TextDecoder().decode(entry.data as Uint8Array));
      } catch (cause) {
        throw new CliError(
          'INPUT_INVALID',
          `${path}: ${blobName}: expected a JSON quant_state blob, got undecodable bytes`,
          { cause },
        );
      }
      quantTypes[quantType] = (quantTypes[quantType] ?? 0) + 1;
      if (typeof state.blocksize === 'number') blocksizes.add(state.blocksize);
      if (typeof state.dtype === 'string') dtypes.add(state.dtype);
      if (Array.isArray(state.shape)) parameters += product(state.shape as number[]);
      const w = reader.tensors[weight];
      if (w) packedBytes += w.dataOffsets[1] - w.dataOffsets[0];
      if (!reader.has(`${weight}.nested_absmax`)) doubleQuant = false;
      example ??= { name: weight, quantState: state };
    }
    bnb4bit = {
      weights: blobs.length,
      quantTypes,
      blocksizes: [...blocksizes].sort((a, b) => a - b),
      doubleQuant,
      dtypes: [...dtypes],
      parameters,
      packedBytes,
      example: example as Bnb4bitSummary['example'],
    };
  }
  const plainParameters = tensors
    .filter((t) => !packedWeights.has(t.name) && !QUANT_AUX.test(t.name))
    .reduce((sum, t) => sum + t.parameters, 0);
  const summary: SafetensorsSummary = {
    kind: 'safetensors',
    path,
    shards,
    metadata: reader.metadata,
    tensorCount: tensors.length,
    storedElements,
    parameters: plainParameters + (bnb4bit?.parameters ?? 0),
    dataBytes,
    byDtype,
    tensors,
  };
  if (bnb4bit) summary.bnb4bit = bnb4bit;
  return summary;
}

/**
 * Summarises one safetensors file from its header (tensor data is read only for the small
 * bitsandbytes quant_state blobs).
 *
 * @example
 * const s = await inspectSafetensors('adapter_model.safetensors'); s.tensorCount; // 28
 */
export async function inspectSafetensors(path: string): Promise<SafetensorsSummary> {
  const reader = await openSafetensors(path);
  try {
    return await summarizeReader(reader, path, [basename(path)]);
  } finally {
    await reader.close();
  }
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new CliError('INPUT_INVALID', `${path}: expected JSON, got a syntax error`, { cause });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliError(
      'INPUT_INVALID',
      `${path}: expected a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  return value as Record<string, unknown>;
}

const exists = async (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

async function inspectAdapter(dir: string): Promise<AdapterSummary> {
  const config = await readJson(join(dir, 'adapter_config.json'));
  const r = config.r;
  const alpha = config.lora_alpha;
  const useRslora = config.use_rslora === true;
  const summary: AdapterSummary = {
    kind: 'adapter',
    path: dir,
    peftType: config.peft_type,
    baseModel: config.base_model_name_or_path,
    r,
    alpha,
    dropout: config.lora_dropout,
    targetModules: config.target_modules,
    useRslora,
    scaling:
      typeof r === 'number' && typeof alpha === 'number' && r > 0
        ? alpha / (useRslora ? Math.sqrt(r) : r)
        : undefined,
    config,
  };
  const weights = join(dir, 'adapter_model.safetensors');
  if (await exists(weights)) {
    const w = await inspectSafetensors(weights);
    summary.weights = w;
    summary.trainableParameters = w.storedElements;
    const byModule: Record<string, number> = {};
    for (const t of w.tensors) {
      const module = /\.([^.]+)\.lora_[AB]\b/.exec(t.name)?.[1] ?? 'other';
      byModule[module] = (byModule[module] ?? 0) + t.parameters;
    }
    summary.tensorsByModule = byModule;
  }
  return summary;
}

const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'model.safetensors',
  'model.safetensors.index.json',
];

async function inspectModel(dir: string): Promise<ModelSummary> {
  const config = await readJson(join(dir, 'config.json'));
  const names = (await readdir(dir)).sort();
  const warnings: string[] = [];
  const hasSafetensors = names.some((n) => n.endsWith('.safetensors'));
  const pickles = names.filter((n) => /\.(bin|pt|pth|ckpt)$/.test(n));
  if (pickles.length > 0) {
    warnings.push(
      `${pickles.join(', ')}: pickle weights are never read; ${hasSafetensors ? 'the safetensors files are used' : 'convert them to safetensors'}`,
    );
  }
  if (!names.includes('tokenizer.json'))
    warnings.push('no tokenizer.json: evaluation and training need one');
  const summary: ModelSummary = {
    kind: 'model',
    path: dir,
    architecture: Array.isArray(config.architectures)
      ? config.architectures[0]
      : config.architectures,
    modelType: config.model_type,
    config,
    files: names.filter(
      (n) => MODEL_FILES.includes(n) || n.endsWith('.safetensors') || pickles.includes(n),
    ),
    warnings,
  };
  if (config.quantization_config !== undefined)
    summary.quantizationConfig = config.quantization_config;
  if (hasSafetensors) {
    const reader = await openSafetensorsDir(dir);
    try {
      summary.weights = await summarizeReader(reader, dir, [...reader.shards], (n) =>
        reader.shardOf(n),
      );
    } finally {
      await reader.close();
    }
  }
  return summary;
}

async function describeEntry(
  path: string,
  name: string,
): Promise<{ kind: string; detail?: string }> {
  if (name.endsWith('.safetensors')) {
    const s = await inspectSafetensors(path).catch(() => undefined);
    return s
      ? {
          kind: 'safetensors',
          detail: `${s.tensorCount} tensors, ${formatParams(s.parameters)} parameters`,
        }
      : { kind: 'safetensors (unreadable)' };
  }
  if (name.endsWith('.jsonl')) {
    const text = await readFile(path, 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() !== '').length;
    return { kind: 'jsonl', detail: `${lines} lines` };
  }
  if (/^results.*\.json$/.test(name)) {
    try {
      const r = parseLmEvalResults(await readFile(path, 'utf8'));
      const tasks = Object.keys(r.results);
      return {
        kind: 'lm-eval results',
        detail: `${tasks.length} tasks: ${tasks.slice(0, 5).join(', ')}${tasks.length > 5 ? ', …' : ''}`,
      };
    } catch {
      return { kind: 'json' };
    }
  }
  if (name === 'report.md' || name === 'report.json') return { kind: 'report' };
  return { kind: extname(name) === '' ? 'file' : extname(name).slice(1) };
}

async function inspectDirectory(dir: string, depth = 2): Promise<DirectorySummary> {
  const entries: DirectorySummary['entries'] = [];
  const walk = async (sub: string, level: number) => {
    const names = (await readdir(join(dir, sub))).sort();
    for (const name of names) {
      const rel = sub === '' ? name : `${sub}/${name}`;
      const full = join(dir, rel);
      const st = await stat(full);
      if (st.isDirectory()) {
        const step = /^checkpoint-(\d+)$/.exec(name)?.[1];
        if (await exists(join(full, 'adapter_config.json'))) {
          const a = await inspectAdapter(full).catch(() => undefined);
          entries.push({
            path: `${rel}/`,
            kind: 'PEFT adapter',
            ...(a ? { detail: `r=${String(a.r)}, alpha=${String(a.alpha)}` } : {}),
          });
        } else if (await exists(join(full, 'config.json'))) {
          entries.push({ path: `${rel}/`, kind: 'model' });
        } else if (step !== undefined) {
          entries.push({ path: `${rel}/`, kind: 'checkpoint', detail: `step ${step}` });
        } else {
          entries.push({ path: `${rel}/`, kind: 'folder' });
          if (level < depth) await walk(rel, level + 1);
        }
      } else {
        entries.push({ path: rel, bytes: st.size, ...(await describeEntry(full, name)) });
      }
    }
  };
  await walk('', 1);
  return { kind: 'directory', path: dir, entries };
}

/**
 * Recognises what `path` is and summarises it: a `.safetensors` file (header, dtypes, parameter
 * count, bitsandbytes 4-bit quant_state), a PEFT adapter folder (adapter_config.json +
 * adapter_model.safetensors), a Hugging Face model folder (config.json + weights) or any other
 * folder such as a run directory (files by kind, checkpoints, results).
 *
 * @example
 * const result = await inspectPath('models/Llama-3.2-1B');
 * if (result.kind === 'model') result.weights?.parameters; // 1235814400
 */
export async function inspectPath(path: string): Promise<InspectResult> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (cause) {
    throw new CliError(
      'INPUT_MISSING',
      `inspect ${path}: expected a file or folder, got ${(cause as NodeJS.ErrnoException).code ?? 'an error'}`,
      {
        hint: 'Check the path.',
        cause,
      },
    );
  }
  if (st.isDirectory()) {
    if (await exists(join(path, 'adapter_config.json'))) return inspectAdapter(path);
    if (await exists(join(path, 'config.json'))) return inspectModel(path);
    return inspectDirectory(path);
  }
  if (path.endsWith('.safetensors')) return inspectSafetensors(path);
  if (/\.(bin|pt|pth|ckpt)$/.test(path)) {
    throw new CliError(
      'INPUT_INVALID',
      `inspect ${path}: expected a .safetensors file, got a pickle checkpoint`,
      {
        hint: 'Pickle files can run code when loaded and are never read; convert the weights to safetensors.',
      },
    );
  }
  throw new CliError(
    'INPUT_INVALID',
    `inspect ${path}: expected a .safetensors file or a folder, got ${extname(path) || 'a file without extension'}`,
    {
      hint: 'Inspect a model, adapter or run folder, or a .safetensors file.',
    },
  );
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

function formatSafetensors(s: SafetensorsSummary, all: boolean, indent = ''): string[] {
  const lines = [
    `${indent}tensors: ${formatCount(s.tensorCount)}${s.shards.length > 1 ? ` in ${s.shards.length} shards` : ''}`,
    `${indent}parameters: ${formatCount(s.parameters)} (${formatParams(s.parameters)})`,
    `${indent}data: ${formatBytes(s.dataBytes)}`,
    `${indent}dtypes: ${Object.entries(s.byDtype)
      .map(([d, v]) => `${d} ×${v.tensors} (${formatBytes(v.bytes)})`)
      .join(', ')}`,
  ];
  if (s.metadata !== undefined) lines.push(`${indent}metadata: ${JSON.stringify(s.metadata)}`);
  if (s.bnb4bit) {
    const q = s.bnb4bit;
    lines.push(
      `${indent}bitsandbytes 4-bit: ${q.weights} weights, ${Object.entries(q.quantTypes)
        .map(([t, n]) => `${t} ×${n}`)
        .join(
          ', ',
        )}, blocksize ${q.blocksizes.join('/')}, double quant ${q.doubleQuant ? 'yes' : 'no'}, original dtype ${q.dtypes.join('/')}`,
      `${indent}  ${formatCount(q.parameters)} parameters in ${formatBytes(q.packedBytes)} packed; e.g. ${q.example.name}: ${JSON.stringify(q.example.quantState)}`,
    );
  }
  const shown = all ? s.tensors : s.tensors.slice(0, 20);
  lines.push(
    formatColumns([
      ['name', 'dtype', 'shape', 'params', 'bytes'],
      ...shown.map((t) => [
        t.name,
        t.dtype,
        shapeText(t.shape),
        formatCount(t.parameters),
        formatBytes(t.bytes),
      ]),
    ])
      .split('\n')
      .map((l) => `${indent}  ${l}`)
      .join('\n'),
  );
  if (shown.length < s.tensors.length) {
    lines.push(`${indent}  … ${s.tensors.length - shown.length} more (--all lists every tensor)`);
  }
  return lines;
}

const CONFIG_FIELDS = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'vocab_size',
  'max_position_embeddings',
  'torch_dtype',
  'dtype',
  'tie_word_embeddings',
  'rope_theta',
];

/**
 * Human-readable text of an {@link InspectResult}.
 *
 * @example
 * formatInspect(await inspectPath('adapter'), { all: false });
 * // PEFT adapter adapter
 * //   LORA r=16 alpha=16 (scaling 1) dropout=0 …
 */
export function formatInspect(result: InspectResult, options: { all?: boolean } = {}): string {
  const all = options.all ?? false;
  const lines: string[] = [];
  if (result.kind === 'safetensors') {
    lines.push(`safetensors ${result.path}`, ...formatSafetensors(result, all, '  '));
  } else if (result.kind === 'adapter') {
    lines.push(
      `PEFT adapter ${result.path}`,
      `  ${String(result.peftType ?? 'unknown type')} r=${String(result.r)} alpha=${String(result.alpha)}${result.scaling === undefined ? '' : ` (scaling ${result.scaling})`} dropout=${String(result.dropout)}${result.useRslora ? ' rsLoRA' : ''}`,
      `  targets: ${Array.isArray(result.targetModules) ? result.targetModules.join(', ') : String(result.targetModules)}`,
      `  base model: ${String(result.baseModel ?? 'not recorded')}`,
    );
    if (result.trainableParameters !== undefined) {
      lines.push(
        `  trainable parameters: ${formatCount(result.trainableParameters)} (${formatParams(result.trainableParameters)})`,
        `  by module: ${Object.entries(result.tensorsByModule ?? {})
          .map(([m, n]) => `${m} ${formatCount(n)}`)
          .join(', ')}`,
      );
    } else {
      lines.push('  no adapter_model.safetensors');
    }
    if (result.weights && all) lines.push(...formatSafetensors(result.weights, all, '  '));
  } else if (result.kind === 'model') {
    lines.push(
      `model ${result.path}`,
      `  ${String(result.architecture ?? '?')} (${String(result.modelType ?? '?')})`,
    );
    const fields = CONFIG_FIELDS.filter((k) => result.config[k] !== undefined).map(
      (k) => `${k}=${JSON.stringify(result.config[k])}`,
    );
    if (fields.length > 0) lines.push(`  ${fields.join(' ')}`);
    if (result.quantizationConfig !== undefined) {
      lines.push(`  quantization_config: ${JSON.stringify(result.quantizationConfig)}`);
    }
    lines.push(`  files: ${result.files.join(', ')}`);
    for (const w of result.warnings) lines.push(`  warning: ${w}`);
    if (result.weights) lines.push('  weights:', ...formatSafetensors(result.weights, all, '    '));
  } else {
    lines.push(`folder ${result.path} (${result.entries.length} entries)`);
    lines.push(
      formatColumns(
        result.entries.map((e) => [
          e.path,
          e.kind,
          e.bytes === undefined ? '' : formatBytes(e.bytes),
          e.detail ?? '',
        ]),
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `qlora inspect <path>`: prints what {@link inspectPath} found (`--json`: the full summary).
 *
 * @example
 * await runInspect({ path: 'test-fixtures/nf4/linear4bit.safetensors' }, io);
 * // safetensors …  bitsandbytes 4-bit: 1 weights, nf4 ×1, blocksize 64, double quant yes …
 */
export async function runInspect(
  options: InspectCommandOptions,
  io: CliIo,
): Promise<InspectResult> {
  const result = await inspectPath(resolvePath(io.cwd, options.path));
  io.stdout.write(
    options.json
      ? stringifyReportJson(result)
      : formatInspect(result, { all: options.all ?? false }),
  );
  return result;
}
