//! # gradwire
//!
//! The open, versioned, streaming binary format and codec framework for compressed gradients.
//!
//! This facade re-exports the core crate ([`gradwire_codec`]) and links every codec plugin crate
//! of the workspace, so that [`Registry::linked`] sees them all. A plugin crate that nothing names
//! is dropped by the linker together with its `inventory::submit!`; naming it here
//! (`use gradwire_m22 as _;`) is what keeps it.
//!
//! ```
//! let registry = gradwire::registry()?;
//! assert!(registry.get_by_name("raw").is_some());
//! # Ok::<(), gradwire::Error>(())
//! ```

#![forbid(unsafe_code)]

/// The project README, compiled here so that its examples are tested.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use gradwire_codec::*;

/// `signsgd`: packed sign bits plus scales (`spec/CODECS.md` §5).
pub use gradwire_signsgd as signsgd;

/// `m22`: fitted-model, magnitude-weighted Lloyd-Max quantizer with Huffman labels (`spec/CODECS.md` §6).
pub use gradwire_m22 as m22;

/// `intrinsic`: random subspace projections regenerated from a shared seed (`spec/CODECS.md` §7).
pub use gradwire_intrinsic as intrinsic;

/// `randk` and `topk`: random-k with positions from a shared seed, top-k with Rice-coded
/// positions (`spec/CODECS.md` §8, §9).
pub use gradwire_sparsify as sparsify;

/// `qsgd` and `sparse-dither`: `x / ||x||` on a uniform grid of signed levels, nonzeros coded
/// by position, sign and level (`spec/CODECS.md` §10).
pub use gradwire_dither as dither;

/// `spherical`: each block sent as the index of the first shared random point within
/// `sqrt(alpha) ||x||` of it (`spec/CODECS.md` §11).
pub use gradwire_spherical as spherical;

/// `wyner-ziv`: lattice indices sent modulo k, decoded against side information the receiver
/// holds, bound to it by digest (`spec/CODECS.md` §12, `spec/FORMAT.md` §19).
pub use gradwire_wyner_ziv as wyner_ziv;

/// Every codec this build knows: the core codecs plus all linked plugins.
///
/// # Errors
/// [`ErrorCode::InvalidArgument`] if two linked plugins claim the same ID or name (a build bug).
pub fn registry() -> Result<Registry> {
    Registry::linked()
}
