import { BenchCoreError } from './errors';

/**
 * Python's `repr(float)` / `str(float)`: the shortest round-trip digits like JS, but with
 * Python's layout: `1.0` not `1`, `1e-05` not `0.00001`, `1e+16` from 16 digits on, `nan`, `inf`.
 * lm-eval writes log-likelihoods into samples files through `str()`, so byte parity needs this.
 *
 * @example
 * ```ts
 * formatPythonFloat(-3); // '-3.0'
 * formatPythonFloat(0.00001); // '1e-05'
 * ```
 */
export function formatPythonFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Number.POSITIVE_INFINITY) return 'inf';
  if (x === Number.NEGATIVE_INFINITY) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // Shortest round-trip digits and decimal exponent, from JS's exponential form.
  const [mantissa, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const exponent = Number(expText);
  const sign = x < 0 ? '-' : '';
  if (exponent < -4 || exponent >= 16) {
    const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const expSign = exponent < 0 ? '-' : '+';
    return `${sign}${head}e${expSign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  if (digits.length <= exponent + 1)
    return `${sign}${digits}${'0'.repeat(exponent + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}

/** A JSON value as Python's `json` module sees it; `PythonFloat` marks a value written as float. */
export type PythonJsonValue =
  | string
  | number
  | boolean
  | null
  | PythonFloat
  | readonly PythonJsonValue[]
  | { readonly [key: string]: PythonJsonValue | undefined };

/**
 * Wraps a number that Python holds as a `float`, so {@link dumpsPythonJson} writes `1.0`, not `1`.
 *
 * @example
 * ```ts
 * dumpsPythonJson({ acc: new PythonFloat(1) }); // '{"acc": 1.0}'
 * ```
 */
export class PythonFloat {
  constructor(readonly value: number) {}
}

/**
 * Python `json.dumps(value, ensure_ascii=False)` (or with `indent`): `", "` and `": "` separators
 * without indent, `","` plus newlines with it, Python float layout for {@link PythonFloat}, and
 * integers for plain integral numbers. Used for lm-eval's `doc_hash`
 * (`json.dumps(doc, indent=2, ensure_ascii=False)`).
 *
 * @example
 * ```ts
 * dumpsPythonJson({ a: [1, 'é'] }); // '{"a": [1, "é"]}'
 * dumpsPythonJson({ a: 1 }, { indent: 2 }); // '{\n  "a": 1\n}'
 * ```
 */
export function dumpsPythonJson(value: PythonJsonValue, options: { indent?: number } = {}): string {
  return dumpValue(value, options.indent, 0);
}

function dumpValue(
  value: PythonJsonValue | undefined,
  indent: number | undefined,
  depth: number,
): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof PythonFloat) return dumpFloat(value.value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    return Number.isInteger(value) && !Object.is(value, -0)
      ? String(BigInt(value))
      : dumpFloat(value);
  }
  const isArray = Array.isArray(value);
  const entries: [string | undefined, PythonJsonValue | undefined][] = isArray
    ? (value as readonly PythonJsonValue[]).map((v) => [undefined, v])
    : Object.entries(value as Record<string, PythonJsonValue | undefined>).filter(
        ([, v]) => v !== undefined,
      );
  const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return `${open}${close}`;
  const parts = entries.map(([k, v]) => {
    const body = dumpValue(v, indent, depth + 1);
    return k === undefined ? body : `${JSON.stringify(k)}: ${body}`;
  });
  if (indent === undefined) return `${open}${parts.join(', ')}${close}`;
  const inner = `\n${' '.repeat(indent * (depth + 1))}`;
  const outer = `\n${' '.repeat(indent * depth)}`;
  return `${open}${inner}${parts.join(`,${inner}`)}${outer}${close}`;
}

function dumpFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Number.POSITIVE_INFINITY) return 'Infinity';
  if (x === Number.NEGATIVE_INFINITY) return '-Infinity';
  return formatPythonFloat(x);
}

/**
 * Python `str()` of a response value, as lm-eval's `sanitize_list` writes it into samples files:
 * floats via {@link formatPythonFloat}, booleans as `True`/`False`, nested arrays kept.
 *
 * @example
 * ```ts
 * sanitizePythonList([[-1.5, false]]); // [['-1.5', 'False']]
 * ```
 */
export function sanitizePythonList(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sanitizePythonList);
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return formatPythonFloat(value);
  if (typeof value === 'string') return value;
  if (value instanceof PythonFloat) return formatPythonFloat(value.value);
  throw new BenchCoreError(
    'E_SANITIZE',
    `sanitize response: expected a string, number, boolean or array, got ${typeof value}`,
  );
}
