#!/usr/bin/env python3
"""Independent streaming decoder for the gradwire 1.0 container format.

Written from spec/FORMAT.md, spec/CODECS.md and spec/REGISTRY.md only (no access to the
reference implementation).  Section numbers in comments refer to FORMAT.md unless they say
CODECS.md.

Usage:
    python3 gradwire_decode.py decode FILE [--side-info SIDE]
                                 # canonical JSON (FORMAT.md §14) or an error; SIDE is a gradwire
                                 # stream whose tensors, by name, are the side information (§19)
    python3 gradwire_decode.py run DIR          # check every vector of DIR/manifest.json

Dependencies: Python 3.11, numpy (value conversion), zstandard (the zstd stage).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import math
import struct
import sys
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import zstandard

# --------------------------------------------------------------------------------------------
# Errors (§12)
# --------------------------------------------------------------------------------------------

ERROR_CODES = frozenset(
    """bad_magic unsupported_version reserved_nonzero nonzero_padding checksum_preamble
    checksum_header checksum_body checksum_decoded bad_sync truncated unknown_record sequence
    unsupported_feature unsupported_codec unsupported_dtype pipeline_invalid invalid_params
    limit_exceeded shape_overflow duplicate_tensor unknown_tensor chunk_order index_mismatch
    codec_output_size codec_data malformed side_info_missing side_info_mismatch invalid_argument
    io""".split()
)


class GradwireError(Exception):
    """A rejection, carrying one of the error codes of §12."""

    def __init__(self, code: str, message: str):
        assert code in ERROR_CODES, code
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _err(code: str, message: str) -> GradwireError:
    return GradwireError(code, message)


# --------------------------------------------------------------------------------------------
# CRC32C (§1): reflected polynomial 0x82F63B78, init 0xFFFFFFFF, final XOR 0xFFFFFFFF.
# Slicing-by-8 tables so that the pure-Python loop handles 8 bytes per iteration.
# --------------------------------------------------------------------------------------------


def _crc_tables() -> list[list[int]]:
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tables


_CRC_T = _crc_tables()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C of data; pass a previous result as crc to continue a running CRC."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _CRC_T
    crc ^= 0xFFFFFFFF
    mv = memoryview(data)
    n = len(mv)
    n8 = n - (n % 8)
    if n8:
        for (w,) in struct.iter_unpack("<Q", mv[:n8]):
            w ^= crc
            crc = (
                t7[w & 0xFF]
                ^ t6[(w >> 8) & 0xFF]
                ^ t5[(w >> 16) & 0xFF]
                ^ t4[(w >> 24) & 0xFF]
                ^ t3[(w >> 32) & 0xFF]
                ^ t2[(w >> 40) & 0xFF]
                ^ t1[(w >> 48) & 0xFF]
                ^ t0[w >> 56]
            )
    for b in mv[n8:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# --------------------------------------------------------------------------------------------
# Limits (§11, reference defaults)
# --------------------------------------------------------------------------------------------

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    max_record_body: int = 80 * MiB
    max_chunk_decoded: int = 64 * MiB
    max_header_body: int = 1 * MiB
    max_tensors: int = 1_048_576
    max_open_tensors: int = 64
    max_rank: int = 32
    max_name_len: int = 1024
    max_stages: int = 8
    max_param_len: int = 4096
    max_tensor_bytes: int = 16 * GiB
    max_metadata_value: int = 65_536


U64_MAX = (1 << 64) - 1

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

MAGIC = b"\x89GWF\r\n\x1a\n"
SYNC = b"\xffGWR"

RT_STREAM_HEADER = 0x0001
RT_TENSOR_BEGIN = 0x0002
RT_CHUNK = 0x0003
RT_TENSOR_END = 0x0004
RT_END = 0x0005
RT_METADATA = 0x8001
RT_INDEX = 0x8002
SKIPPABLE_BIT = 0x8000

RTYPE_NAMES = {
    RT_STREAM_HEADER: "STREAM_HEADER",
    RT_TENSOR_BEGIN: "TENSOR_BEGIN",
    RT_CHUNK: "CHUNK",
    RT_TENSOR_END: "TENSOR_END",
    RT_END: "END",
    RT_METADATA: "METADATA",
    RT_INDEX: "INDEX",
}

DTYPES = {1: "f32", 2: "f16", 3: "bf16", 4: "f64"}

FLAG_DECODED_CRC = 0x01

NAME_RE = re.compile(r"[a-z][a-z0-9_.\-]*")  # used with fullmatch (no '$' newline pitfall)

REGISTERED_KEYS = {
    # key: (type code, allowed values or None)
    "fl.round": (2, None),
    "fl.client_id": (1, None),
    "fl.num_examples": (2, None),
    "fl.payload_kind": (1, {"gradient", "delta", "weights"}),
    "fl.base_model_digest": (0, None),
    "producer": (1, None),
    "fl.num_updates": (2, None),
    "gradwire.kind": (1, None),
}

KV_TYPE_NAMES = {0: "bytes", 1: "utf8", 2: "u64", 3: "i64", 4: "f64"}

# --------------------------------------------------------------------------------------------
# The seeded random generator (§9): wrapping 64-bit integer arithmetic on Python ints
# --------------------------------------------------------------------------------------------

M64 = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    """§9.1: one SplitMix64 step; returns (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def mix64(x: int) -> int:
    """§9.1: splitmix64 applied once to a copy of state x."""
    return splitmix64(x & M64)[1]


def fnv1a64(data: bytes) -> int:
    """§9.2."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def chunk_seed(s: int, name: str, c: int) -> int:
    """§9.5: chunk_seed(s, name, c) = mix64(s XOR mix64(fnv1a64(utf8(name)) XOR mix64(c)))."""
    return mix64(s ^ mix64(fnv1a64(name.encode("utf-8")) ^ mix64(c)))


def _rotl64(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & M64


class Xoshiro256:
    """§9.3: xoshiro256**, seeded by four successive splitmix64 outputs from state `seed`."""

    __slots__ = ("s0", "s1", "s2", "s3")

    def __init__(self, seed: int | None = None, raw: tuple[int, int, int, int] | None = None):
        if raw is not None:
            self.s0, self.s1, self.s2, self.s3 = (v & M64 for v in raw)
            return
        st = seed & M64
        out = []
        for _ in range(4):
            st, o = splitmix64(st)
            out.append(o)
        self.s0, self.s1, self.s2, self.s3 = out

    def next_u64(self) -> int:
        s0, s1, s2, s3 = self.s0, self.s1, self.s2, self.s3
        result = (_rotl64((s1 * 5) & M64, 7) * 9) & M64
        t = (s1 << 17) & M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl64(s3, 45)
        self.s0, self.s1, self.s2, self.s3 = s0, s1, s2, s3
        return result

    def next_u32(self) -> int:
        return self.next_u64() >> 32

    def next_below(self, bound: int) -> int:
        """Lemire's method; next_below(0) is 0 and draws nothing."""
        if bound == 0:
            return 0
        threshold = ((1 << 64) - bound) % bound
        while True:
            m = self.next_u64() * bound
            if (m & M64) >= threshold:
                return m >> 64

    def next_unit_f32(self) -> np.float32:
        """(next_u64 >> 40) converted to f32 (exact) times 2^-24 (exact)."""
        return np.float32(self.next_u64() >> 40) * np.float32(2.0**-24)

    def sign_bits(self, count: int) -> np.ndarray:
        """`count` sign bits drawn 64 to a next_u64, least significant bit first (CODECS.md §7.2),
        as a uint32 array of 0/1 (1 = negative)."""
        words = np.array([self.next_u64() for _ in range(-(-count // 64))], dtype="<u8")
        return np.unpackbits(words.view(np.uint8), bitorder="little")[:count].astype(np.uint32)


# --------------------------------------------------------------------------------------------
# Body cursor: field-by-field parsing, a missing field is `malformed` (§6.0 step 2)
# --------------------------------------------------------------------------------------------


class Cursor:
    def __init__(self, data: bytes, what: str):
        self.data = data
        self.pos = 0
        self.what = what

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, fieldname: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise _err("malformed", f"{self.what}: body ends inside field '{fieldname}'")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self, f: str) -> int:
        return self.take(1, f)[0]

    def u16(self, f: str) -> int:
        return int.from_bytes(self.take(2, f), "little")

    def u32(self, f: str) -> int:
        return int.from_bytes(self.take(4, f), "little")

    def u64(self, f: str) -> int:
        return int.from_bytes(self.take(8, f), "little")

    def i32(self, f: str) -> int:
        return int.from_bytes(self.take(4, f), "little", signed=True)

    def utf8(self, n: int, f: str) -> str:
        b = self.take(n, f)
        try:
            return b.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise _err("malformed", f"{self.what}: field '{f}' is not valid UTF-8") from None

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise _err(
                "malformed",
                f"{self.what}: {len(self.data) - self.pos} trailing byte(s) after the last field",
            )


# --------------------------------------------------------------------------------------------
# Key-value map (§6.1)
# --------------------------------------------------------------------------------------------


def parse_kv_map(cur: Cursor, limits: Limits) -> dict:
    """Parse and validate a key-value map; returns {key: typed JSON value}."""
    count = cur.u32("count")
    out: dict = {}
    prev_key: bytes | None = None
    for i in range(count):
        key_len = cur.u16("key_len")
        # The 1..=255 length is part of the key syntax, checked with it (FORMAT.md §6.1).
        key_bytes = cur.take(key_len, "key")
        vtype = cur.u8("type")
        value_len = cur.u32("value_len")
        # The documented per-entry order: key is UTF-8, key order, value length limit,
        # value type code, length of fixed-size types, UTF-8 of text, key syntax,
        # registered key type and value.
        try:
            key = key_bytes.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise _err("malformed", f"metadata entry {i}: key is not UTF-8") from None
        if prev_key is not None and not key_bytes > prev_key:
            raise _err("malformed", f"metadata key {key!r} is not strictly after the previous key")
        prev_key = key_bytes
        if value_len > limits.max_metadata_value:
            raise _err("limit_exceeded", f"metadata key {key!r}: value_len {value_len} > 65536")
        if vtype not in KV_TYPE_NAMES:
            raise _err("malformed", f"metadata key {key!r}: unknown value type {vtype}")
        if vtype in (2, 3, 4) and value_len != 8:
            raise _err("malformed", f"metadata key {key!r}: value_len {value_len} != 8")
        value = cur.take(value_len, "value")
        if vtype == 1:
            try:
                text = value.decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                raise _err("malformed", f"metadata key {key!r}: text value is not UTF-8") from None
        if not 1 <= len(key_bytes) <= 255 or not NAME_RE.fullmatch(key):
            raise _err("malformed", f"metadata key {key!r} does not match ^[a-z][a-z0-9_.-]*$")
        if key in REGISTERED_KEYS:
            want_type, allowed = REGISTERED_KEYS[key]
            if vtype != want_type:
                raise _err(
                    "malformed",
                    f"registered key {key!r} must have type {KV_TYPE_NAMES[want_type]}, "
                    f"not {KV_TYPE_NAMES[vtype]}",
                )
            if allowed is not None and text not in allowed:
                raise _err("malformed", f"registered key {key!r}: value {text!r} not allowed")
        if vtype == 0:
            jv = {"bytes": value.hex()}
        elif vtype == 1:
            jv = {"utf8": text}
        elif vtype == 2:
            jv = {"u64": int.from_bytes(value, "little")}
        elif vtype == 3:
            jv = {"i64": int.from_bytes(value, "little", signed=True)}
        else:
            jv = {"f64_bits": "%016x" % int.from_bytes(value, "little")}
        out[key] = jv
    return out


# --------------------------------------------------------------------------------------------
# Codecs (CODECS.md) and pipelines (§7)
# --------------------------------------------------------------------------------------------

KIND_AA = "array->array"
KIND_AB = "array->bytes"
KIND_BB = "bytes->bytes"


def f16_to_f32_bits(h: np.ndarray) -> np.ndarray:
    """Exact binary16 -> binary32 conversion on bit patterns (CODECS.md §2 decode).

    Pure integer arithmetic on uint32 arrays: NaN payloads are kept exactly (no quiet bit is
    added), subnormals are normalised exactly.
    """
    h = h.astype(np.uint32)
    sign = (h & np.uint32(0x8000)) << np.uint32(16)
    exp = (h >> np.uint32(10)) & np.uint32(0x1F)
    man = h & np.uint32(0x3FF)
    # normal numbers: rebias exponent 15 -> 127 (+112)
    normal = sign | ((exp + np.uint32(112)) << np.uint32(23)) | (man << np.uint32(13))
    # infinities and NaNs: ((h & 0x8000) << 16) | 0x7F800000 | ((h & 0x03FF) << 13)
    special = sign | np.uint32(0x7F800000) | (man << np.uint32(13))
    # subnormals: value = man * 2^-24; p = floor(log2(man)) computed with integer compares
    p = np.zeros_like(man)
    for k in range(1, 10):
        p += (man >= np.uint32(1 << k)).astype(np.uint32)
    lead = np.left_shift(np.uint32(1), p)
    frac = np.where(man >= lead, man - np.minimum(lead, man), np.uint32(0))
    sub = sign | ((p + np.uint32(103)) << np.uint32(23)) | (frac << (np.uint32(23) - p))
    out = np.where(exp == np.uint32(0x1F), special, normal)
    out = np.where(exp == np.uint32(0), np.where(man == np.uint32(0), sign, sub), out)
    return out.astype(np.uint32)


def zstd_bound(m: int) -> int:
    """CODECS.md §4: ZSTD_COMPRESSBOUND."""
    return m + (m >> 8) + (((128 * KiB - m) >> 11) if m < 128 * KiB else 0)


@dataclass
class Stage:
    codec_id: int
    version: int
    params: bytes
    private_name: str | None
    name: str = ""
    kind: str = ""
    level: int | None = None
    sign_mode: int = 0
    sign_block: int = 0
    m22_bits: int = 0
    intrinsic: "IntrinsicParams | None" = None
    randk: "RandKParams | None" = None
    topk: "TopKParams | None" = None
    max_magnitude: int = 0  # qsgd and sparse-dither (CODECS.md §10.1)
    spherical: "SphericalParams | None" = None
    wz: "WynerZivParams | None" = None

    def side_requirement(self) -> "SideRequirement | None":
        """FORMAT.md §19.2: what this stage decodes against (only wyner-ziv uses side information)."""
        if self.codec_id == WYNER_ZIV_ID:
            return self.wz.side()
        return None

    def sign_scales(self, n: int) -> int:
        """CODECS.md §5: number of f32 scales in a signsgd chunk of n values."""
        if self.sign_mode == 0:
            return 0
        if self.sign_mode == 1:
            return 1 if n > 0 else 0
        return -(-n // self.sign_block)

    # ---- size bounds ----
    def array_output_len(self, n: int) -> int:
        """array->array stages: the output (encoded) length for an input of n values (§7.3)."""
        if self.codec_id == INTRINSIC_ID:
            return intrinsic_output_len(self.intrinsic, n)
        if self.codec_id == RANDK_ID:
            return randk_kept(self.randk, n)
        raise AssertionError("unreachable: unknown array->array codec in a built pipeline")

    def max_output(self, n: int) -> int:
        """Maximum encoded size: n values for array->bytes, n bytes for bytes->bytes."""
        if self.codec_id == 0x01:
            return 4 * n
        if self.codec_id in (0x02, 0x03):
            return 2 * n
        if self.codec_id == 0x10:
            return zstd_bound(n)
        if self.codec_id == 0x100:
            return 4 * self.sign_scales(n) + (n + 7) // 8
        if self.codec_id == 0x101:
            return 16 + 4 * (1 << self.m22_bits) + n + 1
        if self.codec_id == TOPK_ID:
            k = randk_kept(RandKParams(self.topk.fraction, 0, 0), n)
            return 1 + self.topk.max_value_bytes(k) + (n + k + 7) // 8
        if self.codec_id in (QSGD_ID, SPARSE_DITHER_ID):
            return levels_max_len(n, self.max_magnitude)
        if self.codec_id == SPHERICAL_ID:
            return spherical_max_len(self.spherical, n)
        if self.codec_id == WYNER_ZIV_ID:
            return wyner_ziv_max_len(n)
        raise AssertionError("unreachable: unknown codec in a built pipeline")

    # ---- decoding ----
    def decode_values(self, payload: bytes, n: int, ctx: "ChunkContext") -> np.ndarray:
        """array->bytes decode: returns the f32 bit patterns as uint32."""
        if self.codec_id == 0x01:  # raw
            if len(payload) != 4 * n:
                raise _err("codec_output_size", f"raw: payload of {len(payload)} bytes, expected {4 * n}")
            return np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        if self.codec_id in (0x02, 0x03):
            if len(payload) != 2 * n:
                raise _err(
                    "codec_output_size", f"{self.name}: payload of {len(payload)} bytes, expected {2 * n}"
                )
            h = np.frombuffer(payload, dtype="<u2").astype(np.uint32)
            if self.codec_id == 0x03:  # bf16: h << 16, NaNs included
                return (h << np.uint32(16)).astype(np.uint32)
            return f16_to_f32_bits(h)
        if self.codec_id == 0x100:
            return self.decode_signsgd(payload, n)
        if self.codec_id == 0x101:
            return decode_m22(payload, n, 1 << self.m22_bits, self.version)
        if self.codec_id == TOPK_ID:
            return decode_topk(self.topk, payload, n, ctx)
        if self.codec_id in (QSGD_ID, SPARSE_DITHER_ID):
            return decode_levels(self.name, payload, n, self.max_magnitude)
        if self.codec_id == SPHERICAL_ID:
            return decode_spherical(self.spherical, payload, n, ctx.tensor_name, ctx.chunk_index)
        if self.codec_id == WYNER_ZIV_ID:
            return decode_wyner_ziv(self.wz, payload, n, ctx.side)
        raise AssertionError("unreachable")

    def decode_signsgd(self, payload: bytes, n: int) -> np.ndarray:
        """CODECS.md §5, checks in the order given there."""
        k = self.sign_scales(n)
        expected = 4 * k + (n + 7) // 8
        if len(payload) != expected:
            raise _err("codec_output_size", f"signsgd: payload of {len(payload)} bytes, expected {expected}")
        scales = np.frombuffer(payload[: 4 * k], dtype="<u4").astype(np.uint32)
        bad = np.nonzero(((scales >> np.uint32(31)) != 0) | ((scales & np.uint32(0x7F800000)) == 0x7F800000))[0]
        if len(bad):
            raise _err("codec_data", f"signsgd: scale {bad[0]} is 0x{int(scales[bad[0]]):08x}")
        plane = np.frombuffer(payload[4 * k :], dtype=np.uint8)
        if n % 8 and int(plane[-1]) >> (n % 8):
            raise _err("reserved_nonzero", "signsgd: padding bits after the last value are not zero")
        signs = np.unpackbits(plane, bitorder="little")[:n].astype(np.uint32)
        if self.sign_mode == 0:
            magnitudes = np.full(n, 0x3F800000, dtype=np.uint32)
        elif self.sign_mode == 1:
            magnitudes = np.full(n, scales[0] if n else 0, dtype=np.uint32)
        else:
            magnitudes = scales[np.arange(n) // self.sign_block]  # never more than n entries
        return (magnitudes | (signs << np.uint32(31))).astype(np.uint32)

    def decode_array(self, values: np.ndarray, n: int, ctx: "ChunkContext") -> np.ndarray:
        """array->array decode: array_output_len(n) values (uint32 bit patterns) -> n values."""
        if self.codec_id == INTRINSIC_ID:
            with np.errstate(all="ignore"):  # inf - inf and the like are legal f32 results
                return decode_intrinsic(self.intrinsic, values, n, ctx.tensor_name, ctx.chunk_index)
        if self.codec_id == RANDK_ID:
            with np.errstate(all="ignore"):
                return decode_randk(self.randk, values, n, ctx.tensor_name, ctx.chunk_index)
        raise AssertionError("unreachable")

    def decode_bytes(self, payload: bytes, max_out: int) -> bytes:
        """bytes->bytes decode, producing at most max_out bytes."""
        if self.codec_id == 0x10:
            return zstd_decode(payload, max_out)
        raise AssertionError("unreachable")


CORE_CODECS = {
    # id: (name, kind, supported versions)
    0x01: ("raw", KIND_AB, {1}),
    0x02: ("f16", KIND_AB, {1}),
    0x03: ("bf16", KIND_AB, {1}),
    0x10: ("zstd", KIND_BB, {1}),
}
# Registered extensions (REGISTRY.md) this reader implements.
REGISTERED_CODECS = {
    0x100: ("signsgd", KIND_AB, {1}),
    0x101: ("m22", KIND_AB, {1, 2}),
    0x102: ("intrinsic", KIND_AA, {1}),
    0x103: ("randk", KIND_AA, {1}),
    0x104: ("topk", KIND_AB, {1, 2}),
    0x105: ("qsgd", KIND_AB, {1}),
    0x106: ("sparse-dither", KIND_AB, {1}),
    0x107: ("spherical", KIND_AB, {1}),
    0x108: ("wyner-ziv", KIND_AB, {1}),
}
# Private-range codecs registered with this reader: none.
PRIVATE_CODECS: dict[int, tuple[str, str, set]] = {}


def is_private_codec(cid: int) -> bool:
    return 0x80000000 <= cid <= 0xFFFFFFFE


def check_params(stage: Stage, limits: "Limits") -> None:
    """The codec accepts its parameters (`invalid_params` otherwise)."""
    if stage.codec_id in (0x01, 0x02, 0x03):
        if len(stage.params) != 0:
            raise _err("invalid_params", f"{stage.name}: takes no parameters, got {len(stage.params)} bytes")
    elif stage.codec_id == 0x10:
        if len(stage.params) != 4:
            raise _err("invalid_params", f"zstd: parameter block of {len(stage.params)} bytes, expected 4")
        level = int.from_bytes(stage.params, "little", signed=True)
        if not -7 <= level <= 22:
            raise _err("invalid_params", f"zstd: level {level} not in -7..=22")
        stage.level = level
    elif stage.codec_id == 0x100:
        p = stage.params
        if len(p) != 8:
            raise _err("invalid_params", f"signsgd: parameter block of {len(p)} bytes, expected 8")
        if p[1:4] != b"\0\0\0":
            raise _err("reserved_nonzero", "signsgd: reserved parameter bytes 1..4 are not zero")
        mode, block = p[0], int.from_bytes(p[4:8], "little")
        if mode not in (0, 1, 2):
            raise _err("invalid_params", f"signsgd: scale mode {mode}")
        if mode != 2 and block != 0:
            raise _err("invalid_params", f"signsgd: block {block} with mode {mode}")
        if mode == 2 and not (32 <= block <= 1 << 30 and block % 32 == 0):
            raise _err("invalid_params", f"signsgd: block {block} is not a multiple of 32 in 32..=2^30")
        stage.sign_mode, stage.sign_block = mode, block
    elif stage.codec_id == 0x101:
        p = stage.params
        sizes = (4, 8, 12) if stage.version >= 2 else (4, 8)
        if len(p) not in sizes:
            raise _err("invalid_params", f"m22 v{stage.version}: parameter block of {len(p)} bytes, expected {sizes}")
        if p[3] != 0 or (len(p) == 12 and p[5:8] != b"\0\0\0"):
            raise _err("reserved_nonzero", "m22: reserved parameter byte is not zero")
        if not 1 <= p[0] <= 8:
            raise _err("invalid_params", f"m22: bits {p[0]} not in 1..=8")
        if p[1] > 4:
            raise _err("invalid_params", f"m22: m {p[1]} not in 0..=4")
        if p[2] > 1:
            raise _err("invalid_params", f"m22: family {p[2]}")
        if len(p) == 12 and p[4] not in (1, 2):
            raise _err("invalid_params", f"m22: mode {p[4]}")
        if len(p) > 4:
            (target,) = struct.unpack("<f", p[-4:])
            if not (math.isfinite(target) and target > 0):
                raise _err("invalid_params", f"m22: target {target}")
        stage.m22_bits = p[0]
    elif stage.codec_id == INTRINSIC_ID:
        stage.intrinsic = parse_intrinsic_params(stage.params)
    elif stage.codec_id == RANDK_ID:
        stage.randk = parse_randk_params(stage.params)
    elif stage.codec_id == TOPK_ID:
        stage.topk = parse_topk_params(stage.params, stage.version, limits)
    elif stage.codec_id == QSGD_ID:
        stage.max_magnitude = parse_qsgd_params(stage.params)
    elif stage.codec_id == SPARSE_DITHER_ID:
        parse_sparse_dither_params(stage.params)
        stage.max_magnitude = MAX_MAGNITUDE
    elif stage.codec_id == SPHERICAL_ID:
        stage.spherical = parse_spherical_params(stage.params)
    elif stage.codec_id == WYNER_ZIV_ID:
        stage.wz = parse_wyner_ziv_params(stage.params)


@dataclass(frozen=True)
class ChunkContext:
    """§7.4: the chunk context every stage call receives."""

    tensor_name: str
    tensor_id: int
    chunk_index: int
    first_element: int
    chunk_seed: int  # §9.5, from the stream seed (intrinsic derives its own, CODECS.md §7.2)
    # §19: the slice of the tensor's side information that covers the chunk's elements (f32 bit
    # patterns as uint32), when the pipeline decodes against side information; else None.
    side: "np.ndarray | None" = None


def parse_stage_entries(cur: "Cursor", n_stages: int, L: Limits) -> list[Stage]:
    """§6.2: n_stages stage entries (u32 codec_id, u16 version, u16 param_len, params, and for
    a private ID u8 name_len and the name); the param_len limit is checked when the field is
    read (§6.0 step 2). Shared by TENSOR_BEGIN and topk's nested values pipeline."""
    stages: list[Stage] = []
    for i in range(n_stages):
        codec_id = cur.u32(f"stages[{i}].codec_id")
        version = cur.u16(f"stages[{i}].codec_version")
        param_len = cur.u16(f"stages[{i}].param_len")
        if param_len > L.max_param_len:
            raise _err("limit_exceeded", f"stage {i}: param_len {param_len} > max_param_len")
        params = cur.take(param_len, f"stages[{i}].params")
        pname = None
        if is_private_codec(codec_id):
            pname_len = cur.u8(f"stages[{i}].name_len")
            pname = cur.utf8(pname_len, f"stages[{i}].name")
        stages.append(Stage(codec_id, version, params, pname))
    return stages


def validate_stage_entry(i: int, s: Stage, L: Limits) -> None:
    """§6.2: the checks on one stage entry that need no registry."""
    if len(s.params) > L.max_param_len:
        raise _err("limit_exceeded", f"stage {i}: param_len {len(s.params)} > max_param_len")
    if s.codec_id in (0, 0xFFFFFFFF):
        raise _err("unsupported_codec", f"stage {i}: invalid codec ID 0x{s.codec_id:08x}")
    if s.private_name is not None:
        if not NAME_RE.fullmatch(s.private_name) or "." not in s.private_name:
            raise _err("malformed", f"stage {i}: private codec name {s.private_name!r} is not vendor.codec")


class Pipeline:
    def __init__(self, stages: list[Stage]):
        self.stages = stages  # encode order
        self.aa = [s for s in stages if s.kind == KIND_AA]
        self.ab = next(s for s in stages if s.kind == KIND_AB)
        self.bb = [s for s in stages if s.kind == KIND_BB]

    def lengths(self, n: int) -> list[int]:
        """§7.3: n0 = n, n(k+1) = array->array stage k's output length for nk.

        Also raises the array->array stages' own limits (intrinsic: CODECS.md §7.2)."""
        lens = [n]
        for s in self.aa:
            lens.append(s.array_output_len(lens[-1]))
        return lens

    def bounds(self, n: int) -> tuple[list[int], list[int]]:
        """§7.3: the array lengths, then b0 = array->bytes bound for the last array length and
        b(j+1) = bytes stage j's bound for bj."""
        lens = self.lengths(n)
        b = [self.ab.max_output(lens[-1])]
        for s in self.bb:
            b.append(s.max_output(b[-1]))
        return lens, b

    def check_bounds(self, n: int, limits: Limits) -> tuple[list[int], list[int]]:
        lens, b = self.bounds(n)
        for j, bj in enumerate(b):
            if bj > limits.max_record_body:
                raise _err(
                    "limit_exceeded",
                    f"pipeline size bound b{j} = {bj} exceeds max_record_body for a chunk of {n} values",
                )
        return lens, b

    def decode(self, payload: bytes, n: int, limits: Limits, ctx: ChunkContext) -> np.ndarray:
        """§7.4: bytes->bytes stages last to first, the array->bytes stage (exactly the last
        array length), then array->array stages last to first (each to its input length)."""
        lens, b = self.check_bounds(n, limits)
        if len(payload) > b[-1]:
            raise _err("codec_output_size", f"payload of {len(payload)} bytes exceeds the bound {b[-1]}")
        data = payload
        for j in range(len(self.bb) - 1, -1, -1):
            data = self.bb[j].decode_bytes(data, b[j])
        values = self.ab.decode_values(data, lens[-1], ctx)
        for k in range(len(self.aa) - 1, -1, -1):
            values = self.aa[k].decode_array(values, lens[k], ctx)
            assert len(values) == lens[k]
        return values


def build_pipeline(stages: list[Stage], n_elements: int, chunk_elements: int, limits: Limits) -> Pipeline:
    """§6.2 'Building the pipeline' (§6.0 step 5)."""
    seen_ab = False
    for i, s in enumerate(stages):
        if is_private_codec(s.codec_id):
            reg = PRIVATE_CODECS.get(s.codec_id)
            if reg is None or reg[0] != s.private_name:
                raise _err(
                    "unsupported_codec",
                    f"stage {i}: private codec 0x{s.codec_id:08x} ({s.private_name!r}) is not registered",
                )
        else:
            reg = CORE_CODECS.get(s.codec_id) or REGISTERED_CODECS.get(s.codec_id)
            if reg is None:
                raise _err("unsupported_codec", f"stage {i}: unknown codec ID 0x{s.codec_id:08x}")
        s.name, s.kind, versions = reg
        if s.version not in versions:
            raise _err("unsupported_codec", f"stage {i}: {s.name} version {s.version} is not supported")
        check_params(s, limits)
        # Pipeline typing (§7.3): array->array* array->bytes bytes->bytes*
        if s.kind == KIND_AA and seen_ab:
            raise _err("pipeline_invalid", f"stage {i}: array->array stage {s.name} after an array->bytes stage")
        if s.kind == KIND_AB and seen_ab:
            raise _err("pipeline_invalid", f"stage {i}: second array->bytes stage {s.name}")
        if s.kind == KIND_BB and not seen_ab:
            raise _err("pipeline_invalid", f"stage {i}: bytes->bytes stage {s.name} before any array->bytes stage")
        if s.kind == KIND_AB:
            seen_ab = True
    if not seen_ab:
        raise _err("pipeline_invalid", "the pipeline has no array->bytes stage")
    p = Pipeline(stages)
    if any(s.kind == KIND_AA for s in stages) and p.ab.side_requirement() is not None:
        raise _err("pipeline_invalid", "a stage that decodes against side information follows array->array stages (FORMAT.md §19.2)")
    if n_elements > 0:
        p.check_bounds(min(chunk_elements, n_elements), limits)
    return p


# --------------------------------------------------------------------------------------------
# Shared building blocks (CODECS.md §E) and m22 (CODECS.md §6)
# --------------------------------------------------------------------------------------------


def unpack_fixed(data: bytes, width: int, n: int) -> np.ndarray:
    """§E.2: n labels of `width` bits, LSB first; exact length, zero padding."""
    expected = (n * width + 7) // 8
    if len(data) != expected:
        raise _err("codec_output_size", f"{n} labels of {width} bits take {expected} bytes, found {len(data)}")
    used = n * width
    if used % 8 and data[-1] >> (used % 8):
        raise _err("reserved_nonzero", "label padding bits are not zero")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[:used]
    weights = (1 << np.arange(width, dtype=np.uint32)).astype(np.uint32)
    return (bits.reshape(n, width).astype(np.uint32) * weights).sum(axis=1).astype(np.uint32) if n else np.zeros(0, np.uint32)


def huffman_code(lengths: list[int]) -> dict[tuple[int, int], int]:
    """§E.1: validate lengths and map (length, code value read MSB-first) -> symbol."""
    if not 2 <= len(lengths) <= 256 or any(l > 12 for l in lengths):
        raise _err("codec_data", "Huffman lengths out of range")
    used = [s for s, l in enumerate(lengths) if l > 0]
    if len(used) < 2 or sum(1 << (12 - lengths[s]) for s in used) != 1 << 12:
        raise _err("codec_data", "Huffman lengths do not form a complete code")
    table = {}
    code = 0
    prev = 0
    for s in sorted(used, key=lambda s: (lengths[s], s)):
        code <<= lengths[s] - prev
        prev = lengths[s]
        table[(lengths[s], code)] = s
        code += 1
    return table


def huffman_decode(data: bytes, table: dict[tuple[int, int], int], n: int) -> list[int]:
    """§E.1: n symbols, bits LSB first (a code's first bit is the lowest unused bit)."""
    total = len(data) * 8
    out = []
    pos = 0
    for _ in range(n):
        code = 0
        length = 0
        while True:
            if pos >= total:
                raise _err("codec_data", "Huffman data ends inside a symbol")
            bit = (data[pos >> 3] >> (pos & 7)) & 1
            pos += 1
            code = (code << 1) | bit
            length += 1
            sym = table.get((length, code))
            if sym is not None:
                out.append(sym)
                break
            if length >= 12:
                raise AssertionError("unreachable: a complete code always matches within 12 bits")
    if (pos + 7) // 8 != len(data):
        raise _err("codec_data", f"Huffman data holds {len(data)} bytes but its symbols use {pos} bits")
    if pos % 8 and data[-1] >> (pos % 8):
        raise _err("reserved_nonzero", "Huffman padding bits are not zero")
    return out


def read_lengths(data: bytes, symbols: int) -> tuple[dict, bytes]:
    size = (symbols + 1) // 2
    if len(data) < size:
        raise _err("codec_output_size", "payload ends inside the code lengths")
    lengths = [(data[i // 2] >> (4 * (i % 2))) & 0xF for i in range(symbols)]
    if symbols % 2 and data[size - 1] >> 4:
        raise _err("reserved_nonzero", "padding nibble of the code lengths is not zero")
    return huffman_code(lengths), data[size:]


def decode_runs(labels: bytes, s: int, n: int, what: str) -> np.ndarray:
    """CODECS.md §E.4 coding 4: Huffman over RUNA, RUNB and the labels other than z."""
    if len(labels) < 5:
        raise _err("codec_output_size", f"{what}: run coding ends inside its header")
    z, c = labels[0], int.from_bytes(labels[1:5], "little")
    if z >= s:
        raise _err("codec_data", f"{what}: run symbol {z} not below {s}")
    if s > 255:
        raise _err("codec_data", f"{what}: run coding needs at most 255 symbols")
    if not 1 <= c <= n:
        raise _err("codec_data", f"{what}: {c} coded symbols for {n} values")
    code, rest = read_lengths(labels[5:], s + 1)
    out = []
    run, digit = 0, 0

    def flush():
        nonlocal run, digit
        if len(out) + run > n:
            raise _err("codec_data", f"{what}: runs expand beyond the {n} labels")
        out.extend([z] * run)
        run, digit = 0, 0

    for k in huffman_decode(rest, code, c):
        if k <= 1:
            if digit == 32:
                raise _err("codec_data", f"{what}: run of more than 32 digits")
            run += (k + 1) << digit
            digit += 1
            continue
        flush()
        if len(out) == n:
            raise _err("codec_data", f"{what}: labels beyond the {n} labels")
        label = k - 2
        out.append(label if label < z else label + 1)
    flush()
    if len(out) != n:
        raise _err("codec_data", f"{what}: run coding gives {len(out)} labels for {n}")
    return np.array(out, dtype=np.uint32)


def decode_label_section(coding: int, labels: bytes, s: int, n: int, what: str) -> np.ndarray:
    """CODECS.md §E.4: n labels below s (1 <= s <= 256) in coding 0..=4, the section being all of
    `labels`; checks in the order of §E.4.  The caller checks which codings it allows (m22: 0..=3
    under version 1, 0..=4 under version 2; wyner-ziv: 0..=4).  Returns the labels as uint32."""
    if coding == 0:
        width = max(1, (s - 1).bit_length())  # max(1, ceil(log2 S))
        sym = unpack_fixed(labels, width, n)
        if len(sym) and sym.max() >= s:
            raise _err("codec_data", f"{what}: label out of range")
        return sym
    if coding == 1:
        code, rest = read_lengths(labels, s)
        return np.array(huffman_decode(rest, code, n), dtype=np.uint32)
    if coding == 2:
        if s > 16:
            raise _err("codec_data", f"{what}: pair coding needs at most 16 symbols")
        code, rest = read_lengths(labels, s * s)
        pairs = huffman_decode(rest, code, (n + 1) // 2)
        flat = []
        for p in pairs:
            flat.extend((p // s, p % s))
        if n % 2 and flat[-1] != 0:
            raise _err("reserved_nonzero", f"{what}: padding label of the last pair is not 0")
        return np.array(flat[:n], dtype=np.uint32)
    if coding == 3:
        if len(labels) != 1:
            raise _err("codec_output_size", f"{what}: constant labels take 1 byte")
        if labels[0] >= s:
            raise _err("codec_data", f"{what}: constant symbol out of range")
        return np.full(n, labels[0], dtype=np.uint32)
    if coding == 4:
        return decode_runs(labels, s, n, what)
    raise AssertionError("unreachable: the codec checks the coding number")


def decode_m22(payload: bytes, n: int, max_points: int, version: int) -> np.ndarray:
    """CODECS.md §6, checks in the order given there; returns f32 bit patterns."""
    if len(payload) < 16:
        raise _err("codec_output_size", "m22: payload has no header")
    coding, flags = payload[0], payload[1]
    if coding > (4 if version >= 2 else 3):
        raise _err("codec_data", f"m22: coding {coding}")
    if flags & 0xFE:
        raise _err("reserved_nonzero", "m22: reserved flag bits")
    points = int.from_bytes(payload[2:4], "little")
    if not 1 <= points <= max_points:
        raise _err("codec_data", f"m22: {points} points")
    fitted = np.frombuffer(payload[4:16], dtype="<f4")
    if not np.isfinite(fitted).all():
        raise _err("codec_data", "m22: fitted fields not finite")
    end = 16 + 4 * points
    if len(payload) < end:
        raise _err("codec_output_size", "m22: payload cannot hold its points")
    zero = flags & 1
    if zero and points == 256:
        raise _err("codec_data", "m22: zero symbol with 256 points")
    pts = np.frombuffer(payload[16:end], dtype="<f4")
    for i in range(points):
        if not np.isfinite(pts[i]) or (i > 0 and not pts[i] > pts[i - 1]):
            raise _err("codec_data", f"m22: point {i} not finite or not ascending")
    table = np.concatenate([np.zeros(zero, dtype="<f4"), pts]).view(np.uint32)
    sym = decode_label_section(coding, payload[end:], len(table), n, "m22")
    return table[sym.astype(np.int64)].astype(np.uint32) if n else np.zeros(0, np.uint32)


# --------------------------------------------------------------------------------------------
# intrinsic (CODECS.md §7): the array->array random projection
# --------------------------------------------------------------------------------------------

INTRINSIC_ID = 0x102
U32_MAX = (1 << 32) - 1
RADEMACHER_MAX_ENTRIES = 1 << 26
FAMILY_SRHT, FAMILY_RADEMACHER, FAMILY_SPARSE = 0, 1, 2
SCHEDULE_FIXED, SCHEDULE_GROUP, SCHEDULE_ROUND = 0, 1, 2


@dataclass(frozen=True)
class IntrinsicParams:
    family: int
    scaling: int
    schedule: int
    dim: int
    nonzeros: int
    groups: int
    seed: int
    round: int

    def projection_seed(self) -> int:
        """CODECS.md §7.2: the projection seed P (the stream seed plays no part)."""
        if self.schedule == SCHEDULE_FIXED:
            return self.seed
        if self.schedule == SCHEDULE_GROUP:
            return mix64(self.seed ^ mix64(self.round % self.groups))
        return mix64(self.seed ^ mix64(self.round))


def parse_intrinsic_params(p: bytes) -> IntrinsicParams:
    """CODECS.md §7.1, checks in the order given there."""
    if len(p) != 32:
        raise _err("invalid_params", f"intrinsic: parameter block of {len(p)} bytes, expected 32")
    if p[3] != 0:
        raise _err("reserved_nonzero", "intrinsic: reserved parameter byte 3 is not zero")
    family, scaling, schedule = p[0], p[1], p[2]
    dim, nonzeros, groups = struct.unpack_from("<III", p, 4)
    seed, rnd = struct.unpack_from("<QQ", p, 16)
    if family > 2:
        raise _err("invalid_params", f"intrinsic: family {family}")
    if scaling > 1:
        raise _err("invalid_params", f"intrinsic: scaling {scaling}")
    if schedule > 2:
        raise _err("invalid_params", f"intrinsic: schedule {schedule}")
    if dim == 0:
        raise _err("invalid_params", "intrinsic: dim 0")
    if family == FAMILY_SPARSE and not 1 <= nonzeros <= 64:
        raise _err("invalid_params", f"intrinsic: sparse with nonzeros {nonzeros} (1..=64)")
    if family != FAMILY_SPARSE and nonzeros != 0:
        raise _err("invalid_params", f"intrinsic: nonzeros {nonzeros} with family {family} (MUST be 0)")
    if schedule == SCHEDULE_GROUP and groups < 1:
        raise _err("invalid_params", "intrinsic: schedule group with 0 groups")
    if schedule != SCHEDULE_GROUP and groups != 0:
        raise _err("invalid_params", f"intrinsic: groups {groups} with schedule {schedule} (MUST be 0)")
    if schedule == SCHEDULE_FIXED and rnd != 0:
        raise _err("invalid_params", f"intrinsic: round {rnd} with schedule fixed (MUST be 0)")
    return IntrinsicParams(family, scaling, schedule, dim, nonzeros, groups, seed, rnd)


def intrinsic_output_len(ip: IntrinsicParams, n: int) -> int:
    """CODECS.md §7.2: encoded length d = min(dim, n), with the limit_exceeded rules."""
    if n > U32_MAX:
        raise _err("limit_exceeded", f"intrinsic: chunk of {n} values (more than 2^32 - 1)")
    d = min(ip.dim, n)
    if ip.family == FAMILY_RADEMACHER and n * d > RADEMACHER_MAX_ENTRIES:
        raise _err("limit_exceeded", f"intrinsic: rademacher n x d = {n} x {d} > 2^26")
    return d


def intrinsic_factor(scaling: int, num: int, den: int, m: int) -> np.float32:
    """CODECS.md §7.2: f(num, den, m) = round_to_f32(g / sqrt(m)) in binary64."""
    g = 1.0 if scaling == 0 else float(num) / float(den)
    return np.float32(g / math.sqrt(float(m)))


def _flip(bits: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """flip(v, b) on uint32 bit patterns: XOR of the sign bit."""
    return (bits ^ (signs.astype(np.uint32) << np.uint32(31))).astype(np.uint32)


def srht_blocks(n: int, d: int) -> list[tuple[int, int, int, int]]:
    """CODECS.md §7.3: blocks (start, end, P_b, d_b), in order."""
    sizes = [(1 << k, 1 << k) for k in range(n.bit_length() - 1, 5, -1) if (n >> k) & 1]
    t = n % 64
    if t:
        sizes.append((t, 1 << (t - 1).bit_length()))
    blocks = []
    start = 0
    for length, pb in sizes:
        end = start + length
        blocks.append((start, end, pb, d * end // n - d * start // n))
        start = end
    assert start == n
    return blocks


def partial_shuffle(rng: Xoshiro256, n: int, k: int) -> list[int]:
    """FORMAT.md §9.4: the first k positions of a Fisher-Yates shuffle of 0..n (the table is
    kept sparse: only swapped entries are stored)."""
    table: dict[int, int] = {}
    out = []
    for j in range(k):
        r = j + rng.next_below(n - j)
        vj, vr = table.get(j, j), table.get(r, r)
        table[j], table[r] = vr, vj
        out.append(vr)
    return out


def srht_block_draws(rng: Xoshiro256, pb: int, db: int) -> tuple[np.ndarray, list[int]]:
    """CODECS.md §7.3: the block's signs (ceil(P_b/64) words), then partial_shuffle(P_b, d_b)."""
    sigma = rng.sign_bits(pb)
    return sigma, partial_shuffle(rng, pb, db)


def fwht_f32(y: np.ndarray) -> np.ndarray:
    """CODECS.md §7.3 H: unnormalized Walsh-Hadamard transform in f32, stages in increasing h."""
    p = len(y)
    h = 1
    while h < p:
        v = y.reshape(-1, 2, h)
        a = v[:, 0, :]
        b = v[:, 1, :]
        y = np.stack((a + b, a - b), axis=1).reshape(p)
        h *= 2
    assert y.dtype == np.float32
    return y


def decode_intrinsic(ip: IntrinsicParams, coeffs: np.ndarray, n: int, name: str, chunk_index: int) -> np.ndarray:
    """CODECS.md §7.3-7.5: d coefficients (f32 bit patterns as uint32) -> n values (uint32)."""
    d = len(coeffs)
    assert d == min(ip.dim, n)
    rng = Xoshiro256(chunk_seed(ip.projection_seed(), name, chunk_index))
    coeffs = coeffs.astype(np.uint32)
    if ip.family == FAMILY_SRHT:
        out = np.zeros(n, dtype=np.uint32)  # +0.0
        pos = 0
        for start, end, pb, db in srht_blocks(n, d):
            sigma, rows = srht_block_draws(rng, pb, db)
            if db == 0:
                continue  # "A block with d_b = 0 decodes to zeros" (+0.0 here)
            yb = np.zeros(pb, dtype=np.uint32)
            yb[np.array(rows, dtype=np.int64)] = coeffs[pos : pos + db]
            pos += db
            y = fwht_f32(yb.view(np.float32))
            m = end - start
            flipped = _flip(y.view(np.uint32)[:m], sigma[:m]).view(np.float32)
            out[start:end] = (flipped * intrinsic_factor(ip.scaling, pb, db, pb)).view(np.uint32)
        assert pos == d
        return canonical_nan(out)
    acc = np.zeros(n, dtype=np.float32)
    if ip.family == FAMILY_RADEMACHER:
        for j in range(d):
            sigma = rng.sign_bits(n)
            # every acc[i] receives its additions in column order j = 0, 1, ...
            acc = acc + _flip(np.full(n, coeffs[j], dtype=np.uint32), sigma).view(np.float32)
        f = intrinsic_factor(ip.scaling, n, d, n)
    else:
        s = ip.nonzeros
        for j in range(d):
            w = rng.next_u64()
            rows = [rng.next_below(n) for _ in range(s)]
            c = int(coeffs[j])
            for k in range(s):
                v = np.uint32(c ^ (((w >> k) & 1) << 31)).view(np.float32)
                r = rows[k]
                acc[r] = acc[r] + v  # np.float32 + np.float32: one f32 addition, in (j, k) order
        f = intrinsic_factor(ip.scaling, n, d, s)
    return canonical_nan((acc * f).view(np.uint32).astype(np.uint32))


def canonical_nan(bits: np.ndarray) -> np.ndarray:
    """CODECS.md §7.2: every NaN of the output becomes 0x7FC00000 (NaN payloads of f32
    arithmetic differ between platforms)."""
    v = bits.view(np.float32)
    return np.where(np.isnan(v), np.uint32(0x7FC00000), bits).astype(np.uint32)


# --------------------------------------------------------------------------------------------
# zstd stage (CODECS.md §4)
# --------------------------------------------------------------------------------------------

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_DCTX = zstandard.ZstdDecompressor(max_window_size=1 << 31)


def _zstd_frame(payload: bytes) -> tuple[int, int | None, int]:
    """Structural walk of one Zstandard frame (RFC 8878 §3.1.1) without decompressing.

    Returns (frame_end, frame_content_size or None, dictionary_id).  Raises codec_data if the
    bytes are not one complete frame (header cut off, reserved block type, block cut off).
    """
    n = len(payload)
    if n < 5:
        raise _err("codec_data", "zstd: frame header cut off")
    fhd = payload[4]
    fcs_flag = fhd >> 6
    single_segment = (fhd >> 5) & 1
    checksum_flag = (fhd >> 2) & 1
    dict_flag = fhd & 3
    pos = 5
    if not single_segment:
        pos += 1  # Window_Descriptor
    dict_size = (0, 1, 2, 4)[dict_flag]
    fcs_size = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if pos + dict_size + fcs_size > n:
        raise _err("codec_data", "zstd: frame header cut off")
    dict_id = int.from_bytes(payload[pos : pos + dict_size], "little") if dict_size else 0
    pos += dict_size
    fcs: int | None = None
    if fcs_size:
        fcs = int.from_bytes(payload[pos : pos + fcs_size], "little")
        if fcs_size == 2:
            fcs += 256
    pos += fcs_size
    # Blocks
    while True:
        if pos + 3 > n:
            raise _err("codec_data", "zstd: block header cut off")
        bh = int.from_bytes(payload[pos : pos + 3], "little")
        pos += 3
        last = bh & 1
        btype = (bh >> 1) & 3
        bsize = bh >> 3
        if btype == 3:
            raise _err("codec_data", "zstd: reserved block type")
        content = 1 if btype == 1 else bsize
        if pos + content > n:
            raise _err("codec_data", "zstd: block cut off")
        pos += content
        if last:
            break
    if checksum_flag:
        if pos + 4 > n:
            raise _err("codec_data", "zstd: content checksum cut off")
        pos += 4
    return pos, fcs, dict_id


def zstd_decode(payload: bytes, max_out: int) -> bytes:
    # 1. frame magic, exactly one frame
    if len(payload) < 4 or payload[:4] != ZSTD_MAGIC:
        raise _err("codec_data", "zstd: payload does not start with the frame magic 28 B5 2F FD")
    end, fcs, dict_id = _zstd_frame(payload)
    if end != len(payload):
        raise _err("codec_data", f"zstd: {len(payload) - end} byte(s) after the first frame")
    # 2. declared content size, within the bound
    if fcs is None:
        raise _err("codec_data", "zstd: frame header does not declare Frame_Content_Size")
    if fcs > max_out:
        raise _err("codec_output_size", f"zstd: Frame_Content_Size {fcs} exceeds the bound {max_out}")
    # 3. no dictionary
    if dict_id != 0:
        raise _err("codec_data", f"zstd: frame names dictionary {dict_id}")
    # 4. decompress into exactly fcs bytes
    try:
        dobj = _ZSTD_DCTX.decompressobj()
        out = dobj.decompress(payload)
        if not dobj.eof:
            raise _err("codec_data", "zstd: frame did not finish")
        if dobj.unused_data:
            raise _err("codec_data", "zstd: data after the frame")
    except zstandard.ZstdError as e:
        raise _err("codec_data", f"zstd: decompression error: {e}") from None
    if len(out) != fcs:
        raise _err("codec_data", f"zstd: frame produced {len(out)} bytes, declared {fcs}")
    return out


# --------------------------------------------------------------------------------------------
# Stream state
# --------------------------------------------------------------------------------------------


@dataclass
class TensorState:
    tid: int
    name: str
    dtype: str
    shape: list
    chunk_elements: int
    n_elements: int
    flags: int
    pipeline: Pipeline
    begin_offset: int
    n_chunks: int
    next_chunk: int = 0
    open: bool = True
    offsets_hash: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    values_sha: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    values: list | None = None
    side: "np.ndarray | None" = None  # §19: the side tensor the pipeline decodes against
    all_values: list | None = None  # every chunk's values, when the decoder keeps them

    def json(self) -> dict:
        d = {
            "name": self.name,
            "dtype": self.dtype,
            "shape": self.shape,
            "chunk_elements": self.chunk_elements,
            "sha256": self.values_sha.hexdigest(),
        }
        if self.values is not None:
            d["values_hex"] = ["%08x" % int(v) for arr in self.values for v in arr]
        return d


class Source:
    """Reads a binary file object incrementally, counting the stream offset."""

    PIECE = 1 * MiB

    def __init__(self, f: BinaryIO):
        self.f = f
        self.offset = 0

    def read_upto(self, n: int) -> bytes:
        """Up to n bytes (fewer only at end of input); buffers grow only as bytes arrive."""
        parts = []
        remaining = n
        while remaining > 0:
            try:
                b = self.f.read(min(remaining, self.PIECE))
            except OSError as e:
                raise _err("io", f"read failed: {e}") from None
            if not b:
                break
            parts.append(b)
            remaining -= len(b)
        data = b"".join(parts)
        self.offset += len(data)
        return data


class SideInfo:
    """FORMAT.md §19: side tensors by tensor name (f32 bit patterns as uint32 arrays), and the
    label the application gives them (named in side-information errors)."""

    def __init__(self, tensors: dict[str, np.ndarray], label: str = "side information"):
        self.tensors = {name: np.ascontiguousarray(v, dtype=np.uint32) for name, v in tensors.items()}
        self.label = label
        self._digests: dict[str, bytes] = {}

    def digest(self, name: str) -> bytes:
        """SHA-256 of the side tensor's values as f32 little-endian bytes, in element order."""
        if name not in self._digests:
            self._digests[name] = hashlib.sha256(self.tensors[name].astype("<u4").tobytes()).digest()
        return self._digests[name]


class Decoder:
    def __init__(self, limits: Limits = Limits(), side_info: SideInfo | None = None, keep_values: bool = False):
        self.limits = limits
        self.side_info = side_info
        self.keep_values = keep_values  # keep every tensor's values (tensors_values())
        self.n_records = 0
        self.seed = None
        self.metadata: dict = {}
        self.tensors: list[TensorState] = []
        self.names: set[str] = set()
        self.n_open = 0
        self.index_offset: int | None = None
        self.done = False
        # where we are, for messages
        self.cur_seq = None
        self.cur_offset = None

    # ---------------------------------------------------------------- top level
    def decode(self, f: BinaryIO) -> dict:
        src = Source(f)
        self.read_preamble(src)
        while not self.done:
            self.read_record(src)
        return self.result()

    def tensors_values(self) -> dict[str, np.ndarray]:
        """With keep_values: every tensor's decoded values (uint32 bit patterns), by name."""
        return {
            t.name: (np.concatenate(t.all_values) if t.all_values else np.zeros(0, np.uint32)).astype(np.uint32)
            for t in self.tensors
        }

    def result(self) -> dict:
        return {
            "seed": self.seed,
            "metadata": self.metadata,
            "tensors": [t.json() for t in self.tensors],
        }

    # ---------------------------------------------------------------- §3 preamble
    def read_preamble(self, src: Source) -> None:
        pre = src.read_upto(16)
        if len(pre) < 16:
            k = min(len(pre), 8)
            if pre[:k] != MAGIC[:k]:
                raise _err("bad_magic", f"{len(pre)}-byte input that does not start like the magic")
            raise _err("truncated", f"stream of {len(pre)} bytes ends inside the preamble")
        if pre[:8] != MAGIC:
            raise _err("bad_magic", "the first 8 bytes are not the gradwire magic")
        if crc32c(pre[:12]) != int.from_bytes(pre[12:16], "little"):
            raise _err("checksum_preamble", "preamble CRC32C mismatch")
        if pre[8] != 1:
            raise _err("unsupported_version", f"format_major {pre[8]} (this reader implements 1)")
        if pre[10:12] != b"\x00\x00":
            raise _err("reserved_nonzero", "preamble reserved bytes 10..12 are nonzero")

    # ---------------------------------------------------------------- §4 framing
    def read_record(self, src: Source) -> None:
        limits = self.limits
        offset = src.offset
        self.cur_offset = offset
        self.cur_seq = None
        hdr = src.read_upto(32)
        if len(hdr) < 32:
            raise _err("truncated", f"stream ends at offset {src.offset} before END (inside/at a record header)")
        sync, rtype, rflags, body_len, seq, body_crc, reserved, header_crc = struct.unpack("<4sHHQIIII", hdr)
        # step 1
        if sync != SYNC:
            raise _err("bad_sync", f"no record marker at offset {offset}")
        if crc32c(hdr[:28]) != header_crc:
            raise _err("checksum_header", f"record header CRC32C mismatch at offset {offset}")
        if reserved != 0:
            raise _err("reserved_nonzero", f"record header reserved field nonzero at offset {offset}")
        if rflags & 0x00FF:
            raise _err("reserved_nonzero", f"record header reserved flag bits 0x{rflags & 0xFF:02x} at offset {offset}")
        # step 2
        if self.n_records >= 1 << 32:
            raise _err("limit_exceeded", "more than 2^32 records")
        if seq != self.n_records:
            raise _err("sequence", f"record at offset {offset} has seq {seq}, expected {self.n_records}")
        self.cur_seq = seq
        # step 3
        if rtype in (RT_STREAM_HEADER, RT_TENSOR_BEGIN, RT_METADATA):
            limit, lname = limits.max_header_body, "max_header_body"
        elif rtype == RT_TENSOR_END:
            limit, lname = 16, "16"
        elif rtype == RT_END:
            limit, lname = 32, "32"
        else:
            limit, lname = limits.max_record_body, "max_record_body"
        if body_len > limit:
            raise _err("limit_exceeded", f"record type 0x{rtype:04x} body_len {body_len} > {lname}")
        # step 4
        body = src.read_upto(body_len)
        if len(body) < body_len:
            raise _err("truncated", f"stream ends inside the body of record seq {seq}")
        if crc32c(body) != body_crc:
            raise _err("checksum_body", f"body CRC32C mismatch in record seq {seq} at offset {offset}")
        # step 5
        pad_len = (8 - body_len % 8) % 8
        pad = src.read_upto(pad_len)
        if len(pad) < pad_len:
            raise _err("truncated", f"stream ends inside the padding of record seq {seq}")
        if pad.count(0) != pad_len:
            raise _err("nonzero_padding", f"nonzero padding after record seq {seq}")
        # step 6
        self.interpret(rtype, body, offset, seq)
        self.n_records += 1

    def interpret(self, rtype: int, body: bytes, offset: int, seq: int) -> None:
        # §5: the first record is STREAM_HEADER, and only the first.
        if self.n_records == 0 and rtype != RT_STREAM_HEADER:
            raise _err("malformed", f"first record has type 0x{rtype:04x}, not STREAM_HEADER")
        if self.n_records > 0 and rtype == RT_STREAM_HEADER:
            raise _err("malformed", f"second STREAM_HEADER (seq {seq})")
        if rtype == RT_STREAM_HEADER:
            self.on_stream_header(body)
        elif rtype == RT_TENSOR_BEGIN:
            self.on_tensor_begin(body, offset)
        elif rtype == RT_CHUNK:
            self.on_chunk(body, offset)
        elif rtype == RT_TENSOR_END:
            self.on_tensor_end(body)
        elif rtype == RT_END:
            self.on_end(body, offset, seq)
        elif rtype == RT_METADATA:
            cur = Cursor(body, "METADATA")
            parse_kv_map(cur, self.limits)
            cur.finish()
            # METADATA is informational: validated, not part of the canonical JSON.
        elif rtype == RT_INDEX:
            self.on_index(body, offset)
        elif rtype & SKIPPABLE_BIT:
            pass  # private or unknown skippable record: framing-checked and dropped (§6.8)
        else:
            raise _err("unknown_record", f"non-skippable record type 0x{rtype:04x} is not defined")

    # ---------------------------------------------------------------- §6.1
    def on_stream_header(self, body: bytes) -> None:
        cur = Cursor(body, "STREAM_HEADER")
        required = cur.u64("required_features")
        if required != 0:
            raise _err("unsupported_feature", f"required feature bits 0x{required:016x} not implemented")
        cur.u64("optional_features")  # unknown bits ignored
        self.seed = cur.u64("seed")
        self.metadata = parse_kv_map(cur, self.limits)
        cur.finish()

    # ---------------------------------------------------------------- §6.2
    def on_tensor_begin(self, body: bytes, offset: int) -> None:
        L = self.limits
        cur = Cursor(body, "TENSOR_BEGIN")
        # step 2: parsing, fixed part
        tensor_id = cur.u32("tensor_id")
        dtype_code = cur.u8("dtype")
        if dtype_code not in DTYPES:
            raise _err("unsupported_dtype", f"dtype code {dtype_code}")
        rank = cur.u8("rank")
        n_stages = cur.u8("n_stages")
        flags = cur.u8("flags")
        chunk_elements = cur.u64("chunk_elements")
        n_elements = cur.u64("n_elements")
        name_len = cur.u16("name_len")
        if cur.take(6, "reserved") != b"\x00" * 6:
            raise _err("reserved_nonzero", "TENSOR_BEGIN reserved bytes 26..32 are nonzero")
        # end of the 32-byte fixed part: the rank, name_len and n_stages limits
        if rank > L.max_rank:
            raise _err("limit_exceeded", f"rank {rank} > max_rank {L.max_rank}")
        if name_len > L.max_name_len:
            raise _err("limit_exceeded", f"name_len {name_len} > max_name_len {L.max_name_len}")
        if n_stages > L.max_stages:
            raise _err("limit_exceeded", f"n_stages {n_stages} > max_stages {L.max_stages}")
        # variable part
        dims = [cur.u64(f"dims[{i}]") for i in range(rank)]
        name = cur.utf8(name_len, "name")
        stages = parse_stage_entries(cur, n_stages, L)
        cur.finish()

        # step 3: rules of the body on its own, in the order of §6.2
        if "\x00" in name:
            raise _err("malformed", "tensor name contains NUL")
        product = 0 if 0 in dims else 1
        if product:
            for d in dims:
                product *= d
                if product > U64_MAX:
                    raise _err("shape_overflow", f"product of dims {dims} overflows u64")
        if product != n_elements:
            raise _err("shape_overflow", f"product of dims {dims} = {product} != n_elements {n_elements}")
        if n_elements * 4 > U64_MAX or n_elements * 4 > L.max_tensor_bytes:
            raise _err("limit_exceeded", f"n_elements {n_elements} x 4 exceeds max_tensor_bytes")
        if chunk_elements == 0:
            raise _err("malformed", "chunk_elements is 0")
        if chunk_elements * 4 > L.max_chunk_decoded:
            raise _err("limit_exceeded", f"chunk_elements {chunk_elements} x 4 exceeds max_chunk_decoded")
        if n_stages < 1:
            raise _err("pipeline_invalid", "n_stages is 0")
        if flags & 0xFE:
            raise _err("reserved_nonzero", f"TENSOR_BEGIN reserved flag bits 0x{flags & 0xFE:02x}")
        for i, s in enumerate(stages):
            validate_stage_entry(i, s, L)

        # step 4: rules between records
        if tensor_id != len(self.tensors):
            raise _err("duplicate_tensor", f"tensor_id {tensor_id}, expected {len(self.tensors)}")
        if self.index_offset is not None:
            raise _err("index_mismatch", "TENSOR_BEGIN after the INDEX")
        if name in self.names:
            raise _err("duplicate_tensor", f"tensor name {name!r} used twice")
        if len(self.tensors) + 1 > L.max_tensors:
            raise _err("limit_exceeded", f"more than max_tensors {L.max_tensors} tensors")
        if self.n_open + 1 > L.max_open_tensors:
            raise _err("limit_exceeded", f"more than max_open_tensors {L.max_open_tensors} open tensors")

        # step 5: building the pipeline, then the side information it decodes against (§19.2)
        pipeline = build_pipeline(stages, n_elements, chunk_elements, L)
        side = self.check_side_info(name, n_elements, pipeline.ab.side_requirement())

        n_chunks = -(-n_elements // chunk_elements)
        t = TensorState(
            tid=tensor_id,
            name=name,
            dtype=DTYPES[dtype_code],
            shape=dims,
            chunk_elements=chunk_elements,
            n_elements=n_elements,
            flags=flags,
            pipeline=pipeline,
            begin_offset=offset,
            n_chunks=n_chunks,
            values=[] if n_elements <= 64 else None,
            side=side,
            all_values=[] if self.keep_values else None,
        )
        self.tensors.append(t)
        self.names.add(name)
        self.n_open += 1

    # ---------------------------------------------------------------- §19.2
    def check_side_info(self, name: str, n_elements: int, req: SideRequirement | None) -> "np.ndarray | None":
        """§19.2 reading rules; returns the side tensor the pipeline decodes against, or None."""
        if req is None:
            return None  # nothing: no check
        what = "side information"
        if req.kind == "bound":
            what = f"side information {req.label!r} (sha256 {req.digest.hex()})"
        si = self.side_info
        if si is None or name not in si.tensors:
            given = "none was given" if si is None else f"{si.label!r} has no tensor of that name"
            raise _err("side_info_missing", f"tensor {name!r} decodes against {what}, and {given}")
        side = si.tensors[name]
        if len(side) != n_elements:
            raise _err(
                "side_info_mismatch",
                f"tensor {name!r} decodes against {what}: {si.label!r} gives {len(side)} values for {n_elements}",
            )
        if req.kind == "bound" and si.digest(name) != req.digest:
            raise _err(
                "side_info_mismatch",
                f"tensor {name!r} was encoded against {what}, but {si.label!r} gives values with sha256 "
                f"{si.digest(name).hex()}",
            )
        return side

    # ---------------------------------------------------------------- §6.3
    def on_chunk(self, body: bytes, offset: int) -> None:
        cur = Cursor(body, "CHUNK")
        tensor_id = cur.u32("tensor_id")
        chunk_flags = cur.u32("chunk_flags")
        if chunk_flags != 0:
            raise _err("reserved_nonzero", f"chunk_flags 0x{chunk_flags:08x}")
        chunk_index = cur.u64("chunk_index")
        decoded_crc = cur.u32("decoded_crc32c")
        if cur.u32("reserved") != 0:
            raise _err("reserved_nonzero", "CHUNK reserved field at offset 20 is nonzero")
        payload = body[cur.pos :]

        t = self.tensors[tensor_id] if tensor_id < len(self.tensors) else None
        if t is None or not t.open:
            raise _err("unknown_tensor", f"CHUNK names tensor {tensor_id}, which is not open")
        if chunk_index != t.next_chunk or chunk_index >= t.n_chunks:
            raise _err(
                "chunk_order",
                f"tensor {t.name!r}: chunk {chunk_index}, expected chunk {t.next_chunk} of {t.n_chunks}",
            )
        has_crc = bool(t.flags & FLAG_DECODED_CRC)
        if not has_crc and decoded_crc != 0:
            raise _err("reserved_nonzero", f"tensor {t.name!r} chunk {chunk_index}: decoded_crc32c set without DECODED_CRC")
        start = chunk_index * t.chunk_elements
        n = min(start + t.chunk_elements, t.n_elements) - start
        side = None if t.side is None else t.side[start : start + n]
        ctx = ChunkContext(t.name, t.tid, chunk_index, start, chunk_seed(self.seed, t.name, chunk_index), side)
        try:
            values = t.pipeline.decode(payload, n, self.limits, ctx)
        except GradwireError as e:
            raise _err(e.code, f"tensor {t.name!r} chunk {chunk_index}: {e.message}") from None
        raw = values.astype("<u4").tobytes()
        if has_crc and crc32c(raw) != decoded_crc:
            raise _err("checksum_decoded", f"tensor {t.name!r} chunk {chunk_index}: CRC32C of decoded values mismatch")
        t.values_sha.update(raw)
        if t.values is not None:
            t.values.append(values)
        if t.all_values is not None:
            t.all_values.append(values)
        t.offsets_hash.update(offset.to_bytes(8, "little"))
        t.next_chunk += 1

    # ---------------------------------------------------------------- §6.4
    def on_tensor_end(self, body: bytes) -> None:
        cur = Cursor(body, "TENSOR_END")
        tensor_id = cur.u32("tensor_id")
        if cur.u32("reserved") != 0:
            raise _err("reserved_nonzero", "TENSOR_END reserved field is nonzero")
        n_chunks = cur.u64("n_chunks")
        cur.finish()
        t = self.tensors[tensor_id] if tensor_id < len(self.tensors) else None
        if t is None or not t.open:
            raise _err("unknown_tensor", f"TENSOR_END names tensor {tensor_id}, which is not open")
        if n_chunks != t.n_chunks or t.next_chunk != t.n_chunks:
            raise _err(
                "chunk_order",
                f"tensor {t.name!r}: TENSOR_END declares {n_chunks} chunks; "
                f"expected {t.n_chunks}, read {t.next_chunk}",
            )
        t.open = False
        self.n_open -= 1

    # ---------------------------------------------------------------- §6.5
    def on_end(self, body: bytes, offset: int, seq: int) -> None:
        cur = Cursor(body, "END")
        n_records = cur.u64("n_records")
        stream_len = cur.u64("stream_len")
        index_offset = cur.u64("index_offset")
        n_tensors = cur.u32("n_tensors")
        if cur.u32("reserved") != 0:
            raise _err("reserved_nonzero", "END reserved field is nonzero")
        cur.finish()
        if self.n_open:
            still = [t.name for t in self.tensors if t.open]
            raise _err("chunk_order", f"END while tensor(s) {still} are open")
        if n_records != self.n_records:
            raise _err("index_mismatch", f"END n_records {n_records}, read {self.n_records}")
        if stream_len != offset:
            raise _err("index_mismatch", f"END stream_len {stream_len}, END is at offset {offset}")
        if n_tensors != len(self.tensors):
            raise _err("index_mismatch", f"END n_tensors {n_tensors}, read {len(self.tensors)}")
        want_index = self.index_offset if self.index_offset is not None else 0
        if index_offset != want_index:
            raise _err("index_mismatch", f"END index_offset {index_offset}, INDEX read at {want_index}")
        self.done = True

    # ---------------------------------------------------------------- §6.7
    def on_index(self, body: bytes, offset: int) -> None:
        cur = Cursor(body, "INDEX")
        n_tensors = cur.u32("n_tensors")
        if cur.u32("reserved") != 0:
            raise _err("reserved_nonzero", "INDEX reserved field is nonzero")
        entries = []
        for i in range(n_tensors):
            begin = cur.u64(f"tensors[{i}].begin_offset")
            nch = cur.u64(f"tensors[{i}].n_chunks")
            if nch > cur.remaining() // 8:
                raise _err("malformed", f"INDEX tensor {i}: n_chunks {nch} exceeds the remaining body")
            offs = cur.take(8 * nch, f"tensors[{i}].chunk_offsets")
            entries.append((begin, nch, hashlib.sha256(offs).digest()))
        cur.finish()
        # rules between records
        if self.index_offset is not None:
            raise _err("index_mismatch", f"second INDEX (the first is at offset {self.index_offset})")
        if self.n_open:
            raise _err("index_mismatch", "INDEX while a tensor is open")
        if n_tensors != len(self.tensors):
            raise _err("index_mismatch", f"INDEX lists {n_tensors} tensors, read {len(self.tensors)}")
        for t, (begin, nch, h) in zip(self.tensors, entries):
            if begin != t.begin_offset:
                raise _err("index_mismatch", f"INDEX: tensor {t.name!r} begin_offset {begin}, actual {t.begin_offset}")
            if nch != t.next_chunk:
                raise _err("index_mismatch", f"INDEX: tensor {t.name!r} n_chunks {nch}, read {t.next_chunk}")
            if h != t.offsets_hash.digest():
                raise _err("index_mismatch", f"INDEX: tensor {t.name!r} chunk offsets differ from the records read")
        self.index_offset = offset


# --------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as e:
        raise _err("io", f"cannot open {path}: {e}") from None


def decode_file(path: str, limits: Limits = Limits(), side_info: SideInfo | None = None) -> dict:
    """Decode a stream; returns the canonical JSON object or raises GradwireError.  side_info
    holds the side tensors, by tensor name, that the stream's pipelines may decode against (§19)."""
    if path == "-":
        return Decoder(limits, side_info).decode(sys.stdin.buffer)
    with _open(path) as f:
        return Decoder(limits, side_info).decode(f)


def decode_bytes(data: bytes, limits: Limits = Limits(), side_info: SideInfo | None = None) -> dict:
    import io

    return Decoder(limits, side_info).decode(io.BytesIO(data))


def side_info_from_bytes(data: bytes, label: str = "side information", limits: Limits = Limits()) -> SideInfo:
    """Side information given as a gradwire stream (FORMAT.md §14's side-*.gw): decoded with this
    decoder, every tensor, by name, becomes a side tensor."""
    import io

    d = Decoder(limits, keep_values=True)
    d.decode(io.BytesIO(data))
    return SideInfo(d.tensors_values(), label)


def load_side_info(path: str, limits: Limits = Limits()) -> SideInfo:
    """side_info_from_bytes of a file; the label is the file's name."""
    with _open(path) as f:
        try:
            data = f.read()
        except OSError as e:
            raise _err("io", f"cannot read {path}: {e}") from None
    return side_info_from_bytes(data, os.path.basename(path), limits)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def cmd_decode(path: str, side_path: str | None = None) -> int:
    try:
        side = None
        if side_path is not None:
            try:
                side = load_side_info(side_path)
            except GradwireError as e:
                # The side information is the caller's argument (§12 `invalid_argument`).
                raise _err("invalid_argument", f"side information {side_path}: {e}") from None
        result = decode_file(path, side_info=side)
    except GradwireError as e:
        print(json.dumps({"error": e.code, "message": e.message}))
        return 1
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _outcome(path: str, side: SideInfo | None) -> tuple[object, str]:
    """Decode a file: (result or exception, "ok" or the error code)."""
    try:
        return decode_file(path, side_info=side), "ok"
    except GradwireError as e:
        return e, e.code
    except Exception as e:  # a bug in this decoder: report, never crash the run
        return e, f"uncaught {type(e).__name__}: {e}"


def cmd_run(directory: str) -> int:
    with open(os.path.join(directory, "manifest.json"), "rb") as f:
        manifest = json.load(f)
    passed = failed = 0
    side_cache: dict[str, SideInfo | GradwireError] = {}
    for entry in manifest:
        vid = entry.get("id", entry.get("file"))
        path = os.path.join(directory, entry["file"])
        expect = entry["expect"]
        problems = []
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            problems.append(f"cannot read: {e}")
            data = None
        # FORMAT.md §14: `side_info` names a stream beside the manifest whose tensors, by name,
        # are the side information the reader is given.
        side = None
        side_name = entry.get("side_info")
        if side_name is not None:
            if side_name not in side_cache:
                try:
                    side_cache[side_name] = load_side_info(os.path.join(directory, side_name))
                except GradwireError as e:
                    side_cache[side_name] = e
            side = side_cache[side_name]
            if isinstance(side, GradwireError):
                problems.append(f"side information {side_name} does not decode: {side}")
                data = None
        if data is not None:
            if "sha256" in entry and hashlib.sha256(data).hexdigest() != entry["sha256"]:
                problems.append("file SHA-256 differs from the manifest")
            got, got_code = _outcome(path, side)
            if expect == "ok":
                if got_code != "ok":
                    problems.append(f"expected ok, got {got_code} ({getattr(got, 'message', '')})")
                elif got != entry.get("expected"):
                    problems.append("decoded content differs from 'expected': " + _diff(entry.get("expected"), got))
            elif got_code != expect:
                msg = getattr(got, "message", "") if got_code != "ok" else "stream accepted"
                problems.append(f"expected {expect}, got {got_code} ({msg})")
            # §14: read without its side information, a valid vector that has some gives
            # `side_info_missing` instead of the listed result.
            if side is not None and expect == "ok":
                got, got_code = _outcome(path, None)
                if got_code != "side_info_missing":
                    msg = getattr(got, "message", "") if got_code != "ok" else "stream accepted"
                    problems.append(f"without its side information: expected side_info_missing, got {got_code} ({msg})")
        if problems:
            failed += 1
            print(f"FAIL {vid}: " + "; ".join(problems))
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def _diff(a, b, path="$") -> str:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: present in only one side"
            if a[k] != b[k]:
                return _diff(a[k], b[k], f"{path}.{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _diff(x, y, f"{path}[{i}]")
    return f"{path}: {a!r} != {b!r}"


USAGE = "usage: gradwire_decode.py decode FILE [--side-info SIDE] | run DIR"


def main(argv: list[str]) -> int:
    args = argv[1:]
    if len(args) == 2 and args[0] == "run":
        return cmd_run(args[1])
    if args and args[0] == "decode":
        rest = args[1:]
        side_path = None
        if "--side-info" in rest:
            i = rest.index("--side-info")
            if i + 1 >= len(rest):
                print(USAGE, file=sys.stderr)
                return 2
            side_path = rest[i + 1]
            rest = rest[:i] + rest[i + 2 :]
        if len(rest) == 1:
            return cmd_decode(rest[0], side_path)
    print(USAGE, file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------------------------
# randk (CODECS.md §8): positions from a shared seed, none on the wire

RANDK_ID = 0x103


@dataclass(frozen=True)
class RandKParams:
    fraction: int
    scaling: int
    seed: int


def fraction_params(p: bytes, codec: str, length: int) -> tuple[int, int]:
    """CODECS.md §8, §9: the shared head of randk and topk parameters (u32 fraction, u8 mode,
    3 reserved bytes), checked in the spec's order up to the mode, which the caller checks."""
    if len(p) != length:
        raise _err("invalid_params", f"{codec}: parameter block of {len(p)} bytes, expected {length}")
    if p[5:8] != b"\0\0\0":
        raise _err("reserved_nonzero", f"{codec}: reserved parameter bytes 5..8 are not zero")
    fraction, mode = struct.unpack_from("<IB", p, 0)
    if fraction == 0:
        raise _err("invalid_params", f"{codec}: fraction 0")
    return fraction, mode


def parse_randk_params(p: bytes) -> RandKParams:
    """CODECS.md §8: 16 bytes; checks in the spec's order."""
    fraction, scaling = fraction_params(p, "randk", 16)
    if scaling not in (0, 1):
        raise _err("invalid_params", f"randk: scaling {scaling}")
    (seed,) = struct.unpack_from("<Q", p, 8)
    return RandKParams(fraction, scaling, seed)


def randk_kept(rp: RandKParams, n: int) -> int:
    """CODECS.md §8: k = (n * fraction + 2^31) >> 32, at least 1 when n > 0."""
    if n > U32_MAX:
        raise _err("limit_exceeded", f"randk: chunk of {n} values (more than 2^32 - 1)")
    k = (n * rp.fraction + (1 << 31)) >> 32
    return min(max(k, 1 if n > 0 else 0), n)


def decode_randk(rp: RandKParams, kept: np.ndarray, n: int, name: str, chunk_index: int) -> np.ndarray:
    """CODECS.md §8.2: k kept values (uint32 bit patterns) -> n values (uint32), +0.0 elsewhere."""
    k = len(kept)
    assert k == randk_kept(rp, n)
    positions = partial_shuffle(Xoshiro256(chunk_seed(rp.seed, name, chunk_index)), n, k)
    out = np.zeros(n, dtype=np.uint32)
    values = kept.astype(np.uint32)
    if rp.scaling == 1:
        g = np.float32(float(n) / float(k))
        values = canonical_nan((values.view(np.float32) * g).view(np.uint32))
    out[np.array(positions, dtype=np.int64)] = values
    return out



# ---------------------------------------------------------------------------------------------
# topk (CODECS.md §9) and Golomb-Rice codes (CODECS.md §E.3)

TOPK_ID = 0x104


@dataclass(frozen=True)
class TopKParams:
    fraction: int
    mode: int  # 0 f32, 1 bf16, 2 a nested pipeline
    nested: "Pipeline | None" = None
    limits: "Limits | None" = None

    def max_value_bytes(self, k: int) -> int:
        """Bytes of k kept values: exact for modes 0 and 1, the nested pipeline's bound
        (which must fit the limits, §7.3) for mode 2."""
        if self.mode == 2:
            _, b = self.nested.check_bounds(k, self.limits)
            return b[-1]
        return (2 if self.mode == 1 else 4) * k


def parse_topk_params(p: bytes, version: int, limits: "Limits") -> TopKParams:
    """CODECS.md §9: 8 bytes, then for mode 2 (version 2) a nested pipeline; checks in the
    spec's order."""
    if len(p) < 8:
        raise _err("invalid_params", f"topk: parameter block of {len(p)} bytes, expected at least 8")
    fraction, mode = fraction_params(p[:8], "topk", 8)
    if mode in (0, 1):
        if len(p) != 8:
            raise _err("invalid_params", f"topk: parameter block of {len(p)} bytes, expected 8")
        return TopKParams(fraction, mode)
    if mode != 2:
        raise _err("invalid_params", f"topk: values {mode}")
    if version < 2:
        raise _err("invalid_params", "topk: values mode 2 in codec version 1")
    try:
        # TENSOR_BEGIN's order: limits when read, the whole list with nothing left over, then
        # the count and the rules on each entry.
        cur = Cursor(p[8:], "topk values pipeline")
        n_stages = cur.u8("n_stages")
        if n_stages > limits.max_stages:
            raise _err("limit_exceeded", f"topk values pipeline: {n_stages} stages > max_stages")
        stages = parse_stage_entries(cur, n_stages, limits)
        cur.finish()
        if n_stages == 0:
            raise _err("pipeline_invalid", "topk values pipeline has no stages")
        for i, s in enumerate(stages):
            validate_stage_entry(i, s, limits)
    except GradwireError as e:
        if e.code in ("truncated", "malformed"):
            raise _err("invalid_params", f"topk values pipeline: {e}") from e
        raise
    if any(s.codec_id == TOPK_ID for s in stages):
        raise _err("invalid_params", "topk values pipelines cannot hold topk")
    nested = build_pipeline(stages, 0, 0, limits)
    # FORMAT.md §19.2, CODECS.md §9: the kept values have no side information of their own.
    if nested.ab.side_requirement() is not None:
        raise _err("invalid_params", f"topk values pipeline: {nested.ab.name} decodes against side information")
    return TopKParams(fraction, 2, nested, limits)


def rice_decode(data: bytes, b: int, count: int, max_value: int) -> tuple[list[int], int]:
    """CODECS.md §E.3: count values, each at most max_value; returns them and the bytes used."""
    nbits = 8 * len(data)
    pos = 0
    out = []
    for j in range(count):
        q = 0
        while True:
            if pos >= nbits:
                raise _err("codec_data", "Rice code ends early")
            bit = (data[pos >> 3] >> (pos & 7)) & 1
            pos += 1
            if bit == 0:
                break
            q += 1
            if q > (max_value >> b):
                raise _err("codec_data", f"Rice value {j} exceeds {max_value}")
        if pos + b > nbits:
            raise _err("codec_data", "Rice code ends early")
        low = 0
        for i in range(b):
            low |= ((data[(pos + i) >> 3] >> ((pos + i) & 7)) & 1) << i
        pos += b
        v = (q << b) | low
        if v > max_value:
            raise _err("codec_data", f"Rice value {j} is {v}, more than {max_value}")
        out.append(v)
    used = (pos + 7) // 8
    if pos % 8 and data[used - 1] >> (pos % 8):
        raise _err("reserved_nonzero", "Rice padding bits are not zero")
    return out, used


def exp_golomb_decode(data: bytes, o: int, count: int, max_value: int) -> tuple[list[int], int]:
    """CODECS.md §E.5: count values of order o, each at most max_value; returns them and the
    bytes used (the code ends on a byte boundary, its padding bits zero).

    Value v is u = v + 2^o of L bits: L - 1 - o one-bits, a zero-bit, then the L - 1 bits of u
    below its leading one, least significant first.  The decoder stops with `codec_data` as
    soon as a run of one-bits is longer than max_value needs, when the bytes end before the
    last value, or when a value exceeds max_value."""
    nbits = 8 * len(data)
    max_ones = (max_value + (1 << o)).bit_length() - 1 - o
    pos = 0
    out = []
    for j in range(count):
        ones = 0
        while True:
            if pos >= nbits:
                raise _err("codec_data", f"Exp-Golomb code ends inside value {j}")
            bit = (data[pos >> 3] >> (pos & 7)) & 1
            pos += 1
            if bit == 0:
                break
            ones += 1
            if ones > max_ones:
                raise _err("codec_data", f"Exp-Golomb value {j}: {ones} one-bits, more than {max_value} needs")
        low_bits = ones + o  # L - 1
        if pos + low_bits > nbits:
            raise _err("codec_data", f"Exp-Golomb code ends inside value {j}")
        low = 0
        for i in range(low_bits):
            low |= ((data[(pos + i) >> 3] >> ((pos + i) & 7)) & 1) << i
        pos += low_bits
        v = ((1 << low_bits) | low) - (1 << o)
        if v > max_value:
            raise _err("codec_data", f"Exp-Golomb value {j} is {v}, more than {max_value}")
        out.append(v)
    used = (pos + 7) // 8
    if pos % 8 and data[used - 1] >> (pos % 8):
        raise _err("reserved_nonzero", "Exp-Golomb padding bits are not zero")
    return out, used


def decode_topk(tp: TopKParams, payload: bytes, n: int, ctx: ChunkContext) -> np.ndarray:
    """CODECS.md §9: u8 b, then k values (raw or bf16) and the Rice-coded gaps, or (mode 2) the
    Rice-coded gaps and the nested pipeline's payload of k values; checks in the spec's order."""
    k = randk_kept(RandKParams(tp.fraction, 0, 0), n)
    vb = 0 if tp.mode == 2 else tp.max_value_bytes(k)
    if len(payload) < 1 + vb:
        raise _err("codec_output_size", f"topk: payload of {len(payload)} bytes cannot hold {k} values")
    b = payload[0]
    if b > 31:
        raise _err("codec_data", f"topk: Rice parameter {b}")
    if tp.mode == 2:
        gaps, used = rice_decode(payload[1:], b, k, n)
        values = tp.nested.decode(payload[1 + used :], k, tp.limits, ctx)
    else:
        raw = payload[1 : 1 + vb]
        if tp.mode == 1:
            values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)).astype(np.uint32)
        else:
            values = np.frombuffer(raw, dtype="<u4").astype(np.uint32)
        code = payload[1 + vb :]
        gaps, used = rice_decode(code, b, k, n)
        if used != len(code):
            raise _err("codec_output_size", f"topk: {len(code) - used} bytes after the positions")
    out = np.zeros(n, dtype=np.uint32)
    nxt = 0
    for j, g in enumerate(gaps):
        p = nxt + g
        if p >= n:
            raise _err("codec_data", f"topk: position {j} is {p}, past the chunk of {n}")
        out[p] = values[j]
        nxt = p + 1
    return out


# qsgd and sparse-dither (CODECS.md §10)

QSGD_ID = 0x105
SPARSE_DITHER_ID = 0x106
MAX_MAGNITUDE = 1 << 26


def parse_qsgd_params(p: bytes) -> int:
    """CODECS.md §10.1: u32 levels in 1..=2^24; returns the largest magnitude."""
    if len(p) != 4:
        raise _err("invalid_params", f"qsgd: parameter block of {len(p)} bytes, expected 4")
    levels = int.from_bytes(p, "little")
    if not 1 <= levels <= 1 << 24:
        raise _err("invalid_params", f"qsgd: levels {levels} not in 1..=2^24")
    return levels


def parse_sparse_dither_params(p: bytes) -> None:
    """CODECS.md §10.1: f64 nu, u8 variant, 7 reserved bytes; checks in the spec's order."""
    if len(p) != 16:
        raise _err("invalid_params", f"sparse-dither: parameter block of {len(p)} bytes, expected 16")
    if any(p[9:]):
        raise _err("reserved_nonzero", "sparse-dither: reserved parameter bytes 9..16 are not zero")
    (nu,) = struct.unpack("<d", p[:8])
    if not 1e-6 <= nu <= 16.0:
        raise _err("invalid_params", f"sparse-dither: nu {nu} not in [1e-6, 16]")
    if p[8] not in (0, 1):
        raise _err("invalid_params", f"sparse-dither: variant {p[8]}")


def levels_max_len(n: int, max_magnitude: int) -> int:
    """CODECS.md §10.2: the largest payload of a chunk of n values."""
    if n > 0xFFFFFFFF:
        raise _err("limit_exceeded", f"chunk of {n} values (more than 2^32 - 1)")
    return 143 + (n * (4 + max_magnitude.bit_length()) + 7) // 8


def decode_levels(codec: str, payload: bytes, n: int, max_magnitude: int) -> np.ndarray:
    """CODECS.md §10.2: step, nonzero count, gaps, signs, magnitudes; checks in the spec's order."""
    if len(payload) < 8:
        raise _err("codec_output_size", f"{codec}: payload ends inside its step and count")
    step_bits = int.from_bytes(payload[:4], "little")
    (step,) = struct.unpack("<f", payload[:4])
    m = int.from_bytes(payload[4:8], "little")
    if not math.isfinite(step) or step_bits >> 31:
        raise _err("codec_data", f"{codec}: step {step} is not a finite value >= +0")
    if m > n:
        raise _err("codec_data", f"{codec}: {m} nonzeros in a chunk of {n}")
    out = np.zeros(n, dtype=np.uint32)
    rest = payload[8:]
    if m == 0:
        if rest:
            raise _err("codec_output_size", f"{codec}: {len(rest)} bytes after count 0")
        return out
    if step == 0.0:
        raise _err("codec_data", f"{codec}: step 0 with {m} nonzeros")
    if len(rest) < 2:
        raise _err("codec_output_size", f"{codec}: payload ends inside its code parameters")
    b_gap, coding, rest = rest[0], rest[1], rest[2:]
    if b_gap > 31:
        raise _err("codec_data", f"{codec}: gap Rice parameter {b_gap}")
    constant = rice_b = table = None
    if coding == 0:
        if len(rest) < 4:
            raise _err("codec_output_size", f"{codec}: payload ends inside its magnitude")
        constant = int.from_bytes(rest[:4], "little")
        if not 1 <= constant <= max_magnitude:
            raise _err("codec_data", f"{codec}: magnitude {constant} not in 1..={max_magnitude}")
        rest = rest[4:]
    elif coding == 1:
        if len(rest) < 1:
            raise _err("codec_output_size", f"{codec}: payload ends inside its magnitude parameter")
        rice_b, rest = rest[0], rest[1:]
        if rice_b > 31:
            raise _err("codec_data", f"{codec}: magnitude Rice parameter {rice_b}")
    elif coding == 2:
        if len(rest) < 1:
            raise _err("codec_output_size", f"{codec}: payload ends inside its Huffman symbol count")
        symbols, rest = rest[0] + 1, rest[1:]
        if not 2 <= symbols <= max_magnitude:
            raise _err("codec_data", f"{codec}: {symbols} Huffman symbols for magnitudes 1..={max_magnitude}")
        table, rest = read_lengths(rest, symbols)
    else:
        raise _err("codec_data", f"{codec}: magnitude coding {coding}")
    gaps, used = rice_decode(rest, b_gap, m, n - 1)
    rest = rest[used:]
    sign_len = (m + 7) // 8
    if len(rest) < sign_len:
        raise _err("codec_output_size", f"{codec}: payload ends inside its sign bits")
    signs, rest = rest[:sign_len], rest[sign_len:]
    if m % 8 and signs[-1] >> (m % 8):
        raise _err("reserved_nonzero", f"{codec}: sign padding bits are not zero")
    if constant is not None:
        if rest:
            raise _err("codec_output_size", f"{codec}: {len(rest)} bytes after the magnitudes")
        magnitudes = [constant] * m
    elif rice_b is not None:
        below, used = rice_decode(rest, rice_b, m, max_magnitude - 1)
        if used != len(rest):
            raise _err("codec_output_size", f"{codec}: {len(rest) - used} bytes after the magnitudes")
        magnitudes = [v + 1 for v in below]
    else:
        magnitudes = [v + 1 for v in huffman_decode(rest, table, m)]
    nxt = 0
    for j, g in enumerate(gaps):
        p = nxt + g
        if p >= n:
            raise _err("codec_data", f"{codec}: nonzero {j} is at {p}, past the chunk of {n}")
        with np.errstate(over="ignore"):
            value = np.float32(step * magnitudes[j])  # f64 product (exact), one rounding to f32
        bits = int(value.view(np.uint32))
        out[p] = bits | (0x80000000 if (signs[j >> 3] >> (j & 7)) & 1 else 0)
        nxt = p + 1
    return out


# spherical (CODECS.md §11)

SPHERICAL_ID = 0x107


@dataclass(frozen=True)
class SphericalParams:
    alpha: float
    draws: int
    block: int
    seed: int


def parse_spherical_params(p: bytes) -> SphericalParams:
    """CODECS.md §11: f64 alpha, u32 draws, u8 block, 3 reserved, u64 seed; checks in order."""
    if len(p) != 24:
        raise _err("invalid_params", f"spherical: parameter block of {len(p)} bytes, expected 24")
    if any(p[13:16]):
        raise _err("reserved_nonzero", "spherical: reserved parameter bytes 13..16 are not zero")
    (alpha,) = struct.unpack("<d", p[:8])
    draws = int.from_bytes(p[8:12], "little")
    block = p[12]
    if not 0.01 <= alpha <= 0.99:
        raise _err("invalid_params", f"spherical: alpha {alpha}")
    if not 1 <= draws <= 1 << 24:
        raise _err("invalid_params", f"spherical: draws {draws}")
    if not 1 <= block <= 16:
        raise _err("invalid_params", f"spherical: block {block}")
    return SphericalParams(alpha, draws, block, int.from_bytes(p[16:24], "little"))


def spherical_max_len(sp: SphericalParams, n: int) -> int:
    if n > 0xFFFFFFFF:
        raise _err("limit_exceeded", f"spherical: chunk of {n} values (more than 2^32 - 1)")
    nb = -(-n // sp.block)
    return 1 + 2 * nb + (26 * nb + 7) // 8 + 4 * n


def spherical_point(cs: int, j: int, t: int, d: int) -> tuple[list[int], int]:
    """CODECS.md §11: the integer coordinates of point t of block j and their squared norm."""
    rng = Xoshiro256(mix64(cs ^ mix64(j)) ^ t)
    v = []
    for _ in range(d):
        w = rng.next_u64()
        v.append((w & 0xFFFF) + ((w >> 16) & 0xFFFF) + ((w >> 32) & 0xFFFF) + (w >> 48) - 131070)
    return v, sum(x * x for x in v)


def decode_spherical(sp: SphericalParams, payload: bytes, n: int, name: str, chunk_index: int) -> np.ndarray:
    """CODECS.md §11, checks in the spec's order."""
    nb = -(-n // sp.block)
    if len(payload) < 1 + 2 * nb:
        raise _err("codec_output_size", "spherical: payload ends inside its parameter and scales")
    b = payload[0]
    if b > 31:
        raise _err("codec_data", f"spherical: Rice parameter {b}")
    # bf16 scales: the upper 16 bits of an f32.
    scale_bits = [int.from_bytes(payload[1 + 2 * j : 3 + 2 * j], "little") << 16 for j in range(nb)]
    scales = [struct.unpack("<f", bits.to_bytes(4, "little"))[0] for bits in scale_bits]
    for j, (bits, sc) in enumerate(zip(scale_bits, scales)):
        if not math.isfinite(sc) or bits >> 31:
            raise _err("codec_data", f"spherical: block {j} scale {sc}")
    rest = payload[1 + 2 * nb :]
    indices, used = rice_decode(rest, b, nb, sp.draws)
    raw = rest[used:]
    raw_values = 0
    for j, (t, bits) in enumerate(zip(indices, scale_bits)):
        d = min(sp.block, n - j * sp.block)
        if t == 0:
            if bits != 0:
                raise _err("codec_data", f"spherical: raw block {j} has a nonzero scale")
            raw_values += d
        elif bits == 0 and t != 1:
            raise _err("codec_data", f"spherical: zero block {j} has index {t}")
    if len(raw) != 4 * raw_values:
        raise _err("codec_output_size", f"spherical: {len(raw)} bytes of raw values for {raw_values} values")
    out = np.zeros(n, dtype=np.uint32)
    cs = chunk_seed(sp.seed, name, chunk_index)
    rho = math.sqrt(1.0 - sp.alpha)
    r = 0
    for j, (t, sc) in enumerate(zip(indices, scales)):
        lo = j * sp.block
        d = min(sp.block, n - lo)
        if t == 0:
            out[lo : lo + d] = np.frombuffer(raw[4 * r : 4 * (r + d)], dtype="<u4")
            r += d
            continue
        if sc == 0.0:
            continue
        v, q = spherical_point(cs, j, t, d)
        if q == 0:
            continue
        f = sc * rho / math.sqrt(float(q))
        for i, vi in enumerate(v):
            out[lo + i] = int(np.float32(f * float(vi)).view(np.uint32))
    return out


# wyner-ziv (CODECS.md §12): lattice indices modulo k against a prediction from side information

WYNER_ZIV_ID = 0x108
WZ_MAX_ESCAPE_CODE = 65535


@dataclass(frozen=True)
class SideRequirement:
    """FORMAT.md §19.2: what a pipeline decodes against. kind is "bound" (label and digest
    given) or "unbound"; a pipeline that decodes against nothing has no SideRequirement."""

    kind: str
    label: str | None = None
    digest: bytes | None = None


@dataclass(frozen=True)
class WynerZivParams:
    mode: int  # 1 bits, 2 step, 3 step and modulus
    rounding: int
    scale: int
    value: float
    modulus: int
    label: str | None  # the binding (FORMAT.md §19.1), with flag BOUND only
    digest: bytes | None

    def side(self) -> SideRequirement | None:
        """CODECS.md §12.1 'What the stage decodes against'."""
        if self.digest is not None:
            return SideRequirement("bound", self.label, self.digest)
        if self.mode == 3:
            return SideRequirement("unbound")
        return None


def parse_wyner_ziv_params(p: bytes) -> WynerZivParams:
    """CODECS.md §12.1, checks in the order given there."""
    if len(p) < 12:
        raise _err("invalid_params", f"wyner-ziv: parameter block of {len(p)} bytes, expected at least 12")
    mode, rounding, scale, flags = p[0], p[1], p[2], p[3]
    if flags & 0xFE:
        raise _err("reserved_nonzero", f"wyner-ziv: reserved parameter flag bits 0x{flags & 0xFE:02x}")
    if p[10:12] != b"\0\0":
        raise _err("reserved_nonzero", "wyner-ziv: reserved parameter bytes 10..12 are not zero")
    label = digest = None
    if flags & 1:
        if len(p) < 13 or len(p) != 12 + 1 + p[12] + 32:
            raise _err("invalid_params", f"wyner-ziv: BOUND parameter block of {len(p)} bytes does not hold its binding")
        try:
            label = p[13 : 13 + p[12]].decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise _err("invalid_params", "wyner-ziv: binding label is not UTF-8") from None
        digest = bytes(p[13 + p[12] :])
    elif len(p) != 12:
        raise _err("invalid_params", f"wyner-ziv: parameter block of {len(p)} bytes without BOUND, expected 12")
    (value,) = struct.unpack_from("<f", p, 4)
    modulus = int.from_bytes(p[8:10], "little")
    if mode not in (1, 2, 3):
        raise _err("invalid_params", f"wyner-ziv: mode {mode}")
    if mode == 1:
        if not 0.0 < value <= 8.0:  # a NaN is not in range
            raise _err("invalid_params", f"wyner-ziv: {value} bits per entry not in (0, 8]")
    elif not (math.isfinite(value) and value > 0.0):
        raise _err("invalid_params", f"wyner-ziv: step {value} is not finite and > 0")
    if mode == 3:
        if not 2 <= modulus <= 256:
            raise _err("invalid_params", f"wyner-ziv: modulus {modulus} not in 2..=256")
    elif modulus != 0:
        raise _err("invalid_params", f"wyner-ziv: modulus {modulus} in mode {mode} (must be 0)")
    if rounding > 1:
        raise _err("invalid_params", f"wyner-ziv: rounding {rounding}")
    if scale > 1:
        raise _err("invalid_params", f"wyner-ziv: scale {scale}")
    return WynerZivParams(mode, rounding, scale, value, modulus, label, digest)


def wyner_ziv_max_len(n: int) -> int:
    """CODECS.md §12.4: 20 + 2 + 16 x 5 + 1 + 1 + ceil(n/8) + ceil(33 n / 8)."""
    return 20 + 2 + 16 * 5 + 1 + 1 + (n + 7) // 8 + (33 * n + 7) // 8


def wz_contexts(y: np.ndarray, g: float, C: int) -> np.ndarray:
    """CODECS.md §12.3 step 2, for side values y (f32 bit patterns as uint32), the gain g and
    C > 1 contexts: with v = |f64(y)| x f64(g), 0 when v = 0; when v < 2^62 the bit length of
    floor(1 + v) (f64 addition), at most C - 1; otherwise (huge, infinite, NaN) C - 1."""
    with np.errstate(all="ignore"):
        v = np.abs(y.view(np.float32).astype(np.float64)) * np.float64(g)
        ctx = np.full(len(v), C - 1, dtype=np.int64)
        small = v < 2.0**62  # False for NaN
        w = np.floor(np.float64(1.0) + v[small])  # an integer in [1, 2^62]
        _, bitlen = np.frexp(w)  # w = m 2^e with m in [0.5, 1): e is the bit length
        ctx[small] = np.minimum(bitlen, C - 1)
        ctx[v == 0] = 0
    return ctx


def decode_wyner_ziv(wz: WynerZivParams, payload: bytes, n: int, side: np.ndarray | None) -> np.ndarray:
    """CODECS.md §12.2-12.3: checks in the order of §12.3, then the arithmetic in f64 (NumPy
    float64, one operation at a time in the order written).  `side` is the chunk's slice of
    the side tensor (f32 bit patterns as uint32), or None."""
    if len(payload) < 20:
        raise _err("codec_output_size", f"wyner-ziv: payload of {len(payload)} bytes, the header takes 20")
    C, flags = payload[0], payload[1]
    k = int.from_bytes(payload[2:4], "little")
    eps, a, g = struct.unpack_from("<fff", payload, 4)
    m = int.from_bytes(payload[16:20], "little")
    if not 1 <= C <= 16:
        raise _err("codec_data", f"wyner-ziv: {C} label contexts")
    if flags & 0xFE:
        raise _err("reserved_nonzero", f"wyner-ziv: reserved chunk flag bits 0x{flags & 0xFE:02x}")
    if not 2 <= k <= 256:
        raise _err("codec_data", f"wyner-ziv: modulus {k}")
    if not (math.isfinite(eps) and eps > 0.0):
        raise _err("codec_data", f"wyner-ziv: step {eps}")
    if not math.isfinite(a):
        raise _err("codec_data", f"wyner-ziv: scale {a}")
    if not (math.isfinite(g) and g >= 0.0):
        raise _err("codec_data", f"wyner-ziv: context gain {g}")
    if m > n:
        raise _err("codec_data", f"wyner-ziv: {m} escapes in a chunk of {n}")
    pos = 20
    positions: list[int] = []
    codes: list[int] = []
    raw_bits = np.zeros(0, dtype=np.uint32)
    if m > 0:
        if len(payload) < 21:
            raise _err("codec_output_size", "wyner-ziv: payload ends before the escapes' Rice parameter")
        b = payload[20]
        if b > 31:
            raise _err("codec_data", f"wyner-ziv: Rice parameter {b}")
        gaps, used = rice_decode(payload[21:], b, m, n)
        nxt = 0
        for j, gap in enumerate(gaps):
            p = nxt + gap
            if p >= n:
                raise _err("codec_data", f"wyner-ziv: escape {j} at {p}, past the chunk of {n}")
            positions.append(p)
            nxt = p + 1
        pos = 21 + used
        if len(payload) < pos + 1:
            raise _err("codec_output_size", "wyner-ziv: payload ends before the escapes' Exp-Golomb order")
        o = payload[pos]
        if o > 31:
            raise _err("codec_data", f"wyner-ziv: Exp-Golomb order {o}")
        codes, used = exp_golomb_decode(payload[pos + 1 :], o, m, WZ_MAX_ESCAPE_CODE)
        pos += 1 + used
        n_raw = codes.count(0)
        if len(payload) < pos + 4 * n_raw:
            raise _err("codec_output_size", f"wyner-ziv: payload ends inside the {n_raw} raw escape values")
        raw_bits = np.frombuffer(payload[pos : pos + 4 * n_raw], dtype="<u4").astype(np.uint32)
        pos += 4 * n_raw
    uses_side = wz.side() is not None
    if uses_side:
        if side is None:
            raise _err("side_info_missing", "wyner-ziv: the stage decodes against side information and has none")
        if len(side) != n:
            raise _err("side_info_mismatch", f"wyner-ziv: side information of {len(side)} values for {n}")
    if C > 1 and not uses_side:
        raise _err("codec_data", f"wyner-ziv: {C} label contexts without side information")
    sections = []
    for sidx in range(C):
        if len(payload) < pos + 5:
            raise _err("codec_output_size", f"wyner-ziv: payload ends inside the header of label section {sidx}")
        coding = payload[pos]
        length = int.from_bytes(payload[pos + 1 : pos + 5], "little")
        if len(payload) - (pos + 5) < length:
            raise _err("codec_output_size", f"wyner-ziv: label section {sidx} of {length} bytes is cut")
        if coding > 4:
            raise _err("codec_data", f"wyner-ziv: label section {sidx} coding {coding}")
        sections.append((coding, payload[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    if pos != len(payload):
        raise _err("codec_output_size", f"wyner-ziv: {len(payload) - pos} bytes after the last label section")

    escaped = np.zeros(n, dtype=bool)
    escaped[np.array(positions, dtype=np.int64)] = True
    if C > 1:
        ctx = wz_contexts(side, g, C)
    else:
        ctx = np.zeros(n, dtype=np.int64)
    residues = np.zeros(n, dtype=np.float64)
    for sidx, (coding, data) in enumerate(sections):
        members = np.nonzero(~escaped & (ctx == sidx))[0]
        labels = decode_label_section(coding, data, k, len(members), f"wyner-ziv section {sidx}")
        residues[members] = labels.astype(np.float64)

    with np.errstate(all="ignore"):  # non-finite side values give NaN or infinities: legal
        eps64 = np.float64(eps)
        if uses_side:
            y = side.view(np.float32).astype(np.float64)
            t = (np.float64(a) * y) / eps64
        else:
            t = np.zeros(n, dtype=np.float64)
        if flags & 1:  # CENTERED
            c = np.floor(t + np.float64(0.5))
        else:
            c = np.zeros(n, dtype=np.float64)
        k64 = np.float64(k)
        q = c + residues
        z = q + k64 * np.floor((t - q) / k64 + np.float64(0.5))
        out = canonical_nan((z * eps64).astype(np.float32).view(np.uint32))
        r = 0
        for p, e in zip(positions, codes):
            if e == 0:
                out[p] = raw_bits[r]
                r += 1
            else:
                u = e - 1
                d = u // 2 if u % 2 == 0 else -((u + 1) // 2)
                zi = c[p] + np.float64(d)
                out[p] = canonical_nan(np.array([np.float64(zi) * eps64]).astype(np.float32).view(np.uint32))[0]
    return out.astype(np.uint32)

if __name__ == "__main__":
    sys.exit(main(sys.argv))

