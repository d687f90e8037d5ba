import { BenchCoreError } from './errors';
import { pythonStrip } from './python-text';

/** One named filter pipeline of a generate_until task (lm-eval `filter_list` entry). */
export interface TaskFilter<Doc = unknown> {
  /** The filter name in metric keys (`exact_match,<name>`), e.g. `strict-match`. */
  name: string;
  /** Maps one raw generation to the string the metric compares. */
  apply(response: string, doc: Doc): string;
}

/** Options of {@link createRegexFilter}; defaults are lm-eval's `RegexFilter` defaults. */
export interface RegexFilterOptions {
  /** Filter name, e.g. `flexible-extract`. */
  name: string;
  /** The pattern; the `g` flag is added if missing. Do not use the `u` flag with Python escapes. */
  pattern: RegExp;
  /** Index into the match list, Python style: 0 = first, -1 = last. */
  groupSelect?: number;
  /** Returned when nothing matches. */
  fallback?: string;
}

/**
 * Python `re.findall` on a JS RegExp: whole matches with no groups, group 1 with one group, a
 * tuple (array) of all groups with several (undefined groups become `""`).
 *
 * @example
 * ```ts
 * findallPython(/(\d)|(x)/g, '1x'); // [['1', ''], ['', 'x']]
 * ```
 */
export function findallPython(pattern: RegExp, text: string): (string | string[])[] {
  const flags = pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`;
  const re = new RegExp(pattern.source, flags);
  const out: (string | string[])[] = [];
  for (const match of text.matchAll(re)) {
    const groups = match.slice(1).map((g) => g ?? '');
    if (groups.length === 0) out.push(match[0]);
    else if (groups.length === 1) out.push(groups[0]!);
    else out.push(groups);
  }
  return out;
}

/**
 * lm-eval's `RegexFilter`: `re.findall`, pick `matches[groupSelect]` (negative counts from the
 * end), for a tuple take the first non-empty group (else the fallback), then `strip()`. No match
 * gives the fallback (`[invalid]`).
 *
 * @example
 * ```ts
 * const strict = createRegexFilter({ name: 'strict-match', pattern: /#### (\-?[0-9\.\,]+)/ });
 * strict.apply('so #### 1,234', {}); // '1,234'
 * strict.apply('no answer', {}); // '[invalid]'
 * ```
 */
export function createRegexFilter(options: RegexFilterOptions): TaskFilter {
  const groupSelect = options.groupSelect ?? 0;
  const fallback = options.fallback ?? '[invalid]';
  return {
    name: options.name,
    apply(response) {
      const matches = findallPython(options.pattern, response);
      if (matches.length === 0) return fallback;
      const index = groupSelect < 0 ? matches.length + groupSelect : groupSelect;
      const picked = matches[index];
      if (picked === undefined) {
        throw new BenchCoreError(
          'E_FILTER_GROUP',
          `regex filter ${options.name}: expected group_select ${groupSelect} within ${matches.length} matches, got out of range. Hint: Python raises IndexError here too.`,
        );
      }
      const text = Array.isArray(picked) ? (picked.find((g) => g !== '') ?? fallback) : picked;
      return pythonStrip(text);
    },
  };
}

/**
 * The identity filter lm-eval names `none` (multiple-choice tasks and unfiltered generations).
 *
 * @example
 * ```ts
 * NONE_FILTER.apply(' 42', {}); // ' 42'
 * ```
 */
export const NONE_FILTER: TaskFilter = { name: 'none', apply: (response) => response };
