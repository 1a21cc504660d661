#!/usr/bin/env python3
"""Differential test of the two gradwire decoders.

Mutates every valid vector in spec/vectors (one flipped bit at every byte, and random byte changes
with every CRC repaired so the damage reaches record and codec parsing), decodes each mutant with
the Python decoder (conformance/python, written from the spec alone), and writes the mutants with
the Python decoder's result as a manifest. `gradwire conformance run` then checks that the Rust
decoder produces the same result for every one: the same decoded content, or the same error code.

With --cases it also writes the hand-built streams of conformance/python/test_cases.py (rules
and corners, e.g. of the intrinsic codec, that the spec vectors do not cover), again with the
Python decoder's result as the expectation.

Side information (FORMAT.md §14, §19): the mutants of a vector that names a `side_info` stream
are decoded with it. When it changes the Python decoder's result, the mutant's entry names the
same file (copied into OUT_DIR), so the Rust runner decodes it with the same side information
(and, for a mutant that decodes, checks that it gives `side_info_missing` without it); when it
changes nothing (the damage comes first, or the mutant no longer decodes against side
information) the entry names none, and both decoders read the mutant without.

With --rust BIN, runs `BIN conformance run OUT_DIR` afterwards (e.g. target/debug/gradwire) and
exits with its status.

Usage: python3 conformance/differential.py OUT_DIR [--random N] [--seed S] [--cases] [--rust BIN]
       then: gradwire conformance run OUT_DIR
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "python"))
import gradwire_decode as gw  # noqa: E402


def fix_crcs(data: bytearray) -> None:
    """Recompute the preamble CRC and, record by record while the framing holds, body and header CRCs."""
    if len(data) < 16:
        return
    data[12:16] = struct.pack("<I", gw.crc32c(bytes(data[:12])))
    pos = 16
    while pos + 32 <= len(data):
        body_len = struct.unpack_from("<Q", data, pos + 8)[0]
        end = pos + 32 + body_len
        if end <= len(data):
            data[pos + 20 : pos + 24] = struct.pack("<I", gw.crc32c(bytes(data[pos + 32 : end])))
        data[pos + 28 : pos + 32] = struct.pack("<I", gw.crc32c(bytes(data[pos : pos + 28])))
        if end > len(data):
            break
        pos = end + (8 - end % 8) % 8


def mutants(data: bytes, rng: random.Random, n_random: int):
    for i in range(len(data)):
        m = bytearray(data)
        m[i] ^= 1 << (i % 8)
        yield f"flip{i}", bytes(m)
    for k in range(n_random):
        m = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(16, len(m)) if len(m) > 16 else rng.randrange(len(m))
            m[i] = rng.choice([0, 0xFF, rng.randrange(256), m[i] ^ (1 << rng.randrange(8))])
        fix_crcs(m)
        yield f"fixed{k}", bytes(m)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--random", type=int, default=300, help="CRC-repaired random mutants per vector")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", action="store_true", help="also write test_cases.py's hand-built streams")
    ap.add_argument("--rust", metavar="BIN", help="then run BIN conformance run OUT (the Rust decoder)")
    args = ap.parse_args()
    vectors = os.path.join(HERE, "..", "spec", "vectors")
    manifest = json.load(open(os.path.join(vectors, "manifest.json")))
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    out, codes = [], {}
    side_cache = {}
    n_side = 0

    def result(m: bytes, side):
        try:
            return gw.decode_bytes(m, side_info=side), "ok"
        except gw.GradwireError as e:
            return None, e.code

    def add(vid: str, m: bytes, description: str, side_name: str | None = None) -> None:
        nonlocal n_side
        expected, expect = result(m, None)
        if side_name is not None:
            with_side = result(m, side_cache[side_name])
            if with_side != (expected, expect):
                if with_side[1] == "ok" and expect != "side_info_missing":
                    raise AssertionError(f"{vid}: decodes with side information, and without it gives {expect}")
                expected, expect = with_side
                n_side += 1
            else:
                side_name = None
        codes[expect] = codes.get(expect, 0) + 1
        name = vid + ".gw"
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(m)
        item = {"id": vid, "file": name, "description": description, "expect": expect, "sha256": hashlib.sha256(m).hexdigest()}
        if side_name is not None:
            item["side_info"] = side_name
        if expected is not None:
            item["expected"] = expected
        out.append(item)

    for entry in manifest:
        if entry["expect"] != "ok":
            continue
        data = open(os.path.join(vectors, entry["file"]), "rb").read()
        side_name = entry.get("side_info")
        if side_name is not None and side_name not in side_cache:
            src = os.path.join(vectors, side_name)
            side_cache[side_name] = gw.load_side_info(src)
            shutil.copyfile(src, os.path.join(args.out, side_name))
        for tag, m in mutants(data, rng, args.random):
            add(f"{entry['id']}-{tag}", m, "mutant", side_name)
    if args.cases:
        import test_cases  # noqa: E402  (conformance/python is on sys.path)

        for i, (title, m, _) in enumerate(test_cases.finish_cases(test_cases.cases())):
            add(f"case{i:03d}", m, title)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(out, f)
    print(
        f"{len(out)} streams written ({n_side} of them with side information); "
        f"Python decoder results: {dict(sorted(codes.items()))}"
    )
    if args.rust:
        return subprocess.run([args.rust, "conformance", "run", args.out]).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
