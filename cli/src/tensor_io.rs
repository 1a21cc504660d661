//! Reading and writing named tensors in the file formats people keep gradients in: NumPy `.npy`
//! (one tensor) and `.npz` (a zip of `.npy`), and `.safetensors`. Values travel as f32; the
//! source dtype is remembered so `decode --keep-dtype` can write it back.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use gradwire::DType;
use half::{bf16, f16};
use npyz::WriterBuilder;

/// A named tensor with f32 values in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Name (safetensors key, npz member without `.npy`, or the file stem for `.npy`).
    pub name: String,
    /// The dtype the values were stored in.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Values, converted to f32.
    pub values: Vec<f32>,
}

impl NamedTensor {
    /// The writer's description of this tensor with the given pipeline: in the writer's chunks,
    /// or with `whole` as one chunk (up to [`WHOLE_TENSOR_CHUNK_LIMIT`] values).
    #[must_use]
    pub fn spec(&self, pipeline: &[gradwire::StageDescriptor], whole: bool) -> gradwire::TensorSpec {
        gradwire::TensorSpec {
            name: self.name.clone(),
            dtype: self.dtype,
            shape: self.shape.clone(),
            pipeline: pipeline.to_vec(),
            chunk_elements: whole.then(|| (self.values.len() as u64).clamp(1, WHOLE_TENSOR_CHUNK_LIMIT)),
        }
    }
}

/// Largest chunk given to a tensor written whole: 2^24 values, the default limit on a decoded
/// chunk (64 MiB of f32).
pub const WHOLE_TENSOR_CHUNK_LIMIT: u64 = 1 << 24;

/// Whether `pipeline` begins with an array->array stage (a projection such as `intrinsic`).
/// Such a stage's `dim` counts coefficients per chunk, so the command line writes each tensor as
/// one chunk (up to [`WHOLE_TENSOR_CHUNK_LIMIT`] values) unless `--chunk-size` is given: `dim`
/// then counts coefficients per tensor, as users of the paper's `d` expect.
#[must_use]
pub fn begins_with_projection(registry: &gradwire::Registry, pipeline: &[gradwire::StageDescriptor]) -> bool {
    pipeline
        .first()
        .and_then(|s| registry.factory_for(s).ok())
        .is_some_and(|f| f.descriptor().kind == gradwire::StageKind::ArrayToArray)
}

/// Which container a file is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// NumPy `.npy`.
    Npy,
    /// NumPy `.npz` (zip).
    Npz,
    /// safetensors.
    Safetensors,
    /// A gradwire stream.
    Gradwire,
}

/// Guesses the kind of a file from its magic bytes.
#[must_use]
pub fn sniff(bytes: &[u8]) -> Option<FileKind> {
    if bytes.starts_with(b"\x93NUMPY") {
        Some(FileKind::Npy)
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(FileKind::Npz)
    } else if bytes.starts_with(&gradwire::ids::MAGIC) {
        Some(FileKind::Gradwire)
    } else if bytes.len() >= 9 && bytes[8] == b'{' {
        Some(FileKind::Safetensors)
    } else {
        None
    }
}

/// Reads a whole file, or standard input for `-`.
pub fn read_bytes(path: &str) -> Result<Vec<u8>> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf).context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {path}"))
    }
}

/// Reads every tensor of a `.npy`, `.npz` or `.safetensors` file (or of standard input).
pub fn read_tensors(path: &str) -> Result<Vec<NamedTensor>> {
    let bytes = read_bytes(path)?;
    let stem = Path::new(path).file_stem().and_then(|s| s.to_str()).filter(|s| *s != "-").unwrap_or("tensor");
    match sniff(&bytes) {
        Some(FileKind::Npy) => Ok(vec![read_npy(&bytes, stem).with_context(|| format!("reading {path} as .npy"))?]),
        Some(FileKind::Npz) => read_npz(&bytes).with_context(|| format!("reading {path} as .npz")),
        Some(FileKind::Safetensors) => {
            read_safetensors(&bytes).with_context(|| format!("reading {path} as .safetensors"))
        }
        Some(FileKind::Gradwire) => bail!("{path} is already a gradwire stream; use `gradwire decode`"),
        None => bail!("{path} is not a .npy, .npz or .safetensors file"),
    }
}

fn read_npy(bytes: &[u8], name: &str) -> Result<NamedTensor> {
    let npy = npyz::NpyFile::new(bytes)?;
    let shape = npy.shape().to_vec();
    let order = npy.order();
    let descr = npy.dtype().descr();
    let (dtype, mut values) = match descr.trim_matches('\'').trim_start_matches(['<', '>', '=', '|']) {
        "f4" => (DType::F32, npy.into_vec::<f32>()?),
        "f8" => (DType::F64, npy.into_vec::<f64>()?.into_iter().map(|v| v as f32).collect()),
        "f2" => (DType::F16, npy.into_vec::<f16>()?.into_iter().map(f32::from).collect()),
        _ => bail!("dtype {descr} of {name:?} is not a float type gradwire reads (float16, float32, float64)"),
    };
    if order == npyz::Order::Fortran {
        values = fortran_to_c(&values, &shape);
    }
    Ok(NamedTensor { name: name.to_owned(), dtype, shape, values })
}

/// Reorders a column-major array into row-major order.
fn fortran_to_c(values: &[f32], shape: &[u64]) -> Vec<f32> {
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let mut f_strides = vec![1usize; dims.len()];
    for k in 1..dims.len() {
        f_strides[k] = f_strides[k - 1] * dims[k - 1];
    }
    let mut out = Vec::with_capacity(values.len());
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..values.len() {
        let off: usize = idx.iter().zip(&f_strides).map(|(i, s)| i * s).sum();
        out.push(values[off]);
        for k in (0..dims.len()).rev() {
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

fn read_npz(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i)?;
        let name = file.name()?.trim_end_matches(".npy").to_owned();
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        out.push(read_npy(&data, &name).with_context(|| format!("member {name:?}"))?);
    }
    Ok(out)
}

fn read_safetensors(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| anyhow!("{e}"))?;
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
        .into_iter()
        .map(|(name, view)| {
            let data = view.data();
            let (dtype, values): (DType, Vec<f32>) = match view.dtype() {
                safetensors::Dtype::F32 => {
                    (DType::F32, data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
                }
                safetensors::Dtype::F16 => {
                    (DType::F16, data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect())
                }
                safetensors::Dtype::BF16 => {
                    (DType::BF16, data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect())
                }
                safetensors::Dtype::F64 => (
                    DType::F64,
                    data.chunks_exact(8)
                        .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                        .collect(),
                ),
                other => bail!("tensor {name:?} has dtype {other:?}; gradwire reads F16, BF16, F32 and F64"),
            };
            let shape = view.shape().iter().map(|&d| d as u64).collect();
            Ok(NamedTensor { name, dtype, shape, values })
        })
        .collect()
}

/// Output formats, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// `.npy`: exactly one tensor.
    Npy,
    /// `.npz`: one member per tensor.
    Npz,
    /// `.safetensors`.
    Safetensors,
}

impl OutputKind {
    /// The kind named by a path's extension.
    pub fn from_path(path: &str) -> Result<Self> {
        match Path::new(path).extension().and_then(|e| e.to_str()) {
            Some("npy") => Ok(OutputKind::Npy),
            Some("npz") => Ok(OutputKind::Npz),
            Some("safetensors") => Ok(OutputKind::Safetensors),
            _ => bail!("cannot tell the output format of {path:?}: use a .safetensors, .npy or .npz extension"),
        }
    }
}

/// Little-endian bytes of the values in `dtype` (f32 unless `keep_dtype` and the source was narrower or wider).
fn encode_values(t: &NamedTensor, keep_dtype: bool) -> (DType, Vec<u8>) {
    let dtype = if keep_dtype { t.dtype } else { DType::F32 };
    let bytes = match dtype {
        DType::F16 => t.values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
        DType::BF16 => t.values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect(),
        DType::F64 => t.values.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect(),
        _ => t.values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
    };
    (dtype, bytes)
}

fn write_npy(w: impl Write, t: &NamedTensor, keep_dtype: bool) -> Result<()> {
    let dtype = if keep_dtype { t.dtype } else { DType::F32 };
    match dtype {
        DType::F16 => {
            let mut npy = npyz::WriteOptions::<f16>::new().default_dtype().shape(&t.shape).writer(w).begin_nd()?;
            npy.extend(t.values.iter().map(|&v| f16::from_f32(v)))?;
            npy.finish()?;
        }
        DType::F64 => {
            let mut npy = npyz::WriteOptions::<f64>::new().default_dtype().shape(&t.shape).writer(w).begin_nd()?;
            npy.extend(t.values.iter().map(|&v| f64::from(v)))?;
            npy.finish()?;
        }
        DType::BF16 => bail!("NumPy has no bfloat16 dtype: write .safetensors, or drop --keep-dtype"),
        _ => {
            let mut npy = npyz::WriteOptions::<f32>::new().default_dtype().shape(&t.shape).writer(w).begin_nd()?;
            npy.extend(t.values.iter().copied())?;
            npy.finish()?;
        }
    }
    Ok(())
}

/// Serializes tensors in the given format.
pub fn tensors_to_bytes(
    kind: OutputKind,
    tensors: &[NamedTensor],
    keep_dtype: bool,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match kind {
        OutputKind::Npy => {
            let [t] = tensors else {
                bail!("a .npy file holds one tensor and the stream has {}; write .npz or .safetensors", tensors.len())
            };
            write_npy(&mut out, t, keep_dtype)?;
        }
        OutputKind::Npz => {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(true);
            for t in tensors {
                zip.start_file(format!("{}.npy", t.name), opts)?;
                write_npy(&mut zip, t, keep_dtype)?;
            }
            zip.finish()?;
        }
        OutputKind::Safetensors => {
            let encoded: Vec<(String, DType, Vec<usize>, Vec<u8>)> = tensors
                .iter()
                .map(|t| {
                    let (dtype, bytes) = encode_values(t, keep_dtype);
                    (t.name.clone(), dtype, t.shape.iter().map(|&d| d as usize).collect(), bytes)
                })
                .collect();
            let views = encoded
                .iter()
                .map(|(name, dtype, shape, bytes)| {
                    let st_dtype = match dtype {
                        DType::F16 => safetensors::Dtype::F16,
                        DType::BF16 => safetensors::Dtype::BF16,
                        DType::F64 => safetensors::Dtype::F64,
                        _ => safetensors::Dtype::F32,
                    };
                    safetensors::tensor::TensorView::new(st_dtype, shape.clone(), bytes)
                        .map(|v| (name.clone(), v))
                        .map_err(|e| anyhow!("{e}"))
                })
                .collect::<Result<Vec<_>>>()?;
            out = safetensors::serialize(views, metadata).map_err(|e| anyhow!("{e}"))?;
        }
    }
    Ok(out)
}

/// The output path when `-o` is not given: the input path with `extension` (standard output for
/// standard input).
#[must_use]
pub fn default_output(input: &str, output: Option<&str>, extension: &str) -> String {
    match output {
        Some(o) => o.to_owned(),
        None if input == "-" => "-".to_owned(),
        None => Path::new(input).with_extension(extension).to_string_lossy().into_owned(),
    }
}

/// Writes bytes to a file, or standard output for `-`.
pub fn write_bytes(path: &str, bytes: &[u8]) -> Result<()> {
    if path == "-" {
        std::io::stdout().lock().write_all(bytes).context("writing standard output")
    } else {
        std::fs::write(path, bytes).with_context(|| format!("writing {path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_is_transposed() {
        // 2x3 array [[0,1,2],[3,4,5]] stored column-major is 0,3,1,4,2,5.
        assert_eq!(fortran_to_c(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0], &[2, 3]), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn every_output_format_round_trips() {
        let t = NamedTensor {
            name: "w".into(),
            dtype: DType::F32,
            shape: vec![2, 2],
            values: vec![1.0, -0.0, f32::INFINITY, 3.5],
        };
        for kind in [OutputKind::Npy, OutputKind::Npz, OutputKind::Safetensors] {
            let bytes = tensors_to_bytes(kind, std::slice::from_ref(&t), false, None).unwrap();
            let back = match sniff(&bytes) {
                Some(FileKind::Npy) => vec![read_npy(&bytes, "w").unwrap()],
                Some(FileKind::Npz) => read_npz(&bytes).unwrap(),
                Some(FileKind::Safetensors) => read_safetensors(&bytes).unwrap(),
                other => panic!("{kind:?} sniffed as {other:?}"),
            };
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].shape, t.shape);
            let bits: Vec<u32> = back[0].values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(bits, t.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{kind:?}");
        }
    }
}
