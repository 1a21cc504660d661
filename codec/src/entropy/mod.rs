//! Entropy coding shared by codecs: canonical length-limited Huffman codes ([`HuffmanCode`]) and
//! fixed-width label packing ([`pack_fixed`], [`unpack_fixed`]).
//!
//! Codecs store the code lengths in their chunks (never a model the decoder would have to
//! evaluate in floating point), so any implementation rebuilds the same code with integer
//! arithmetic alone.

mod fixed;
mod huffman;

pub use fixed::{pack_fixed, packed_fixed_len, unpack_fixed};
pub use huffman::{HuffmanCode, MAX_CODE_LEN, code_lengths, coded_bits, entropy_bits};
