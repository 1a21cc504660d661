//! Parameters of `intrinsic` in text (`dim=4096,family=srht,seed=7`) and on the wire (32 bytes,
//! `spec/CODECS.md` §7.1), and the seed schedule that turns them into a projection seed.

use gradwire_codec::rng::mix64;
use gradwire_codec::{Error, ErrorCode, Result, TextParams};

/// Coefficients per chunk when `dim` is not given.
pub const DEFAULT_DIM: u32 = 256;
/// Nonzeros per column of `family=sparse` when `nonzeros` is not given.
pub const DEFAULT_NONZEROS: u32 = 4;
/// Largest number of nonzeros per column of `family=sparse` (one 64-bit word of signs).
pub const MAX_NONZEROS: u32 = 64;
/// Largest `n * d` of a `rademacher` chunk: the dense matrix costs that many operations.
pub const MAX_DENSE_ENTRIES: u64 = 1 << 26;

/// The random projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Subsampled randomized Hadamard transform (0).
    Srht,
    /// Dense +-1 entries (1).
    Rademacher,
    /// `nonzeros` +-1 entries per column, rows drawn with replacement (2).
    Sparse,
}

/// What the decoder multiplies `A c` by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// 1: `A A^T g`, the projection onto the subspace (0).
    Projection,
    /// `n / d` (`padded / dim` per SRHT block): `E[A A^T g] = g` over seeds (1).
    Unbiased,
}

/// How the projection seed follows the rounds of training (Melas-Kyriazi and Wang 2022).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// One subspace for the whole training: the seed itself (0).
    Fixed,
    /// `groups` subspaces used in turn: `mix64(seed ^ mix64(round mod groups))` (1).
    Group {
        /// Number of subspaces, at least 1.
        groups: u32,
    },
    /// A new subspace each round: `mix64(seed ^ mix64(round))` (2).
    Round,
}

/// Parameters of one `intrinsic` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntrinsicParams {
    /// The projection family.
    pub family: Family,
    /// The decoder's scaling.
    pub scaling: Scaling,
    /// The seed schedule.
    pub schedule: Schedule,
    /// Coefficients per chunk (a chunk of `n < dim` values gets `n`).
    pub dim: u32,
    /// Nonzeros per column for [`Family::Sparse`] (0 otherwise).
    pub nonzeros: u32,
    /// The shared base seed.
    pub seed: u64,
    /// The training round (0 with [`Schedule::Fixed`]).
    pub round: u64,
}

impl IntrinsicParams {
    /// The seed of the subspace: the base seed passed through the schedule. Each chunk's
    /// generator is seeded with `chunk_seed(projection_seed, tensor name, chunk index)`.
    #[must_use]
    pub fn projection_seed(&self) -> u64 {
        match self.schedule {
            Schedule::Fixed => self.seed,
            Schedule::Group { groups } => mix64(self.seed ^ mix64(self.round % u64::from(groups))),
            Schedule::Round => mix64(self.seed ^ mix64(self.round)),
        }
    }

    /// Coefficients of a chunk of `n` values.
    #[must_use]
    pub fn dim_for(&self, n: usize) -> usize {
        (self.dim as usize).min(n)
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidArgument`] for unknown names, values out of range, or parameters that
    /// do not apply (`nonzeros` without `family=sparse`, `groups` without `schedule=group`, `round`
    /// with `schedule=fixed`).
    pub fn from_text(text: &TextParams) -> Result<IntrinsicParams> {
        let arg = |d: String| Error::new(ErrorCode::InvalidArgument, d);
        let family = match text.get("family").unwrap_or("srht") {
            "srht" => Family::Srht,
            "rademacher" => Family::Rademacher,
            "sparse" => Family::Sparse,
            other => return Err(arg(format!("intrinsic family={other:?} is not srht, rademacher or sparse"))),
        };
        let scaling = match text.get("scaling").unwrap_or("projection") {
            "projection" => Scaling::Projection,
            "unbiased" => Scaling::Unbiased,
            other => return Err(arg(format!("intrinsic scaling={other:?} is not projection or unbiased"))),
        };
        let dim = text.int_in("dim", i64::from(DEFAULT_DIM), 1..=i64::from(u32::MAX))? as u32;
        let nonzeros = if family == Family::Sparse {
            text.int_in("nonzeros", i64::from(DEFAULT_NONZEROS), 1..=i64::from(MAX_NONZEROS))? as u32
        } else if text.get("nonzeros").is_some() {
            return Err(arg("intrinsic nonzeros=N applies only with family=sparse".into()));
        } else {
            0
        };
        let seed = parse_u64(text, "seed")?.unwrap_or(0);
        let round = parse_u64(text, "round")?;
        let schedule = match text.get("schedule").unwrap_or("fixed") {
            "fixed" => Schedule::Fixed,
            "group" => Schedule::Group { groups: text.int_in("groups", 1, 1..=i64::from(u32::MAX))? as u32 },
            "round" => Schedule::Round,
            other => return Err(arg(format!("intrinsic schedule={other:?} is not fixed, group or round"))),
        };
        if text.get("groups").is_some() && !matches!(schedule, Schedule::Group { .. }) {
            return Err(arg("intrinsic groups=K applies only with schedule=group".into()));
        }
        if round.is_some() && schedule == Schedule::Fixed {
            return Err(arg("intrinsic round=R applies only with schedule=group or schedule=round".into()));
        }
        Ok(IntrinsicParams { family, scaling, schedule, dim, nonzeros, seed, round: round.unwrap_or(0) })
    }

    /// The text form, as `gradwire inspect` prints it.
    #[must_use]
    pub fn to_text(&self) -> String {
        let family = match self.family {
            Family::Srht => "srht",
            Family::Rademacher => "rademacher",
            Family::Sparse => "sparse",
        };
        let sparse = if self.family == Family::Sparse { format!(",nonzeros={}", self.nonzeros) } else { String::new() };
        let scaling = if self.scaling == Scaling::Unbiased { ",scaling=unbiased" } else { "" };
        let schedule = match self.schedule {
            Schedule::Fixed => String::new(),
            Schedule::Group { groups } => format!(",schedule=group,groups={groups},round={}", self.round),
            Schedule::Round => format!(",schedule=round,round={}", self.round),
        };
        let s = format!("dim={},family={family}{sparse}{scaling},seed={}{schedule}", self.dim, self.seed);
        s
    }

    /// The 32 wire bytes: `u8 family, u8 scaling, u8 schedule, u8 reserved, u32 dim,
    /// u32 nonzeros, u32 groups, u64 seed, u64 round`.
    #[must_use]
    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[0] = match self.family {
            Family::Srht => 0,
            Family::Rademacher => 1,
            Family::Sparse => 2,
        };
        out[1] = u8::from(self.scaling == Scaling::Unbiased);
        let (schedule, groups) = match self.schedule {
            Schedule::Fixed => (0, 0),
            Schedule::Group { groups } => (1, groups),
            Schedule::Round => (2, 0),
        };
        out[2] = schedule;
        out[4..8].copy_from_slice(&self.dim.to_le_bytes());
        out[8..12].copy_from_slice(&self.nonzeros.to_le_bytes());
        out[12..16].copy_from_slice(&groups.to_le_bytes());
        out[16..24].copy_from_slice(&self.seed.to_le_bytes());
        out[24..32].copy_from_slice(&self.round.to_le_bytes());
        out
    }

    /// Parses untrusted wire bytes.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParams`] for a wrong length, an unknown family, scaling or schedule, a
    /// zero `dim`, or a `nonzeros`, `groups` or `round` that does not fit the family and schedule;
    /// [`ErrorCode::ReservedNonzero`] for a nonzero reserved byte.
    pub fn decode(bytes: &[u8]) -> Result<IntrinsicParams> {
        let invalid = |d: String| Error::new(ErrorCode::InvalidParams, d);
        let b: [u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid(format!("intrinsic parameters must be 32 bytes, found {}", bytes.len())))?;
        if b[3] != 0 {
            return Err(Error::new(
                ErrorCode::ReservedNonzero,
                "intrinsic parameter byte 3 is reserved and must be zero",
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at =
            |i: usize| u64::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]]);
        let (dim, nonzeros, groups, seed, round) = (u32_at(4), u32_at(8), u32_at(12), u64_at(16), u64_at(24));
        let family = match b[0] {
            0 => Family::Srht,
            1 => Family::Rademacher,
            2 => Family::Sparse,
            f => return Err(invalid(format!("intrinsic family {f} is not 0 (srht), 1 (rademacher) or 2 (sparse)"))),
        };
        let scaling = match b[1] {
            0 => Scaling::Projection,
            1 => Scaling::Unbiased,
            s => return Err(invalid(format!("intrinsic scaling {s} is not 0 (projection) or 1 (unbiased)"))),
        };
        let schedule = match b[2] {
            0 => Schedule::Fixed,
            1 => Schedule::Group { groups },
            2 => Schedule::Round,
            s => return Err(invalid(format!("intrinsic schedule {s} is not 0 (fixed), 1 (group) or 2 (round)"))),
        };
        if dim == 0 {
            return Err(invalid("intrinsic dim must be at least 1".into()));
        }
        let nonzeros_ok = if family == Family::Sparse { (1..=MAX_NONZEROS).contains(&nonzeros) } else { nonzeros == 0 };
        if !nonzeros_ok {
            return Err(invalid(format!(
                "intrinsic nonzeros is {nonzeros}; it must be in 1..={MAX_NONZEROS} for family 2 (sparse) and 0 otherwise"
            )));
        }
        if matches!(schedule, Schedule::Group { .. }) != (groups != 0) {
            return Err(invalid(format!(
                "intrinsic groups is {groups}; it must be at least 1 for schedule 1 (group) and 0 otherwise"
            )));
        }
        if schedule == Schedule::Fixed && round != 0 {
            return Err(invalid(format!("intrinsic round is {round}; it must be 0 for schedule 0 (fixed)")));
        }
        Ok(IntrinsicParams { family, scaling, schedule, dim, nonzeros, seed, round })
    }
}

fn parse_u64(text: &TextParams, key: &str) -> Result<Option<u64>> {
    text.get(key)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("parameter {key}={v:?} must be an integer in 0..=2^64-1"),
                )
            })
        })
        .transpose()
}
