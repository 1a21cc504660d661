//! Parameters of `signsgd` in text (`scale=block,block=4096`) and on the wire (8 bytes:
//! `u8 mode, 3 reserved zero bytes, u32 block`, `spec/CODECS.md` §5.1).

use gradwire_codec::{Error, ErrorCode, Result, TextParams};

/// Values per scale when `scale=block` and no `block` is given.
pub const DEFAULT_BLOCK: u32 = 4096;
/// Largest block size.
pub const MAX_BLOCK: u32 = 1 << 30;

/// Which scales a chunk carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// None: decoded values are ±1 (mode 0).
    None,
    /// One mean |x| per chunk (mode 1).
    Mean,
    /// One mean |x| per block of this many values, a multiple of 32 (mode 2).
    Block(u32),
}

/// Parameters of one `signsgd` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignParams {
    /// The scale mode.
    pub scale: Scale,
}

fn invalid(detail: String) -> Error {
    Error::new(ErrorCode::InvalidParams, detail)
}

fn check_block(block: u64) -> std::result::Result<u32, String> {
    if block >= 32 && block <= u64::from(MAX_BLOCK) && block.is_multiple_of(32) {
        Ok(block as u32)
    } else {
        Err(format!("signsgd block must be a multiple of 32 in 32..={MAX_BLOCK}, found {block}"))
    }
}

impl SignParams {
    /// Number of f32 scales in a chunk of `n` values.
    #[must_use]
    pub fn n_scales(&self, n: usize) -> usize {
        match self.scale {
            Scale::None => 0,
            Scale::Mean => usize::from(n > 0),
            Scale::Block(b) => n.div_ceil(b as usize),
        }
    }

    /// Parses `scale=...,block=...`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for an unknown scale, a bad block size, or `block` without
    /// `scale=block`.
    pub fn from_text(text: &TextParams) -> Result<SignParams> {
        let arg = |d: String| Error::new(ErrorCode::InvalidArgument, d);
        let scale = match text.get("scale").unwrap_or("mean") {
            "none" => Scale::None,
            "mean" => Scale::Mean,
            "block" => {
                let block = text.int_in("block", i64::from(DEFAULT_BLOCK), 32..=i64::from(MAX_BLOCK))?;
                Scale::Block(check_block(block as u64).map_err(arg)?)
            }
            other => return Err(arg(format!("signsgd scale={other:?} is not none, mean or block"))),
        };
        if text.get("block").is_some() && !matches!(scale, Scale::Block(_)) {
            return Err(arg("signsgd block=N applies only with scale=block".into()));
        }
        Ok(SignParams { scale })
    }

    /// The text form, as `gradwire inspect` prints it.
    #[must_use]
    pub fn to_text(&self) -> String {
        match self.scale {
            Scale::None => "scale=none".into(),
            Scale::Mean => "scale=mean".into(),
            Scale::Block(b) => format!("scale=block,block={b}"),
        }
    }

    /// The 8 wire bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; 8] {
        let (mode, block) = match self.scale {
            Scale::None => (0u8, 0u32),
            Scale::Mean => (1, 0),
            Scale::Block(b) => (2, b),
        };
        let mut out = [0u8; 8];
        out[0] = mode;
        out[4..].copy_from_slice(&block.to_le_bytes());
        out
    }

    /// Parses untrusted wire bytes.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length, an unknown mode or a bad block size;
    /// [`ErrorCode::ReservedNonzero`] for nonzero reserved bytes.
    pub fn decode(bytes: &[u8]) -> Result<SignParams> {
        let b: [u8; 8] = bytes
            .try_into()
            .map_err(|_| invalid(format!("signsgd parameters must be 8 bytes, found {}", bytes.len())))?;
        if b[1..4] != [0, 0, 0] {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                "signsgd parameter bytes 1..4 are reserved and must be zero",
            ));
        }
        let block = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let scale = match b[0] {
            0 | 1 if block != 0 => {
                return Err(invalid(format!("signsgd block must be 0 unless mode is 2, found {block}")));
            }
            0 => Scale::None,
            1 => Scale::Mean,
            2 => Scale::Block(check_block(u64::from(block)).map_err(invalid)?),
            m => return Err(invalid(format!("signsgd scale mode {m} is not 0 (none), 1 (mean) or 2 (block)"))),
        };
        Ok(SignParams { scale })
    }
}
