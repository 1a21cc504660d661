#!/usr/bin/env python3
"""Lossy peers of gradwire measured on the same files: SZ3 (pysz) with one absolute error bound
for the whole file, bisected to a target number of bits per entry.

Outside CI (it needs `pip install numpy safetensors pysz`). For each input and each target rate
it prints bits per entry (SZ3's whole compressed output) and the relative MSE over the file
(sum of squared errors over sum of squares), as a Markdown table or, with --json, as JSON that
the gradwire tables can merge.

    python3 bench/peers.py ../shared/data/digits-mlp/r03_c0.safetensors --rates 1 2 3 4
    python3 bench/peers.py --json DIR/*.safetensors > sz3.json
    gradwire bench DIR --peers sz3.json      # merged into the same table

The bound is bisected per file (one absolute bound for the whole file), as `m22:rate=B` chooses
one cell width per file (stream).
"""

import argparse
import json
import sys

import numpy as np


def load(path):
    """All tensors of a .safetensors or .npy file, flattened and concatenated in name order."""
    if path.endswith(".npy"):
        return np.load(path).astype(np.float32).ravel()
    from safetensors.numpy import load_file

    tensors = load_file(path)
    return np.concatenate([tensors[k].astype(np.float32).ravel() for k in sorted(tensors)])


def sz3(x, bound, sums=False):
    """(bits per entry, relative MSE) of SZ3 with absolute error bound `bound` on the 1-D array x;
    with `sums`, also the totals that `gradwire bench --peers` adds up over files."""
    from pysz import sz, szConfig, szErrorBoundMode

    config = szConfig()
    config.errorBoundMode = szErrorBoundMode.ABS
    config.absErrorBound = float(bound)
    compressed, _ = sz.compress(x, config)
    decoded, _ = sz.decompress(compressed, np.float32, x.shape)
    x64 = x.astype(np.float64)
    e = (decoded.astype(np.float64) - x64) ** 2
    bpe, rel = compressed.size * 8 / x.size, float(np.sum(e) / np.sum(x64**2))
    if not sums:
        return bpe, rel
    totals = {
        "values": int(x.size),
        "bits": int(compressed.size * 8),
        "squared_error": float(np.sum(e)),
        "energy": float(np.sum(x64**2)),
        "weighted_error": float(np.sum(x64**2 * e)),
        "weighted_energy": float(np.sum(x64**4)),
    }
    return bpe, rel, totals


def at_rate(x, rate):
    """SZ3 at the smallest absolute bound whose output takes at most `rate` bits per entry
    (bisection on a log scale, 50 steps)."""
    lo, hi = 1e-12, float(np.abs(x).max()) * 2
    for _ in range(50):
        mid = (lo * hi) ** 0.5
        if sz3(x, mid)[0] > rate:
            lo = mid
        else:
            hi = mid
    bpe, rel, totals = sz3(x, hi, sums=True)
    return {"peer": "sz3", "abs_bound": hi, "bits_per_entry": bpe, "relative_mse": rel, **totals}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--rates", nargs="+", type=float, default=[1, 2, 3, 4])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for path in args.inputs:
        x = load(path)
        for rate in args.rates:
            rows.append({"input": path, "target_bits_per_entry": rate, **at_rate(x, rate)})
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return
    print("| input | target | peer | bits/entry | relative MSE |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['input'].split('/')[-1]} | {r['target_bits_per_entry']:g} | SZ3 abs {r['abs_bound']:.3g} "
            f"| {r['bits_per_entry']:.3f} | {r['relative_mse']:.3e} |"
        )


if __name__ == "__main__":
    main()
