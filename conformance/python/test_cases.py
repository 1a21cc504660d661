#!/usr/bin/env python3
"""Hand-built streams exercising rules that the spec vectors do not cover.

A tiny writer (below) builds streams from the spec's byte layouts; each case states the code
this decoder's reading of the spec gives.  Cases whose expectation rests on an interpretation
listed in README.md are marked [interp].  Also runs a structure-aware fuzzer that mutates record
bodies and *recomputes* the CRCs, so that the parsers behind the CRC checks are exercised.
"""

import io
import json
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
                gw.decode_bytes(m)
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
    n, codes, crashes = fuzz(vectors)
    print(f"CRC-fixing fuzz: {n} mutated streams, outcomes {dict(sorted(codes.items()))}, {len(crashes)} crash(es)")
    for c in crashes[:10]:
        print("CRASH", c[0], c[1])
    return 1 if bad or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
