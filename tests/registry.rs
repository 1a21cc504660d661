//! The registry holds exactly the expected codecs, refuses duplicates, and explains what it knows
//! when a pipeline names something it does not.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any unexpected error")]

use std::sync::Arc;

use gradwire::codecs::RAW_CODEC;
use gradwire::{CodecFactory, ErrorCode, Registry};

#[test]
fn linked_registry_holds_exactly_the_expected_ids() {
    let registry = gradwire::registry().unwrap();
    assert_eq!(
        registry.ids(),
        vec![0x01, 0x02, 0x03, 0x10, 0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x106, 0x107, 0x108]
    );
    let names: Vec<&str> = registry.descriptors().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "raw",
            "f16",
            "bf16",
            "zstd",
            "signsgd",
            "m22",
            "intrinsic",
            "randk",
            "topk",
            "qsgd",
            "sparse-dither",
            "spherical",
            "wyner-ziv"
        ]
    );
}

#[test]
fn duplicate_ids_and_names_are_refused() {
    let mut registry = Registry::core();
    let err = registry.register_static(&RAW_CODEC).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("already registered"), "{err}");
    let mut empty = Registry::empty();
    empty.register(Arc::new(RenamedRaw)).unwrap();
    assert!(empty.register_static(&RAW_CODEC).is_ok(), "different ID and name");
    assert!(empty.register(Arc::new(RenamedRaw)).is_err());
}

struct RenamedRaw;
const RENAMED: gradwire::CodecDescriptor =
    gradwire::CodecDescriptor { id: 0x0100, name: "raw2", ..*RAW_CODEC_DESCRIPTOR };
static RAW_CODEC_DESCRIPTOR: &gradwire::CodecDescriptor = &gradwire::CodecDescriptor {
    id: 0x01,
    name: "raw",
    kind: gradwire::StageKind::ArrayToBytes,
    version: 1,
    min_version: 1,
    lossless: true,
    summary: "",
    params: &[],
    examples: &[],
};

impl CodecFactory for RenamedRaw {
    fn descriptor(&self) -> &gradwire::CodecDescriptor {
        &RENAMED
    }
    fn params_from_text(&self, p: &gradwire::TextParams) -> gradwire::Result<Vec<u8>> {
        RAW_CODEC.params_from_text(p)
    }
    fn params_to_text(&self, v: u16, p: &[u8]) -> gradwire::Result<String> {
        RAW_CODEC.params_to_text(v, p)
    }
    fn build(&self, v: u16, p: &[u8]) -> gradwire::Result<gradwire::Stage> {
        RAW_CODEC.build(v, p)
    }
}

#[test]
fn pipeline_errors_list_what_is_known() {
    let registry = Registry::core();
    let err = registry.parse_pipeline("bf16+lz4").unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("unknown codec \"lz4\""), "{err}");
    assert!(err.to_string().contains("known codecs: bf16, f16, raw, zstd"), "{err}");
    let err = registry.parse_pipeline("raw+zstd:levle=3").unwrap_err();
    assert!(err.to_string().contains("its parameters: level"), "{err}");
    let err = registry.parse_pipeline("raw+zstd:level=99").unwrap_err();
    assert!(err.to_string().contains("-7..=22"), "{err}");
    let err = registry.parse_pipeline("raw:x=1").unwrap_err();
    assert!(err.to_string().contains("its parameters: none"), "{err}");
    let err = registry.parse_pipeline("zstd:level").unwrap_err();
    assert!(err.to_string().contains("not key=value"), "{err}");
}

#[test]
fn pipelines_print_back_to_their_text() {
    let registry = Registry::core();
    for text in ["raw", "bf16+zstd:level=3", "f16+zstd:level=-1+zstd:level=19"] {
        let stages = registry.parse_pipeline(text).unwrap();
        assert_eq!(registry.pipeline_to_text(&stages).unwrap(), text);
    }
    assert_eq!(registry.pipeline_to_text(&registry.parse_pipeline("raw+zstd").unwrap()).unwrap(), "raw+zstd:level=3");
}
