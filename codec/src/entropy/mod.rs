//! Entropy coding shared by codecs: canonical length-limited Huffman codes ([`HuffmanCode`]),
//! fixed-width label packing ([`pack_fixed`], [`unpack_fixed`]), label sections coded the
//! cheapest of five ways ([`plan_labels`], [`write_labels`], [`decode_labels`]) and Golomb-Rice
//! codes ([`rice_encode`], [`rice_decode`]) and Exp-Golomb codes ([`exp_golomb_encode`],
//! [`exp_golomb_decode`]).
//!
//! Codecs store the code lengths in their chunks (never a model the decoder would have to
//! evaluate in floating point), so any implementation rebuilds the same code with integer
//! arithmetic alone.

mod exp_golomb;
mod fixed;
mod huffman;
mod labels;
mod rice;

pub use exp_golomb::{
    MAX_EXP_GOLOMB_ORDER, MAX_EXP_GOLOMB_VALUE, best_exp_golomb_order, exp_golomb_bits, exp_golomb_decode,
    exp_golomb_encode,
};
pub use fixed::{pack_fixed, packed_fixed_len, unpack_fixed};
pub use huffman::{HuffmanCode, MAX_CODE_LEN, code_lengths, coded_bits, entropy_bits};
pub use labels::{
    LabelCoding, LabelPlan, decode_labels, decode_labels_mapped, fixed_width, max_labels_len, plan_labels, write_labels,
};
pub use rice::{MAX_RICE_PARAMETER, best_rice_parameter, rice_bits, rice_decode, rice_encode};
