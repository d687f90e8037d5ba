import {
  type EvaluateOptions,
  evaluate,
  type GenerateRequest,
  hashRequest,
  type LanguageModel,
  type LoglikelihoodRequest,
  type LoglikelihoodResult,
  type ModelCallOptions,
  type RequestCache,
  sha256Hex,
  type TaskDefinition,
  type TaskEvaluation,
  type TaskRequest,
  type TaskSample,
} from '@qlora/bench-core';

/** Which docs a shard evaluates: doc id (its position after `--limit`) modulo the shard count. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** The fields of a samples row that aggregation reads (a runner sample or a parsed JSONL line). */
export type SampleRowFields = Pick<
  TaskSample,
  'doc_id' | 'filter' | 'metrics' | 'doc_hash' | 'prompt_hash' | 'target_hash'
> & { [metric: string]: unknown };

/**
 * Per-doc metric values and the task hash of samples rows, exactly as the runner accumulates
 * them: keys `metric,filter` in first-seen order, values in row order, and sha256 over every
 * row's doc_hash + prompt_hash + target_hash.
 */
export function aggregateSampleRows(rows: readonly SampleRowFields[]): {
  metricValues: Record<string, number[]>;
  taskHash: string;
} {
  const metricValues: Record<string, number[]> = {};
  let hashConcat = '';
  for (const row of rows) {
    hashConcat += row.doc_hash + row.prompt_hash + row.target_hash;
    for (const metric of row.metrics) {
      const key = `${metric},${row.filter}`;
      const values = metricValues[key] ?? [];
      values.push(Number(row[metric]));
      metricValues[key] = values;
    }
  }
  return { metricValues, taskHash: sha256Hex(hashConcat) };
}

// A context no benchmark prompt starts with: requests of other shards' docs are replaced by it,
// so the model never sees them while the few-shot RNG still advances through every doc.
const SKIPPED_CONTEXT = '\u0000qlora-shard-skip';

function skippedRequest(request: TaskRequest): TaskRequest {
  if (request.kind === 'loglikelihood') {
    return { kind: 'loglikelihood', context: SKIPPED_CONTEXT, continuation: ' skip' };
  }
  return {
    kind: 'generate_until',
    context: SKIPPED_CONTEXT,
    generationKwargs: { until: [] },
    until: [],
    maxGenTokens: 1,
  };
}

/**
 * Evaluates one shard of a task so that its rows are the very rows one process writes for those
 * docs: every doc's requests are built in doc order (same few-shot draws, same doc ids), but the
 * model is asked only for docs with `id % count === index`; the others get placeholder answers
 * (never cached) and are dropped from the samples and metrics.
 */
export async function evaluateShard<Doc>(
  lm: LanguageModel,
  task: TaskDefinition<Doc>,
  docs: readonly Doc[],
  shard: ShardSpec,
  options: EvaluateOptions,
): Promise<{ evaluation: TaskEvaluation; totalDocs: number }> {
  const inShard = (docId: number) => docId % shard.count === shard.index;
  const shardTask: TaskDefinition<Doc> = {
    ...task,
    docToRequests: (doc, context) => {
      const requests = task.docToRequests(doc, context);
      return inShard(context.docId) ? requests : requests.map(skippedRequest);
    },
  };
  const skippedKeys = new Set<string>();
  const shardLm: LanguageModel = {
    ...(lm.name === undefined ? {} : { name: lm.name }),
    loglikelihood: (requests, callOptions) =>
      answerShard<LoglikelihoodRequest, LoglikelihoodResult>(
        requests,
        (keep) => lm.loglikelihood(keep, callOptions),
        { logprob: 0, isGreedy: false },
        (r) => hashRequest('loglikelihood', r),
        skippedKeys,
      ),
    generateUntil: (requests, callOptions?: ModelCallOptions) =>
      answerShard<GenerateRequest, string>(
        requests,
        (keep) => lm.generateUntil(keep, callOptions),
        '',
        (r) => hashRequest('generate_until', r),
        skippedKeys,
      ),
  };
  const cache = options.cache;
  const shardCache: RequestCache | undefined = cache && {
    get: (key) => cache.get(key),
    set: (key, value) => (skippedKeys.has(key) ? undefined : cache.set(key, value)),
  };
  const full = await evaluate(shardLm, shardTask, docs, {
    ...options,
    ...(shardCache ? { cache: shardCache } : {}),
  });
  const samples = full.samples.filter((s) => inShard(s.doc_id));
  const shardDocCount = samples.filter((s) => s.filter === samples[0]?.filter).length;
  return {
    evaluation: {
      ...full,
      samples,
      ...aggregateSampleRows(samples),
      nSamples: { original: full.nSamples.original, effective: shardDocCount },
    },
    totalDocs: full.nSamples.effective,
  };
}

async function answerShard<Request extends { context: string }, Answer>(
  requests: readonly Request[],
  ask: (keep: Request[]) => Promise<Answer[]>,
  placeholder: Answer,
  keyOf: (request: Request) => string,
  skippedKeys: Set<string>,
): Promise<Answer[]> {
  const keep = requests.filter((r) => r.context !== SKIPPED_CONTEXT);
  const answers = keep.length > 0 ? await ask(keep) : [];
  // A short answer list goes back as is: the runner reports the count mismatch.
  if (answers.length !== keep.length) return answers;
  let next = 0;
  return requests.map((r) => {
    if (r.context !== SKIPPED_CONTEXT) return answers[next++] as Answer;
    skippedKeys.add(keyOf(r));
    return placeholder;
  });
}
