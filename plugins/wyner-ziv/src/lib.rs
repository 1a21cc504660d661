//! # gradwire-wyner-ziv
//!
//! The `wyner-ziv` codec (ID `0x00000108`, `spec/CODECS.md` §12): coding against side
//! information `y` that the decoder holds (the previous round's aggregate, another client's
//! update). The sender rounds `x` to a lattice of step `eps` and sends each index `z` only modulo
//! `k`; the decoder takes the member of that residue class nearest to its prediction `a*y/eps`
//! (the modulo quantizer of Mayekar, Jha, Suresh and Tyagi 2021, as used for federated learning
//! by Liang, Zhong, Chen and Wu 2021). Decoding is exact whenever `|x - a*y| < (k/2 - 1) eps`.
//!
//! Never silently wrong: a sender that has `y` (in FL it usually does: it is a broadcast model or
//! the client's own previous update) predicts every entry as the decoder will and sends those it
//! would get wrong as escapes (their f32 values), so every decoded entry is within `eps` of the
//! input (`eps / 2` with nearest rounding). It then also codes the residues relative to the
//! prediction, so their label section (§E.4) compresses to about the entropy of `x - a*y` on the
//! lattice. The stream binds `y` (a label and the SHA-256 of its values, `spec/FORMAT.md` §19):
//! a reader given other side information refuses the tensor with `side_info_mismatch`. A sender
//! without `y` gives `step` and `modulus`; the stream is then unbound and the bound is assumed.
//!
//! ```
//! use std::sync::Arc;
//! use gradwire_codec::{Reader, SideInfoMap, StreamHeader, TensorSpec, Writer, WriterOptions};
//! let registry = gradwire_wyner_ziv::registry_with_wyner_ziv();
//! let y: Vec<f32> = (0..4096).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
//! let x: Vec<f32> = y.iter().enumerate().map(|(i, v)| v + ((i % 5) as f32 - 2.0) * 1e-3).collect();
//! let mut side = SideInfoMap::new();
//! side.insert("g", "last round", y.clone());
//! let side = Arc::new(side);
//!
//! let mut w = Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default())?;
//! w.set_side_info(side.clone());
//! w.write_tensor(TensorSpec::new("g", &[4096], registry.parse_pipeline("wyner-ziv:step=0.001")?), &x)?;
//! let bytes = w.finish()?;
//! assert!(bytes.len() < 4096 * 3 / 8); // under 3 bits per entry, headers included
//!
//! let mut reader = Reader::new(&bytes[..], &registry);
//! reader.set_side_info(side);
//! let decoded = reader.read_all()?.tensors.remove(0).values;
//! assert!(x.iter().zip(&decoded).all(|(a, b)| (a - b).abs() <= 0.0005 * 1.0001));
//!
//! // Without the side information, the tensor is refused rather than decoded wrong.
//! let err = Reader::new(&bytes[..], &registry).read_all().unwrap_err();
//! assert_eq!(err.code(), gradwire_codec::ErrorCode::SideInfoMissing);
//! # Ok::<(), gradwire_codec::Error>(())
//! ```

#![forbid(unsafe_code)]
#![allow(
    clippy::many_single_char_names,
    reason = "x, y, z, t, c, k, n, m are the names of the formulas in spec/CODECS.md §12"
)]

mod chunk;
mod encode;
mod lattice;
mod params;

use gradwire_codec::entropy::{LabelCoding, decode_labels};
use gradwire_codec::side_info::{SideBinding, SideInfoUse};
use gradwire_codec::{
    ArrayToBytes, ChunkContext, CodecDescriptor, CodecFactory, Error, ErrorCode, ParamInfo, Registry, Result, Stage,
    StageKind, TextParams,
};

pub use params::{MAX_BITS, MAX_MODULUS, Mode, Rounding, WynerZivParams};

/// Wire ID of `wyner-ziv` (`spec/REGISTRY.md`).
pub const WYNER_ZIV_ID: u32 = 0x0000_0108;

/// Factory of the `wyner-ziv` codec.
#[derive(Debug)]
pub struct WynerZivCodec;

/// The registered `wyner-ziv` codec.
pub static WYNER_ZIV_CODEC: WynerZivCodec = WynerZivCodec;

gradwire_codec::inventory::submit! { gradwire_codec::CodecPlugin::new(&WYNER_ZIV_CODEC) }

const DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: WYNER_ZIV_ID,
    name: "wyner-ziv",
    kind: StageKind::ArrayToBytes,
    version: 1,
    min_version: 1,
    lossless: false,
    summary: "Wyner-Ziv: lattice indices sent modulo k, decoded against side information the receiver holds",
    params: &[
        ParamInfo { name: "bits", default: "2", help: "target bits per entry in (0, 8]; step and modulus chosen" },
        ParamInfo { name: "step", default: "", help: "lattice step eps (instead of bits); error <= eps" },
        ParamInfo {
            name: "modulus",
            default: "",
            help: "k in 2..=256 with step (a sender without the side information)",
        },
        ParamInfo { name: "rounding", default: "nearest", help: "nearest or stochastic (seeded, unbiased)" },
        ParamInfo { name: "scale", default: "fit", help: "fit (code x against a*y) or one (a = 1)" },
    ],
    // Forms without side information only: the conformance generator gives streams none (the
    // golden vectors cover decoding against it: bound, unbound, contexts, escapes).
    examples: &["bits=2", "bits=4,rounding=stochastic", "step=0.01", "step=0.001,scale=one"],
};

impl CodecFactory for WynerZivCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DESCRIPTOR
    }
    fn params_from_text(&self, text: &TextParams) -> Result<Vec<u8>> {
        Ok(WynerZivParams::from_text(text)?.encode())
    }
    fn params_to_text(&self, _version: u16, params: &[u8]) -> Result<String> {
        Ok(WynerZivParams::decode(params)?.to_text())
    }
    fn build(&self, _version: u16, params: &[u8]) -> Result<Stage> {
        Ok(Stage::ArrayToBytes(Box::new(WynerZivStage { params: WynerZivParams::decode(params)? })))
    }
    fn bind_side_info(&self, _version: u16, params: &[u8], binding: &SideBinding) -> Result<Option<Vec<u8>>> {
        if binding.label.len() > gradwire_codec::side_info::MAX_LABEL_LEN {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("side information label of {} bytes is longer than 255", binding.label.len()),
            ));
        }
        let mut p = WynerZivParams::decode(params)?;
        p.binding = Some(binding.clone());
        Ok(Some(p.encode()))
    }
}

/// The built `wyner-ziv` stage.
#[derive(Debug)]
pub struct WynerZivStage {
    params: WynerZivParams,
}

impl WynerZivStage {
    /// The stage for `params`.
    #[must_use]
    pub fn new(params: WynerZivParams) -> Self {
        WynerZivStage { params }
    }
}

/// The chunk's side information, which a stage that uses it cannot decode without.
fn side_of<'a>(ctx: &ChunkContext<'a>, n: usize) -> Result<&'a [f32]> {
    let side = ctx.side.ok_or_else(|| {
        Error::new(ErrorCode::SideInfoMissing, "wyner-ziv decodes against side information, and none was given")
    })?;
    if side.len() != n {
        return Err(Error::new(
            ErrorCode::SideInfoMismatch,
            format!("wyner-ziv chunk of {n} values was given {} values of side information", side.len()),
        ));
    }
    Ok(side)
}

impl ArrayToBytes for WynerZivStage {
    fn max_encoded_len(&self, len: usize) -> Option<usize> {
        chunk::max_len(len)
    }

    fn encode(&self, input: &[f32], ctx: &ChunkContext<'_>, out: &mut Vec<u8>) -> Result<()> {
        encode::encode(&self.params, input, ctx.side, ctx.seed, out)
    }

    fn decode(&self, bytes: &[u8], ctx: &ChunkContext<'_>, out: &mut [f32]) -> Result<()> {
        let n = out.len();
        let parsed = chunk::parse(bytes, n)?;
        let side = if self.side_info() == SideInfoUse::None { None } else { Some(side_of(ctx, n)?) };
        let h = parsed.header;
        if h.contexts > 1 && side.is_none() {
            return Err(Error::new(
                ErrorCode::CodecData,
                format!("wyner-ziv chunk without side information has {} label contexts", h.contexts),
            ));
        }
        let sections = chunk::sections(parsed.sections, h.contexts)?;
        let labels = decode_sections(&sections, &parsed, side, n, usize::from(h.modulus))?;
        let step = f64::from(h.step);
        let k = f64::from(h.modulus);
        let predict = |i: usize| side.map_or(0.0, |y| lattice::prediction(h.scale, y[i], step));
        let base = |t: f64| if h.centered { lattice::reference(t) } else { 0.0 };
        let entry =
            |label: u8, t: f64| lattice::value(lattice::nearest_in_class(base(t) + f64::from(label), k, t), step);
        // Runs of coded entries between escapes, then the escape.
        let (mut start, mut next_label) = (0usize, 0usize);
        let decode_run = |out: &mut [f32], start: usize, end: usize, next_label: usize| match side {
            Some(y) => {
                for ((o, &yi), &l) in out[start..end].iter_mut().zip(&y[start..end]).zip(&labels[next_label..]) {
                    *o = entry(l, lattice::prediction(h.scale, yi, step));
                }
            }
            None => {
                for (o, &l) in out[start..end].iter_mut().zip(&labels[next_label..]) {
                    *o = entry(l, 0.0);
                }
            }
        };
        for (&p, escape) in parsed.positions.iter().zip(&parsed.escapes) {
            let p = p as usize;
            decode_run(out, start, p, next_label);
            next_label += p - start;
            out[p] = match *escape {
                chunk::Escape::Raw(v) => v,
                chunk::Escape::Wide(d) => lattice::value(base(predict(p)) + d as f64, step),
            };
            start = p + 1;
        }
        decode_run(out, start, n, next_label);
        Ok(())
    }

    fn side_info(&self) -> SideInfoUse {
        match (&self.params.binding, self.params.mode) {
            (Some(b), _) => SideInfoUse::Bound(b.clone()),
            (None, Mode::StepModulus(..)) => SideInfoUse::Unbound,
            (None, _) => SideInfoUse::None,
        }
    }
}

/// The residue labels of a chunk's entries that are not escaped, in entry order: one label
/// section, or one per context with each entry's context computed from its side value.
fn decode_sections(
    sections: &[(LabelCoding, &[u8])],
    parsed: &chunk::Parsed<'_>,
    side: Option<&[f32]>,
    n: usize,
    k: usize,
) -> Result<Vec<u8>> {
    let coded = n - parsed.positions.len();
    let mut labels = vec![0u8; coded];
    let (Some(y), [_, _, ..]) = (side, sections) else {
        let (coding, bytes) = sections[0];
        decode_labels(coding, bytes, k, &mut labels)?;
        return Ok(labels);
    };
    let h = parsed.header;
    // The context of every coded entry, skipping the escaped ones.
    let mut contexts = Vec::with_capacity(coded);
    let mut escaped = parsed.positions.iter().peekable();
    for (i, &yi) in y.iter().enumerate() {
        if escaped.peek() == Some(&&(i as u64)) {
            escaped.next();
            continue;
        }
        contexts.push(chunk::context(yi, h.gain, h.contexts));
    }
    let mut counts = vec![0usize; sections.len()];
    for &c in &contexts {
        counts[usize::from(c)] += 1;
    }
    let mut decoded = Vec::with_capacity(sections.len());
    for ((coding, bytes), &count) in sections.iter().zip(&counts) {
        let mut section = vec![0u8; count];
        decode_labels(*coding, bytes, k, &mut section)?;
        decoded.push(section.into_iter());
    }
    for (l, &c) in labels.iter_mut().zip(&contexts) {
        *l = decoded[usize::from(c)].next().unwrap_or(0);
    }
    Ok(labels)
}

/// The core registry plus `wyner-ziv` (for tests and examples that do not link the facade).
#[must_use]
pub fn registry_with_wyner_ziv() -> Registry {
    Registry::core_with(&WYNER_ZIV_CODEC)
}

#[cfg(test)]
mod tests;
