//! The federated loop: clients compute an update (FedSGD: one minibatch gradient; FedAvg: the
//! change after local SGD steps), send it as a real gradwire stream through the chosen
//! pipeline (with optional error feedback), and the server averages what it decodes.
//! Every uplink bit is counted from the stream's length, headers included.

use gradwire::format::{Metadata, Value};
use gradwire::rng::{SeededRng, mix64};
use gradwire::{ErrorFeedback, Reader, Registry, Result, SideInfoMap, StreamHeader, TensorSpec, Writer, WriterOptions};
use std::sync::Arc;

use crate::dataset::{Dataset, Split, partition};
use crate::model::{Architecture, Model};

/// What clients send and how the server applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// One minibatch gradient per client per round; the server steps by `-lr` times their mean.
    FedSgd,
    /// `local_steps` SGD steps per client from the global model; the server adds the mean change.
    FedAvg,
}

/// A simulation's settings. [`SimulationConfig::default`] is the command line's default.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationConfig {
    /// The network.
    pub architecture: Architecture,
    /// Number of clients.
    pub clients: usize,
    /// How training examples are dealt to clients.
    pub split: Split,
    /// FedSGD or FedAvg.
    pub algorithm: Algorithm,
    /// Communication rounds.
    pub rounds: usize,
    /// SGD steps per client per round (FedAvg).
    pub local_steps: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Learning rate (of the clients' SGD for FedAvg, of the server's step for FedSGD).
    pub learning_rate: f32,
    /// Fraction of the digits held out for testing.
    pub test_fraction: f64,
    /// Whether each client keeps an error-feedback residual ([`ErrorFeedback`]).
    pub error_feedback: bool,
    /// Whether clients and server use the previous round's mean update as side information
    /// (`gradwire::side_info`), which codecs such as `wyner-ziv` code against. The server
    /// broadcasts it with the model (recomputing it from two f32 models would not give the same
    /// bits, and the binding would refuse it). Round 1 has zeros.
    pub previous_mean_side_info: bool,
    /// Seed of everything: split, initialisation, minibatches, stream seeds.
    pub seed: u64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            architecture: Architecture::Mlp { hidden: 64 },
            clients: 4,
            split: Split::Iid,
            algorithm: Algorithm::FedAvg,
            rounds: 30,
            local_steps: 5,
            batch: 32,
            learning_rate: 0.1,
            test_fraction: 0.2,
            error_feedback: false,
            previous_mean_side_info: false,
            seed: 1,
        }
    }
}

/// The state after one round.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRecord {
    /// Round number, from 1 (round 0 is the initial model).
    pub round: usize,
    /// Test accuracy of the global model.
    pub accuracy: f64,
    /// Mean training loss of the clients' first minibatch this round.
    pub train_loss: f64,
    /// Uplink bits of all rounds so far (whole streams, all clients).
    pub uplink_bits: u64,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationResult {
    /// The pipeline text.
    pub codec: String,
    /// Parameters of the model (entries per update).
    pub parameters: usize,
    /// Test accuracy of the initial model.
    pub initial_accuracy: f64,
    /// One record per round.
    pub rounds: Vec<RoundRecord>,
    /// The global model after the last round.
    pub final_params: Vec<f32>,
}

impl SimulationResult {
    /// Test accuracy after the last round.
    #[must_use]
    pub fn final_accuracy(&self) -> f64 {
        self.rounds.last().map_or(self.initial_accuracy, |r| r.accuracy)
    }

    /// All uplink bits.
    #[must_use]
    pub fn total_bits(&self) -> u64 {
        self.rounds.last().map_or(0, |r| r.uplink_bits)
    }

    /// Average uplink bits per entry of one update (total bits over uploads times parameters).
    #[must_use]
    pub fn bits_per_entry(&self, clients: usize) -> f64 {
        self.total_bits() as f64 / (self.rounds.len() * clients * self.parameters).max(1) as f64
    }

    /// Per-bit accuracy, as this project defines it (docs/SIMULATION.md): test accuracy gained
    /// over the initial model, in percentage points, per megabit of uplink traffic.
    #[must_use]
    pub fn per_bit_accuracy(&self) -> f64 {
        let megabits = self.total_bits() as f64 / 1e6;
        if megabits == 0.0 { 0.0 } else { 100.0 * (self.final_accuracy() - self.initial_accuracy) / megabits }
    }

    /// Uplink bits spent when test accuracy first reached `target`, if it did.
    #[must_use]
    pub fn bits_to_reach(&self, target: f64) -> Option<u64> {
        self.rounds.iter().find(|r| r.accuracy >= target).map(|r| r.uplink_bits)
    }
}

/// Runs `config` on the digits with `pipeline` on every client's uplink.
///
/// # Errors
/// A pipeline that does not parse, or a codec error while encoding or decoding an update.
///
/// # Examples
/// ```
/// use gradwire_sim::{SimulationConfig, simulate};
/// let registry = gradwire::registry()?;
/// let config = SimulationConfig { rounds: 2, ..SimulationConfig::default() };
/// let run = simulate(&config, &registry, "bf16")?;
/// assert_eq!(run.rounds.len(), 2);
/// // Two rounds of four clients, 16 bits per entry and the container on top.
/// assert!(run.rounds[1].uplink_bits > 2 * 4 * 16 * run.parameters as u64);
/// # Ok::<(), gradwire::Error>(())
/// ```
pub fn simulate(config: &SimulationConfig, registry: &Registry, pipeline: &str) -> Result<SimulationResult> {
    let stages = registry.parse_pipeline(pipeline)?;
    let Federation { clients, test, model, initial } = Federation::new(config);
    let mut params = initial;
    let mut feedback: Vec<ErrorFeedback> = clients.iter().map(|_| ErrorFeedback::new()).collect();
    let initial_accuracy = model.accuracy(&params, &test);
    let mut rounds = Vec::with_capacity(config.rounds);
    let mut uplink_bits = 0u64;
    let total_examples: usize = clients.iter().map(Dataset::len).sum();
    let mut previous_mean = vec![0f32; params.len()];
    for round in 1..=config.rounds {
        let round_stages = reseed(registry, &stages, round_seed(config, round))?;
        let side = config.previous_mean_side_info.then(|| {
            let mut side = SideInfoMap::new();
            for t in model.tensors() {
                side.insert(t.name, format!("round {} mean update", round - 1), t.of(&previous_mean).to_vec());
            }
            Arc::new(side)
        });
        let mut mean_update = vec![0f32; params.len()];
        let mut loss = 0f64;
        for (c, data) in clients.iter().enumerate() {
            if data.is_empty() {
                continue; // nothing to learn from, nothing sent
            }
            let mut rng = client_rng(config, round, c);
            let (update, first_loss) = client_update(config, &model, &params, data, &mut rng);
            let weight = data.len() as f32 / total_examples.max(1) as f32;
            loss += first_loss * f64::from(weight);
            let ef = config.error_feedback.then(|| &mut feedback[c]);
            let link = Link { registry, model: &model, stages: &round_stages, side: side.clone() };
            let (bytes, decoded) = link.send(&update, round, c, rng.next_u64(), ef)?;
            uplink_bits += 8 * bytes as u64;
            mean_update.iter_mut().zip(&decoded).for_each(|(m, d)| *m += weight * d);
        }
        let step = match config.algorithm {
            Algorithm::FedSgd => -config.learning_rate,
            Algorithm::FedAvg => 1.0,
        };
        params.iter_mut().zip(&mean_update).for_each(|(p, u)| *p += step * u);
        previous_mean = mean_update;
        rounds.push(RoundRecord { round, accuracy: model.accuracy(&params, &test), train_loss: loss, uplink_bits });
    }
    Ok(SimulationResult {
        codec: display_text(registry, &stages)?,
        parameters: model.parameter_count(),
        initial_accuracy,
        rounds,
        final_params: params,
    })
}

/// What a run starts from: the clients' data, the test set, the model and its initial
/// parameters, all derived from the configuration's seed.
#[derive(Debug, Clone)]
pub struct Federation {
    /// Each client's training examples.
    pub clients: Vec<Dataset>,
    /// The held-out test examples.
    pub test: Dataset,
    /// The network.
    pub model: Model,
    /// Its initial parameters.
    pub initial: Vec<f32>,
}

impl Federation {
    /// The starting point of `config`.
    #[must_use]
    pub fn new(config: &SimulationConfig) -> Federation {
        let (train, test) = Dataset::digits().split(config.test_fraction, mix64(config.seed ^ 0x5EED_0001));
        let clients = partition(&train, config.clients, config.split, mix64(config.seed ^ 0x5EED_0002));
        let model = Model::new(config.architecture);
        let initial = model.init(mix64(config.seed ^ 0x5EED_0003));
        Federation { clients, test, model, initial }
    }
}

/// The generator of client `client` in round `round` (from 1): its minibatches, then its stream seed.
#[must_use]
pub fn client_rng(config: &SimulationConfig, round: usize, client: usize) -> SeededRng {
    SeededRng::new(mix64(config.seed ^ mix64(round as u64 ^ mix64(client as u64 ^ 0xC11E_0000))))
}

/// The pipeline as text, without the `seed` parameters that [`reseed`] sets every round.
fn display_text(registry: &Registry, stages: &[gradwire::StageDescriptor]) -> Result<String> {
    let mut parts = Vec::with_capacity(stages.len());
    for stage in stages {
        let (name, params, _) = unseeded_params(registry, stage)?;
        parts.push(if params.is_empty() { name.to_owned() } else { format!("{name}:{}", params.join(",")) });
    }
    Ok(parts.join("+"))
}

/// A stage's codec name, its parameters as text without `seed=` (split into `key=value` pairs
/// for a codec that has a `seed` parameter, whole otherwise, since nested pipelines hold commas),
/// and whether the codec has a `seed` parameter.
fn unseeded_params<'r>(
    registry: &'r Registry,
    stage: &gradwire::StageDescriptor,
) -> Result<(&'r str, Vec<String>, bool)> {
    let factory = registry.factory_for(stage)?;
    let d = factory.descriptor();
    let text = factory.params_to_text_in(stage.version, &stage.params, registry)?;
    let seeded = d.params.iter().any(|p| p.name == "seed");
    if !seeded {
        let params = if text.is_empty() { Vec::new() } else { vec![text] };
        return Ok((d.name, params, false));
    }
    let params = text.split(',').filter(|p| !p.is_empty() && !p.starts_with("seed=")).map(str::to_owned).collect();
    Ok((d.name, params, true))
}

/// The seed shared by every client in round `round` for codecs with a `seed` parameter.
#[must_use]
pub fn round_seed(config: &SimulationConfig, round: usize) -> u64 {
    mix64(config.seed ^ mix64(round as u64 ^ 0x5EED_0004))
}

/// `stages` with the `seed` parameter of every codec that has one (`randk`, `intrinsic`,
/// `spherical`) set to `seed`: all clients of a round share the positions or subspace (so their
/// updates can be averaged in the compressed domain), and they change every round, as in
/// random-k SGD. The seed written in the pipeline text is replaced.
///
/// # Errors
/// A stage that does not render or parse back.
pub fn reseed(
    registry: &Registry,
    stages: &[gradwire::StageDescriptor],
    seed: u64,
) -> Result<Vec<gradwire::StageDescriptor>> {
    let mut out = Vec::with_capacity(stages.len());
    for stage in stages {
        let (name, mut params, seeded) = unseeded_params(registry, stage)?;
        if !seeded {
            out.push(stage.clone());
            continue;
        }
        params.push(format!("seed={seed}"));
        out.extend(registry.parse_pipeline(&format!("{name}:{}", params.join(",")))?);
    }
    Ok(out)
}

/// Draws a minibatch of `batch.len()` example indices (with replacement) below `n`.
pub fn draw_minibatch(rng: &mut SeededRng, n: usize, batch: &mut [usize]) {
    for i in batch {
        *i = rng.next_below(n as u64) as usize;
    }
}

/// One client's update and the loss of its first minibatch.
fn client_update(
    config: &SimulationConfig,
    model: &Model,
    global: &[f32],
    data: &Dataset,
    rng: &mut SeededRng,
) -> (Vec<f32>, f64) {
    let mut batch = vec![0usize; config.batch.max(1)];
    let draw = |rng: &mut SeededRng, batch: &mut [usize]| draw_minibatch(rng, data.len(), batch);
    let mut grad = vec![0f32; global.len()];
    if data.is_empty() {
        return (grad, 0.0);
    }
    match config.algorithm {
        Algorithm::FedSgd => {
            draw(rng, &mut batch);
            let loss = model.loss_and_gradient(global, data, &batch, &mut grad);
            (grad, loss)
        }
        Algorithm::FedAvg => {
            let mut local = global.to_vec();
            let mut first_loss = 0.0;
            for step in 0..config.local_steps.max(1) {
                draw(rng, &mut batch);
                grad.fill(0.0);
                let loss = model.loss_and_gradient(&local, data, &batch, &mut grad);
                if step == 0 {
                    first_loss = loss;
                }
                local.iter_mut().zip(&grad).for_each(|(w, g)| *w -= config.learning_rate * g);
            }
            local.iter_mut().zip(global).for_each(|(w, g)| *w -= g);
            (local, first_loss)
        }
    }
}

/// What one uplink goes through: the codec pipeline of the round and its side information.
struct Link<'a> {
    registry: &'a Registry,
    model: &'a Model,
    stages: &'a [gradwire::StageDescriptor],
    side: Option<Arc<SideInfoMap>>,
}

impl Link<'_> {
    /// Encodes `update` as one stream (one tensor per model tensor, metadata `fl.round` and
    /// `fl.client_id`, no index), returns its length in bytes and what a reader (given the same
    /// side information) decodes from it.
    fn send(
        &self,
        update: &[f32],
        round: usize,
        client: usize,
        stream_seed: u64,
        mut feedback: Option<&mut ErrorFeedback>,
    ) -> Result<(usize, Vec<f32>)> {
        let mut metadata = Metadata::default();
        metadata.insert("fl.round", Value::U64(round as u64))?;
        metadata.insert("fl.client_id", Value::Utf8(format!("client-{client}")))?;
        let header = StreamHeader { seed: stream_seed, metadata, ..StreamHeader::default() };
        // An uplink is read whole as it arrives: no index (the seekable footer) to pay for.
        let options = WriterOptions::default().threads(1).write_index(false);
        let mut writer = Writer::new(Vec::new(), self.registry, &header, options)?;
        if let Some(side) = &self.side {
            writer.set_side_info(side.clone());
        }
        for t in self.model.tensors() {
            let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
            let spec = TensorSpec::new(t.name, &shape, self.stages.to_vec());
            match feedback.as_deref_mut() {
                Some(ef) => drop(ef.write_tensor(&mut writer, spec, t.of(update))?),
                None => drop(writer.write_tensor(spec, t.of(update))?),
            }
        }
        let bytes = writer.finish()?;
        let mut reader = Reader::new(&bytes[..], self.registry);
        if let Some(side) = &self.side {
            reader.set_side_info(side.clone());
        }
        let decoded: Vec<f32> = reader.read_all()?.tensors.into_iter().flat_map(|t| t.values).collect();
        Ok((bytes.len(), decoded))
    }
}
