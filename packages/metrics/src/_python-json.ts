import { MetricsError } from './errors';

/**
 * JSON as CPython's `json` module reads and writes it, so files lm-eval wrote round-trip byte for
 * byte: Python writes `1.0` where JavaScript writes `1`, switches to exponent notation outside
 * [1e-4, 1e16), and allows `NaN`/`Infinity`. The parser remembers, per container and key, whether a
 * number was written as a float or an int literal; the writer reuses that, else asks a policy.
 */

type NumberKind = 'int' | 'float';

/** Deepest nesting read or written; lm-eval files nest about 6 deep. */
const MAX_JSON_DEPTH = 512;
type Key = string | number;

const numberKinds = new WeakMap<object, Map<Key, NumberKind>>();

/** Records that `container[key]` is a Python float (or int) when written back. */
export function markNumberKind(container: object, key: Key, kind: NumberKind): void {
  let kinds = numberKinds.get(container);
  if (kinds === undefined) {
    kinds = new Map();
    numberKinds.set(container, kinds);
  }
  kinds.set(key, kind);
}

/** The literal kind recorded for `container[key]`, if it came from text or was marked. */
export function numberKindOf(container: object, key: Key): NumberKind | undefined {
  return numberKinds.get(container)?.get(key);
}

/** Copies the recorded number kind of `from[fromKey]` onto `to[toKey]`. */
export function copyNumberKind(from: object, fromKey: Key, to: object, toKey: Key): void {
  const kind = numberKindOf(from, fromKey);
  if (kind !== undefined) markNumberKind(to, toKey, kind);
}

/** Python's `repr(float)`: shortest round-trip digits, exponent form when e < -4 or e >= 16. */
export function formatPythonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Number.POSITIVE_INFINITY) return 'Infinity';
  if (x === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa = '', expText = '0'] = x.toExponential().split('e');
  const exponent = Number(expText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exponent < -4 || exponent >= 16) {
    const frac = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const expSign = exponent < 0 ? '-' : '+';
    return `${sign}${frac}e${expSign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const intPart = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  const fracPart = digits.slice(exponent + 1);
  return `${sign}${intPart}.${fracPart === '' ? '0' : fracPart}`;
}

/** Where a value sits, for the writer's float policy and error messages. */
export type JsonPath = readonly Key[];

export interface PythonJsonWriteOptions {
  /** `indent=2` style when set; otherwise one line with `, ` and `: ` separators. */
  indent?: number;
  /** Whether an integer-valued number without a recorded kind is written as a float. */
  isFloat?: (path: JsonPath) => boolean;
}

/** `json.dumps(value, indent=…, ensure_ascii=False)` as CPython writes it. */
export function stringifyPythonJson(value: unknown, options: PythonJsonWriteOptions = {}): string {
  const indent = options.indent;
  const isFloat = options.isFloat ?? (() => false);
  const itemSeparator = indent === undefined ? ', ' : ',';

  const writeNumber = (
    x: number,
    container: object | undefined,
    key: Key,
    path: JsonPath,
  ): string => {
    if (!Number.isFinite(x)) return formatPythonFloat(x);
    const kind = container === undefined ? undefined : numberKindOf(container, key);
    const float = kind === undefined ? !Number.isInteger(x) || isFloat(path) : kind === 'float';
    if (!float) {
      if (!Number.isInteger(x)) {
        throw new MetricsError(
          'JSON_WRITE',
          `number at ${formatPath(path)}: expected an integer, got ${x}`,
        );
      }
      return Number.isSafeInteger(x) ? String(x) : BigInt(x).toString();
    }
    return formatPythonFloat(x);
  };

  const write = (
    v: unknown,
    container: object | undefined,
    key: Key,
    path: Key[],
    depth: number,
  ): string => {
    if (depth > MAX_JSON_DEPTH) {
      // Also stops a cyclic object, which would otherwise recurse until the stack overflows.
      throw new MetricsError(
        'JSON_WRITE',
        `value at ${formatPath(path.slice(0, 8))}…: expected nesting of at most ${MAX_JSON_DEPTH} levels (and no cycles), got deeper`,
      );
    }
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') return writeNumber(v, container, key, path);
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'bigint') return v.toString();
    const newline = indent === undefined ? '' : `\n${' '.repeat(indent * (depth + 1))}`;
    const closing = indent === undefined ? '' : `\n${' '.repeat(indent * depth)}`;
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      const items = v.map((item, i) => newline + write(item, v, i, [...path, i], depth + 1));
      return `[${items.join(itemSeparator)}${closing}]`;
    }
    if (typeof v === 'object') {
      const entries = Object.entries(v).filter(([, item]) => item !== undefined);
      if (entries.length === 0) return '{}';
      const items = entries.map(
        ([k, item]) =>
          `${newline}${JSON.stringify(k)}: ${write(item, v, k, [...path, k], depth + 1)}`,
      );
      return `{${items.join(itemSeparator)}${closing}}`;
    }
    // Python's `default=str` fallback for values JSON cannot hold.
    return JSON.stringify(String(v));
  };
  return write(value, undefined, '', [], 0);
}

/** `JSON.parse` that also accepts NaN/Infinity and records int vs float literals. */
export function parsePythonJson(text: string): unknown {
  let pos = 0;
  const fail = (expected: string): never => {
    const got = pos >= text.length ? 'end of text' : JSON.stringify(text.slice(pos, pos + 20));
    throw new MetricsError(
      'JSON_SYNTAX',
      `JSON text at offset ${pos}: expected ${expected}, got ${got}`,
    );
  };
  const skip = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  const parseString = (): string => {
    const start = pos;
    pos++;
    let escaped = false;
    while (pos < text.length) {
      const c = text[pos];
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') {
        pos++;
        try {
          return JSON.parse(text.slice(start, pos)) as string;
        } catch {
          pos = start;
          return fail('a JSON string (valid escapes, no raw control characters)');
        }
      }
      pos++;
    }
    return fail('a closing quote');
  };
  let depth = 0;
  const parseValue = (container: object | undefined, key: Key): unknown => {
    depth++;
    try {
      return parseValueAt(container, key);
    } finally {
      depth--;
    }
  };
  const parseValueAt = (container: object | undefined, key: Key): unknown => {
    // Bounded so a hostile `[[[[…` cannot overflow the stack; lm-eval files nest about 6 deep.
    if (depth > MAX_JSON_DEPTH) fail(`nesting of at most ${MAX_JSON_DEPTH} levels`);
    skip();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj: Record<string, unknown> = {};
      skip();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        skip();
        if (text[pos] !== '"') fail('a string key');
        const k = parseString();
        skip();
        if (text[pos] !== ':') fail("':'");
        pos++;
        const value = parseValue(obj, k);
        // Own data property even for "__proto__".
        Object.defineProperty(obj, k, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        skip();
        if (text[pos] === ',') pos++;
        else if (text[pos] === '}') {
          pos++;
          return obj;
        } else fail("',' or '}'");
      }
    }
    if (c === '[') {
      pos++;
      const arr: unknown[] = [];
      skip();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(arr, arr.length));
        skip();
        if (text[pos] === ',') pos++;
        else if (text[pos] === ']') {
          pos++;
          return arr;
        } else fail("',' or ']'");
      }
    }
    if (c === '"') return parseString();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['-Infinity', Number.NEGATIVE_INFINITY],
    ] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    const match = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(pos, pos + 64));
    if (match === null) return fail('a JSON value');
    pos += match[0].length;
    if (container !== undefined) {
      markNumberKind(
        container,
        key,
        match[1] !== undefined || match[2] !== undefined ? 'float' : 'int',
      );
    }
    return Number(match[0]);
  };
  const value = parseValue(undefined, '');
  skip();
  if (pos !== text.length) fail('end of text');
  return value;
}

/** `results.gsm8k["acc,none"]` style path for messages. */
export function formatPath(path: JsonPath): string {
  let out = '$';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) out += `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}
