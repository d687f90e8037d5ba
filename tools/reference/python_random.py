"""Reference vectors for @qlora/bench-core's PythonRandom, from CPython's own `random` module.

Run: python3 tools/reference/python_random.py
Writes test-fixtures/bench-core/python-random.json and versions.json (the Python version).
"""

import json
import os
import platform
import random
import sys

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test-fixtures", "bench-core")


def main() -> None:
    seeds = [0, 1, 42, 1234, 2**32 - 1, 2**32 + 5, 2**70 + 3, -7]
    vectors = []
    for seed in seeds:
        r = random.Random(seed)
        entry = {"seed": str(seed)}
        entry["uint32"] = [r.getrandbits(32) for _ in range(8)]
        r = random.Random(seed)
        entry["random"] = [repr(r.random()) for _ in range(5)]
        r = random.Random(seed)
        entry["getrandbits"] = [
            [k, str(r.getrandbits(k))] for k in [1, 7, 8, 31, 32, 33, 53, 64, 100]
        ]
        r = random.Random(seed)
        entry["randbelow"] = [[n, r.randrange(n)] for n in [1, 2, 3, 7, 10, 255, 256, 257, 1000, 7473, 2**31, 2**32 - 1, 2**40 + 1]]
        r = random.Random(seed)
        shuffles = []
        for n in [0, 1, 2, 10, 50]:
            xs = list(range(n))
            r.shuffle(xs)
            shuffles.append(xs)
        entry["shuffle"] = shuffles
        r = random.Random(seed)
        samples = []
        # Pairs straddle CPython's setsize rule: k <= 5 → 21; k = 6 → 21 + 4**3 = 85.
        for n, k in [(10, 3), (21, 5), (22, 5), (85, 6), (86, 6), (100, 20), (7473, 5), (5, 5), (3, 0)]:
            samples.append([n, k, r.sample(range(n), k)])
        entry["sample"] = samples
        r = random.Random(seed)
        entry["choice"] = [r.choice("abcdefghij") for _ in range(6)]
        entry["randint"] = [r.randint(1, 6) for _ in range(6)]
        vectors.append(entry)

    # lm-eval's gsm8k few-shot stream: one Random(1234), sample(range(7473), 5) per test doc.
    r = random.Random(1234)
    gsm8k = [r.sample(range(7473), 5) for _ in range(1319)]
    # hellaswag k-shot stream with the eval doc drawn from the same split: sample(n, k + 1).
    r = random.Random(1234)
    draw_k_plus_one = [r.sample(range(1000), 11) for _ in range(20)]

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "python-random.json"), "w") as f:
        json.dump(
            {"vectors": vectors, "gsm8kFewshotIndices": gsm8k, "sample1000k11": draw_k_plus_one},
            f,
            separators=(",", ":"),
        )
        f.write("\n")
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump(
            {"python": platform.python_version(), "implementation": platform.python_implementation(), "script": "tools/reference/python_random.py"},
            f,
            indent=2,
        )
        f.write("\n")
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
