import { pythonStrip } from '@qlora/bench-core';
import type { HellaswagPreprocessed, HellaswagRaw } from '@qlora/datasets';
import { BenchHellaswagError } from './errors';

/**
 * A HellaSwag doc after lm-eval's `process_docs`: the source fields plus `query`, `choices`,
 * `gold`. `label` stays as the source had it (a number in rowanz jsonl, a digit string in
 * `Rowan/hellaswag`), since samples logs and `doc_hash` show it as is.
 */
export type HellaswagDoc<Source extends object = HellaswagRaw | HellaswagPreprocessed> = Omit<
  Source,
  'label'
> & {
  label: number | string;
  query: string;
  choices: string[];
  gold: number;
};

// Characters whose Unicode title case differs from their upper case and is one code point.
const TITLECASE: Readonly<Record<string, string>> = {
  '\u01c4': '\u01c5',
  '\u01c5': '\u01c5',
  '\u01c6': '\u01c5',
  '\u01c7': '\u01c8',
  '\u01c8': '\u01c8',
  '\u01c9': '\u01c8',
  '\u01ca': '\u01cb',
  '\u01cb': '\u01cb',
  '\u01cc': '\u01cb',
  '\u01f1': '\u01f2',
  '\u01f2': '\u01f2',
  '\u01f3': '\u01f2',
};

function titlecaseChar(char: string): string {
  const mapped = TITLECASE[char];
  if (mapped !== undefined) return mapped;
  // Full upper-case mappings that expand (ß → SS, ﬀ → FF) title-case as first + lower rest.
  const [head = '', ...rest] = [...char.toUpperCase()];
  return head + rest.join('').toLowerCase();
}

/**
 * Python `str.capitalize()`: first character title-cased, the rest lower-cased. lm-eval applies it
 * to `ctx_b`, so `"THEN scrape it"` becomes `"Then scrape it"`. Title case follows Python for
 * Latin digraphs (`ǆ` → `ǅ`) and expanding letters (`ß` → `Ss`); a few Greek letters with iota
 * subscript title-case differently in Python (none occur in HellaSwag).
 *
 * @example
 * ```ts
 * pythonCapitalize('THEN scrape IT'); // 'Then scrape it'
 * pythonCapitalize('ßa'); // 'Ssa'
 * ```
 */
export function pythonCapitalize(text: string): string {
  const first = text.codePointAt(0);
  if (first === undefined) return '';
  const head = String.fromCodePoint(first);
  return titlecaseChar(head) + text.slice(head.length).toLowerCase();
}

/**
 * Python's `re.sub(r"\[.*?\]", "", text)` (`.` is anything but `\n`, so \r and U+2028 count) in
 * linear time. The regex form `/\[[^\n]*?\]/g` rescans to the end of the line from every `[`, so
 * a line of 50,000 `[` took 1.3 s and 1 MB about ten minutes (found by fuzzing).
 */
function removeBracketed(text: string): string {
  let out = '';
  let copyFrom = 0;
  let from = 0;
  let close = -1; // first ']' after the last search start, cached while still ahead
  let newline = -1; // likewise for '\n' (text.length when there is none)
  for (;;) {
    const open = text.indexOf('[', from);
    if (open < 0) break;
    if (close <= open) close = text.indexOf(']', open + 1);
    if (close < 0) break;
    if (newline <= open) {
      const at = text.indexOf('\n', open + 1);
      newline = at < 0 ? text.length : at;
    }
    if (newline < close) {
      // every '[' before this newline would have to cross it to reach a ']'
      from = newline + 1;
      continue;
    }
    out += text.slice(copyFrom, open);
    copyFrom = close + 1;
    from = close + 1;
  }
  return out + text.slice(copyFrom);
}

/**
 * lm-eval's HellaSwag `preprocess`, in its order: strip, `" [title]"` → `". "`, delete every
 * non-greedy `[...]` span (not across newlines), then one left-to-right pass of `"  "` → `" "`.
 * Later steps may leave a leading space: `"[step] Use a brush."` → `" Use a brush."`.
 *
 * @example
 * ```ts
 * preprocessHellaswagText('[header] How to clean a grill [title] Heat the grill.');
 * // 'How to clean a grill. Heat the grill.'
 * ```
 */
export function preprocessHellaswagText(text: string): string {
  // Python's str.strip() whitespace set (not JS \s), in linear time.
  let out = pythonStrip(text);
  out = out.split(' [title]').join('. ');
  out = removeBracketed(out);
  return out.split('  ').join(' ');
}

/**
 * lm-eval's `process_docs` for one raw record (rowanz jsonl or `Rowan/hellaswag`):
 * `query = preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b))`,
 * `choices = endings.map(preprocess)`, `gold = int(label)`. The source fields are kept, as
 * `datasets.map` keeps them, so sample logs and `doc_hash` match.
 *
 * @example
 * ```ts
 * processHellaswagDoc({ activity_label: 'Home and Garden',
 *   ctx_a: '[header] How to clean a grill [title] Heat the grill.', ctx_b: 'THEN scrape it',
 *   endings: ['[step] Use a brush.', 'b', 'c', 'd'], label: 0 }).query;
 * // 'Home and Garden: How to clean a grill. Heat the grill. Then scrape it'
 * ```
 */
export function processHellaswagDoc<
  Raw extends {
    activity_label: string;
    ctx_a: string;
    ctx_b: string;
    endings: readonly string[];
    label: number | string;
  },
>(raw: Raw): HellaswagDoc<Raw> {
  const ctx = `${raw.ctx_a} ${pythonCapitalize(raw.ctx_b)}`;
  return {
    ...raw,
    query: preprocessHellaswagText(`${raw.activity_label}: ${ctx}`),
    choices: raw.endings.map(preprocessHellaswagText),
    gold: parseLabel(raw.label),
  };
}

/**
 * The same for the preprocessed variant in `shared/data` (`{idx, activity_label, ctx, endings,
 * label}`): `ctx` is already `ctx_a + " " + ctx_b` with bracket tags removed, so `ctx_b` is not
 * capitalized and endings lost one leading space: prompts can differ from lm-eval's in those
 * two ways (acc_norm lengths by one character where an ending started with a tag).
 *
 * @example
 * ```ts
 * processPreprocessedHellaswagDoc({ idx: 0, activity_label: 'Roof shingle removal',
 *   ctx: 'A man is sitting on a roof. he', endings: ['a', 'b', 'c', 'd'], label: 3 }).query;
 * // 'Roof shingle removal: A man is sitting on a roof. he'
 * ```
 */
export function processPreprocessedHellaswagDoc<
  Pre extends {
    activity_label: string;
    ctx: string;
    endings: readonly string[];
    label: number | string;
  },
>(pre: Pre): HellaswagDoc<Pre> {
  return {
    ...pre,
    query: preprocessHellaswagText(`${pre.activity_label}: ${pre.ctx}`),
    choices: pre.endings.map(preprocessHellaswagText),
    gold: parseLabel(pre.label),
  };
}

function parseLabel(label: number | string): number {
  const gold = typeof label === 'number' ? label : /^\d+$/.test(label) ? Number(label) : Number.NaN;
  if (!Number.isInteger(gold) || gold < 0 || gold > 3) {
    throw new BenchHellaswagError(
      'E_LABEL',
      `hellaswag label: expected 0–3 (a number or a digit string), got ${JSON.stringify(label)}. Hint: the test split has no labels; evaluate the validation split.`,
    );
  }
  return gold;
}
