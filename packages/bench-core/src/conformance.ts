import { cutAtStopStrings } from './python-text';
import type { LanguageModel } from './types';

/** What {@link testLanguageModel} found. */
export interface LanguageModelConformance {
  ok: boolean;
  /** One line per failed check. */
  failures: string[];
}

/**
 * Quick conformance checks for a `LanguageModel` implementation: empty batches, result counts
 * and types, log-probabilities ≤ 0, answers independent of batch position, and generations that
 * stop before their stop strings. Cheap enough to run against a real model (6 short requests).
 *
 * @example
 * ```ts
 * const report = await testLanguageModel(myModel);
 * if (!report.ok) console.error(report.failures.join('\n'));
 * ```
 */
export async function testLanguageModel(lm: LanguageModel): Promise<LanguageModelConformance> {
  const failures: string[] = [];
  const check = (ok: boolean, what: string): void => {
    if (!ok) failures.push(what);
  };
  try {
    check((await lm.loglikelihood([])).length === 0, 'loglikelihood([]) should return []');
    const pairs = [
      { context: 'The capital of France is', continuation: ' Paris' },
      { context: 'One, two,', continuation: ' three' },
    ];
    const forward = await lm.loglikelihood(pairs);
    const backward = await lm.loglikelihood([...pairs].reverse());
    check(forward.length === 2, `loglikelihood: expected 2 results, got ${forward.length}`);
    for (const [i, r] of forward.entries()) {
      check(
        typeof r?.logprob === 'number' && !Number.isNaN(r.logprob) && r.logprob <= 0,
        `loglikelihood[${i}].logprob: expected a number ≤ 0, got ${r?.logprob}`,
      );
      check(
        typeof r?.isGreedy === 'boolean',
        `loglikelihood[${i}].isGreedy: expected a boolean, got ${typeof r?.isGreedy}`,
      );
    }
    for (let i = 0; i < 2; i++) {
      const a = forward[i]?.logprob ?? Number.NaN;
      const b = backward[1 - i]?.logprob ?? Number.NaN;
      check(
        Math.abs(a - b) <= 1e-3 * Math.max(1, Math.abs(a)),
        `loglikelihood: request ${i} scored ${a} first and ${b} second in a batch; expected order-independent results`,
      );
    }
    check((await lm.generateUntil([])).length === 0, 'generateUntil([]) should return []');
    const until = ['\n', 'Question:'];
    const texts = await lm.generateUntil([
      { context: 'Question: What is 2 + 2?\nAnswer:', until, maxGenTokens: 8 },
    ]);
    check(texts.length === 1, `generateUntil: expected 1 result, got ${texts.length}`);
    const text = texts[0];
    check(typeof text === 'string', `generateUntil[0]: expected a string, got ${typeof text}`);
    if (typeof text === 'string') {
      check(
        cutAtStopStrings(text, until) === text,
        `generateUntil[0]: expected the text cut before any stop string, got ${JSON.stringify(text.slice(0, 80))}`,
      );
    }
  } catch (error) {
    failures.push(`threw: ${(error as Error).message}`);
  }
  return { ok: failures.length === 0, failures };
}
