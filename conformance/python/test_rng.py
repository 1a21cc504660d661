#!/usr/bin/env python3
"""Checks the seeded-generator test vectors of FORMAT.md §9.6 and the intrinsic draws of
CODECS.md §7.7, against the generator in gradwire_decode.py (the one copy the decoder uses)."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradwire_decode as gw  # noqa: E402


def words_of(bits: np.ndarray) -> list[int]:
    """Sign bits (LSB first, 64 to a word) back to the words they came from."""
    padded = np.zeros(-(-len(bits) // 64) * 64, dtype=np.uint8)
    padded[: len(bits)] = bits
    return [int(w) for w in np.packbits(padded, bitorder="little").view("<u8")]


def format_vectors() -> None:
    """FORMAT.md §9.6."""
    st = 0
    outs = []
    for _ in range(3):
        st, o = gw.splitmix64(st)
        outs.append(o)
    assert outs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert gw.mix64(1) == 0x910A2DEC89025CC1
    assert gw.fnv1a64(b"fc1.weight") == 0x0FC5AB63896269ED
    assert gw.chunk_seed(0, "fc1.weight", 0) == 0xF131771262DD3E06
    assert gw.chunk_seed(42, "fc1.weight", 0) == 0x80736970310426DE
    assert gw.chunk_seed(42, "fc1.weight", 1) == 0xE02BF1E1632A579E
    assert gw.chunk_seed(42, "fc2.bias", 7) == 0x4BEB564683A9D8FD
    x = gw.Xoshiro256(raw=(1, 2, 3, 4))
    assert [x.next_u64() for _ in range(4)] == [11520, 0, 1509978240, 1215971899390074240]
    x = gw.Xoshiro256(42)
    assert [x.next_u64() for _ in range(4)] == [
        0x15780B2E0C2EC716,
        0x6104D9866D113A7E,
        0xAE17533239E499A1,
        0xECB8AD4703B360A1,
    ]
    x = gw.Xoshiro256(42)
    assert [x.next_below(10) for _ in range(8)] == [0, 3, 6, 9, 9, 7, 7, 8]
    x = gw.Xoshiro256(42)
    assert [int(x.next_unit_f32().view(np.uint32)) for _ in range(3)] == [0x3DABC058, 0x3EC209B2, 0x3F2E1753]
    x = gw.Xoshiro256(42)
    assert x.next_u32() == 0x15780B2E
    assert x.next_below(0) == 0 and x.next_u64() == 0x6104D9866D113A7E  # next_below(0) draws nothing


def intrinsic_vectors() -> None:
    """CODECS.md §7.7."""

    def params(**kw):
        base = dict(family=0, scaling=0, schedule=0, dim=100, nonzeros=0, groups=0, seed=42, round=0)
        base.update(kw)
        return gw.IntrinsicParams(**base)

    assert params().projection_seed() == 42
    assert params(schedule=2, round=3).projection_seed() == 0x43AA8652AD94B3A2
    assert params(schedule=1, groups=2, round=3).projection_seed() == 0x7EB3B394AC9EFC29
    seed = gw.chunk_seed(42, "fc1.weight", 0)
    assert seed == 0x80736970310426DE
    blocks = gw.srht_blocks(200, 100)
    assert [(end - start, pb, db) for start, end, pb, db in blocks] == [(128, 128, 64), (64, 64, 32), (8, 8, 4)]
    rng = gw.Xoshiro256(seed)
    sigma, rows = gw.srht_block_draws(rng, 128, 64)
    assert words_of(sigma) == [0x46E81078B42A185F, 0x69665FFC781BB592]
    assert rows[:8] == [109, 10, 0, 22, 72, 84, 55, 53]
    rng = gw.Xoshiro256(seed)
    assert rng.next_u64() == 0x46E81078B42A185F
    assert [rng.next_below(200) for _ in range(4)] == [82, 170, 15, 170]
    # The blocks of the stream vectors' descriptions (manifest.json).
    assert [(e - s, pb) for s, e, pb, _ in gw.srht_blocks(150, 100)] == [(128, 128), (22, 32)]
    assert [(e - s, pb) for s, e, pb, _ in gw.srht_blocks(50, 50)] == [(50, 64)]
    assert [(e - s, pb) for s, e, pb, _ in gw.srht_blocks(300, 40)] == [(256, 256), (44, 64)]
    for n in (1, 2, 63, 64, 65, 127, 200, 1000, 4097):
        for d in sorted({1, min(3, n), n // 2 or 1, n}):
            bl = gw.srht_blocks(n, d)
            assert sum(db for *_, db in bl) == d and all(db <= e - s for s, e, _, db in bl)


def randk_vectors():
    """CODECS.md §8.2: the first positions for seed 3, fc1.weight, chunk 0, n = 1000, k = 4."""
    rng = gw.Xoshiro256(gw.chunk_seed(3, "fc1.weight", 0))
    assert gw.partial_shuffle(rng, 1000, 4) == [692, 343, 857, 771]
    assert gw.randk_kept(gw.RandKParams(round(0.01 * 2**32), 0, 0), 100) == 1
    assert gw.randk_kept(gw.RandKParams(round(0.5 * 2**32), 0, 0), 7) == 4


def main():
    format_vectors()
    print("FORMAT.md §9.6: all generator vectors reproduced")
    intrinsic_vectors()
    print("CODECS.md §7.7: all intrinsic draw vectors reproduced")
    randk_vectors()
    print("CODECS.md §8.2: randk positions reproduced")


if __name__ == "__main__":
    main()
