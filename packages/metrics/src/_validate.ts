import { MetricsError } from './errors';
import type { Estimate } from './types';

/** Numbers from booleans or numbers, refusing NaN/Infinity with the offending index. */
export function toNumbers(what: string, outcomes: readonly (number | boolean)[]): number[] {
  if (!Array.isArray(outcomes)) {
    throw new MetricsError(
      'BAD_INPUT',
      `${what}: expected an array of numbers or booleans, got ${describe(outcomes)}`,
    );
  }
  const out = new Array<number>(outcomes.length);
  for (let i = 0; i < outcomes.length; i++) {
    const v = outcomes[i];
    const x = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      throw new MetricsError(
        'BAD_INPUT',
        `${what}[${i}]: expected a finite number or boolean, got ${describe(v)}`,
      );
    }
    out[i] = x;
  }
  return out;
}

export function requireFinite(what: string, x: unknown): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) {
    throw new MetricsError('BAD_INPUT', `${what}: expected a finite number, got ${describe(x)}`);
  }
  return x;
}

export function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v;
}

/** `{ value, stderr }` from a number or an estimate, validated. */
export function toEstimate(what: string, x: number | Estimate): Estimate {
  if (typeof x === 'number') return { value: requireFinite(what, x), stderr: Number.NaN };
  if (x === null || typeof x !== 'object') {
    throw new MetricsError(
      'BAD_INPUT',
      `${what}: expected a number or { value, stderr }, got ${describe(x)}`,
    );
  }
  return { value: requireFinite(`${what}.value`, x.value), stderr: x.stderr };
}
