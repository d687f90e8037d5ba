"""Reference vectors for @qlora/bench-core's Python-compatible text helpers, from CPython itself:
float repr, str.strip whitespace, json.dumps(indent=2, ensure_ascii=False), str.capitalize.

Run: python3 tools/reference/python_text.py
Writes test-fixtures/bench-core/python-text.json.
"""

import json
import os
import random
import struct
import sys

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test-fixtures", "bench-core")


def main() -> None:
    rnd = random.Random(7)
    floats = [0.0, -0.0, 1.0, -3.0, 0.1, 1e-4, 1e-5, 1.5e-7, 123456789.0, 1e15, 1e16, 1.2345e16,
              2.0**53, 1 / 3, -2.5e-300, 5e-324, 1.7976931348623157e308, 100.0, 0.049756985195624305]
    for _ in range(300):
        kind = rnd.random()
        if kind < 0.4:
            x = -rnd.random() * 10 ** rnd.randint(-8, 3)
        elif kind < 0.7:
            x = float(rnd.randint(-10**6, 10**6)) / 2 ** rnd.randint(0, 20)
        else:
            x = struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0]
            if x != x or x in (float("inf"), float("-inf")):
                continue
        floats.append(x)
    float_reprs = [[struct.pack("<d", x).hex(), repr(x)] for x in floats]

    whitespace = [cp for cp in range(0x3001) if chr(cp).isspace()]
    doc = {"question": "Janet\u2019s ducks \"lay\" 16\neggs\t", "choices": ["A", "", "\u00e9\u0001"],
           "answer": 2, "nested": {"empty": [], "obj": {}}, "gold": 0}
    dumps = {
        "indent2": json.dumps(doc, indent=2, ensure_ascii=False),
        "compact": json.dumps(doc, ensure_ascii=False),
    }
    capitalize = [[s, s.capitalize()] for s in ["then scrape it", "THEN Scrape IT", "", "a", "\u00e9T\u00c9", "1abC", " x",
                                                  "\u00dfa", "\ufb00X", "\u01c6A", "\u01c4a", "\u01f3b", "\u01cbC", "\U0001d400A", "\u0130X"]]

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "python-text.json"), "w") as f:
        json.dump({"floatRepr": float_reprs, "whitespace": whitespace, "doc": doc, "dumps": dumps,
                   "capitalize": capitalize}, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("wrote python-text.json", file=sys.stderr)


if __name__ == "__main__":
    main()
