//! # gradwire-sim
//!
//! Federated training on one machine, in Rust, with every client update sent as a real gradwire
//! stream: what `gradwire simulate` runs. The dataset is scikit-learn's digits (1,797 8x8
//! images, embedded), the models softmax regression and a one-hidden-layer MLP with hand-written
//! backward passes, the protocols FedSGD and FedAvg over IID or label-skewed clients, with any
//! pipeline and optional error feedback on the uplink. Runs are deterministic for a seed.
//!
//! It answers the question a codec is chosen by: how much test accuracy each uplink bit buys.
//! The per-bit accuracy used here is defined in `docs/SIMULATION.md`.
//!
//! ```
//! use gradwire_sim::{SimulationConfig, simulate};
//! let registry = gradwire::registry()?;
//! let config = SimulationConfig { rounds: 3, ..SimulationConfig::default() };
//! let exact = simulate(&config, &registry, "raw")?;
//! let signs = simulate(&config, &registry, "signsgd:scale=mean")?;
//! // One bit per entry plus the container (about 1 KB per stream at this size) against 32.
//! assert!(signs.total_bits() * 8 < exact.total_bits());
//! # Ok::<(), gradwire::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod dataset;
pub mod federated;
pub mod model;
pub mod report;

pub use dataset::{Dataset, Split};
pub use federated::{Algorithm, Federation, RoundRecord, SimulationConfig, SimulationResult, simulate};
pub use model::{Architecture, Model};
