//! Helpers shared by the integration tests: record-level surgery on streams (to build invalid
//! vectors with valid checksums), plus re-exports of the conformance helpers.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any unexpected error")]

use gradwire::format::{EndRecord, PREAMBLE_LEN, RECORD_HEADER_LEN, RecordHeader, crc32c, encode_record};
use gradwire::ids::record;

/// One record of a stream, as type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub rtype: u16,
    pub body: Vec<u8>,
}

/// Splits a valid stream into its preamble and records (no checks beyond what is needed).
pub fn split(bytes: &[u8]) -> ([u8; PREAMBLE_LEN], Vec<Rec>) {
    let mut pre = [0u8; PREAMBLE_LEN];
    pre.copy_from_slice(&bytes[..PREAMBLE_LEN]);
    let mut pos = PREAMBLE_LEN;
    let mut recs = Vec::new();
    while pos < bytes.len() {
        let h: [u8; RECORD_HEADER_LEN] = bytes[pos..pos + RECORD_HEADER_LEN].try_into().unwrap();
        let h = RecordHeader::decode(&h, pos as u64).unwrap();
        let start = pos + RECORD_HEADER_LEN;
        recs.push(Rec { rtype: h.rtype, body: bytes[start..start + h.body_len as usize].to_vec() });
        pos += h.total_len() as usize;
    }
    (pre, recs)
}

/// Serializes records with fresh sequence numbers and CRCs. When `fix_end` is set, the END body's
/// record count, stream length and tensor count are recomputed and its index offset cleared.
pub fn join(pre: &[u8; PREAMBLE_LEN], recs: &[Rec], fix_end: bool) -> Vec<u8> {
    let mut out = pre.to_vec();
    let n_tensors = recs.iter().filter(|r| r.rtype == record::TENSOR_BEGIN).count() as u32;
    for (seq, r) in recs.iter().enumerate() {
        let mut body = r.body.clone();
        if fix_end && r.rtype == record::END {
            let end = EndRecord { n_records: seq as u64, stream_len: out.len() as u64, index_offset: 0, n_tensors };
            body = end.encode();
        }
        encode_record(r.rtype, seq as u32, &body, &mut out);
    }
    out
}

/// Rewrites the preamble's CRC after a change to bytes 0..12.
pub fn fix_preamble_crc(bytes: &mut [u8]) {
    let crc = crc32c(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites the header CRC of the record at `offset` after a change to its first 28 bytes.
pub fn fix_header_crc(bytes: &mut [u8], offset: usize) {
    let crc = crc32c(&bytes[offset..offset + 28]);
    bytes[offset + 28..offset + 32].copy_from_slice(&crc.to_le_bytes());
}

pub use gradwire::testing::OneByteReader as OneByte;
