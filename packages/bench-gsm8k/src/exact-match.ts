/** Options of {@link exactMatch}, named as in lm-eval's `exact_match` metric config. */
export interface ExactMatchOptions {
  /** Regexes removed (every match) from both sides, in order, before comparing. */
  regexesToIgnore?: readonly RegExp[];
  ignoreCase?: boolean;
  ignorePunctuation?: boolean;
  ignoreNumbers?: boolean;
}

/**
 * GSM8K's `regexes_to_ignore` (`","`, `"\\$"`, `"(?s).*#### "`, `"\\.$"`) as JS regexes with
 * Python's meaning: `(?s).*` becomes `[\s\S]*` (greedy, so everything up to the last `"#### "`
 * goes), and Python's `$` also matches before a final newline, hence `\.(?=\n?$)`.
 *
 * @example
 * ```ts
 * exactMatch('1,234.', 'x\n#### 1234', { regexesToIgnore: GSM8K_REGEXES_TO_IGNORE }); // 1
 * ```
 */
export const GSM8K_REGEXES_TO_IGNORE: readonly RegExp[] = [
  /,/g,
  /\$/g,
  /[\s\S]*#### /g,
  /\.(?=\n?$)/g,
];

// Python's string.punctuation.
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/**
 * lm-eval's `exact_match_hf_evaluate` for one prediction: remove each ignore-regex from both sides
 * in order, optionally lower-case (numpy `char.lower`) and drop punctuation or digits, then compare
 * (numpy strings ignore trailing NULs). Returns 1 or 0.
 *
 * @example
 * ```ts
 * const opts = { regexesToIgnore: GSM8K_REGEXES_TO_IGNORE, ignoreCase: true };
 * exactMatch('1,234', 'She pays 1234 in total.\n#### 1,234', opts); // 1
 * exactMatch('$18.00', '#### 18', opts); // 0 (lm-eval issue #3214)
 * ```
 */
export function exactMatch(
  prediction: string,
  reference: string,
  options: ExactMatchOptions = {},
): number {
  let p = prediction;
  let r = reference;
  for (const re of options.regexesToIgnore ?? []) {
    const global = re.flags.includes('g') ? re : new RegExp(re.source, `${re.flags}g`);
    p = p.replace(global, '');
    r = r.replace(global, '');
  }
  if (options.ignoreCase) {
    p = p.toLowerCase();
    r = r.toLowerCase();
  }
  if (options.ignorePunctuation) {
    p = p.replace(PUNCTUATION, '');
    r = r.replace(PUNCTUATION, '');
  }
  if (options.ignoreNumbers) {
    p = p.replace(/[0-9]/g, '');
    r = r.replace(/[0-9]/g, '');
  }
  return p.replace(/\0+$/, '') === r.replace(/\0+$/, '') ? 1 : 0;
}
