#!/usr/bin/env python3
"""Robustness checks for gradwire_decode.py (not part of the spec's vectors).

For every valid vector of DIR (default: ../../spec/vectors):
  * every truncation (every prefix length) must be rejected with `truncated`
    (prefixes shorter than 16 bytes that match the magic: `truncated`, as §3 says);
  * every single-bit flip must be rejected with some §12 code (never accepted, never a crash);
  * the whole stream must decode identically when the reader gets one byte per read();
  * a set of random multi-byte corruptions must never raise an uncaught exception.
For every invalid vector: every single-bit flip must not crash.
A vector with `side_info` (FORMAT.md §14) is decoded, whole and damaged, with the side information
that file holds, as the manifest says a runner must.

Prints a summary and exits nonzero on any problem.
"""

import io
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradwire_decode as gw  # noqa: E402


class OneByteReader(io.RawIOBase):
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def readable(self):
        return True

    def read(self, n=-1):
        if self.pos >= len(self.data):
            return b""
        b = self.data[self.pos : self.pos + 1]
        self.pos += 1
        return b


def outcome(data, one_byte=False, side=None):
    try:
        f = OneByteReader(data) if one_byte else io.BytesIO(data)
        return "ok", gw.Decoder(side_info=side).decode(f)
    except gw.GradwireError as e:
        return e.code, None
    except Exception as e:  # noqa: BLE001
        return f"CRASH {type(e).__name__}: {e}", None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "spec", "vectors")
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    problems = []
    counts = {"truncations": 0, "bitflips": 0, "random": 0, "streams": 0}
    counts["with side information"] = 0
    rng = random.Random(1234)
    side_cache = {}
    for e in manifest:
        data = open(os.path.join(d, e["file"]), "rb").read()
        side = None
        if "side_info" in e:
            if e["side_info"] not in side_cache:
                side_cache[e["side_info"]] = gw.load_side_info(os.path.join(d, e["side_info"]))
            side = side_cache[e["side_info"]]
            counts["with side information"] += 1
        if e["expect"] == "ok":
            code, res = outcome(data, one_byte=True, side=side)
            counts["streams"] += 1
            if code != "ok" or res != e["expected"]:
                problems.append(f"{e['id']}: one-byte-at-a-time read gives {code}")
            for cut in range(len(data)):
                counts["truncations"] += 1
                code, _ = outcome(data[:cut], side=side)
                if code != "truncated":
                    problems.append(f"{e['id']}: truncated at {cut} gives {code}")
            for bit in range(len(data) * 8):
                counts["bitflips"] += 1
                m = bytearray(data)
                m[bit // 8] ^= 1 << (bit % 8)
                code, _ = outcome(bytes(m), side=side)
                if code == "ok" or code.startswith("CRASH"):
                    problems.append(f"{e['id']}: bit {bit} flipped gives {code}")
            for _ in range(300):
                counts["random"] += 1
                m = bytearray(data)
                for _ in range(rng.randint(1, 8)):
                    m[rng.randrange(len(m))] = rng.randrange(256)
                code, _ = outcome(bytes(m), side=side)
                if code.startswith("CRASH"):
                    problems.append(f"{e['id']}: random corruption gives {code}")
        else:
            for bit in range(len(data) * 8):
                counts["bitflips"] += 1
                m = bytearray(data)
                m[bit // 8] ^= 1 << (bit % 8)
                code, _ = outcome(bytes(m), side=side)
                if code.startswith("CRASH"):
                    problems.append(f"{e['id']}: bit {bit} flipped gives {code}")
    for p in problems[:50]:
        print(p)
    print(f"{counts}; {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
