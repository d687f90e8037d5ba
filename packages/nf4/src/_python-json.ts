// The exact text Python's `json.dumps` (default separators) writes for the values bitsandbytes
// packs into `quant_state.bitsandbytes__*`: ints, ASCII strings, int lists and floats (repr).

/** Python `repr(float)`: shortest round-trip digits; fixed notation for 1e-4 ≤ |x| < 1e16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Number.POSITIVE_INFINITY) return 'Infinity';
  if (x === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without an argument gives the shortest digits that round-trip, like repr.
  const [mantissa = '', exp = '0'] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const e = Number(exp);
  if (e >= -5 + 1 && e < 16) {
    if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
    const intPart = digits.slice(0, e + 1).padEnd(e + 1, '0');
    const frac = digits.slice(e + 1);
    return `${sign}${intPart}.${frac === '' ? '0' : frac}`;
  }
  const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
  const absExp = String(Math.abs(e)).padStart(2, '0');
  return `${sign}${digits[0]}${frac}e${e < 0 ? '-' : '+'}${absExp}`;
}

export type PythonJsonValue = number | string | readonly number[] | { float: number };

/** `json.dumps(dict)` for a flat dict; `{ float: x }` marks a Python float (an int otherwise). */
export function pythonJsonDumps(entries: [string, PythonJsonValue][]): string {
  const parts = entries.map(([key, value]) => {
    let text: string;
    if (typeof value === 'string') text = JSON.stringify(value);
    else if (typeof value === 'number') text = String(value);
    else if (Array.isArray(value)) text = `[${value.join(', ')}]`;
    else text = pythonFloatRepr((value as { float: number }).float);
    return `${JSON.stringify(key)}: ${text}`;
  });
  return `{${parts.join(', ')}}`;
}
