#!/usr/bin/env python3
"""Lossy peers of gradwire measured on the same files, each tuned to a target number of bits per
entry with one setting for the whole file:

- `sz3`: SZ3 (pysz), one absolute error bound, bisected;
- `zfp`: ZFP (zfpy) in fixed-accuracy mode, one tolerance, bisected;
- `bitround+zstd`: numcodecs BitRound (mantissa bits kept, 0..23) then Zstd level 3, the
  largest number of kept bits that fits;
- `quantize+zstd`: numcodecs Quantize (decimal digits kept after the point) then Zstd level 3,
  the largest number of digits that fits.

Outside CI (it needs `pip install numpy safetensors pysz zfpy==1.0.1 numcodecs`; numcodecs 0.16
fails to import with zfpy 1.0.1.post0). For each input, peer and target rate it prints bits per
entry (the peer's whole compressed output) and the relative MSE over the file (sum of squared
errors over sum of squares), as a Markdown table or, with --json, as JSON that the gradwire
tables can merge. A peer that cannot meet a rate on a file (bitround keeps at least the sign and
exponent) is left out at that rate for that file, so `gradwire bench --peers` sums such a row
over fewer files: compare rows only when every file fits.

    python3 bench/peers.py ../shared/data/digits-mlp/r03_c0.safetensors --rates 1 2 3 4
    python3 bench/peers.py --json DIR/*.safetensors > peers.json
    gradwire bench DIR --peers peers.json    # merged into the same table

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


def sz3_codec(x, bound):
    """SZ3 with absolute error bound `bound`: (compressed bytes, decoded array)."""
    from pysz import sz, szConfig, szErrorBoundMode

    config = szConfig()
    config.errorBoundMode = szErrorBoundMode.ABS
    config.absErrorBound = float(bound)
    compressed, _ = sz.compress(x, config)
    decoded, _ = sz.decompress(compressed, np.float32, x.shape)
    return compressed.size, decoded


def zfp_codec(x, tolerance):
    """ZFP in fixed-accuracy mode with `tolerance`."""
    import zfpy

    compressed = zfpy.compress_numpy(x, tolerance=float(tolerance))
    return len(compressed), zfpy.decompress_numpy(compressed)


def bitround_codec(x, keepbits):
    """numcodecs BitRound keeping `keepbits` mantissa bits, then Zstd level 3."""
    from numcodecs import BitRound, Zstd

    rounded = BitRound(keepbits=int(keepbits)).encode(x)
    compressed = Zstd(level=3).encode(rounded)
    decoded = np.frombuffer(Zstd(level=3).decode(compressed), dtype=np.float32)
    return len(compressed), decoded


def quantize_codec(x, digits):
    """numcodecs Quantize keeping `digits` decimal digits after the point, then Zstd level 3."""
    from numcodecs import Quantize, Zstd

    quantize = Quantize(digits=int(digits), dtype="<f4")
    compressed = Zstd(level=3).encode(quantize.encode(x))
    decoded = quantize.decode(np.frombuffer(Zstd(level=3).decode(compressed), dtype="<f4"))
    return len(compressed), np.asarray(decoded, dtype=np.float32)


def measure(x, codec, setting, sums=False):
    """(bits per entry, relative MSE) of `codec` at `setting` on the 1-D array x; with `sums`,
    also the totals that `gradwire bench --peers` adds up over files."""
    size, decoded = codec(x, setting)
    x64 = x.astype(np.float64)
    e = (np.asarray(decoded, dtype=np.float64).ravel() - x64) ** 2
    bpe, rel = size * 8 / x.size, float(np.sum(e) / np.sum(x64**2))
    if not sums:
        return bpe, rel
    totals = {
        "values": int(x.size),
        "bits": int(size * 8),
        "squared_error": float(np.sum(e)),
        "energy": float(np.sum(x64**2)),
        "weighted_error": float(np.sum(x64**2 * e)),
        "weighted_energy": float(np.sum(x64**4)),
    }
    return bpe, rel, totals


def bisect_bound(x, codec, rate):
    """The smallest error bound whose output takes at most `rate` bits per entry (bisection on a
    log scale, 50 steps)."""
    lo, hi = 1e-12, float(np.abs(x).max()) * 2
    for _ in range(50):
        mid = (lo * hi) ** 0.5
        if measure(x, codec, mid)[0] > rate:
            lo = mid
        else:
            hi = mid
    return hi


def largest_fitting(x, codec, rate, settings):
    """The largest integer setting (most precise) whose output takes at most `rate` bits per
    entry, or None."""
    fitting = [k for k in settings if measure(x, codec, k)[0] <= rate]
    return max(fitting) if fitting else None


PEERS = {
    "sz3": (sz3_codec, lambda x, r: bisect_bound(x, sz3_codec, r), "abs bound"),
    "zfp": (zfp_codec, lambda x, r: bisect_bound(x, zfp_codec, r), "tolerance"),
    "bitround+zstd": (bitround_codec, lambda x, r: largest_fitting(x, bitround_codec, r, range(0, 24)), "keepbits"),
    "quantize+zstd": (quantize_codec, lambda x, r: largest_fitting(x, quantize_codec, r, range(0, 12)), "digits"),
}


def at_rate(x, rate, peer="sz3"):
    """`peer` at the most precise setting whose output takes at most `rate` bits per entry, or
    None when no setting fits."""
    codec, choose, what = PEERS[peer]
    setting = choose(x, rate)
    if setting is None:
        return None
    bpe, rel, totals = measure(x, codec, setting, sums=True)
    if bpe > rate:
        return None  # even the coarsest bound tried does not fit
    return {"peer": peer, "setting": f"{what} {setting:.3g}", "bits_per_entry": bpe, "relative_mse": rel, **totals}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--rates", nargs="+", type=float, default=[1, 2, 3, 4])
    ap.add_argument("--peers", nargs="+", choices=sorted(PEERS), default=sorted(PEERS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for path in args.inputs:
        x = load(path)
        for peer in args.peers:
            for rate in args.rates:
                row = at_rate(x, rate, peer)
                if row is not None:
                    rows.append({"input": path, "target_bits_per_entry": rate, **row})
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return
    print("| input | target | peer | bits/entry | relative MSE |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['input'].split('/')[-1]} | {r['target_bits_per_entry']:g} | {r['peer']} {r['setting']} "
            f"| {r['bits_per_entry']:.3f} | {r['relative_mse']:.3e} |"
        )


if __name__ == "__main__":
    main()
