//! A codec plugin joins through `inventory::submit!` and is seen by `Registry::linked()`; a
//! private-range codec carries its name on the wire, and a reader without it names it in the error.
//!
//! The plugin here, `test.dup`, is an array->array stage that doubles the length (each value
//! twice): it exercises array stages and the size bounds of a length-changing stage.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any unexpected error")]

use gradwire::{
    ArrayToArray, ChunkContext, CodecDescriptor, CodecFactory, ErrorCode, Reader, Registry, Stage, StageKind,
    StreamHeader, TensorSpec, TextParams, Writer, WriterOptions,
};

struct DupCodec;

static DUP: DupCodec = DupCodec;

const DUP_DESCRIPTOR: CodecDescriptor = CodecDescriptor {
    id: 0x8000_0001,
    name: "test.dup",
    kind: StageKind::ArrayToArray,
    version: 1,
    min_version: 1,
    lossless: true,
    summary: "each value twice (test plugin)",
    params: &[],
    examples: &[],
};

impl CodecFactory for DupCodec {
    fn descriptor(&self) -> &CodecDescriptor {
        &DUP_DESCRIPTOR
    }
    fn params_from_text(&self, _: &TextParams) -> gradwire::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn params_to_text(&self, _: u16, _: &[u8]) -> gradwire::Result<String> {
        Ok(String::new())
    }
    fn build(&self, _: u16, _: &[u8]) -> gradwire::Result<Stage> {
        Ok(Stage::ArrayToArray(Box::new(DupStage)))
    }
}

struct DupStage;

impl ArrayToArray for DupStage {
    fn encoded_len(&self, len: usize) -> gradwire::Result<usize> {
        len.checked_mul(2).ok_or_else(|| gradwire::Error::new(ErrorCode::LimitExceeded, "overflow"))
    }
    fn encode(&self, input: &[f32], _: &ChunkContext<'_>, out: &mut Vec<f32>) -> gradwire::Result<()> {
        out.clear();
        out.extend(input.iter().flat_map(|&v| [v, v]));
        Ok(())
    }
    fn decode(&self, input: &[f32], _: &ChunkContext<'_>, out: &mut [f32]) -> gradwire::Result<()> {
        if input.len() != out.len() * 2 {
            return Err(gradwire::Error::new(ErrorCode::CodecOutputSize, "length"));
        }
        for (o, pair) in out.iter_mut().zip(input.chunks_exact(2)) {
            *o = pair[0];
        }
        Ok(())
    }
}

gradwire::inventory::submit! { gradwire::CodecPlugin::new(&DUP) }

#[test]
fn submitted_plugin_is_linked_and_round_trips() {
    let registry = Registry::linked().unwrap();
    assert_eq!(
        registry.ids(),
        vec![0x01, 0x02, 0x03, 0x10, 0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x106, 0x107, 0x108, 0x8000_0001]
    );
    let pipeline = registry.parse_pipeline("test.dup+raw").unwrap();
    assert_eq!(pipeline[0].private_name.as_deref(), Some("test.dup"));
    let values: Vec<f32> = (0..37).map(|i| i as f32 - 0.25).collect();
    let mut w =
        Writer::new(Vec::new(), &registry, &StreamHeader::default(), WriterOptions::default().chunk_elements(10))
            .unwrap();
    w.write_tensor(TensorSpec::new("x", &[37], pipeline), &values).unwrap();
    let bytes = w.finish().unwrap();
    let decoded = Reader::new(&bytes[..], &registry).read_all().unwrap();
    assert_eq!(decoded.tensors[0].values, values);
    assert_eq!(decoded.tensors[0].chunks_received, 4);

    let err = Reader::new(&bytes[..], &Registry::core()).read_all().unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedCodec);
    assert!(err.to_string().contains("private codec \"test.dup\" (0x80000001)"), "{err}");
}
