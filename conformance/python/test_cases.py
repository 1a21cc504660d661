#!/usr/bin/env python3
"""Hand-built streams exercising rules that the spec vectors do not cover.

A tiny writer (below) builds streams from the spec's byte layouts; each case states the code
this decoder's reading of the spec gives.  Cases whose expectation rests on an interpretation
listed in README.md are marked [interp].  Also runs a structure-aware fuzzer that mutates record
bodies and *recomputes* the CRCs, so that the parsers behind the CRC checks are exercised.
"""

import io
import json
import math
import os
import random
import struct
import sys

import numpy as np
import zstandard

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradwire_decode as gw  # noqa: E402
from gradwire_decode import crc32c  # noqa: E402

MAGIC = b"\x89GWF\r\n\x1a\n"


def preamble(major=1, minor=0, reserved=0):
    b = MAGIC + bytes([major, minor]) + struct.pack("<H", reserved)
    return b + struct.pack("<I", crc32c(b))


def record(rtype, body, seq, rflags=0, reserved=0, body_len=None):
    bl = len(body) if body_len is None else body_len
    h = b"\xffGWR" + struct.pack("<HHQII", rtype, rflags, bl, seq, crc32c(body)) + struct.pack("<I", reserved)
    h += struct.pack("<I", crc32c(h))
    return h + body + b"\x00" * ((8 - len(body) % 8) % 8)


def kv(entries):
    """entries: list of (key bytes/str, type, value bytes)"""
    out = struct.pack("<I", len(entries))
    for k, t, v in entries:
        if isinstance(k, str):
            k = k.encode()
        out += struct.pack("<H", len(k)) + k + bytes([t]) + struct.pack("<I", len(v)) + v
    return out


def stream_header_body(seed=0, meta=None, req=0, opt=0):
    return struct.pack("<QQQ", req, opt, seed) + (meta if meta is not None else kv([]))


def stage(cid, ver=1, params=b"", pname=None):
    b = struct.pack("<IHH", cid, ver, len(params)) + params
    if pname is not None:
        pn = pname.encode() if isinstance(pname, str) else pname
        b += bytes([len(pn)]) + pn
    return b


RAW = stage(1)
F16 = stage(2)
BF16 = stage(3)


def ZSTD(level=3):
    return stage(0x10, params=struct.pack("<i", level))


def tensor_begin_body(tid, name, dims, stages, dtype=1, flags=0, ce=1 << 20, ne=None, rank=None,
                      n_stages=None, reserved=b"\0" * 6):
    if ne is None:
        ne = 1
        for d in dims:
            ne *= d
        if 0 in dims:
            ne = 0
    nb = name.encode() if isinstance(name, str) else name
    rank = len(dims) if rank is None else rank
    n_stages = len(stages) if n_stages is None else n_stages
    b = struct.pack("<IBBBBQQH", tid, dtype, rank, n_stages, flags, ce, ne, len(nb)) + reserved
    b += b"".join(struct.pack("<Q", d) for d in dims) + nb + b"".join(stages)
    return b


def chunk_body(tid, idx, payload, dcrc=0, cflags=0, reserved=0):
    return struct.pack("<IIQII", tid, cflags, idx, dcrc, reserved) + payload


def tensor_end_body(tid, n, reserved=0):
    return struct.pack("<IIQ", tid, reserved, n)


class W:
    """Stream writer: W().hdr().add(rtype, body)...end()"""

    def __init__(self):
        self.buf = bytearray(preamble())
        self.seq = 0
        self.n_tensors = 0
        self.index_offset = 0
        self.offsets = {}  # tid -> (begin, [chunk offsets])

    def add(self, rtype, body, **kw):
        off = len(self.buf)
        self.buf += record(rtype, body, self.seq, **kw)
        self.seq += 1
        return off

    def hdr(self, **kw):
        self.add(1, stream_header_body(**kw))
        return self

    def begin(self, *a, **kw):
        tid = a[0]
        off = self.add(2, tensor_begin_body(*a, **kw))
        self.offsets[tid] = (off, [])
        self.n_tensors += 1
        return self

    def chunk(self, tid, idx, payload, **kw):
        off = self.add(3, chunk_body(tid, idx, payload, **kw))
        if tid in self.offsets:
            self.offsets[tid][1].append(off)
        return self

    def tend(self, tid, n, **kw):
        self.add(4, tensor_end_body(tid, n, **kw))
        return self

    def index(self, body=None):
        if body is None:
            body = struct.pack("<II", len(self.offsets), 0)
            for tid in sorted(self.offsets):
                begin, chunks = self.offsets[tid]
                body += struct.pack("<QQ", begin, len(chunks)) + b"".join(struct.pack("<Q", c) for c in chunks)
        self.index_offset = self.add(0x8002, body)
        return self

    def end(self, n_records=None, stream_len=None, index_offset=None, n_tensors=None, reserved=0):
        off = len(self.buf)
        body = struct.pack(
            "<QQQII",
            self.seq if n_records is None else n_records,
            off if stream_len is None else stream_len,
            self.index_offset if index_offset is None else index_offset,
            self.n_tensors if n_tensors is None else n_tensors,
            reserved,
        )
        self.add(5, body)
        return bytes(self.buf)


def f32(vals):
    return np.asarray(vals, dtype="<f4").tobytes()


def one_tensor(stages, payloads, dims=(4,), ce=1 << 20, dtype=1, flags=0, dcrcs=None):
    w = W().hdr().begin(0, "t", list(dims), stages, ce=ce, dtype=dtype, flags=flags)
    for i, p in enumerate(payloads):
        w.chunk(0, i, p, dcrc=(dcrcs[i] if dcrcs else 0))
    return w.tend(0, len(payloads)).end()


def run(data):
    try:
        return "ok", gw.decode_bytes(data)
    except gw.GradwireError as e:
        return e.code, e.message


def zframe(data, **kw):
    return zstandard.ZstdCompressor(write_content_size=True, **kw).compress(data)


def hand_frame(content, fcs=None, single=False, window_byte=0xA0, fcs_flag=None, dict_flag=0, dict_id=b"",
               checksum=False, blocks=None):
    """A hand-built zstd frame with raw blocks."""
    size = len(content) if fcs is None else fcs
    if fcs_flag is None:
        fcs_flag = 1 if 256 <= size < 65536 + 256 else 2
    fhd = (fcs_flag << 6) | ((1 if single else 0) << 5) | ((1 if checksum else 0) << 2) | dict_flag
    b = b"\x28\xb5\x2f\xfd" + bytes([fhd])
    if not single:
        b += bytes([window_byte])
    b += dict_id
    if fcs_flag == 1:
        b += struct.pack("<H", size - 256)
    elif fcs_flag == 2:
        b += struct.pack("<I", size)
    elif fcs_flag == 3:
        b += struct.pack("<Q", size)
    elif single:
        b += bytes([size])
    if blocks is None:
        blocks = [content]
    for i, blk in enumerate(blocks):
        last = 1 if i == len(blocks) - 1 else 0
        b += (last | (0 << 1) | (len(blk) << 3)).to_bytes(3, "little") + blk
    if checksum:
        b += b"\0\0\0\0"  # wrong checksum on purpose unless replaced
    return b


def cases():
    vals = f32([1.0, -2.0, 3.5, 0.25])
    big = f32(np.arange(300, dtype=np.float32))  # 1200 bytes, > 256 for 2-byte FCS
    C = []  # (name, data, expected code)

    # --- baseline
    C.append(("baseline raw", one_tensor([RAW], [vals]), "ok"))
    C.append(("raw+zstd", one_tensor([RAW, ZSTD()], [zframe(vals)]), "ok"))
    C.append(("raw+zstd+zstd", one_tensor([RAW, ZSTD(), ZSTD(-7)], [zframe(zframe(vals))]), "ok"))
    C.append(("f16 dtype f64", one_tensor([F16], [np.asarray([1, 2, 3, 4], "<f2").tobytes()], dtype=4), "ok"))
    C.append(("bytes after END ignored", one_tensor([RAW], [vals]) + b"garbage", "ok"))
    C.append(("unused rflags bit 8", W().hdr().add(0x8001, kv([]), rflags=0x0100) or None, None))

    # --- zstd
    fr = zframe(big)
    C.append(("zstd ok 300 values", one_tensor([RAW, ZSTD()], [fr], dims=(300,)), "ok"))
    C.append(("zstd no content size", one_tensor([RAW, ZSTD()], [zstandard.ZstdCompressor(write_content_size=False).compress(vals)]), "codec_data"))
    C.append(("zstd two frames", one_tensor([RAW, ZSTD()], [zframe(vals[:8]) + zframe(vals[8:])]), "codec_data"))
    C.append(("zstd trailing byte", one_tensor([RAW, ZSTD()], [zframe(vals) + b"\0"]), "codec_data"))
    skip = b"\x50\x2a\x4d\x18" + struct.pack("<I", 0)
    C.append(("zstd skippable frame first", one_tensor([RAW, ZSTD()], [skip + zframe(vals)]), "codec_data"))
    C.append(("zstd empty payload", one_tensor([RAW, ZSTD()], [b""]), "codec_data"))
    C.append(("zstd hand raw block", one_tensor([RAW, ZSTD()], [hand_frame(big)], dims=(300,)), "ok"))
    C.append(("zstd window 2^30 declared", one_tensor([RAW, ZSTD()], [hand_frame(big, window_byte=20 << 3)], dims=(300,)), "ok"))
    C.append(("zstd single segment 1-byte fcs", one_tensor([RAW, ZSTD()], [hand_frame(vals, single=True, fcs_flag=0)]), "ok"))
    C.append(("zstd fcs > content", one_tensor([RAW, ZSTD()], [hand_frame(big[:-4], fcs=1200)], dims=(300,)), "codec_data"))
    C.append(("zstd fcs < content", one_tensor([RAW, ZSTD()], [hand_frame(big + b"\0\0\0\0", fcs=1200)], dims=(300,)), "codec_data"))
    C.append(("zstd fcs 0 with content", one_tensor([RAW, ZSTD()], [hand_frame(vals, fcs=0, single=True, fcs_flag=0)]), "codec_data"))
    C.append(("zstd fcs > bound", one_tensor([RAW, ZSTD()], [hand_frame(vals, fcs=17, single=True, fcs_flag=0)]), "codec_output_size"))
    C.append(("zstd fcs < raw size", one_tensor([RAW, ZSTD()], [hand_frame(vals[:12])]), "codec_output_size"))
    C.append(("zstd dictionary id", one_tensor([RAW, ZSTD()], [hand_frame(vals, single=True, fcs_flag=0, dict_flag=1, dict_id=b"\x07")]), "codec_data"))
    C.append(("zstd dictionary id 0 allowed", one_tensor([RAW, ZSTD()], [hand_frame(vals, single=True, fcs_flag=0, dict_flag=1, dict_id=b"\x00")]), "ok"))
    C.append(("zstd bad checksum", one_tensor([RAW, ZSTD()], [hand_frame(vals, single=True, fcs_flag=0, checksum=True)]), "codec_data"))
    good_ck = zstandard.ZstdCompressor(write_content_size=True, write_checksum=True).compress(vals)
    C.append(("zstd good checksum", one_tensor([RAW, ZSTD()], [good_ck]), "ok"))
    C.append(("zstd block cut", one_tensor([RAW, ZSTD()], [hand_frame(vals)[:-2]]), "codec_data"))
    C.append(("zstd payload over final bound", one_tensor([RAW, ZSTD()], [zframe(vals) + b"\0" * 200]), "codec_output_size"))
    C.append(("raw payload over bound", one_tensor([RAW], [vals + b"\0\0\0\0"]), "codec_output_size"))

    # --- params / pipeline
    C.append(("zstd params 3 bytes", one_tensor([RAW, stage(0x10, params=b"\0\0\0")], [zframe(vals)]), "invalid_params"))
    C.append(("zstd level -8", one_tensor([RAW, ZSTD(-8)], [zframe(vals)]), "invalid_params"))
    C.append(("zstd level 22", one_tensor([RAW, ZSTD(22)], [zframe(vals)]), "ok"))
    C.append(("zstd version 2", one_tensor([RAW, stage(0x10, ver=2, params=b"\3\0\0\0")], [zframe(vals)]), "unsupported_codec"))
    C.append(("only zstd", one_tensor([ZSTD()], [zframe(vals)]), "pipeline_invalid"))
    C.append(("codec id 0", one_tensor([stage(0)], [vals]), "unsupported_codec"))
    C.append(("codec id ffffffff", one_tensor([stage(0xFFFFFFFF)], [vals]), "unsupported_codec"))
    C.append(("private codec good name", one_tensor([stage(0x80000001, pname="acme.q")], [vals]), "unsupported_codec"))
    C.append(("private codec name no dot", one_tensor([stage(0x80000001, pname="acmeq")], [vals]), "malformed"))
    C.append(("private codec name not utf8", one_tensor([stage(0x80000001, pname=b"\xff.x")], [vals]), "malformed"))
    C.append(("reserved-range codec", one_tensor([stage(0x01000000)], [vals]), "unsupported_codec"))
    C.append(("param_len over limit", one_tensor([stage(1, params=b"\0" * 5000)], [vals]), "limit_exceeded"))

    # --- TENSOR_BEGIN body rules and their order
    def tb(**kw):
        w = W().hdr()
        w.add(2, tensor_begin_body(0, kw.pop("name", "t"), kw.pop("dims", [4]), kw.pop("stages", [RAW]), **kw))
        return w.end()

    C.append(("n_stages 0 [interp]", tb(stages=[]), "pipeline_invalid"))
    C.append(("n_stages 9", tb(stages=[RAW] * 9), "limit_exceeded"))
    C.append(("chunk_elements 0", tb(ce=0), "malformed"))
    C.append(("chunk_elements too big", tb(ce=16 * 1024 * 1024 + 1), "limit_exceeded"))
    C.append(("chunk_elements 2^62 (x4 overflows)", tb(ce=1 << 62), "limit_exceeded"))
    C.append(("flags reserved bit", tb(flags=2), "reserved_nonzero"))
    C.append(("name with NUL", tb(name="a\0b"), "malformed"))
    C.append(("name_len over limit", tb(name="a" * 1025), "limit_exceeded"))
    C.append(("reserved bytes in TENSOR_BEGIN", tb(reserved=b"\0\0\0\0\0\1"), "reserved_nonzero"))
    C.append(("dtype 0", tb(dtype=0), "unsupported_dtype"))
    C.append(("rank 0 n_elements 0", tb(dims=[], ne=0), "shape_overflow"))
    C.append(("tensor bytes over 16 GiB", tb(dims=[4 * 1024 ** 3 + 1]), "limit_exceeded"))
    C.append(("tensor bytes exactly 16 GiB is not over", tb(dims=[4 * 1024 ** 3]), "chunk_order"))
    C.append(("trailing byte in TENSOR_BEGIN", W().hdr().add(2, tensor_begin_body(0, "t", [4], [RAW]) + b"\0") or None, None))
    C.append(("order: NUL name + flags reserved -> malformed first", tb(name="a\0", flags=2), "malformed"))
    C.append(("order: flags reserved + codec 0 -> reserved first", tb(flags=2, stages=[stage(0)]), "reserved_nonzero"))
    C.append(("order: dtype before reserved", tb(dtype=9, reserved=b"\1" * 6), "unsupported_dtype"))
    C.append(("order: reserved before rank limit [interp]", tb(dims=[1] * 40, reserved=b"\1" * 6), "reserved_nonzero"))
    C.append(("order: shape before chunk_elements", tb(dims=[4], ne=5, ce=0), "shape_overflow"))
    C.append(("order: codec 0 before unknown codec (step 3 before 5)", tb(stages=[stage(0xFE), stage(0)]), "unsupported_codec"))
    C.append(("order: body rules before between-record rules", W().hdr().begin(0, "t", [4], [RAW]).add(2, tensor_begin_body(0, "t", [4], [RAW], flags=2)) or None, None))

    # --- between records
    w = W().hdr().begin(0, "t", [4], [RAW]).tend(0, 0)
    C.append(("TENSOR_END with chunks missing", w.end(), "chunk_order"))
    w = W().hdr().begin(0, "t", [4], [RAW]).chunk(0, 0, vals).tend(0, 2)
    C.append(("TENSOR_END wrong n_chunks", w.end(), "chunk_order"))
    w = W().hdr().begin(0, "t", [4], [RAW]).chunk(0, 0, vals).chunk(0, 1, vals)
    C.append(("extra chunk beyond the last", w.tend(0, 2).end(), "chunk_order"))
    w = W().hdr().begin(0, "t", [4], [RAW]).chunk(0, 0, vals).tend(0, 1).chunk(0, 1, vals)
    C.append(("chunk of a closed tensor", w.end(), "unknown_tensor"))
    w = W().hdr().begin(0, "t", [4], [RAW]).chunk(0, 0, vals).tend(0, 1).tend(0, 1)
    C.append(("TENSOR_END twice", w.end(), "unknown_tensor"))
    w = W().hdr().begin(1, "t", [4], [RAW])
    C.append(("tensor_id 1 first", w.end(), "duplicate_tensor"))
    w = W().hdr().begin(0, "t", [4], [RAW])
    C.append(("INDEX while open", w.index().end(), "index_mismatch"))
    w = W().hdr().begin(0, "t", [4], [RAW]).chunk(0, 0, vals).tend(0, 1).index().begin(1, "u", [0], [RAW])
    C.append(("TENSOR_BEGIN after INDEX", w.end(), "index_mismatch"))
    w = W().hdr().begin(0, "t", [4], [RAW]).chunk(0, 0, vals).tend(0, 1).index()
    w.add(0x8001, kv([]))
    C.append(("METADATA after INDEX", w.end(), "ok"))
    w = W().hdr().begin(0, "t", [4], [RAW]).chunk(0, 0, vals).tend(0, 1)
    C.append(("END index_offset without INDEX", w.end(index_offset=16), "index_mismatch"))
    w = W().hdr().begin(0, "t", [4], [RAW]).chunk(0, 0, vals).tend(0, 1).index()
    C.append(("END index_offset 0 with INDEX", w.end(index_offset=0), "index_mismatch"))
    C.append(("END n_records wrong", W().hdr().end(n_records=5), "index_mismatch"))
    C.append(("END stream_len wrong", W().hdr().end(stream_len=8), "index_mismatch"))
    C.append(("END reserved", W().hdr().end(reserved=1), "reserved_nonzero"))
    C.append(("INDEX n_chunks too large for body", W().hdr().index(struct.pack("<IIQQ", 1, 0, 16, 1 << 60)).end(), "malformed"))
    C.append(("INDEX reserved", W().hdr().index(struct.pack("<II", 0, 1)).end(), "reserved_nonzero"))
    C.append(("INDEX trailing", W().hdr().index(struct.pack("<II", 0, 0) + b"\0" * 8).end(), "malformed"))
    def n_open(k):
        w = W().hdr()
        for i in range(k):
            w.begin(i, f"t{i}", [0], [RAW])
        return w.end()

    C.append(("64 open tensors", n_open(64), "chunk_order"))
    C.append(("65 open tensors", n_open(65), "limit_exceeded"))
    w = W().hdr().begin(0, "e", [0, 5], [BF16]).tend(0, 0)
    C.append(("empty tensor, zero chunks", w.end(), "ok"))
    w = W().hdr().begin(0, "e", [0], [RAW]).chunk(0, 0, b"")
    C.append(("chunk for an empty tensor", w.end(), "chunk_order"))

    # --- framing
    C.append(("no records", preamble(), "truncated"))
    C.append(("preamble minor 7", preamble(minor=7)[:16] + W().hdr().end()[16:], "ok"))
    C.append(("private record before STREAM_HEADER [interp]", preamble() + record(0xF000, b"", 0), "malformed"))
    C.append(("unknown skippable type", W().hdr().add(0x8005, b"xyz") or None, None))
    C.append(("reserved flag bit 0", W().hdr().add(0x8001, kv([]), rflags=1) or None, None))
    C.append(("header reserved", W().hdr().add(0x8001, kv([]), reserved=1) or None, None))
    C.append(("second STREAM_HEADER", W().hdr().hdr().end(), "malformed"))
    C.append(("END body 31 bytes", W().hdr().add(5, b"\0" * 31) or None, None))
    C.append(("TENSOR_END body 17", W().hdr().add(4, b"\0" * 17) or None, None))
    C.append(("STREAM_HEADER body > 1 MiB", preamble() + record(1, b"", 0, body_len=(1 << 20) + 1), "limit_exceeded"))
    C.append(("END first record", preamble() + record(5, struct.pack("<QQQII", 0, 16, 0, 0, 0), 0), "malformed"))
    C.append(("header cut inside sync (bad bytes)", preamble() + b"\x00\x00", "truncated"))

    # --- metadata
    def md(entries, **kw):
        return W().hdr(meta=kv(entries), **kw).end()

    u64 = struct.pack("<Q", 1)
    C.append(("md unsorted", md([("b", 2, u64), ("a", 2, u64)]), "malformed"))
    C.append(("md duplicate", md([("a", 2, u64), ("a", 2, u64)]), "malformed"))
    C.append(("md prefix order ok", md([("a", 2, u64), ("a.b", 2, u64)]), "ok"))
    C.append(("md uppercase key", md([("A", 2, u64)]), "malformed"))
    C.append(("md key starts with digit", md([("1a", 2, u64)]), "malformed"))
    C.append(("md key with trailing newline", md([("a\n", 2, u64)]), "malformed"))
    C.append(("md key_len 0", md([("", 2, u64)]), "malformed"))
    C.append(("md key_len 256", md([("a" * 256, 2, u64)]), "malformed"))
    C.append(("md key_len 255", md([("a" * 255, 2, u64)]), "ok"))
    C.append(("md type 5", md([("a", 5, u64)]), "malformed"))
    C.append(("md u64 len 4", md([("a", 2, b"\0" * 4)]), "malformed"))
    C.append(("md f64 len 9", md([("a", 4, b"\0" * 9)]), "malformed"))
    C.append(("md text not utf8", md([("a", 1, b"\xc3")]), "malformed"))
    C.append(("md value 65536", md([("a", 0, b"\0" * 65536)]), "ok"))
    C.append(("md value 65537", md([("a", 0, b"\0" * 65537)]), "limit_exceeded"))
    C.append(("md order: bad key syntax + big value -> limit first", md([("A", 0, b"\0" * 65537)]), "limit_exceeded"))
    C.append(("md order: key not utf8 + big value -> malformed first", md([(b"\xff", 0, b"\0" * 65537)]), "malformed"))
    C.append(("md fl.round as i64", md([("fl.round", 3, u64)]), "malformed"))
    C.append(("md fl.payload_kind bad", md([("fl.payload_kind", 1, b"grads")]), "malformed"))
    C.append(("md fl.payload_kind delta", md([("fl.payload_kind", 1, b"delta")]), "ok"))
    C.append(("md unregistered key kept", md([("zz", 1, b"x")]), "ok"))
    C.append(("md count too large", W().hdr(meta=struct.pack("<I", 2) + kv([("a", 2, u64)])[4:]).end(), "malformed"))
    C.append(("optional feature bits ignored", W().hdr(opt=0xFFFF).end(), "ok"))
    C.append(("required feature bit 63", W().hdr(req=1 << 63).end(), "unsupported_feature"))
    C.append(("METADATA invalid", W().hdr().add(0x8001, kv([("b", 2, u64), ("a", 2, u64)])) or None, None))

    # --- decoded CRC
    d = np.frombuffer(vals, "<u4")
    C.append(("decoded crc ok", one_tensor([RAW], [vals], flags=1, dcrcs=[crc32c(vals)]), "ok"))
    C.append(("decoded crc zero is checked", one_tensor([RAW], [vals], flags=1, dcrcs=[0]), "checksum_decoded"))
    C.append(("order: output size before decoded crc", one_tensor([RAW], [vals[:12]], flags=1, dcrcs=[0]), "codec_output_size"))
    del d
    C.extend(intrinsic_cases())
    C.extend(wyner_ziv_cases())
    return C


# --------------------------------------------------------------------------------------------
# intrinsic (CODECS.md §7)
# --------------------------------------------------------------------------------------------


def INTR(dim, family=0, scaling=0, schedule=0, nonzeros=None, groups=None, seed=0, rnd=0, reserved=0, ver=1,
         length=None):
    """An intrinsic stage entry (CODECS.md §7.1); `length` cuts or pads the 32-byte block."""
    if nonzeros is None:
        nonzeros = 4 if family == 2 else 0
    if groups is None:
        groups = 2 if schedule == 1 else 0
    p = struct.pack("<BBBBIIIQQ", family, scaling, schedule, reserved, dim, nonzeros, groups, seed, rnd)
    if length is not None:
        p = (p + b"\0" * length)[:length]
    return stage(0x102, ver=ver, params=p)


def bits_f32(bits):
    return np.asarray(bits, dtype="<u4").tobytes()


def intr_stream(stages, payloads, dims, ce=1 << 20, name="t", seed=0, flags=0, dcrcs=None):
    w = W().hdr(seed=seed).begin(0, name, list(dims), stages, ce=ce, flags=flags)
    for i, p in enumerate(payloads):
        w.chunk(0, i, p, dcrc=(dcrcs[i] if dcrcs else 0))
    return w.tend(0, len(payloads)).end()


def intrinsic_cases():
    """Codes for intrinsic streams.  The streams that decode are also useful to the Rust decoder
    (differential.py --cases): several sit on corners no spec vector covers."""
    rs = np.random.RandomState(7)

    def coeffs(k):
        return f32(rs.standard_normal(k).astype(np.float32))

    C = []
    # --- parameters (CODECS.md §7.1), in the order of the checks
    C.append(("intrinsic srht + raw, 200 values in chunks of 150 and 50",
              intr_stream([INTR(100, seed=42), RAW], [coeffs(100), coeffs(50)], [200], ce=150, name="fc1.weight"), "ok"))
    C.append(("intrinsic params 33 bytes", intr_stream([INTR(4, length=33), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic params 0 bytes", intr_stream([INTR(4, length=0), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic order: length before reserved", intr_stream([INTR(4, reserved=1, length=31), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic order: reserved before family", intr_stream([INTR(4, reserved=1, family=9), RAW], [coeffs(4)], [4]), "reserved_nonzero"))
    C.append(("intrinsic order: reserved before dim", intr_stream([INTR(0, reserved=0x80), RAW], [coeffs(4)], [4]), "reserved_nonzero"))
    C.append(("intrinsic scaling 2", intr_stream([INTR(4, scaling=2), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic schedule 3", intr_stream([INTR(4, schedule=3, groups=0), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic dim 0", intr_stream([INTR(0), RAW], [b""], [4]), "invalid_params"))
    C.append(("intrinsic dim 2^32-1 (d = n)", intr_stream([INTR(0xFFFFFFFF), RAW], [coeffs(4)], [4]), "ok"))
    C.append(("intrinsic sparse nonzeros 0", intr_stream([INTR(4, family=2, nonzeros=0), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic sparse nonzeros 65", intr_stream([INTR(4, family=2, nonzeros=65), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic sparse nonzeros 64", intr_stream([INTR(4, family=2, nonzeros=64), RAW], [coeffs(4)], [5]), "ok"))
    C.append(("intrinsic rademacher nonzeros 1", intr_stream([INTR(4, family=1, nonzeros=1), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic fixed with groups 1", intr_stream([INTR(4, groups=1), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic round with groups 1", intr_stream([INTR(4, schedule=2, groups=1, rnd=3), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic group with 0 groups", intr_stream([INTR(4, schedule=1, groups=0), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic fixed with round 1", intr_stream([INTR(4, rnd=1), RAW], [coeffs(4)], [4]), "invalid_params"))
    C.append(("intrinsic round schedule, round 2^64-1",
              intr_stream([INTR(3, schedule=2, rnd=2**64 - 1, seed=2**64 - 1), RAW], [coeffs(3)], [7]), "ok"))
    C.append(("intrinsic group schedule, 3 groups, round 2^64-1",
              intr_stream([INTR(3, schedule=1, groups=3, rnd=2**64 - 1), RAW], [coeffs(3)], [7]), "ok"))
    C.append(("intrinsic group schedule, 2^32-1 groups",
              intr_stream([INTR(3, schedule=1, groups=0xFFFFFFFF, rnd=5), RAW], [coeffs(3)], [7]), "ok"))
    C.append(("intrinsic version 2", intr_stream([INTR(4, ver=2), RAW], [coeffs(4)], [4]), "unsupported_codec"))
    C.append(("intrinsic version 0", intr_stream([INTR(4, ver=0), RAW], [coeffs(4)], [4]), "unsupported_codec"))

    # --- pipeline typing (FORMAT.md §7.3, §6.2 'Building the pipeline')
    C.append(("intrinsic alone", intr_stream([INTR(4)], [coeffs(4)], [4]), "pipeline_invalid"))
    C.append(("intrinsic after raw", intr_stream([RAW, INTR(4)], [coeffs(4)], [4]), "pipeline_invalid"))
    C.append(("intrinsic + zstd, no array->bytes", intr_stream([INTR(4), ZSTD()], [zframe(coeffs(4))], [4]), "pipeline_invalid"))
    C.append(("raw + zstd + intrinsic", intr_stream([RAW, ZSTD(), INTR(4)], [zframe(coeffs(4))], [4]), "pipeline_invalid"))
    C.append(("order: params before stage kind", intr_stream([RAW, INTR(0)], [coeffs(4)], [4]), "invalid_params"))
    C.append(("order: stage kind of stage 1 before params of stage 2",
              intr_stream([RAW, INTR(4), INTR(0)], [coeffs(4)], [4]), "pipeline_invalid"))
    C.append(("intrinsic + intrinsic + raw (lengths 40 -> 16 -> 5)",
              intr_stream([INTR(16, seed=1), INTR(5, family=1, seed=2), RAW], [coeffs(5)], [40]), "ok"))
    C.append(("intrinsic + bf16 + zstd",
              intr_stream([INTR(30, family=2, nonzeros=3, scaling=1), BF16, ZSTD()],
                          [zframe((np.frombuffer(coeffs(30), "<u4") >> 16).astype("<u2").tobytes())],
                          [100]), "ok"))

    # --- sizes (CODECS.md §7.2) and the stage after it
    C.append(("intrinsic coefficients one short", intr_stream([INTR(10), RAW], [coeffs(9)], [50]), "codec_output_size"))
    C.append(("intrinsic coefficients one long", intr_stream([INTR(10), RAW], [coeffs(11)], [50]), "codec_output_size"))
    C.append(("intrinsic dim > n: d = n", intr_stream([INTR(1000, family=1), RAW], [coeffs(37)], [37]), "ok"))
    C.append(("intrinsic dim > n: dim coefficients refused", intr_stream([INTR(40), RAW], [coeffs(40)], [37]), "codec_output_size"))
    C.append(("intrinsic last chunk shorter: d = min(dim, n)",
              intr_stream([INTR(20, family=2, nonzeros=2), RAW], [coeffs(20), coeffs(20), coeffs(7)], [47], ce=20), "ok"))
    C.append(("intrinsic + zstd payload over bound",
              intr_stream([INTR(10), RAW, ZSTD()], [zframe(coeffs(10)) + b"\0" * 100], [50]), "codec_output_size"))

    # --- limits (CODECS.md §7.2), checked when the tensor begins
    C.append(("intrinsic rademacher n x d = 2^26 accepted", intr_stream([INTR(8192, family=1), RAW], [], [8192]), "chunk_order"))
    C.append(("intrinsic rademacher n x d > 2^26", intr_stream([INTR(8192, family=1), RAW], [], [8193]), "limit_exceeded"))
    C.append(("intrinsic rademacher limit: srht and sparse have none",
              intr_stream([INTR(8192, family=2, nonzeros=1), RAW], [], [16384]), "chunk_order"))
    C.append(("intrinsic rademacher limit, first chunk of several",
              intr_stream([INTR(4096, family=1), RAW], [], [40000], ce=20000), "limit_exceeded"))
    C.append(("intrinsic rademacher limit in a second array->array stage",
              intr_stream([INTR(10000), INTR(8192, family=1), RAW], [], [10000]), "limit_exceeded"))
    C.append(("intrinsic rademacher limit after a reducing first stage",
              intr_stream([INTR(8192), INTR(8192, family=1), RAW], [], [20000]), "chunk_order"))
    C.append(("order: rademacher limit before the chunk", intr_stream([INTR(4096, family=1), RAW], [b""], [20000]), "limit_exceeded"))
    C.append(("intrinsic rademacher limit, chunk_elements large but tensor small [interp]",
              intr_stream([INTR(4096, family=1), RAW], [coeffs(100)], [100], ce=20000), "ok"))
    C.append(("intrinsic rademacher limit, empty tensor [interp]",
              intr_stream([INTR(4096, family=1), RAW], [], [0], ce=20000), "ok"))

    # --- decoded CRC over the projected values
    cb = coeffs(5)
    out = gw.decode_bytes(intr_stream([INTR(5, family=1, seed=9), RAW], [cb], [12]))["tensors"][0]["values_hex"]
    crc = crc32c(b"".join(int(h, 16).to_bytes(4, "little") for h in out))
    C.append(("intrinsic decoded crc ok", intr_stream([INTR(5, family=1, seed=9), RAW], [cb], [12], flags=1, dcrcs=[crc]), "ok"))
    C.append(("intrinsic decoded crc of the coefficients is wrong",
              intr_stream([INTR(5, family=1, seed=9), RAW], [cb], [12], flags=1, dcrcs=[crc32c(cb)]), "checksum_decoded"))

    # --- corners for bit-exactness (values checked by intrinsic_value_checks and by the Rust decoder
    # through differential.py --cases)
    specials = [0x7FC00001, 0xFFC00002, 0x7F800000, 0xFF800000, 0x7F800001, 0x3F800000, 0x80000000, 0x00000001]
    for fam, nz in ((0, 0), (1, 0), (2, 64)):
        C.append((f"intrinsic family {fam}: NaN, inf, sNaN, -0, subnormal coefficients",
                  intr_stream([INTR(8, family=fam, nonzeros=nz), RAW], [bits_f32(specials)], [8]), "ok"))
        C.append((f"intrinsic family {fam}: inf and -inf meet",
                  intr_stream([INTR(2, family=fam, nonzeros=nz, scaling=1), RAW], [bits_f32([0x7F800000, 0x7F800000])], [2]), "ok"))
    wide = f32([1e30, 1.0, -1e30, 16777216.0, 3e-8])
    C.append(("intrinsic sparse: rows repeat, order of additions matters",
              intr_stream([INTR(8, family=2, nonzeros=64, scaling=1), RAW], [wide[:12]], [3]), "ok"))
    C.append(("intrinsic rademacher: order of additions matters",
              intr_stream([INTR(8, family=1), RAW], [wide], [5]), "ok"))
    C.append(("intrinsic srht: blocks with d_b = 0 [interp]",
              intr_stream([INTR(1, seed=3), RAW], [f32([2.0])], [200]), "ok"))
    C.append(("intrinsic srht unbiased: blocks with d_b = 0 [interp]",
              intr_stream([INTR(1, seed=3, scaling=1), RAW], [f32([2.0])], [200]), "ok"))
    for n in (1, 2, 63, 64, 65, 127, 129, 1000):
        d = max(1, n // 3)
        C.append((f"intrinsic srht n = {n}, d = {d}",
                  intr_stream([INTR(d, seed=n, scaling=n % 2), RAW], [coeffs(d)], [n]), "ok"))
    C.append(("intrinsic non-ASCII tensor name (chunk seed over UTF-8)",
              intr_stream([INTR(3, family=2, nonzeros=2), RAW], [coeffs(3)], [9], name="\u00e9t\u00e9/\u4e2d"), "ok"))
    C.append(("intrinsic stream seed plays no part",
              intr_stream([INTR(3, family=2, nonzeros=2), RAW], [coeffs(3)], [9], seed=12345), "ok"))
    return C


def intrinsic_value_checks():
    """Exact values of tiny intrinsic chunks, computed here from CODECS.md §7 by hand (scalar f32
    arithmetic), against the decoder's vectorized code.  Returns a list of failures."""
    fails = []

    def decode(stages, coef_bits, n, name="t", seed=0):
        data = intr_stream(stages, [bits_f32(coef_bits)], [n], name=name, seed=seed)
        return [int(h, 16) for h in gw.decode_bytes(data)["tensors"][0]["values_hex"]]

    def flip(bits, b):
        return np.uint32(bits ^ (b << 31)).view(np.float32)

    def f32bits(x):
        return int(np.float32(x).view(np.uint32))

    def gen(P, name, c):
        return gw.Xoshiro256(gw.chunk_seed(P, name, c))

    one = 0x3FC00000  # 1.5
    # srht, n = 1: P_b = 1, H is the identity, f = 1 / sqrt(1) = 1.
    g = gen(7, "t", 0)
    s0 = g.next_u64() & 1
    got = decode([INTR(1, seed=7), RAW], [one], 1)
    want = [f32bits(flip(one, s0) * np.float32(1.0))]
    if got != want:
        fails.append(f"srht n=1: {got} != {want}")
    # srht, n = 2, d = 2: P_b = 2, rows from one Fisher-Yates step (the second draws below 1).
    c = [0x3F800000, 0x40400000]  # 1, 3
    g = gen(7, "t", 0)
    w = g.next_u64()
    r = [0, 1]
    for j in range(2):
        k = j + g.next_below(2 - j)
        r[j], r[k] = r[k], r[j]
    y = [np.float32(0), np.float32(0)]
    for j in range(2):
        y[r[j]] = np.uint32(c[j]).view(np.float32)
    y = [y[0] + y[1], y[0] - y[1]]
    f = np.float32(1.0 / np.sqrt(2.0))
    want = [f32bits(flip(int(np.float32(y[i]).view(np.uint32)), (w >> i) & 1) * f) for i in range(2)]
    got = decode([INTR(2, seed=7), RAW], c, 2)
    if got != want:
        fails.append(f"srht n=2: {got} != {want}")
    # rademacher n = 3, d = 2, unbiased: f = (3/2) / sqrt(3).
    c = [0x3F800000, 0x3E800000]  # 1, 0.25
    g = gen(5, "r", 0)
    cols = [g.next_u64() for _ in range(2)]
    acc = [np.float32(0)] * 3
    for j in range(2):
        for i in range(3):
            acc[i] = np.float32(acc[i] + flip(c[j], (cols[j] >> i) & 1))
    f = np.float32((3.0 / 2.0) / np.sqrt(3.0))
    want = [f32bits(a * f) for a in acc]
    got = decode([INTR(2, family=1, scaling=1, seed=5), RAW], c, 3, name="r")
    if got != want:
        fails.append(f"rademacher n=3: {got} != {want}")
    # sparse n = 4, d = 3, s = 5, schedule round 9: P = mix64(seed XOR mix64(9)).
    c = [0x3F800000, 0xC0000000, 0x3DCCCCCD]  # 1, -2, 0.1
    P = gw.mix64(11 ^ gw.mix64(9))
    g = gen(P, "s", 0)
    acc = [np.float32(0)] * 4
    for j in range(3):
        sw = g.next_u64()
        rows = [g.next_below(4) for _ in range(5)]
        for k in range(5):
            acc[rows[k]] = np.float32(acc[rows[k]] + flip(c[j], (sw >> k) & 1))
    f = np.float32(1.0 / np.sqrt(5.0))
    want = [f32bits(a * f) for a in acc]
    got = decode([INTR(3, family=2, nonzeros=5, schedule=2, rnd=9, seed=11), RAW], c, 4, name="s")
    if got != want:
        fails.append(f"sparse n=4: {got} != {want}")
    # srht blocks with d_b = 0 decode to +0.0.
    ip = gw.IntrinsicParams(family=0, scaling=0, schedule=0, dim=1, nonzeros=0, groups=0, seed=3, round=0)
    got = [int(v) for v in gw.decode_intrinsic(ip, np.array([0x40000000], np.uint32), 200, "t", 0)]
    if any(v != 0 for v in got[:192]) or all(v == 0 for v in got[192:]):
        fails.append("srht d_b = 0 blocks are not +0.0")
    return fails


# --------------------------------------------------------------------------------------------
# wyner-ziv (CODECS.md §12), Exp-Golomb codes (§E.5) and side information (FORMAT.md §19)
# --------------------------------------------------------------------------------------------

WZ_ID = 0x108


def pack_bits(bits):
    """Bits (0/1, in stream order) into bytes, least significant bit first, zero padding."""
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        out[i >> 3] |= b << (i & 7)
    return bytes(out)


def rice_bits(values, b):
    """CODECS.md §E.3: q one-bits, a zero-bit, the b low bits least significant first."""
    bits = []
    for v in values:
        bits += [1] * (v >> b) + [0] + [(v >> i) & 1 for i in range(b)]
    return bits


def eg_bits(values, o):
    """CODECS.md §E.5: u = v + 2^o of L bits: L - 1 - o one-bits, a zero-bit, the L - 1 bits of
    u below its leading one, least significant first."""
    bits = []
    for v in values:
        u = v + (1 << o)
        L = u.bit_length()
        bits += [1] * (L - 1 - o) + [0] + [(u >> i) & 1 for i in range(L - 1)]
    return bits


def fixed_labels(labels, s):
    """CODECS.md §E.4 coding 0: w = max(1, ceil(log2 S)) bits a label."""
    w = max(1, (s - 1).bit_length())
    return pack_bits([(v >> i) & 1 for v in labels for i in range(w)])


def huffman_labels(labels, lengths):
    """CODECS.md §E.4 coding 1: the 4-bit code lengths, then the canonical codes (§E.1), first
    (most significant) bit of a code first."""
    s = len(lengths)
    lb = bytearray((s + 1) // 2)
    for i, l in enumerate(lengths):
        lb[i // 2] |= l << (4 * (i % 2))
    codes, code, prev = {}, 0, 0
    for sym in sorted((i for i in range(s) if lengths[i]), key=lambda i: (lengths[i], i)):
        code <<= lengths[sym] - prev
        prev = lengths[sym]
        codes[sym] = (code, lengths[sym])
        code += 1
    bits = []
    for v in labels:
        c, l = codes[v]
        bits += [(c >> (l - 1 - i)) & 1 for i in range(l)]
    return bytes(lb) + pack_bits(bits)


def WZ(mode=2, value=0.01, modulus=0, rounding=0, scale=0, flags=0, label=None, digest=b"\0" * 32,
       reserved=0, ver=1, extra=b"", length=None):
    """A wyner-ziv stage entry (CODECS.md §12.1); a label adds the binding and flag BOUND."""
    if label is not None:
        flags |= 1
    p = struct.pack("<BBBBfHH", mode, rounding, scale, flags, value, modulus, reserved)
    if label is not None:
        lb = label.encode() if isinstance(label, str) else label
        p += bytes([len(lb)]) + lb + digest
    p += extra
    if length is not None:
        p = (p + b"\0" * length)[:length]
    return stage(WZ_ID, ver=ver, params=p)


def wz_payload(C=1, flags=0, k=16, eps=0.01, a=0.0, g=0.0, m=None, escapes=(), sections=((3, b"\0"),),
               b=None, o=None, raw=None, gap_bits=None, code_bits=None):
    """A wyner-ziv chunk payload (CODECS.md §12.2). escapes: (position, e) in position order;
    raw: the raw f32 bit patterns of the escapes with e = 0 (default 0x7FC00000 each);
    sections: (coding, bytes) per context."""
    pos = [p for p, _ in escapes]
    es = [e for _, e in escapes]
    m = len(escapes) if m is None else m
    out = struct.pack("<BBHfffI", C, flags, k, eps, a, g, m)
    if escapes or b is not None:
        gaps = [pos[0]] + [pos[j] - pos[j - 1] - 1 for j in range(1, len(pos))] if pos else []
        b = 0 if b is None else b
        o = 0 if o is None else o
        out += bytes([b]) + (gap_bits if gap_bits is not None else pack_bits(rice_bits(gaps, b)))
        out += bytes([o]) + (code_bits if code_bits is not None else pack_bits(eg_bits(es, o)))
        if raw is None:
            raw = [0x7FC00000] * es.count(0)
        out += b"".join(struct.pack("<I", r) for r in raw)
    for coding, data in sections:
        out += bytes([coding]) + struct.pack("<I", len(data)) + data
    return out


def wz_stream(stages, payloads, n, ce=1 << 20, name="t", seed=0):
    w = W().hdr(seed=seed).begin(0, name, [n], stages, ce=ce)
    for i, p in enumerate(payloads):
        w.chunk(0, i, p)
    return w.tend(0, len(payloads)).end()


def side_stream(tensors):
    """Side information as a gradwire stream of raw tensors: {name: f32 bit patterns}."""
    w = W().hdr()
    for i, (name, bits) in enumerate(tensors.items()):
        w.begin(i, name, [len(bits)], [RAW])
        if len(bits):
            w.chunk(i, 0, bits_f32(bits))
        w.tend(i, 1 if len(bits) else 0)
    return w.end()


def side_digest(bits):
    import hashlib

    return hashlib.sha256(np.asarray(bits, dtype="<u4").tobytes()).digest()


def wyner_ziv_cases():
    """Streams without side information (they go to differential.py --cases as they are)."""
    C = []
    n = 4
    ok4 = wz_payload(k=4, eps=0.5, sections=[(0, fixed_labels([0, 1, 2, 3], 4))])
    C.append(("wz mode 2 plain lattice, coding 0", wz_stream([WZ()], [ok4], n), "ok"))
    C.append(("wz mode 1 bits=8", wz_stream([WZ(mode=1, value=8.0)], [ok4], n), "ok"))
    C.append(("wz mode 1 bits just above 8", wz_stream([WZ(mode=1, value=8.000001)], [ok4], n), "invalid_params"))
    C.append(("wz mode 1 bits 0", wz_stream([WZ(mode=1, value=0.0)], [ok4], n), "invalid_params"))
    C.append(("wz mode 1 bits NaN", wz_stream([WZ(mode=1, value=float("nan"))], [ok4], n), "invalid_params"))
    C.append(("wz mode 2 step inf", wz_stream([WZ(value=float("inf"))], [ok4], n), "invalid_params"))
    C.append(("wz mode 2 step -0.0", wz_stream([WZ(value=-0.0)], [ok4], n), "invalid_params"))
    C.append(("wz mode 2 with a modulus", wz_stream([WZ(modulus=4)], [ok4], n), "invalid_params"))
    C.append(("wz mode 0", wz_stream([WZ(mode=0)], [ok4], n), "invalid_params"))
    C.append(("wz rounding 2", wz_stream([WZ(rounding=2)], [ok4], n), "invalid_params"))
    C.append(("wz scale 2", wz_stream([WZ(scale=2)], [ok4], n), "invalid_params"))
    C.append(("wz params 11 bytes", wz_stream([WZ(length=11)], [ok4], n), "invalid_params"))
    C.append(("wz params 13 bytes unbound", wz_stream([WZ(extra=b"\0")], [ok4], n), "invalid_params"))
    C.append(("wz params 11 bytes with reserved flag (length first)",
              wz_stream([WZ(flags=2, length=11)], [ok4], n), "invalid_params"))
    C.append(("wz reserved flag before length", wz_stream([WZ(flags=2, extra=b"\0")], [ok4], n), "reserved_nonzero"))
    C.append(("wz reserved bytes 10..12 before mode", wz_stream([WZ(mode=9, reserved=1)], [ok4], n), "reserved_nonzero"))
    C.append(("wz BOUND label not UTF-8 before mode",
              wz_stream([WZ(mode=9, label=b"\xff\xfe")], [ok4], n), "invalid_params"))
    C.append(("wz BOUND length before mode (binding 1 byte short)",
              wz_stream([WZ(mode=9, label="x", digest=b"\0" * 31)], [ok4], n), "invalid_params"))
    C.append(("wz version 2", wz_stream([WZ(ver=2)], [ok4], n), "unsupported_codec"))
    C.append(("wz mode 3 params but no side info", wz_stream([WZ(mode=3, modulus=4)], [ok4], n), "side_info_missing"))
    C.append(("wz mode 3 modulus 257 (params before side info)", wz_stream([WZ(mode=3, modulus=257)], [ok4], n), "invalid_params"))
    C.append(("wz bound, no side info", wz_stream([WZ(label="r1")], [ok4], n), "side_info_missing"))
    C.append(("wz bound empty tensor, no side info", wz_stream([WZ(label="r1")], [], 0), "side_info_missing"))
    C.append(("wz unbound empty tensor", wz_stream([WZ()], [], 0), "ok"))
    C.append(("wz+zstd", wz_stream([WZ(), ZSTD()], [zframe(ok4)], n), "ok"))
    C.append(("randk+wz", wz_stream([stage(0x103, params=struct.pack("<IB3xQ", 1 << 31, 0, 5)), WZ()],
                                    [wz_payload(k=4, sections=[(0, fixed_labels([1, 3], 4))])], n), "ok"))
    # array->array stages before a stage that decodes against side information: pipeline_invalid
    # when the pipeline is built (FORMAT.md §19.2), so before the side-information check
    rk = stage(0x103, params=struct.pack("<IB3xQ", 1 << 31, 0, 5))
    rk_pay = [wz_payload(k=4, sections=[(0, fixed_labels([1, 3], 4))])]
    C.append(("randk + bound wz, no side info: pipeline_invalid first",
              wz_stream([rk, WZ(label="r")], rk_pay, n), "pipeline_invalid"))
    C.append(("randk + unbound mode 3 wz, no side info: pipeline_invalid first",
              wz_stream([rk, WZ(mode=3, modulus=4)], rk_pay, n), "pipeline_invalid"))
    C.append(("intrinsic + mode 3 wz", wz_stream([INTR(2), WZ(mode=3, modulus=4)], rk_pay, n), "pipeline_invalid"))
    C.append(("randk + mode 3 wz + zstd", wz_stream([rk, WZ(mode=3, modulus=4), ZSTD()], [zframe(rk_pay[0])], n),
              "pipeline_invalid"))
    C.append(("randk + mode 3 wz, empty tensor", wz_stream([rk, WZ(mode=3, modulus=4)], [], 0), "pipeline_invalid"))
    C.append(("randk + mode 3 wz with bad params: invalid_params first",
              wz_stream([rk, WZ(mode=3, modulus=1)], rk_pay, n), "invalid_params"))
    C.append(("rademacher over its limit + mode 3 wz: pipeline_invalid before the size bounds [interp]",
              W().hdr().begin(0, "t", [1 << 20], [INTR(1 << 7, family=1), WZ(mode=3, modulus=4)], ce=1 << 20).end(),
              "pipeline_invalid"))
    C.append(("randk + mode 3 wz + unknown codec: the later stage's unsupported_codec first [interp]",
              wz_stream([rk, WZ(mode=3, modulus=4), stage(0x1FF)], rk_pay, n), "unsupported_codec"))
    # topk values pipelines (CODECS.md §9)
    tk = lambda st: stage(0x104, ver=2, params=struct.pack("<IB3x", 1 << 31, 2) + bytes([1]) + st)  # noqa: E731
    C.append(("topk values wz mode 2", wz_stream([tk(WZ())], [b"\0" + pack_bits(rice_bits([0, 0], 0)) + wz_payload(k=4, sections=[(3, b"\1")])], n), "ok"))
    C.append(("topk values wz mode 3", wz_stream([tk(WZ(mode=3, modulus=4))], [b""], n), "invalid_params"))
    C.append(("topk values wz bound", wz_stream([tk(WZ(label="r"))], [b""], n), "invalid_params"))
    C.append(("topk values wz with bad params first", wz_stream([tk(WZ(mode=3, modulus=1))], [b""], n), "invalid_params"))
    # payload checks, in the order of §12.3
    P = lambda **kw: wz_stream([WZ()], [wz_payload(**kw)], n)  # noqa: E731
    C.append(("wz payload 19 bytes", wz_stream([WZ()], [wz_payload(sections=())[:19]], n), "codec_output_size"))
    C.append(("wz C 0", P(C=0), "codec_data"))
    C.append(("wz C 17", P(C=17), "codec_data"))
    C.append(("wz C 0 before reserved flag", P(C=0, flags=2), "codec_data"))
    C.append(("wz reserved chunk flag", P(flags=0x80), "reserved_nonzero"))
    C.append(("wz reserved flag before k", P(flags=2, k=1), "reserved_nonzero"))
    C.append(("wz k 1", P(k=1), "codec_data"))
    C.append(("wz k 257", P(k=257), "codec_data"))
    C.append(("wz k 256 coding 3", P(k=256, sections=[(3, b"\xff")]), "ok"))
    C.append(("wz eps 0", P(eps=0.0), "codec_data"))
    C.append(("wz eps -0.0", P(eps=-0.0), "codec_data"))
    C.append(("wz eps negative", P(eps=-1.0), "codec_data"))
    C.append(("wz eps inf", P(eps=float("inf")), "codec_data"))
    C.append(("wz eps smallest subnormal", P(eps=float(np.float32(1e-45))), "ok"))
    C.append(("wz a NaN", P(a=float("nan")), "codec_data"))
    C.append(("wz a -inf", P(a=float("-inf")), "codec_data"))
    C.append(("wz a negative (no side: unused)", P(a=-3.0), "ok"))
    C.append(("wz g -1", P(g=-1.0), "codec_data"))
    C.append(("wz g NaN", P(g=float("nan")), "codec_data"))
    C.append(("wz g -0.0 (>= 0 in IEEE comparison) [interp]", P(g=-0.0), "ok"))
    C.append(("wz m > n", P(m=5, sections=()), "codec_data"))
    C.append(("wz m = n, all escaped, coding 0 of 0 labels",
              P(escapes=[(0, 1), (1, 2), (2, 3), (3, 0)], sections=[(0, b"")]), "ok"))
    C.append(("wz m > 0 without the Rice byte", P(m=1, sections=()), "codec_output_size"))
    C.append(("wz Rice parameter 32", P(escapes=[(1, 1)], b=32), "codec_data"))
    C.append(("wz Rice gap beyond n", P(escapes=[(1, 1)], gap_bits=pack_bits(rice_bits([5], 0))), "codec_data"))
    C.append(("wz Rice code ends", wz_stream([WZ()], [wz_payload(escapes=[(1, 1)])[:21]], n), "codec_data"))
    C.append(("wz escape position n (gap n allowed, position checked after)",
              P(escapes=[(1, 1)], gap_bits=pack_bits(rice_bits([4], 0))), "codec_data"))
    C.append(("wz escape positions past n after the gaps", P(escapes=[(2, 1), (4, 1)]), "codec_data"))
    C.append(("wz Rice padding", P(escapes=[(1, 1)], gap_bits=bytes([0b10000010])), "reserved_nonzero"))
    C.append(("wz Rice padding before position check",
              P(escapes=[(2, 1), (4, 1)], gap_bits=pack_bits(rice_bits([2, 1], 0) + [0, 0, 1])), "reserved_nonzero"))
    C.append(("wz no order byte", wz_stream([WZ()], [struct.pack("<BBHfffI", 1, 0, 4, 0.5, 0, 0, 1) + b"\0" + pack_bits(rice_bits([1], 0))], n), "codec_output_size"))
    C.append(("wz order 32", P(escapes=[(1, 1)], o=32), "codec_data"))
    # escape codes are at most 65535 (CODECS.md §12.2): |d| <= 32767
    C.append(("wz order 31, code 65535", P(escapes=[(1, 65535)], o=31, sections=[(3, b"\0")]), "ok"))
    C.append(("wz order 31, code 65536", P(escapes=[(1, 65536)], o=31, sections=[(3, b"\0")]), "codec_data"))
    C.append(("wz order 0, code 65535 (16 ones)", P(escapes=[(1, 65535)], sections=[(3, b"\0")]), "ok"))
    C.append(("wz order 0, code 65534", P(escapes=[(1, 65534)], sections=[(3, b"\0")]), "ok"))
    C.append(("wz code 65536", P(escapes=[(1, 65536)], sections=[(3, b"\0")]), "codec_data"))
    C.append(("wz code 65536 in the second escape", P(escapes=[(1, 65535), (2, 65536)], sections=[(3, b"\0")]), "codec_data"))
    C.append(("wz order 16, code 65536", P(escapes=[(1, 65536)], o=16, sections=[(3, b"\0")]), "codec_data"))
    C.append(("wz code 2^43 (the old cap)", P(escapes=[(1, 1 << 43)], o=31, sections=[(3, b"\0")]), "codec_data"))
    C.append(("wz Exp-Golomb run too long (17 ones at order 0; 65535 needs 16)",
              P(escapes=[(1, 1)], code_bits=pack_bits([1] * 17 + [0] + [0] * 17)), "codec_data"))
    C.append(("wz Exp-Golomb run too long (1 one at order 31)",
              P(escapes=[(1, 1)], o=31, code_bits=pack_bits([1] + [0] + [0] * 32)), "codec_data"))
    C.append(("wz Exp-Golomb 16 ones, value 2^17 - 2 > 65535",
              P(escapes=[(1, 1)], code_bits=pack_bits([1] * 16 + [0] + [1] * 16)), "codec_data"))
    C.append(("wz Exp-Golomb ends", wz_stream([WZ()], [wz_payload(escapes=[(1, 1)])[:23]], n), "codec_data"))
    C.append(("wz Exp-Golomb padding", P(escapes=[(1, 1)], code_bits=bytes([0b10000000])), "reserved_nonzero"))
    C.append(("wz raw values missing", P(escapes=[(1, 0)], raw=[], sections=()), "codec_output_size"))
    C.append(("wz raw values cut", wz_stream([WZ()], [wz_payload(escapes=[(1, 0)], sections=())[:-1]], n), "codec_output_size"))
    C.append(("wz C 2 without side information", P(C=2, sections=[(3, b"\0"), (3, b"\0")]), "codec_data"))
    C.append(("wz C 2 without side info before section checks", P(C=2, sections=()), "codec_data"))
    C.append(("wz section header cut", wz_stream([WZ()], [wz_payload()[:-3]], n), "codec_output_size"))
    C.append(("wz no section", P(sections=()), "codec_output_size"))
    C.append(("wz section L past the end", wz_stream([WZ()], [wz_payload(sections=[(3, b"\0")])[:-1]], n), "codec_output_size"))
    C.append(("wz section coding 5", P(sections=[(5, b"\0")]), "codec_data"))
    C.append(("wz section coding 5 with L past the end (L first, as §12.3 lists)",
              wz_stream([WZ()], [wz_payload(sections=[(5, b"\0")])[:-1]], n), "codec_output_size"))
    C.append(("wz trailing byte", wz_stream([WZ()], [wz_payload() + b"\0"], n), "codec_output_size"))
    C.append(("wz trailing byte before label errors", wz_stream([WZ()], [wz_payload(sections=[(3, b"\x10")]) + b"\0"], n), "codec_output_size"))
    C.append(("wz coding 3 symbol k", P(k=4, sections=[(3, b"\4")]), "codec_data"))
    C.append(("wz coding 3 two bytes", P(sections=[(3, b"\0\0")]), "codec_output_size"))
    C.append(("wz coding 0 label >= k", P(k=3, sections=[(0, fixed_labels([0, 1, 2, 3], 4))]), "codec_data"))
    C.append(("wz coding 0 short", P(k=4, sections=[(0, b"")]), "codec_output_size"))
    # labels 0, 1, 2 of 2 bits are 0x24; bit 6 is padding
    C.append(("wz coding 0 padding", wz_stream([WZ()], [wz_payload(k=4, sections=[(0, bytes([0x64]))])], 3), "reserved_nonzero"))
    C.append(("wz coding 1", P(k=4, sections=[(1, huffman_labels([3, 0, 0, 2], [2, 1, 3, 3]))]), "ok"))
    C.append(("wz coding 1 one symbol per entry too few", wz_stream([WZ()], [wz_payload(k=4, sections=[(1, huffman_labels([1, 1], [1, 1, 0, 0]))])], 16), "codec_data"))
    # coding 2 with 8-bit pair codes: 128 bytes of code lengths, so 16 values (161 bytes, bound
    # 172; 4 values would be 155 bytes, over their bound of 122)
    pairs = huffman_labels([0, 1, 17, 255, 0, 16, 34, 3], [8] * 256)
    C.append(("wz coding 2, k 16", wz_stream([WZ()], [wz_payload(k=16, sections=[(2, pairs)])], 16), "ok"))
    C.append(("wz coding 2, k 17", wz_stream([WZ()], [wz_payload(k=17, sections=[(2, pairs)])], 16), "codec_data"))
    runs = bytes([0]) + struct.pack("<I", 2) + huffman_labels([1, 0], [1, 2, 2])  # z = 0: RUNB RUNA = 2 + 2 = 4 zeros
    C.append(("wz coding 4, k 2", P(k=2, sections=[(4, runs)]), "ok"))
    C.append(("wz coding 4, k 256", P(k=256, sections=[(4, runs)]), "codec_data"))
    C.append(("wz coding 4 run beyond n", wz_stream([WZ()], [wz_payload(k=2, sections=[(4, runs)])], 3), "codec_data"))
    # The size bound (CODECS.md §12.4, FORMAT.md §7.3): 20 + 2 + 16 x 5 + 1 + 1 + ceil(n/8) +
    # ceil(33 n / 8) bytes, 110 for n = 1 and 138 for n = 8 (the bound of 1.0.9 before the review,
    # 20 + 2 + ceil(n/8) + 15 n + (n + 1) + 16 x 6, was 136 and 248). Payloads that are valid but
    # for their size: every entry a raw escape (Rice gaps 0, codes 0, 4 bytes each), then one
    # section of coding 1 over 0 labels whose ceil(k/2) bytes of code lengths fill the rest.
    def raw_all(n, k):
        lengths = [1, 1] + [0] * (k - 2)
        return wz_payload(k=k, escapes=[(i, 0) for i in range(n)], raw=[0x3F800000] * n,
                          sections=[(1, huffman_labels([], lengths))])
    for n_, bound in ((1, 110), (8, 138)):
        base = len(raw_all(n_, 2)) - 1  # without the one byte of lengths of k = 2
        k_at = 2 * (bound - base)  # ceil(k/2) = bound - base
        for k_, exp in ((k_at - 2, "ok"), (k_at, "ok"), (k_at + 1, "codec_output_size")):
            pl = raw_all(n_, k_)
            C.append((f"wz payload of {len(pl)} bytes, n = {n_}, k = {k_} (bound {bound})",
                      wz_stream([WZ()], [pl], n_), exp))
    # each chunk has the bound of its own length: a last chunk of 1 value after one of 8
    for k_, exp in ((154, "ok"), (155, "codec_output_size")):
        C.append((f"wz last chunk of 1 value, {len(raw_all(1, k_))} bytes (bound 110)",
                  wz_stream([WZ()], [raw_all(8, 2), raw_all(1, k_)], 9, ce=8), exp))
    # escapes with values
    C.append(("wz wide and raw escapes (NaN payload, -0.0)",
              P(escapes=[(0, 1), (1, 65535), (2, 0), (3, 0)], raw=[0x7FA00001, 0x80000000], sections=[(0, b"")]), "ok"))
    C.append(("wz wide escape 65536 beside raw escapes",
              P(escapes=[(0, 1), (1, 65536), (2, 0), (3, 0)], raw=[0x7FA00001, 0x80000000], sections=[(0, b"")]), "codec_data"))
    C.append(("wz chunks of 3", wz_stream([WZ()], [wz_payload(k=4, sections=[(0, fixed_labels([1, 2, 3], 4))]),
                                                   wz_payload(k=4, escapes=[(0, 7)], sections=[(3, b"\3")])], n, ce=3), "ok"))
    return C


def wyner_ziv_side_cases():
    """(title, stream, side information stream or None, expected code[, limits]): FORMAT.md §19.2."""
    y = [0x3F800000, 0xBF000000, 0x40400000, 0x00000000]  # 1, -0.5, 3, 0
    y5 = y + [0x3F800000]
    side = side_stream({"t": y, "other": [1, 2]})
    dig = side_digest(y)
    pay = wz_payload(k=4, eps=0.5, a=0.75, flags=1, sections=[(0, fixed_labels([0, 1, 2, 3], 4))])
    S = []
    S.append(("bound, right side information", wz_stream([WZ(label="round 41", digest=dig)], [pay], 4), side, "ok"))
    S.append(("bound, no side information", wz_stream([WZ(label="round 41", digest=dig)], [pay], 4), None, "side_info_missing"))
    S.append(("bound, side information without the tensor",
              wz_stream([WZ(label="round 41", digest=dig)], [pay], 4, name="u"), side, "side_info_missing"))
    S.append(("bound, wrong digest", wz_stream([WZ(label="round 41", digest=side_digest(y5[1:]))], [pay], 4), side, "side_info_mismatch"))
    S.append(("bound, wrong length (checked before the digest)",
              wz_stream([WZ(label="r", digest=dig)], [pay], 4), side_stream({"t": y5}), "side_info_mismatch"))
    S.append(("bound, empty label", wz_stream([WZ(label="")], [pay], 4), side, "side_info_mismatch"))
    S.append(("bound, empty label, right digest", wz_stream([WZ(label="", digest=dig)], [pay], 4), side, "ok"))
    S.append(("unbound mode 3, right length", wz_stream([WZ(mode=3, modulus=4)], [pay], 4), side, "ok"))
    S.append(("unbound mode 3, other length", wz_stream([WZ(mode=3, modulus=4)], [pay], 4), side_stream({"t": y5}), "side_info_mismatch"))
    S.append(("mode 2 unbound ignores side information", wz_stream([WZ()], [pay], 4), side_stream({"t": y5}), "ok"))
    S.append(("side check before chunk errors", wz_stream([WZ(mode=3, modulus=4)], [b""], 4), None, "side_info_missing"))
    S.append(("side check before a second tensor's errors",
              W().hdr().begin(0, "t", [4], [WZ(mode=3, modulus=4)]).begin(1, "u", [4], [WZ(mode=0)]).end(), None, "side_info_missing"))
    # The size bound of a chunk of n values is 104 + ceil(n/8) + ceil(33 n / 8) bytes (CODECS.md
    # §12.4): 71,303,272 for the largest chunk the reference limits allow (2^24 values), within
    # max_record_body (80 MiB), so the side information is checked. With a max_record_body below
    # the bound the size bounds fail first (FORMAT.md §6.0 step 5): 4,354 bytes for n = 1000.
    big = W().hdr().begin(0, "t", [1 << 24], [WZ(mode=3, modulus=4)], ce=1 << 24).end()
    S.append(("a chunk of 2^24 values is within the bound at the reference limits", big, None, "side_info_missing"))
    S.append(("pipeline size bounds before side information (max_record_body 71,303,271)",
              big, None, "limit_exceeded", gw.Limits(max_record_body=71_303_271)))
    S.append(("a chunk of 2^24 values, max_record_body 71,303,272 (the bound)",
              big, None, "side_info_missing", gw.Limits(max_record_body=71_303_272)))
    k1000 = W().hdr().begin(0, "t", [1000], [WZ(mode=3, modulus=4)]).end()
    S.append(("n = 1000, max_record_body 4,353", k1000, None, "limit_exceeded", gw.Limits(max_record_body=4353)))
    S.append(("n = 1000, max_record_body 4,354 (the bound)", k1000, None, "side_info_missing", gw.Limits(max_record_body=4354)))
    S.append(("n = 1000 in chunks of 999: the bound of a full chunk, 4,350",
              W().hdr().begin(0, "t", [1000], [WZ(mode=3, modulus=4)], ce=999).end(), None, "side_info_missing",
              gw.Limits(max_record_body=4350)))
    S.append(("n = 1000 in chunks of 999, max_record_body 4,349",
              W().hdr().begin(0, "t", [1000], [WZ(mode=3, modulus=4)], ce=999).end(), None, "limit_exceeded",
              gw.Limits(max_record_body=4349)))
    S.append(("C 3 contexts with side information", wz_stream([WZ(label="r", digest=dig)], [wz_payload(
        C=3, k=4, eps=0.5, a=0.75, g=1.0, sections=[(0, fixed_labels([1], 4)), (0, fixed_labels([2], 4)), (3, b"\0")])], 4),
        side, "ok"))  # y = 1, -0.5, 3, 0 with g = 1: contexts 2, 1, 2, 0
    S.append(("C 3: section sizes follow the contexts", wz_stream([WZ(label="r", digest=dig)], [wz_payload(
        C=3, k=4, eps=0.5, a=0.75, g=1.0, sections=[(0, fixed_labels([1, 2, 3, 0, 1], 4)), (0, fixed_labels([2], 4)),
                                                    (3, b"\0")])], 4),
        side, "codec_output_size"))
    S.append(("bound in chunks of 3 (each chunk its slice)", wz_stream([WZ(label="r", digest=dig)], [
        wz_payload(k=4, eps=0.5, a=0.75, flags=1, sections=[(0, fixed_labels([0, 1, 2], 4))]),
        wz_payload(k=4, eps=0.5, a=-2.0, flags=1, sections=[(3, b"\3")])], 4, ce=3), side, "ok"))
    S.append(("bound empty tensor, empty side tensor",
              wz_stream([WZ(label="r", digest=side_digest([]))], [], 0), side_stream({"t": []}), "ok"))
    # A stage that decodes against side information must see the tensor's elements: behind an
    # array->array stage the pipeline is pipeline_invalid when it is built (FORMAT.md §19.2),
    # with the right side information as without it.
    rk = stage(0x103, params=struct.pack("<IB3xQ", 1 << 31, 0, 5))
    rk_pay = [wz_payload(k=4, sections=[(0, fixed_labels([1, 3], 4))])]
    S.append(("randk + bound wyner-ziv", wz_stream([rk, WZ(label="r", digest=dig)], rk_pay, 4), side, "pipeline_invalid"))
    S.append(("randk + unbound mode 3 wyner-ziv", wz_stream([rk, WZ(mode=3, modulus=4)], rk_pay, 4), side, "pipeline_invalid"))
    S.append(("randk + bound wyner-ziv, side information of another length",
              wz_stream([rk, WZ(label="r", digest=dig)], rk_pay, 4), side_stream({"t": y5}), "pipeline_invalid"))
    S.append(("randk + mode 2 wyner-ziv (no side information) with side information given",
              wz_stream([rk, WZ()], rk_pay, 4), side, "ok"))
    return S


def run_side(data, side_data, limits=None):
    try:
        side = None if side_data is None else gw.side_info_from_bytes(side_data, "test side information")
        return "ok", gw.decode_bytes(data, limits=limits or gw.Limits(), side_info=side)
    except gw.GradwireError as e:
        return e.code, e.message


def exp_golomb_checks():
    """CODECS.md §E.5 by hand: bit patterns, costs, the stopping rules and padding."""
    fails = []

    def expect(what, got, want):
        if got != want:
            fails.append(f"Exp-Golomb {what}: {got} != {want}")

    # order 0: 0 -> "0", 1 -> "100", 2 -> "101", 3 -> "11000", 6 -> "11011"; LSB-first bytes
    expect("order 0 bits", eg_bits([0, 1, 2, 3, 6], 0), [0] + [1, 0, 0] + [1, 0, 1] + [1, 1, 0, 0, 0] + [1, 1, 0, 1, 1])
    # order 2: 0 -> u = 4 (L 3): "0" + "00"; 5 -> u = 9 (L 4): "1" "0" "100" (u's low 3 bits, LSB first)
    expect("order 2 bits", eg_bits([0, 5], 2), [0, 0, 0] + [1, 0, 1, 0, 0])
    # 0 | 100 | 101 | 11000 in stream order = bits 0,1,0,0,1,0,1,1 | 1,0,0,0 (12 bits): 0xD2 0x01
    data = bytes([0b11010010, 0b00000001])
    expect("decode order 0", gw.exp_golomb_decode(data, 0, 4, 1 << 43), ([0, 1, 2, 3], 2))
    rng = random.Random(5)
    for o in (0, 1, 5, 17, 31):
        vals = [rng.choice([0, 1, 2, (1 << 43), rng.randrange(1 << 43), rng.randrange(1 << 10)]) for _ in range(40)]
        bits = eg_bits(vals, o)
        for v in vals[:5]:
            u = v + (1 << o)
            expect(f"cost of {v} at order {o}", len(eg_bits([v], o)), 2 * u.bit_length() - 1 - o)
        expect(f"round trip order {o}", gw.exp_golomb_decode(pack_bits(bits) + b"tail", o, len(vals), 1 << 43),
               (vals, (len(bits) + 7) // 8))

    def code(data, o, count, mx):
        try:
            gw.exp_golomb_decode(data, o, count, mx)
            return "ok"
        except gw.GradwireError as e:
            return e.code

    # largest value 5 at order 0: u <= 6 has 3 bits, so at most 2 one-bits
    expect("3 ones for max 5", code(pack_bits([1, 1, 1, 0, 0, 0, 0]), 0, 1, 5), "codec_data")
    expect("6 (11011) > max 5", code(pack_bits(eg_bits([6], 0)), 0, 1, 5), "codec_data")
    expect("5 == max 5", code(pack_bits(eg_bits([5], 0)), 0, 1, 5), "ok")
    expect("ends in the run", code(b"\xff", 0, 1, 1 << 43), "codec_data")
    expect("ends in the low bits", code(pack_bits([1, 1, 1, 1, 1, 0, 1, 1]), 0, 1, 1 << 43), "codec_data")
    expect("14 at order 1 takes 8 bits", eg_bits([14], 1), [1, 1, 1, 0, 0, 0, 0, 0])
    expect("second value missing", code(pack_bits(eg_bits([14], 1)), 1, 2, 100), "codec_data")
    expect("padding", code(bytes([0b00000010]), 0, 1, 5), "reserved_nonzero")
    expect("count 0, no bytes", code(b"", 3, 0, 5), "ok")
    # the wyner-ziv escape codes (CODECS.md §12.2): at most 65535, which costs 33 bits at order 0
    # (16 one-bits, the zero-bit, 16 low bits: the 33 bits an entry of the §12.4 size bound)
    expect("wyner-ziv escape cap", gw.WZ_MAX_ESCAPE_CODE, 65535)
    expect("65535 at order 0 takes 33 bits", len(eg_bits([65535], 0)), 33)
    for o in (0, 1, 15, 16, 17, 31):
        expect(f"65535 at order {o}", code(pack_bits(eg_bits([65535], o)), o, 1, 65535), "ok")
        expect(f"65536 at order {o}", code(pack_bits(eg_bits([65536], o)), o, 1, 65535), "codec_data")
        expect(f"65535 then 65536 at order {o}", code(pack_bits(eg_bits([65535, 65536], o)), o, 2, 65535), "codec_data")
    expect("17 ones at order 0 for max 65535", code(pack_bits([1] * 17 + [0] * 23), 0, 1, 65535), "codec_data")
    expect("1 one at order 31 for max 65535", code(pack_bits([1] + [0] * 39), 31, 1, 65535), "codec_data")
    return fails


def _f32_bits(x):
    """Round a binary64 value to the nearest binary32 (ties to even), as its bit pattern."""
    try:
        return struct.unpack("<I", struct.pack("<f", x))[0]
    except OverflowError:  # rounds beyond the largest finite f32
        return 0x7F800000 | (0x80000000 if x < 0 else 0)


def _bits_f64(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def wz_context_ref(y_bits, g, C):
    """CODECS.md §12.3 step 2, scalar, from the text (a NaN or infinite v is neither 0 nor below
    2^62: C - 1)."""
    if C == 1:
        return 0
    v = abs(_bits_f64(y_bits)) * g
    if v == 0:
        return 0
    if v < 2.0**62:
        return min(int(math.floor(1.0 + v)).bit_length(), C - 1)
    return C - 1


def context_checks():
    """The context formula (CODECS.md §12.3 step 2): hand-computed values, then the scalar
    reference against the decoder's vectorized version on special and random values."""
    fails = []
    one = 0x3F800000

    def ctx(ys, g, C):
        return [int(c) for c in gw.wz_contexts(np.asarray(ys, dtype=np.uint32), g, C)]

    f = _f32_bits
    cases = [
        # (y values, g, C, contexts): floor(1 + v) = 1 -> 1, 2..3 -> 2, 4..7 -> 3, 8..15 -> 4, ...
        ([f(0.0), 0x80000000, f(0.5), f(1.0), f(2.9), f(3.0), f(-7.0), f(7.99)], 1.0, 16, [0, 0, 1, 2, 2, 3, 4, 4]),
        ([f(1000.0), f(2.0**20)], 1.0, 16, [10, 15]),
        ([f(1.0), f(3.0)], 1.0, 3, [2, 2]),  # capped at C - 1
        ([f(1.0), f(3.0)], 1.0, 2, [1, 1]),
        ([0x7FC00000, 0x7F800000, 0xFF800000, 0x00000001], 1.0, 16, [15, 15, 15, 1]),  # NaN, inf: C - 1
        ([0x7F800000, f(5.0)], 0.0, 16, [15, 0]),  # inf x 0 is NaN: C - 1; 5 x 0 = 0: context 0
        ([f(5.0)], -0.0, 16, [0]),  # v = -0.0 = 0
        ([one], 2.0**62, 16, [15]),  # v = 2^62 is not below 2^62
        ([one], 2.0**62 - 2.0**38, 16, [15]),  # just below: floor(1 + v) has 62 bits, capped at 15
        # 3 x f32(1/3) = 1.0000000298023224 (f64), 1 + v = 2.00000003, floor 2: bit length 2
        ([f(3.0)], float(np.float32(1 / 3)), 16, [2]),
    ]
    for ys, g, C, want in cases:
        got = ctx(ys, g, C)
        if got != want:
            fails.append(f"contexts of {[hex(y) for y in ys]} with g={g}, C={C}: {got} != {want}")
        ref = [wz_context_ref(y, g, C) for y in ys]
        if got != ref:
            fails.append(f"scalar reference for {[hex(y) for y in ys]}: {ref} != decoder {got}")
    rng = random.Random(11)
    ys = [rng.randrange(1 << 32) for _ in range(4000)]
    for g in (1.0, 1e-30, 3.7, 1.1630e7, 2.0**100):
        for C in (2, 5, 16):
            got = ctx(ys, g, C)
            ref = [wz_context_ref(y, g, C) for y in ys]
            if got != ref:
                bad = next(i for i in range(len(ys)) if got[i] != ref[i])
                fails.append(f"contexts, g={g}, C={C}: y=0x{ys[bad]:08x} gives {got[bad]}, reference {ref[bad]}")
    return fails


def _floor(x):
    """floor in binary64: exact, and NaN and the infinities are their own floor (math.floor
    raises on them)."""
    return float(math.floor(x)) if math.isfinite(x) else x


def _f32_value_bits(x):
    """CODECS.md §12.3 step 5: f32(x) rounded to nearest, a NaN written 0x7FC00000."""
    return 0x7FC00000 if math.isnan(x) else _f32_bits(x)


def wz_decode_ref(payload_fields, side_bits, uses_side):
    """CODECS.md §12.3 steps 1-5, scalar Python binary64 (each operation rounded), from the text.
    payload_fields: dict with C, centered, k, eps, a, g, escapes {pos: e}, raw {pos: bits},
    residues (per entry, None for escapes). A NaN computed by the arithmetic (coded entries and
    wide escapes) is 0x7FC00000; a raw escape keeps its bits."""
    P = payload_fields
    n = len(P["residues"])
    eps = P["eps"]
    out = []
    for i in range(n):
        t = (P["a"] * _bits_f64(side_bits[i])) / eps if uses_side else 0.0
        c = _floor(t + 0.5) if P["centered"] else 0.0
        if i in P["escapes"]:
            e = P["escapes"][i]
            if e == 0:
                out.append(P["raw"][i])
                continue
            u = e - 1
            d = u // 2 if u % 2 == 0 else -(u + 1) // 2
            z = c + float(d)
        else:
            q = c + float(P["residues"][i])
            k = float(P["k"])
            z = q + k * _floor((t - q) / k + 0.5)
        out.append(_f32_value_bits(z * eps))
    return out


SPECIAL_SIDE = [0x7FC00000, 0xFFC00000, 0x7FA00001, 0xFFC00001, 0x7F800000, 0xFF800000]


def wyner_ziv_value_checks():
    """Decoded values of random wyner-ziv chunks against the scalar reference above: every escape
    kind, centered or not, with and without side information, 1 to 16 contexts."""
    fails = []
    rng = random.Random(2026)
    # hand-computed first: k = 4, eps = 0.5, no side information, residues 0, 1, 2, 3 decode to
    # z = 0, 1, 2 (tie upward: 2 + 4 floor(-0.5 + 0.5)), -1 (3 + 4 floor(-0.75 + 0.5)).
    got = gw.decode_bytes(wz_stream([WZ()], [wz_payload(k=4, eps=0.5, sections=[(0, fixed_labels([0, 1, 2, 3], 4))])], 4))
    want = ["00000000", "3f000000", "3f800000", "bf000000"]
    if got["tensors"][0]["values_hex"] != want:
        fails.append(f"k=4 residues 0..3: {got['tensors'][0]['values_hex']} != {want}")
    # NaN results (CODECS.md §12.3 step 5), by hand: k = 4, eps = 0.5, a = 0.75, CENTERED, unbound
    # mode 3 with side values +inf, -NaN, -inf, NaN, 1, 1, -inf:
    #   0 coded, r 0: t = inf, c = inf, q = inf, t - q = NaN: z NaN -> 0x7FC00000 (x86 arithmetic
    #     gives 0xFFC00000);
    #   1 coded, r 2: t = NaN (a negative NaN): z NaN -> 0x7FC00000;
    #   2 wide escape e = 1 (d = 0): z = c = -inf -> -inf, 0xFF800000 (not a NaN);
    #   3 wide escape e = 3 (d = 1): z = NaN + 1 -> 0x7FC00000;
    #   4 raw escape 0xFFA00001 (a negative signalling NaN): kept bit for bit;
    #   5 coded, r 1: t = 1.5, c = 2, q = 3, floor(-1.5 / 4 + 0.5) = 0: z = 3 -> 1.5, 0x3FC00000;
    #   6 coded, r 3: t = -inf, c = -inf, q = -inf, t - q = NaN -> 0x7FC00000.
    y = [0x7F800000, 0xFFC00001, 0xFF800000, 0x7FC00000, 0x3F800000, 0x3F800000, 0xFF800000]
    pl = wz_payload(k=4, eps=0.5, a=0.75, flags=1, escapes=[(2, 1), (3, 3), (4, 0)], raw=[0xFFA00001],
                    sections=[(0, fixed_labels([0, 2, 1, 3], 4))])
    want = [0x7FC00000, 0x7FC00000, 0xFF800000, 0x7FC00000, 0xFFA00001, 0x3FC00000, 0x7FC00000]
    for params, what in ((WZ(mode=3, modulus=4), "unbound"), (WZ(label="y", digest=side_digest(y)), "bound")):
        got = gw.decode_bytes(wz_stream([params], [pl], 7), side_info=gw.SideInfo({"t": np.asarray(y, dtype=np.uint32)}))
        got = [int(h, 16) for h in got["tensors"][0]["values_hex"]]
        if got != want:
            fails.append(f"NaN results ({what}): {[hex(v) for v in got]} != {[hex(v) for v in want]}")
    ref = wz_decode_ref(dict(C=1, centered=True, k=4, eps=0.5, a=0.75, g=0.0, escapes={2: 1, 3: 3, 4: 0},
                             raw={4: 0xFFA00001}, residues=[0, 2, None, None, None, 1, 3]), y, True)
    if ref != want:
        fails.append(f"NaN results, scalar reference: {[hex(v) for v in ref]} != {[hex(v) for v in want]}")
    n_nan = n_over = 0
    for it in range(300):
        n = rng.randint(1, 60)
        k = rng.choice([2, 3, 4, 16, 17, 255, 256])
        uses_side = rng.random() < 0.7
        C = rng.randint(1, 16) if uses_side else 1
        eps = float(np.float32(rng.choice([0.01, 0.5, 1e-7, 3.0, 1e-40, 1e30, rng.uniform(1e-4, 10)])))
        a = float(np.float32(rng.choice([0.0, 1.0, -0.75, 0.9951, rng.uniform(-3, 3), 1e20])))
        g = float(np.float32(rng.choice([0.0, 1.0, 1 / eps if 1 / eps < 3e38 else 1.0, rng.uniform(0, 100)])))
        centered = rng.random() < 0.6
        # in some chunks, non-finite side values (NaN of either sign, signalling, infinities):
        # NaN results, written 0x7FC00000
        p_special = rng.choice([0.0, 0.0, 0.2, 0.5])
        side_vals = [rng.choice(SPECIAL_SIDE) if rng.random() < p_special else
                     _f32_bits(rng.choice([rng.gauss(0, 1), rng.gauss(0, 100), 0.0, -0.0, rng.uniform(-1e-3, 1e-3)]))
                     for _ in range(n)]
        esc_pos = sorted(rng.sample(range(n), rng.randint(0, min(n, 6))))
        escapes, raw = {}, {}
        over_cap = esc_pos and rng.random() < 0.05  # one code above 65535: codec_data
        for p in esc_pos:
            e = rng.choice([0, 1, 2, 3, rng.randrange(1, 65536), 65534, 65535])
            if over_cap and p == esc_pos[-1]:
                e = rng.choice([65536, 65537, rng.randrange(65536, 1 << 43)])
            escapes[p] = e
            if e == 0:
                raw[p] = rng.choice([0x7FA00001, 0x80000000, 0xFF800000, rng.randrange(1 << 32)])
        ctx = [wz_context_ref(y, g, C) for y in side_vals]
        residues = [None if i in escapes else rng.randrange(k) for i in range(n)]
        sections = []
        for s in range(C):
            labels = [residues[i] for i in range(n) if i not in escapes and ctx[i] == s]
            if labels and len(set(labels)) == 1 and rng.random() < 0.5:
                sections.append((3, bytes([labels[0]])))
            else:
                sections.append((0, fixed_labels(labels, k)))
        payload = wz_payload(C=C, flags=1 if centered else 0, k=k, eps=eps, a=a, g=g,
                             escapes=[(p, escapes[p]) for p in esc_pos], raw=[raw[p] for p in esc_pos if escapes[p] == 0],
                             sections=sections, b=rng.randint(0, 3) if esc_pos else None, o=rng.randint(0, 5) if esc_pos else None)
        want = "codec_data" if over_cap else wz_decode_ref(
            dict(C=C, centered=centered, k=k, eps=eps, a=a, g=g, escapes=escapes, raw=raw, residues=residues),
            side_vals, uses_side)
        n_nan += want.count(0x7FC00000) if want != "codec_data" else 0
        n_over += want == "codec_data"
        if uses_side:
            params = WZ(mode=3, modulus=4) if rng.random() < 0.5 else WZ(label="x", digest=side_digest(side_vals))
            side = gw.SideInfo({"t": np.asarray(side_vals, dtype=np.uint32)})
        else:
            params, side = WZ(), None
        try:
            got = gw.decode_bytes(wz_stream([params], [payload], n), side_info=side)["tensors"][0]
            got = [int(h, 16) for h in got["values_hex"]] if "values_hex" in got else None
        except gw.GradwireError as e:
            got = e.code
        if got != want:
            fails.append(f"wyner-ziv value check {it} (n={n}, k={k}, C={C}, side={uses_side}): {got} != {want}")
            if len(fails) > 5:
                break
    # the random chunks above must reach both rules they check
    if not fails and (n_nan == 0 or n_over == 0):
        fails.append(f"random chunks reached {n_nan} NaN results and {n_over} codes above 65535")
    return fails


# Cases built with "or None": finish them here (the writer returns None from add()).
def finish_cases(C):
    out = []
    pending = {
        "unused rflags bit 8": ("ok", lambda: _w_add_end(0x8001, kv([]), rflags=0x0100)),
        "trailing byte in TENSOR_BEGIN": ("malformed", lambda: _w_add_end(2, tensor_begin_body(0, "t", [4], [RAW]) + b"\0")),
        "order: body rules before between-record rules": (
            "reserved_nonzero",
            lambda: W().hdr().begin(0, "t", [4], [RAW]).begin(0, "t", [4], [RAW], flags=2).end(),
        ),
        "unknown skippable type": ("ok", lambda: _w_add_end(0x8005, b"xyz")),
        "reserved flag bit 0": ("reserved_nonzero", lambda: _w_add_end(0x8001, kv([]), rflags=1)),
        "header reserved": ("reserved_nonzero", lambda: _w_add_end(0x8001, kv([]), reserved=1)),
        "END body 31 bytes": ("malformed", lambda: _w_add_end(5, b"\0" * 31)),
        "TENSOR_END body 17": ("limit_exceeded", lambda: _w_add_end(4, b"\0" * 17)),
        "METADATA invalid": ("malformed", lambda: _w_add_end(0x8001, kv([("b", 2, struct.pack("<Q", 1)), ("a", 2, struct.pack("<Q", 1))]))),
    }
    for name, data, exp in C:
        if not isinstance(data, (bytes, bytearray)):
            exp, mk = pending[name]
            data = mk()
        out.append((name, data, exp))
    return out


def _w_add_end(rtype, body, **kw):
    w = W().hdr()
    w.add(rtype, body, **kw)
    return w.end()


# --------------------------------------------------------------------------------------------
# structure-aware fuzzing: mutate bodies and fix the CRCs
# --------------------------------------------------------------------------------------------


def split_records(data):
    recs = []
    pos = 16
    while pos + 32 <= len(data):
        rtype, rflags, bl, seq = struct.unpack_from("<HHQI", data, pos + 4)
        body = data[pos + 32 : pos + 32 + bl]
        recs.append([rtype, rflags, seq, bytearray(body)])
        pos += 32 + bl + (8 - bl % 8) % 8
        if rtype == 5:
            break
    return recs


def join_records(recs):
    out = bytearray(preamble())
    for rtype, rflags, seq, body in recs:
        out += record(rtype, bytes(body), seq, rflags=rflags)
    return bytes(out)


def fuzz(vectors_dir, iterations_per_vector=1500, seed=99):
    rng = random.Random(seed)
    manifest = json.load(open(os.path.join(vectors_dir, "manifest.json")))
    crashes = []
    codes = {}
    n = 0
    for e in manifest:
        data = open(os.path.join(vectors_dir, e["file"]), "rb").read()
        # a vector with side information (FORMAT.md §14) is decoded with it, so that the damage
        # reaches its chunks
        side = gw.load_side_info(os.path.join(vectors_dir, e["side_info"])) if "side_info" in e else None
        if len(data) < 16 + 32:
            continue
        base = split_records(data)
        if not base:
            continue
        for _ in range(iterations_per_vector):
            recs = [[r[0], r[1], r[2], bytearray(r[3])] for r in base]
            for _ in range(rng.randint(1, 3)):
                r = rng.choice(recs)
                op = rng.randrange(7)
                body = r[3]
                if op == 0 and body:
                    body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
                elif op == 1 and body:
                    body[rng.randrange(len(body))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
                elif op == 2:
                    cut = rng.randrange(len(body) + 1)
                    del body[cut:]
                elif op == 3:
                    p = rng.randrange(len(body) + 1)
                    body[p:p] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
                elif op == 4 and len(body) >= 8:
                    p = rng.randrange(len(body) - 7)
                    body[p : p + 8] = rng.choice([0, 1, 2 ** 32, 2 ** 63, 2 ** 64 - 1, rng.randrange(2 ** 64)]).to_bytes(8, "little")
                elif op == 5:
                    r[0] = rng.choice([1, 2, 3, 4, 5, 0x8001, 0x8002, 0xF000, 0x0006, 0x8003])
                elif op == 6 and len(recs) > 2:
                    i, j = rng.randrange(len(recs)), rng.randrange(len(recs))
                    recs[i], recs[j] = recs[j], recs[i]
                    for k, rr in enumerate(recs):
                        rr[2] = k
            m = join_records(recs)
            n += 1
            try:
                gw.decode_bytes(m, side_info=side)
                c = "ok"
            except gw.GradwireError as ex:
                c = ex.code
            except Exception as ex:  # noqa: BLE001
                c = "CRASH"
                crashes.append((e["id"], repr(ex), m.hex()))
            codes[c] = codes.get(c, 0) + 1
    return n, codes, crashes


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    vectors = os.path.join(here, "..", "..", "spec", "vectors")
    C = finish_cases(cases())
    bad = 0
    for name, data, exp in C:
        got, msg = run(data)
        if got != exp:
            bad += 1
            print(f"FAIL {name}: expected {exp}, got {got} ({msg if got != 'ok' else ''})")
    print(f"hand-built cases: {len(C) - bad} passed, {bad} failed")
    vfails = intrinsic_value_checks()
    for f in vfails:
        print("FAIL intrinsic value check:", f)
    bad += len(vfails)
    print(f"intrinsic value checks: {len(vfails)} failed")
    S = wyner_ziv_side_cases()
    sbad = 0
    for name, data, side, exp, *limits in S:  # (title, stream, side information, code[, limits])
        got, msg = run_side(data, side, *limits)
        if got != exp:
            sbad += 1
            print(f"FAIL side information case {name}: expected {exp}, got {got} ({msg if got != 'ok' else ''})")
    print(f"side information cases: {len(S) - sbad} passed, {sbad} failed")
    bad += sbad
    for what, check in (("Exp-Golomb", exp_golomb_checks), ("wyner-ziv context", context_checks),
                        ("wyner-ziv value", wyner_ziv_value_checks)):
        ufails = check()
        for f in ufails:
            print(f"FAIL {what} check:", f)
        print(f"{what} checks: {len(ufails)} failed")
        bad += len(ufails)
    n, codes, crashes = fuzz(vectors)
    print(f"CRC-fixing fuzz: {n} mutated streams, outcomes {dict(sorted(codes.items()))}, {len(crashes)} crash(es)")
    for c in crashes[:10]:
        print("CRASH", c[0], c[1])
    return 1 if bad or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
