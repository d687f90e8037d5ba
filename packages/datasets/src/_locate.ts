import type { z } from 'zod';

/** 1-based line and column of a UTF-16 offset in `text`. */
export function lineColumnAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

/**
 * Offset of the start of element `index` of the top-level JSON array in `text`, or -1. Only used on
 * the error path, so a linear scan (string-aware, depth-counting) is fine.
 */
export function arrayElementOffset(text: string, index: number): number {
  let depth = 0;
  let inString = false;
  let element = -1;
  let expectValue = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 32 || c === 9 || c === 10 || c === 13) continue;
    if (depth === 1 && (expectValue || c === 44)) {
      if (c === 44) {
        expectValue = true;
        continue;
      }
      if (c === 93) return -1;
      element++;
      expectValue = false;
      if (element === index) return i;
    }
    if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (c === 93 || c === 125) depth--;
  }
  return -1;
}

/** A short, single-line JSON rendering of `value` for messages (long input truncated). */
export function preview(value: unknown, max = 80): string {
  if (value === undefined) return 'nothing (the field is missing)';
  let text: string;
  try {
    text = typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The value at a zod issue path inside `record`, or undefined. */
export function valueAtPath(record: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = record;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key as string];
  }
  return current;
}

/** The first issue's path as strings and numbers (symbols stringified). */
export function issuePath(issue: z.core.$ZodIssue | undefined): (string | number)[] {
  if (!issue) return [];
  return issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key));
}

/** Renders a path as `endings[2].text`; the empty path as `(record)`. */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(record)';
  let out = '';
  for (const key of path) {
    out += typeof key === 'number' ? `[${key}]` : out === '' ? key : `.${key}`;
  }
  return out;
}

/** What a zod issue expected, in words. */
export function expectedOf(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'a valid record';
  const raw = issue as unknown as Record<string, unknown>;
  if (typeof raw.expected === 'string') return raw.expected;
  if (issue.code === 'invalid_value' && Array.isArray(raw.values)) {
    return `one of ${raw.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    return issue.message;
  }
  if (issue.code === 'unrecognized_keys') return 'no unknown keys';
  return issue.message;
}
