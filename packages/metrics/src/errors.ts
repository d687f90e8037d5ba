/**
 * The error class `@qlora/metrics` throws. Messages read
 * `[@qlora/metrics] <what failed>: expected <x>, got <y>`.
 *
 * @example
 * try { forgettingRate(0, 0.1); } catch (e) { if (e instanceof MetricsError) e.code; } // 'DIVISION_BY_ZERO'
 */
export class MetricsError extends Error {
  override readonly name: string = 'MetricsError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[@qlora/metrics] ${message}`, options);
    this.code = code;
  }
}
