/**
 * Special functions behind the tests' p-values: log-gamma, the regularized incomplete beta
 * (Lentz's continued fraction), the regularized upper incomplete gamma, and the Student-t,
 * chi-square and binomial tails built on them. Checked against SciPy in `special.test.ts`.
 */

const HALF_LOG_TWO_PI = 0.9189385332046728; // ln(√(2π))

// Godfrey's Lanczos coefficients (g = 607/128, 15 terms): ~1e-15 relative error for x < 10.
const LANCZOS_G = 607 / 128;
// Godfrey's values rounded to the nearest double.
const LANCZOS = [
  0.9999999999999971, 57.15623566586292, -59.59796035547549, 14.136097974741746,
  -0.4919138160976202, 0.00003399464998481189, 0.00004652362892704858, -0.00009837447530487956,
  0.0001580887032249125, -0.00021026444172410488, 0.00021743961811521265, -0.0001643181065367639,
  0.00008441822398385275, -0.000026190838401581408, 0.0000036899182659531625,
];

/** Stirling's correction lgamma(x) − [(x−½)ln x − x + ln√(2π)], for x ≥ 10. */
function stirlingCorrection(x: number): number {
  const inv = 1 / x;
  const inv2 = inv * inv;
  return (
    inv *
    (1 / 12 +
      inv2 *
        (-1 / 360 +
          inv2 * (1 / 1260 + inv2 * (-1 / 1680 + inv2 * (1 / 1188 + inv2 * (-691 / 360360))))))
  );
}

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (Number.isNaN(x) || x <= 0) return Number.NaN;
  if (x >= 10) return (x - 0.5) * Math.log(x) - x + HALF_LOG_TWO_PI + stirlingCorrection(x);
  if (x < 0.5) {
    // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const z = x - 1;
  let sum = LANCZOS[0] as number;
  for (let i = 1; i < LANCZOS.length; i++) sum += (LANCZOS[i] as number) / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return HALF_LOG_TWO_PI + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** ln Γ(x+h) − ln Γ(x) for x ≥ 10, h ≥ 0, without cancelling two large numbers. */
function logGammaShift(x: number, h: number): number {
  return (
    (x - 0.5) * Math.log1p(h / x) +
    h * Math.log(x + h) -
    h +
    stirlingCorrection(x + h) -
    stirlingCorrection(x)
  );
}

/** ln B(a, b). */
export function logBeta(a: number, b: number): number {
  const big = Math.max(a, b);
  const small = Math.min(a, b);
  if (big >= 10) return logGamma(small) - logGammaShift(big, small);
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

const TINY = 1e-300;
const EPS = 1e-16;

/** Continued fraction for I_x(a, b) (Numerical Recipes' betacf), evaluated by modified Lentz. */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) return h;
  }
  return h;
}

/**
 * Regularized incomplete beta I_x(a, b). `y` = 1 − x may be passed when the caller knows it more
 * precisely than `1 - x` would give (the t-distribution does).
 */
export function regularizedIncompleteBeta(
  a: number,
  b: number,
  x: number,
  y: number = 1 - x,
): number {
  if (Number.isNaN(a) || Number.isNaN(b) || Number.isNaN(x) || a <= 0 || b <= 0) return Number.NaN;
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const logFront = a * Math.log(x) + b * Math.log(y) - logBeta(a, b);
  if (x < (a + 1) / (a + b + 2)) {
    return (Math.exp(logFront) * betaContinuedFraction(a, b, x)) / a;
  }
  return 1 - (Math.exp(logFront) * betaContinuedFraction(b, a, y)) / b;
}

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a). */
export function regularizedUpperGamma(a: number, x: number): number {
  if (Number.isNaN(a) || Number.isNaN(x) || a <= 0) return Number.NaN;
  if (x <= 0) return 1;
  if (x === Number.POSITIVE_INFINITY) return 0;
  const logFront = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    // Series for P(a, x), then Q = 1 − P (Q is not small here).
    let ap = a;
    let sum = 1 / a;
    let del = sum;
    for (let n = 0; n < 10_000; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * EPS) break;
    }
    return 1 - sum * Math.exp(logFront);
  }
  // Continued fraction for Q(a, x), modified Lentz.
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i <= 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(logFront) * h;
}

/** Student-t survival function P(T > t) with `df` degrees of freedom (df > 0, may be fractional). */
export function studentTSurvival(t: number, df: number): number {
  if (Number.isNaN(t) || Number.isNaN(df) || df <= 0) return Number.NaN;
  if (t === Number.POSITIVE_INFINITY) return 0;
  if (t === Number.NEGATIVE_INFINITY) return 1;
  const t2 = t * t;
  // x = df/(df+t²) and 1−x = t²/(df+t²), each computed directly.
  const tail = 0.5 * regularizedIncompleteBeta(df / 2, 0.5, df / (df + t2), t2 / (df + t2));
  return t >= 0 ? tail : 1 - tail;
}

/** Chi-square survival function P(X > x) with `df` degrees of freedom. */
export function chiSquareSurvival(x: number, df: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  return regularizedUpperGamma(df / 2, x / 2);
}

/** Binomial CDF P(X ≤ k) for X ~ Binomial(n, p). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p === 0.5 && n <= 50) {
    // Exact: C(n, i) are integers below 2^53 here and 2^−n is a power of two.
    let coefficient = 1;
    let sum = 1;
    for (let i = 1; i <= k; i++) {
      coefficient = (coefficient * (n - i + 1)) / i;
      sum += coefficient;
    }
    return sum * 2 ** -n;
  }
  return regularizedIncompleteBeta(n - k, k + 1, 1 - p, p);
}
