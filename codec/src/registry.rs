//! The codec registry: which codec IDs a reader or writer understands.
//!
//! A [`Registry`] is a plain value the application builds and passes in; nothing in a stream can
//! load code. [`Registry::core`] holds the baseline codecs, registered by ordinary function calls;
//! [`Registry::linked`] adds every plugin crate linked into the binary that announced itself with
//! `inventory::submit!` (see [`CodecPlugin`]). Registering a second codec with an existing ID or
//! name is an error, never a silent replacement.
//!
//! The registry also owns the text grammar of pipelines used on the command line:
//!
//! ```text
//! pipeline := stage ("+" stage)*
//! stage    := name (":" param ("," param)*)?
//! param    := key "=" value          e.g.  bf16+zstd:level=3
//! value    := text | "(" pipeline ")"      e.g.  topk:fraction=0.1,values=(m22:bits=4)
//! ```
//!
//! `+` and `,` inside parentheses belong to the nested pipeline; nested pipelines do not nest.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};
use crate::format::StageDescriptor;
use crate::ids::codec;
use crate::limits::Limits;
use crate::pipeline::Pipeline;
use crate::side_info::SideBinding;
use crate::stage::{Stage, StageKind};

/// Documentation of one codec parameter, as shown by `gradwire codecs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    /// Parameter name in the pipeline grammar.
    pub name: &'static str,
    /// Default value, as text.
    pub default: &'static str,
    /// One line on what it does and its range.
    pub help: &'static str,
}

/// What a codec is: constant data next to its implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecDescriptor {
    /// Wire ID (`spec/REGISTRY.md`).
    pub id: u32,
    /// Name in the pipeline grammar, `^[a-z][a-z0-9_.-]*$`; private-range codecs use `vendor.name`.
    pub name: &'static str,
    /// Stage kind.
    pub kind: StageKind,
    /// Codec format version this implementation writes.
    pub version: u16,
    /// Oldest codec format version this implementation reads.
    pub min_version: u16,
    /// Whether decode(encode(x)) == x bit for bit.
    pub lossless: bool,
    /// One line on what the codec does.
    pub summary: &'static str,
    /// Parameters accepted in the pipeline grammar.
    pub params: &'static [ParamInfo],
    /// Parameter texts (`key=value,...`) that together reach the codec's distinct bitstream
    /// features (modes, versions, codings), beyond the defaults: the conformance generator
    /// writes streams with each, so a second decoder is tested on all of them.
    pub examples: &'static [&'static str],
}

/// `key=value` parameters of one stage, as written in a pipeline spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextParams {
    /// Pairs in the order written.
    pub pairs: Vec<(String, String)>,
}

impl TextParams {
    /// The value given for `key`, if any.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Parses `key` as an integer in `range`, or returns `default` when absent.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] when the value is not an integer in range.
    pub fn int_in(&self, key: &str, default: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64> {
        let Some(text) = self.get(key) else { return Ok(default) };
        match text.parse::<i64>() {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("parameter {key}={text:?} must be an integer in {}..={}", range.start(), range.end()),
            )),
        }
    }
}

/// A codec implementation: describes itself, translates parameters, builds stages.
///
/// Implementations are usually unit structs in a `static`, registered with
/// `inventory::submit! { gradwire_codec::CodecPlugin::new(&MY_CODEC) }`.
pub trait CodecFactory: Send + Sync {
    /// The codec's constant description.
    fn descriptor(&self) -> &CodecDescriptor;

    /// Turns text parameters (already checked against [`CodecDescriptor::params`]) into the
    /// wire parameter bytes of the current version.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for values out of range.
    fn params_from_text(&self, params: &TextParams) -> Result<Vec<u8>>;

    /// The codec format version a writer records for these (valid) wire parameters: the oldest
    /// version that reads them, so that streams which use no newer feature stay readable by
    /// older decoders (as zip's "version needed to extract"). Default: the current version.
    fn version_for(&self, params: &[u8]) -> u16 {
        let _ = params;
        self.descriptor().version
    }

    /// Renders wire parameters as `key=value,...` text (empty for none).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] when the bytes do not parse.
    fn params_to_text(&self, version: u16, params: &[u8]) -> Result<String>;

    /// Builds a stage from untrusted wire parameters; must validate them and never panic.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for parameters that do not parse or are out of range.
    fn build(&self, version: u16, params: &[u8]) -> Result<Stage>;

    /// As [`CodecFactory::params_from_text`], for a codec whose parameters hold a nested
    /// pipeline (`topk`'s `values=(...)`): nested codecs are looked up in `registry`. The
    /// registry calls this one; the default ignores `registry`.
    ///
    /// A factory that wraps another must forward the three `*_in` methods as well, or the
    /// wrapped codec's nested stages are resolved without the caller's registry and limits.
    ///
    /// # Errors
    /// As [`CodecFactory::params_from_text`].
    fn params_from_text_in(&self, params: &TextParams, registry: &Registry) -> Result<Vec<u8>> {
        let _ = registry;
        self.params_from_text(params)
    }

    /// As [`CodecFactory::params_to_text`], rendering nested stages with `registry`.
    ///
    /// # Errors
    /// As [`CodecFactory::params_to_text`].
    fn params_to_text_in(&self, version: u16, params: &[u8], registry: &Registry) -> Result<String> {
        let _ = registry;
        self.params_to_text(version, params)
    }

    /// As [`CodecFactory::build`], building nested stages from `registry` under `limits` (the
    /// reader's or writer's own). The pipeline builder calls this one; the default ignores both.
    ///
    /// # Errors
    /// As [`CodecFactory::build`], plus the errors of building a nested pipeline.
    fn build_in(&self, version: u16, params: &[u8], registry: &Registry, limits: &Limits) -> Result<Stage> {
        let _ = (registry, limits);
        self.build(version, params)
    }

    /// For a codec that decodes against side information: these wire parameters with the
    /// side information bound to them (`crate::side_info`), which a writer that holds the side
    /// tensor calls before it writes TENSOR_BEGIN. Default: `None` (no side information used).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] when the parameters do not parse.
    fn bind_side_info(&self, version: u16, params: &[u8], binding: &SideBinding) -> Result<Option<Vec<u8>>> {
        let _ = (version, params, binding);
        Ok(None)
    }
}

/// A codec announced by a plugin crate at link time.
pub struct CodecPlugin {
    /// The plugin's factory.
    pub factory: &'static dyn CodecFactory,
}

impl CodecPlugin {
    /// Wraps a static factory for `inventory::submit!`.
    #[must_use]
    pub const fn new(factory: &'static dyn CodecFactory) -> Self {
        CodecPlugin { factory }
    }
}

inventory::collect!(CodecPlugin);

/// A set of codecs with unique IDs and names.
///
/// # Examples
/// ```
/// use gradwire_codec::Registry;
/// let registry = Registry::core();
/// let stages = registry.parse_pipeline("bf16+zstd:level=3").unwrap();
/// assert_eq!(registry.pipeline_to_text(&stages).unwrap(), "bf16+zstd:level=3");
/// let err = registry.parse_pipeline("nosuch").unwrap_err();
/// assert!(err.to_string().contains("known codecs: bf16, f16, raw, zstd"));
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    by_id: BTreeMap<u32, Arc<dyn CodecFactory>>,
    by_name: BTreeMap<&'static str, u32>,
}

/// Splits pipeline text at `separator`s that are not inside parentheses, so a parameter may
/// hold a nested pipeline: `topk:fraction=0.01,values=(bf16+zstd:level=3)`.
fn split_outside_parentheses(text: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    text.split(move |c: char| {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        c == separator && depth == 0
    })
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

struct StaticFactory(&'static dyn CodecFactory);

impl CodecFactory for StaticFactory {
    fn descriptor(&self) -> &CodecDescriptor {
        self.0.descriptor()
    }
    fn params_from_text(&self, params: &TextParams) -> Result<Vec<u8>> {
        self.0.params_from_text(params)
    }
    fn version_for(&self, params: &[u8]) -> u16 {
        self.0.version_for(params)
    }
    fn params_to_text(&self, version: u16, params: &[u8]) -> Result<String> {
        self.0.params_to_text(version, params)
    }
    fn build(&self, version: u16, params: &[u8]) -> Result<Stage> {
        self.0.build(version, params)
    }
    fn params_from_text_in(&self, params: &TextParams, registry: &Registry) -> Result<Vec<u8>> {
        self.0.params_from_text_in(params, registry)
    }
    fn params_to_text_in(&self, version: u16, params: &[u8], registry: &Registry) -> Result<String> {
        self.0.params_to_text_in(version, params, registry)
    }
    fn build_in(&self, version: u16, params: &[u8], registry: &Registry, limits: &Limits) -> Result<Stage> {
        self.0.build_in(version, params, registry, limits)
    }
    fn bind_side_info(&self, version: u16, params: &[u8], binding: &SideBinding) -> Result<Option<Vec<u8>>> {
        self.0.bind_side_info(version, params, binding)
    }
}

impl Registry {
    /// A registry with no codecs.
    #[must_use]
    pub fn empty() -> Self {
        Registry::default()
    }

    /// The baseline codecs every build has: `raw`, `f16`, `bf16`, `zstd`.
    #[must_use]
    pub fn core() -> Self {
        let mut r = Registry::empty();
        for f in crate::codecs::CORE {
            // The core set is fixed and tested to be free of duplicates.
            let _ = r.register_static(*f);
        }
        r
    }

    /// The core codecs plus `plugin`: what a plugin crate's own tests and examples use, without
    /// depending on which other plugins happen to be linked.
    ///
    /// # Panics
    /// If `plugin` claims a core codec's ID or name (a plugin bug, caught by its first test).
    #[must_use]
    #[allow(clippy::panic, reason = "a collision with the fixed core set is a plugin bug, found by its first test")]
    pub fn core_with(plugin: &'static dyn CodecFactory) -> Self {
        let mut r = Registry::core();
        if let Err(e) = r.register_static(plugin) {
            panic!("plugin {:?} collides with a core codec: {e}", plugin.descriptor().name);
        }
        r
    }

    /// The core codecs plus every plugin linked into this binary with `inventory::submit!`.
    ///
    /// # Errors
    /// Fails when two linked plugins claim the same ID or name.
    pub fn linked() -> Result<Self> {
        let mut r = Registry::core();
        for plugin in inventory::iter::<CodecPlugin> {
            r.register_static(plugin.factory)?;
        }
        Ok(r)
    }

    /// Adds a static factory.
    ///
    /// # Errors
    /// As [`Registry::register`].
    pub fn register_static(&mut self, factory: &'static dyn CodecFactory) -> Result<()> {
        self.register(Arc::new(StaticFactory(factory)))
    }

    /// Adds a codec.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for a duplicate ID or name, an invalid name, ID 0 or
    /// `0xFFFF_FFFF`, a private-range ID whose name lacks a `vendor.` prefix, or
    /// `min_version > version`.
    pub fn register(&mut self, factory: Arc<dyn CodecFactory>) -> Result<()> {
        let d = *factory.descriptor();
        let bad = |msg: String| Err(Error::new(ErrorCode::InvalidArgument, msg));
        if !crate::format::is_valid_codec_name(d.name) {
            return bad(format!("codec name {:?} does not match ^[a-z][a-z0-9_.-]*$", d.name));
        }
        if d.id == 0 || d.id == u32::MAX {
            return bad(format!("codec {:?} uses the invalid ID 0x{:08x}", d.name, d.id));
        }
        if codec::is_private(d.id) && !d.name.contains('.') {
            return bad(format!("private codec {:?} (0x{:08x}) needs a vendor.name", d.name, d.id));
        }
        if d.min_version > d.version || d.version == 0 {
            return bad(format!("codec {:?} has versions {}..={}", d.name, d.min_version, d.version));
        }
        if let Some(existing) = self.by_id.get(&d.id) {
            return bad(format!(
                "codec ID 0x{:08x} of {:?} is already registered by {:?}",
                d.id,
                d.name,
                existing.descriptor().name
            ));
        }
        if self.by_name.contains_key(d.name) {
            return bad(format!("codec name {:?} is already registered", d.name));
        }
        self.by_name.insert(d.name, d.id);
        self.by_id.insert(d.id, factory);
        Ok(())
    }

    /// The factory for `id`.
    #[must_use]
    pub fn get(&self, id: u32) -> Option<&dyn CodecFactory> {
        self.by_id.get(&id).map(AsRef::as_ref)
    }

    /// The factory named `name`.
    #[must_use]
    pub fn get_by_name(&self, name: &str) -> Option<&dyn CodecFactory> {
        self.by_name.get(name).and_then(|id| self.get(*id))
    }

    /// Descriptors of every codec, by ID.
    pub fn descriptors(&self) -> impl Iterator<Item = &CodecDescriptor> {
        self.by_id.values().map(|f| f.descriptor())
    }

    /// Registered IDs in increasing order.
    #[must_use]
    pub fn ids(&self) -> Vec<u32> {
        self.by_id.keys().copied().collect()
    }

    fn known_names(&self) -> String {
        self.by_name.keys().copied().collect::<Vec<_>>().join(", ")
    }

    /// Parses a pipeline spec such as `bf16+zstd:level=3` into wire stage descriptors.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for syntax errors, unknown codecs (listing the known ones),
    /// unknown parameters (listing the codec's parameters) and out-of-range values.
    pub fn parse_pipeline(&self, spec: &str) -> Result<Vec<StageDescriptor>> {
        let invalid = |msg: String| Error::new(ErrorCode::InvalidArgument, msg);
        let mut stages = Vec::new();
        for stage_text in split_outside_parentheses(spec, '+') {
            let stage_text = stage_text.trim();
            let (name, param_text) = stage_text.split_once(':').unwrap_or((stage_text, ""));
            let factory = self.get_by_name(name).ok_or_else(|| {
                invalid(format!("unknown codec {name:?} in pipeline {spec:?}; known codecs: {}", self.known_names()))
            })?;
            let d = factory.descriptor();
            let mut params = TextParams::default();
            for pair in split_outside_parentheses(param_text, ',').filter(|p| !p.trim().is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| invalid(format!("parameter {pair:?} of codec {name:?} is not key=value")))?;
                let (k, v) = (k.trim(), v.trim());
                if !d.params.iter().any(|p| p.name == k) {
                    let known: Vec<_> = d.params.iter().map(|p| p.name).collect();
                    let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
                    return Err(invalid(format!(
                        "unknown parameter {k:?} for codec {name:?}; its parameters: {known}"
                    )));
                }
                params.pairs.push((k.to_owned(), v.to_owned()));
            }
            let bytes = factory
                .params_from_text_in(&params, self)
                .map_err(|e| invalid(format!("codec {name:?}: {}", e.detail())))?;
            let private_name = codec::is_private(d.id).then(|| d.name.to_owned());
            let version = factory.version_for(&bytes).clamp(d.min_version, d.version);
            stages.push(StageDescriptor { codec_id: d.id, version, params: bytes, private_name });
        }
        Ok(stages)
    }

    /// Renders wire stages back into the pipeline grammar (`inspect`, error messages).
    ///
    /// # Errors
    /// [`ErrorCode::UnsupportedCodec`] for an unknown ID, or the codec's parameter error.
    pub fn pipeline_to_text(&self, stages: &[StageDescriptor]) -> Result<String> {
        let mut parts = Vec::new();
        for s in stages {
            let f = self.factory_for(s)?;
            let params = f.params_to_text_in(s.version, &s.params, self)?;
            let name = f.descriptor().name;
            parts.push(if params.is_empty() { name.to_owned() } else { format!("{name}:{params}") });
        }
        Ok(parts.join("+"))
    }

    /// The factory for a wire stage, with a clear error when the ID or version is unknown.
    ///
    /// # Errors
    /// [`ErrorCode::UnsupportedCodec`].
    pub fn factory_for(&self, s: &StageDescriptor) -> Result<&dyn CodecFactory> {
        let label = match &s.private_name {
            Some(n) => format!("private codec {n:?} (0x{:08x})", s.codec_id),
            None => format!("codec ID 0x{:08x}", s.codec_id),
        };
        let f = self.get(s.codec_id).ok_or_else(|| {
            Error::new(
                ErrorCode::UnsupportedCodec,
                format!("{label} is not registered; known codecs: {}", self.known_names()),
            )
        })?;
        let d = f.descriptor();
        if let Some(n) = &s.private_name
            && n != d.name
        {
            return Err(Error::new(
                ErrorCode::UnsupportedCodec,
                format!("{label} collides with registered codec {:?}", d.name),
            ));
        }
        if !(d.min_version..=d.version).contains(&s.version) {
            return Err(Error::new(
                ErrorCode::UnsupportedCodec,
                format!(
                    "codec {:?} version {} is not supported (this build reads {}..={})",
                    d.name, s.version, d.min_version, d.version
                ),
            ));
        }
        Ok(f)
    }

    /// Builds and type-checks a pipeline.
    ///
    /// # Errors
    /// See [`Pipeline::build`].
    pub fn build_pipeline(&self, stages: &[StageDescriptor], limits: &Limits) -> Result<Pipeline> {
        Pipeline::build(self, stages, limits)
    }

    /// Whether a stage of `stages` takes a side-information binding (so a writer holding side
    /// information for the tensor binds it). Unknown stages take none.
    #[must_use]
    pub fn takes_side_info(&self, stages: &[StageDescriptor]) -> bool {
        let placeholder = SideBinding { label: String::new(), digest: [0; crate::side_info::DIGEST_LEN] };
        stages.iter().any(|s| {
            self.factory_for(s)
                .is_ok_and(|f| matches!(f.bind_side_info(s.version, &s.params, &placeholder), Ok(Some(_))))
        })
    }

    /// Binds side information to every stage of `stages` that decodes against it
    /// ([`CodecFactory::bind_side_info`]); returns whether any stage did.
    ///
    /// # Errors
    /// [`ErrorCode::UnsupportedCodec`] for an unknown stage; the codec's errors.
    pub fn bind_side_info(&self, stages: &mut [StageDescriptor], binding: &SideBinding) -> Result<bool> {
        let mut bound = false;
        for s in stages {
            if let Some(params) = self.factory_for(s)?.bind_side_info(s.version, &s.params, binding)? {
                s.params = params;
                bound = true;
            }
        }
        Ok(bound)
    }
}
