"""Reference values for @qlora/metrics' statistical tests, computed with SciPy (and statsmodels if
installed). Run on a machine with scipy:

    python3 tools/reference/metrics_scipy.py OUT_DIR

Writes OUT_DIR/scipy-stats.json (cases + expected values) and OUT_DIR/versions.json.
Inputs are generated here with a seeded numpy Generator and stored in the fixture, so the
TypeScript tests read the same arrays; 0/1 arrays are stored as strings of '0'/'1'.
"""

import json
import math
import platform
import sys

import numpy as np
import scipy
from scipy import special, stats

try:
    import statsmodels
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
except Exception:  # statsmodels is optional
    statsmodels = None
    sm_mcnemar = None


def num(x):
    """JSON cannot hold nan/inf: write them as strings the TS side maps back."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def bits(arr):
    return "".join("1" if v else "0" for v in arr)


def correlated_outcomes(rng, n, p_base, p_ft, keep):
    """Base outcomes ~ Bernoulli(p_base); ft copies base with probability `keep`, else redraws."""
    base = rng.random(n) < p_base
    redraw = rng.random(n) < p_ft
    copy = rng.random(n) < keep
    ft = np.where(copy, base, redraw)
    return base.astype(int), ft.astype(int)


def main(out_dir):
    rng = np.random.default_rng(20260525)
    out = {"ttest": [], "tsf": [], "betainc": [], "binomtest": [], "chi2sf": [], "mcnemar": []}

    # --- paired t-tests ---------------------------------------------------------------
    binary_cases = []
    binary_cases.append(("tiny n=2", [1, 0], [0, 0]))
    binary_cases.append(("tiny n=3", [1, 0, 1], [0, 0, 1]))
    binary_cases.append(("zero variance, nonzero mean", [1] * 10, [0] * 10))
    binary_cases.append(("all equal (0/0)", [1, 0, 1, 1], [1, 0, 1, 1]))
    for name, n, pb, pf, keep in [
        ("gsm8k-like n=1319", 1319, 0.3351, 0.0371, 0.1),
        ("hellaswag-like n=10042", 10042, 0.6077, 0.6120, 0.85),
        ("mmlu-like n=100", 100, 0.47, 0.34, 0.5),
        ("n=30 worse", 30, 0.2, 0.6, 0.3),
    ]:
        a, b = correlated_outcomes(rng, n, pb, pf, keep)
        binary_cases.append((name, a.tolist(), b.tolist()))
    for name, a, b in binary_cases:
        r = stats.ttest_rel(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
        out["ttest"].append(
            {"name": name, "a": bits(a), "b": bits(b), "t": num(r.statistic), "df": num(r.df), "p": num(r.pvalue)}
        )
    for name, n in [("continuous n=5", 5), ("continuous n=200", 200)]:
        a = rng.normal(0.0, 1.0, n)
        b = a + rng.normal(0.1, 0.5, n)
        r = stats.ttest_rel(a, b)
        out["ttest"].append(
            {"name": name, "a": a.tolist(), "b": b.tolist(), "t": num(r.statistic), "df": num(r.df), "p": num(r.pvalue)}
        )

    # --- Student-t survival function and the incomplete beta behind it ----------------------
    for t in [0.0, 0.1, 0.5, 1.0, 1.96, 2.5, 4.0, 10.0, 40.0, -1.5]:
        for df in [1, 2, 3, 9, 30, 99, 1318, 10041, 0.5, 2.5]:
            out["tsf"].append({"t": t, "df": df, "sf": num(stats.t.sf(t, df))})
    for a, b, x in [
        (0.5, 0.5, 0.3), (1, 1, 0.25), (2, 3, 0.4), (0.5, 5, 0.01), (5, 0.5, 0.99), (10, 10, 0.5),
        (50, 0.5, 0.9), (0.5, 50, 0.1), (100, 200, 0.3), (659, 0.5, 0.999), (5020.5, 0.5, 0.9995),
        (3, 7, 1e-6), (3, 7, 1 - 1e-9), (1e-3, 1e-3, 0.5), (25, 25, 0.2), (7.5, 2.25, 0.77),
    ]:
        out["betainc"].append({"a": a, "b": b, "x": x, "value": num(special.betainc(a, b, x))})

    # --- exact binomial and chi-square ------------------------------------------------
    for k, n in [(0, 1), (0, 5), (1, 5), (2, 10), (5, 10), (3, 24), (12, 24), (0, 24), (7, 20), (30, 100)]:
        out["binomtest"].append({"k": k, "n": n, "p": num(stats.binomtest(k, n, 0.5).pvalue)})
    for x in [0.0, 1e-6, 0.1, 1.0, 3.841458820694124, 6.0, 10.0, 25.0, 100.0, 300.0]:
        out["chi2sf"].append({"x": x, "df": 1, "sf": num(stats.chi2.sf(x, 1))})

    # --- McNemar ------------------------------------------------------------------------
    mc_cases = [
        ("no discordant", [1, 0, 1], [1, 0, 1]),
        ("tiny exact", [1, 1, 1, 0, 0], [0, 0, 1, 0, 1]),
        ("one-sided exact b=10 c=0", [1] * 10 + [0] * 5, [0] * 10 + [0] * 5),
        ("threshold-1 exact b=17 c=7", [1] * 17 + [0] * 7 + [1] * 4, [0] * 17 + [1] * 7 + [1] * 4),
        ("threshold chi2 b=18 c=7", [1] * 18 + [0] * 7 + [0] * 3, [0] * 18 + [1] * 7 + [0] * 3),
        ("balanced chi2 b=c=15", [1] * 15 + [0] * 15, [0] * 15 + [1] * 15),
    ]
    for name, n, pb, pf, keep in [
        ("gsm8k-like n=1319", 1319, 0.3351, 0.0371, 0.1),
        ("hellaswag-like n=10042", 10042, 0.6077, 0.6120, 0.85),
        ("mmlu-like n=100", 100, 0.47, 0.34, 0.5),
    ]:
        a, b = correlated_outcomes(rng, n, pb, pf, keep)
        mc_cases.append((name, a.tolist(), b.tolist()))
    for name, a, b in mc_cases:
        a = np.asarray(a, dtype=int)
        b = np.asarray(b, dtype=int)
        n01 = int(np.sum((a == 1) & (b == 0)))  # base right, ft wrong
        n10 = int(np.sum((a == 0) & (b == 1)))  # base wrong, ft right
        d = n01 + n10
        if d == 0:
            exact_p = 1.0
        else:
            exact_p = stats.binomtest(min(n01, n10), d, 0.5).pvalue
        chi2_stat = ((abs(n01 - n10) - 1) ** 2 / d) if d > 0 else float("nan")
        chi2_p = stats.chi2.sf(chi2_stat, 1) if d > 0 else float("nan")
        case = {
            "name": name, "a": bits(a), "b": bits(b), "b01": n01, "c10": n10,
            "exact": {"statistic": min(n01, n10), "p": num(exact_p)},
            "chi2": {"statistic": num(chi2_stat), "p": num(chi2_p)},
        }
        if sm_mcnemar is not None and d > 0:
            table = [[int(np.sum((a == 1) & (b == 1))), n01], [n10, int(np.sum((a == 0) & (b == 0)))]]
            ex = sm_mcnemar(table, exact=True)
            ch = sm_mcnemar(table, exact=False, correction=True)
            case["statsmodels"] = {
                "exact": {"statistic": num(ex.statistic), "p": num(ex.pvalue)},
                "chi2": {"statistic": num(ch.statistic), "p": num(ch.pvalue)},
            }
        out["mcnemar"].append(case)

    with open(f"{out_dir}/scipy-stats.json", "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
    versions = {
        "script": "tools/reference/metrics_scipy.py",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "statsmodels": statsmodels.__version__ if statsmodels is not None else None,
    }
    with open(f"{out_dir}/versions-scipy.json", "w", encoding="utf-8") as f:
        json.dump(versions, f, indent=2)
    print(json.dumps(versions))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
