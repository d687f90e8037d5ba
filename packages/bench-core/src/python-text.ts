// Characters Python's str.strip()/rstrip()/isspace() treat as whitespace. JS's \s differs
// (it has U+FEFF, lacks U+001C–U+001F and U+0085), so an explicit class keeps parity.
const PY_WS =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SINGLE = new RegExp(`^[${PY_WS}]$`);

// The same set as code units, for the strips: a `[…]+$` regex retries from every whitespace run
// start, so `x` + 32,768 spaces + `x` took 1.4 s (quadratic; found by fuzzing). A scan is linear.
const PY_SPACE_CODES = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001,
  0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f,
  0x205f, 0x3000,
]);

function trailingSpaceStart(text: string): number {
  let end = text.length;
  while (end > 0 && PY_SPACE_CODES.has(text.charCodeAt(end - 1))) end--;
  return end;
}

/**
 * Python `str.strip()` with no argument (Python's whitespace set, not JS's `\s`).
 *
 * @example
 * ```ts
 * pythonStrip('\u0085 72 \n'); // '72'
 * ```
 */
export function pythonStrip(text: string): string {
  const end = trailingSpaceStart(text);
  let start = 0;
  while (start < end && PY_SPACE_CODES.has(text.charCodeAt(start))) start++;
  return text.slice(start, end);
}

/**
 * Python `str.rstrip()` with no argument.
 *
 * @example
 * ```ts
 * pythonRstrip('Answer: \n'); // 'Answer:'
 * ```
 */
export function pythonRstrip(text: string): string {
  return text.slice(0, trailingSpaceStart(text));
}

/**
 * Python `str.isspace()` for one character.
 *
 * @example
 * ```ts
 * isPythonSpace('\u00a0'); // true
 * ```
 */
export function isPythonSpace(char: string): boolean {
  return SINGLE.test(char);
}

/**
 * lm-eval's `_encode_pair` split: trailing whitespace of the context moves to the front of the
 * continuation, so `("Answer: ", "A")` is scored as `("Answer:", " A")`.
 *
 * @example
 * ```ts
 * moveTrailingWhitespace({ context: 'Q? ', continuation: 'yes' });
 * // { context: 'Q?', continuation: ' yes' }
 * ```
 */
export function moveTrailingWhitespace(request: { context: string; continuation: string }): {
  context: string;
  continuation: string;
} {
  const context = pythonRstrip(request.context);
  const moved = request.context.slice(context.length);
  return moved === ''
    ? { context: request.context, continuation: request.continuation }
    : { context, continuation: moved + request.continuation };
}

/**
 * numpy `argmax`: index of the first maximum; a NaN counts as the maximum (first NaN wins).
 *
 * @example
 * ```ts
 * argmax([-2, -1, -1]); // 1
 * ```
 */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) return i;
    if (v > values[best]!) best = i;
  }
  return best;
}

/**
 * Cuts generated text at the first occurrence of any stop string, the way lm-eval's HF model
 * does (`text.split(stop)[0]` for each stop in turn, so the earliest one wins).
 *
 * @example
 * ```ts
 * cutAtStopStrings(' 42\n\nQuestion: next', ['Question:', '</s>']); // ' 42\n\n'
 * ```
 */
export function cutAtStopStrings(text: string, until: readonly string[]): string {
  let out = text;
  for (const stop of until) {
    if (stop.length === 0) continue;
    const at = out.indexOf(stop);
    if (at >= 0) out = out.slice(0, at);
  }
  return out;
}
