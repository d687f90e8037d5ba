import { PythonRandom, sha256Hex } from '@qlora/metrics';
import type { RequestCache } from './cache';
import { BenchCoreError } from './errors';
import { NONE_FILTER, type TaskFilter } from './filters';
import { dumpsPythonJson, type PythonJsonValue, sanitizePythonList } from './python-format';
import { moveTrailingWhitespace } from './python-text';
import { hashRequest } from './request-hash';
import type { TaskDefinition, TaskRequest, TaskResponse } from './task';
import type {
  GenerateRequest,
  LanguageModel,
  LoglikelihoodRequest,
  LoglikelihoodResult,
} from './types';

/** Progress of {@link evaluate}, counted in distinct model requests. */
export interface EvaluationProgress {
  task: string;
  done: number;
  total: number;
  /** How many of `done` came from the cache. */
  fromCache: number;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /**
   * Evaluate only the first N docs (lm-eval `--limit N`: same few-shot sets as a full run); a value
   * below 1 is a fraction of the docs, rounded up, as in lm-eval.
   */
  limit?: number;
  /** Requests per model call (default 64). */
  batchSize?: number;
  /** Called after every model batch and once at the start. */
  onProgress?: (progress: EvaluationProgress) => void;
  /** Answers by request hash; hits skip the model, misses are written as they arrive. */
  cache?: RequestCache;
  /** Seed of the few-shot `random.Random` (lm-eval `fewshot_random_seed`, default 1234). */
  fewshotSeed?: number;
  signal?: AbortSignal;
}

/** One line of lm-eval's `samples_<task>_<date>.jsonl`, fields in lm-eval's order. */
export interface TaskSample {
  doc_id: number;
  doc: PythonJsonValue;
  target: string;
  arguments: Record<string, Record<string, PythonJsonValue>>;
  resps: unknown[];
  filtered_resps: unknown[];
  filter: string;
  metrics: string[];
  doc_hash: string;
  prompt_hash: string;
  target_hash: string;
  /** The per-sample metric values follow, e.g. `acc`, `acc_norm`, `exact_match`. */
  [metric: string]: unknown;
}

/** What {@link evaluate} returns: per-sample rows and per-doc metric values, not yet aggregated. */
export interface TaskEvaluation {
  task: string;
  /** Samples rows, filters as the outer loop (lm-eval order). */
  samples: TaskSample[];
  /** Per-doc values by `metric,filter` key, in doc order. */
  metricValues: Record<string, number[]>;
  /** `n-samples` entry. */
  nSamples: { original: number; effective: number };
  /** lm-eval `task_hashes[task]`: sha256 over all samples of doc_hash + prompt_hash + target_hash. */
  taskHash: string;
  /** Distinct model requests, and how many were answered from the cache. */
  requestCount: { total: number; fromCache: number };
}

type Planned =
  | { kind: 'loglikelihood'; key: string; request: LoglikelihoodRequest }
  | { kind: 'generate_until'; key: string; request: GenerateRequest };

/**
 * Runs a task on a model the way lm-eval's `evaluate` does: builds every doc's requests in doc
 * order (one few-shot RNG per run), asks the model in batches (cached answers are reused, new
 * answers are cached at once, so a rerun resumes), applies filters, scores each doc and returns
 * lm-eval samples rows plus per-doc metric values.
 *
 * @example
 * ```ts
 * const run = await evaluate(lm, hellaswagTask(), docs, { limit: 100, batchSize: 32 });
 * run.metricValues['acc,none'].length; // 100
 * run.samples[0].doc_hash; // sha256 hex
 * ```
 */
export async function evaluate<Doc>(
  lm: LanguageModel,
  task: TaskDefinition<Doc>,
  docs: readonly Doc[],
  options: EvaluateOptions = {},
): Promise<TaskEvaluation> {
  const requested = options.limit ?? docs.length;
  if (!(requested >= 0) || (requested >= 1 && !Number.isInteger(requested))) {
    throw new BenchCoreError(
      'E_OPTION',
      `evaluate ${task.name}: expected limit to be a fraction in [0, 1) or a non-negative integer, got ${requested}`,
    );
  }
  // lm-eval: a limit below 1 is a fraction of the docs, rounded up.
  const limit = requested < 1 ? Math.ceil(docs.length * requested) : requested;
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new BenchCoreError(
      'E_OPTION',
      `evaluate ${task.name}: expected batchSize to be a positive integer, got ${batchSize}`,
    );
  }
  const evalDocs = docs.slice(0, limit);
  if (evalDocs.length === 0) {
    throw new BenchCoreError(
      'E_NO_DOCS',
      `evaluate ${task.name}: expected at least one doc to evaluate, got 0 (${docs.length} doc(s), limit ${requested}). Hint: check the benchmark data path, or raise limit.`,
    );
  }
  const rng = new PythonRandom(options.fewshotSeed ?? 1234);

  const requestsPerDoc: TaskRequest[][] = [];
  const plannedPerDoc: Planned[][] = [];
  for (let docId = 0; docId < evalDocs.length; docId++) {
    const requests = task.docToRequests(evalDocs[docId]!, { docId, rng });
    checkRequestKinds(task, requests, docId);
    requestsPerDoc.push(requests);
    plannedPerDoc.push(requests.map((r) => planRequest(r, `${task.name} doc ${docId}`)));
  }

  const answers = new Map<string, LoglikelihoodResult | string>();
  const unique = new Map<string, Planned>();
  for (const planned of plannedPerDoc) for (const p of planned) unique.set(p.key, p);
  let fromCache = 0;
  if (options.cache) {
    for (const [key, planned] of unique) {
      const hit = await options.cache.get(key);
      if (isValidAnswer(planned.kind, hit)) {
        answers.set(key, hit);
        fromCache++;
      }
    }
  }
  const total = unique.size;
  const report = (): void =>
    options.onProgress?.({ task: task.name, done: answers.size, total, fromCache });
  report();

  const missing = [...unique.values()].filter((p) => !answers.has(p.key));
  for (const kind of ['loglikelihood', 'generate_until'] as const) {
    const ofKind = missing.filter((p) => p.kind === kind);
    for (let start = 0; start < ofKind.length; start += batchSize) {
      if (options.signal?.aborted) {
        throw new BenchCoreError(
          'E_ABORTED',
          `evaluate ${task.name}: expected to finish, got aborted after ${answers.size} of ${total} requests. Hint: rerun with the same cache to resume.`,
          { cause: options.signal.reason },
        );
      }
      const batch = ofKind.slice(start, start + batchSize);
      const results = await callModel(lm, kind, batch, options.signal);
      if (results.length !== batch.length) {
        throw new BenchCoreError(
          'E_MODEL_RESULT',
          `${lm.name ?? 'model'}.${kind === 'loglikelihood' ? 'loglikelihood' : 'generateUntil'}: expected ${batch.length} results, got ${results.length}`,
        );
      }
      const writes: (void | Promise<void>)[] = [];
      for (let i = 0; i < batch.length; i++) {
        const key = batch[i]!.key;
        const value = results[i]!;
        if (!isValidAnswer(kind, value)) {
          throw new BenchCoreError(
            'E_MODEL_RESULT',
            `${lm.name ?? 'model'} result ${start + i} for ${task.name}: expected ${kind === 'loglikelihood' ? '{ logprob: number, isGreedy: boolean }' : 'a string'}, got ${JSON.stringify(value)?.slice(0, 80)}`,
          );
        }
        answers.set(key, value);
        if (options.cache) writes.push(options.cache.set(key, value));
      }
      await Promise.all(writes);
      report();
    }
  }

  const filters: readonly TaskFilter<Doc>[] =
    task.outputType === 'generate_until' && task.filters && task.filters.length > 0
      ? task.filters
      : [NONE_FILTER as TaskFilter<Doc>];
  const samples: TaskSample[] = [];
  const metricValues: Record<string, number[]> = {};
  let hashConcat = '';
  const docHashes = evalDocs.map((doc) =>
    sha256Hex(
      dumpsPythonJson(task.docToLog ? task.docToLog(doc) : (doc as PythonJsonValue), { indent: 2 }),
    ),
  );
  for (const filter of filters) {
    for (let docId = 0; docId < evalDocs.length; docId++) {
      const doc = evalDocs[docId]!;
      const requests = requestsPerDoc[docId]!;
      const raw = plannedPerDoc[docId]!.map((p) => answers.get(p.key)!);
      const filtered: TaskResponse[] = raw.map((r) =>
        typeof r === 'string' ? filter.apply(r, doc) : r,
      );
      const metrics = task.processResults(doc, filtered);
      const target = task.docToTarget(doc);
      const sample: TaskSample = {
        doc_id: docId,
        doc: task.docToLog ? task.docToLog(doc) : (doc as PythonJsonValue),
        target: String(target),
        arguments: Object.fromEntries(
          requests.map((r, i) => [
            `gen_args_${i}`,
            {
              arg_0: r.context,
              arg_1: r.kind === 'loglikelihood' ? r.continuation : r.generationKwargs,
            },
          ]),
        ),
        resps: raw.map((r) => sanitizePythonList([toPythonResponse(r)])),
        filtered_resps: filtered.map((r) => sanitizePythonList(toPythonResponse(r))),
        filter: filter.name,
        metrics: Object.keys(metrics),
        doc_hash: docHashes[docId]!,
        prompt_hash: sha256Hex(requests[0]?.context ?? ''),
        target_hash: sha256Hex(String(target)),
        ...metrics,
      };
      samples.push(sample);
      hashConcat += sample.doc_hash + sample.prompt_hash + sample.target_hash;
      for (const [metric, value] of Object.entries(metrics)) {
        const key = `${metric},${filter.name}`;
        const values = metricValues[key] ?? [];
        values.push(value);
        metricValues[key] = values;
      }
    }
  }

  return {
    task: task.name,
    samples,
    metricValues,
    nSamples: { original: docs.length, effective: evalDocs.length },
    taskHash: sha256Hex(hashConcat),
    requestCount: { total, fromCache },
  };
}

function planRequest(request: TaskRequest, where: string): Planned {
  if (request.kind === 'loglikelihood') {
    if (request.continuation === '') {
      // lm-eval's HFLM stops on `assert len(continuation_enc) > 0`: an empty choice has no
      // tokens to score. Say which request, before any model call.
      throw new BenchCoreError(
        'E_TASK_REQUESTS',
        `${where}: expected a non-empty loglikelihood continuation, got "" after context ${JSON.stringify(request.context.slice(-60))}. Hint: a doc has an empty answer choice; fix or drop it from the data (lm-eval fails the same way, on an assertion).`,
      );
    }
    const sent = moveTrailingWhitespace(request);
    return { kind: 'loglikelihood', key: hashRequest('loglikelihood', sent), request: sent };
  }
  const sent: GenerateRequest = {
    context: request.context,
    until: request.until ?? request.generationKwargs.until,
    maxGenTokens: request.maxGenTokens ?? request.generationKwargs.max_gen_toks ?? 256,
  };
  return { kind: 'generate_until', key: hashRequest('generate_until', sent), request: sent };
}

function checkRequestKinds<Doc>(
  task: TaskDefinition<Doc>,
  requests: readonly TaskRequest[],
  docId: number,
): void {
  const expected = task.outputType === 'generate_until' ? 'generate_until' : 'loglikelihood';
  if (requests.length === 0 || requests.some((r) => r.kind !== expected)) {
    throw new BenchCoreError(
      'E_TASK_REQUESTS',
      `${task.name} doc ${docId}: expected one or more ${expected} requests, got ${requests.length === 0 ? 'none' : requests.map((r) => r.kind).join(', ')}`,
    );
  }
}

async function callModel(
  lm: LanguageModel,
  kind: 'loglikelihood' | 'generate_until',
  batch: readonly Planned[],
  signal: AbortSignal | undefined,
): Promise<unknown[]> {
  const callOptions = signal ? { signal } : {};
  if (kind === 'loglikelihood') {
    return lm.loglikelihood(
      batch.map((p) => p.request as LoglikelihoodRequest),
      callOptions,
    );
  }
  return lm.generateUntil(
    batch.map((p) => p.request as GenerateRequest),
    callOptions,
  );
}

function isValidAnswer(
  kind: Planned['kind'],
  value: unknown,
): value is LoglikelihoodResult | string {
  if (kind === 'generate_until') return typeof value === 'string';
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as LoglikelihoodResult).logprob === 'number' &&
    typeof (value as LoglikelihoodResult).isGreedy === 'boolean'
  );
}

function toPythonResponse(response: TaskResponse): unknown {
  return typeof response === 'string' ? response : [response.logprob, response.isGreedy];
}
