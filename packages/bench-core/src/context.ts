/** One few-shot example already rendered: its question text and its answer text. */
export interface FewshotExample {
  text: string;
  target: string;
}

/** Parts of a plain-text (no chat template) lm-eval context. */
export interface FewshotContextParts {
  /** Rendered task description, placed first with no separator (e.g. MMLU's `…\n\n`). */
  description?: string;
  /** Few-shot examples in sampler order. */
  shots?: readonly FewshotExample[];
  /** The evaluated doc's text. */
  text: string;
  /** Between a shot's text and its answer; lm-eval default `" "`. */
  targetDelimiter?: string;
  /** After each shot's answer; lm-eval default `"\n\n"`. */
  fewshotDelimiter?: string;
}

/**
 * lm-eval's `fewshot_context` without a chat template: description, then every shot as
 * `text + targetDelimiter + target + fewshotDelimiter`, then the doc's text with no trailing
 * delimiter.
 *
 * @example
 * ```ts
 * buildFewshotContext({ shots: [{ text: 'Q: 1+1?', target: '2' }], text: 'Q: 2+2?' });
 * // 'Q: 1+1? 2\n\nQ: 2+2?'
 * ```
 */
export function buildFewshotContext(parts: FewshotContextParts): string {
  const targetDelimiter = parts.targetDelimiter ?? ' ';
  const fewshotDelimiter = parts.fewshotDelimiter ?? '\n\n';
  let out = parts.description ?? '';
  for (const shot of parts.shots ?? []) {
    out += shot.text + targetDelimiter + shot.target + fewshotDelimiter;
  }
  return out + parts.text;
}
