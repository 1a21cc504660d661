//! The simulator against theory: FedAvg with one client, one local step and the exact `raw`
//! codec is centralized SGD; runs repeat exactly for a seed; `raw` learns the digits.

use gradwire_sim::federated::{client_rng, draw_minibatch, reseed, round_seed};
use gradwire_sim::{Algorithm, Architecture, Federation, SimulationConfig, Split, simulate};

fn registry() -> gradwire::Registry {
    gradwire::registry().expect("linked codecs")
}

#[test]
fn fedavg_with_one_client_and_one_step_is_centralized_sgd() {
    let config = SimulationConfig {
        clients: 1,
        local_steps: 1,
        rounds: 5,
        algorithm: Algorithm::FedAvg,
        architecture: Architecture::Mlp { hidden: 8 },
        ..SimulationConfig::default()
    };
    let run = simulate(&config, &registry(), "raw").expect("runs");
    // The same steps by hand, on the same data and minibatches.
    let Federation { clients, model, initial, .. } = Federation::new(&config);
    let mut w = initial;
    let mut batch = vec![0usize; config.batch];
    for round in 1..=config.rounds {
        let mut rng = client_rng(&config, round, 0);
        draw_minibatch(&mut rng, clients[0].len(), &mut batch);
        let mut g = vec![0f32; w.len()];
        let _ = model.loss_and_gradient(&w, &clients[0], &batch, &mut g);
        w.iter_mut().zip(&g).for_each(|(p, d)| *p -= config.learning_rate * d);
    }
    // FedAvg forms w + ((w - lr g) - w): equal up to the rounding of that difference.
    let worst = run.final_params.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-6, "largest difference {worst}");
    assert_ne!(run.final_params, Federation::new(&config).initial, "training moved the model");
}

#[test]
fn runs_repeat_exactly_for_a_seed_and_differ_across_seeds() {
    let config =
        SimulationConfig { rounds: 3, split: Split::LabelSkew, error_feedback: true, ..SimulationConfig::default() };
    let registry = registry();
    let a = simulate(&config, &registry, "qsgd:levels=4").expect("runs");
    let b = simulate(&config, &registry, "qsgd:levels=4").expect("runs");
    assert_eq!(a, b);
    let c = simulate(&SimulationConfig { seed: 2, ..config }, &registry, "qsgd:levels=4").expect("runs");
    assert_ne!(a.final_params, c.final_params);
}

#[test]
fn raw_fedavg_and_fedsgd_learn_the_digits() {
    let registry = registry();
    let fedavg = simulate(&SimulationConfig::default(), &registry, "raw").expect("runs");
    assert!(fedavg.final_accuracy() >= 0.9, "FedAvg accuracy {}", fedavg.final_accuracy());
    let fedsgd = SimulationConfig {
        algorithm: Algorithm::FedSgd,
        rounds: 150,
        learning_rate: 0.5,
        ..SimulationConfig::default()
    };
    let fedsgd = simulate(&fedsgd, &registry, "raw").expect("runs");
    assert!(fedsgd.final_accuracy() >= 0.85, "FedSGD accuracy {}", fedsgd.final_accuracy());
    let softmax = SimulationConfig { architecture: Architecture::Softmax, ..SimulationConfig::default() };
    let softmax = simulate(&softmax, &registry, "raw").expect("runs");
    assert!(softmax.final_accuracy() >= 0.85, "softmax accuracy {}", softmax.final_accuracy());
}

#[test]
fn uplink_bits_are_whole_streams() {
    let config = SimulationConfig { rounds: 2, ..SimulationConfig::default() };
    let run = simulate(&config, &registry(), "raw").expect("runs");
    let uploads = (config.rounds * config.clients) as u64;
    let payload_bits = 32 * run.parameters as u64 * uploads;
    // The stream header with metadata, four tensor descriptors, chunk records with their
    // checksums and the end record come on top of the f32 payload: about 1 KB per upload here.
    assert!(run.total_bits() > payload_bits + uploads * 8 * 512, "{} bits", run.total_bits());
    assert!(run.total_bits() < payload_bits + uploads * 8 * 2048, "{} bits", run.total_bits());
    assert_eq!(run.rounds[0].uplink_bits * 2, run.rounds[1].uplink_bits, "raw streams of one model have one size");
}

#[test]
fn fedsgd_weights_clients_by_their_example_counts() {
    // Three IID clients of 480, 479 and 479 examples, one round of FedSGD with the exact codec.
    let config = SimulationConfig {
        clients: 3,
        rounds: 1,
        algorithm: Algorithm::FedSgd,
        architecture: Architecture::Softmax,
        ..SimulationConfig::default()
    };
    let run = simulate(&config, &registry(), "raw").expect("runs");
    let Federation { clients, model, initial, .. } = Federation::new(&config);
    let sizes: Vec<usize> = clients.iter().map(gradwire_sim::Dataset::len).collect();
    assert_eq!(sizes, [480, 479, 479]);
    let total: usize = sizes.iter().sum();
    let mut mean = vec![0f32; initial.len()];
    let mut batch = vec![0usize; config.batch];
    for (c, data) in clients.iter().enumerate() {
        let mut rng = client_rng(&config, 1, c);
        draw_minibatch(&mut rng, data.len(), &mut batch);
        let mut g = vec![0f32; initial.len()];
        let _ = model.loss_and_gradient(&initial, data, &batch, &mut g);
        let w = data.len() as f32 / total as f32;
        mean.iter_mut().zip(&g).for_each(|(m, d)| *m += w * d);
    }
    let expected: Vec<f32> = initial.iter().zip(&mean).map(|(p, m)| p - config.learning_rate * m).collect();
    assert_eq!(run.final_params, expected, "the server's step is -lr times the size-weighted mean");
}

#[test]
fn seeded_codecs_share_a_seed_within_a_round_and_change_it_every_round() {
    let registry = registry();
    let config = SimulationConfig::default();
    let stages = registry.parse_pipeline("randk:fraction=0.1,seed=7+bf16").expect("valid");
    let text = |s: &[gradwire::StageDescriptor]| registry.pipeline_to_text(s).expect("renders");
    let (one, two) = (round_seed(&config, 1), round_seed(&config, 2));
    assert_ne!(one, two);
    let round_one = reseed(&registry, &stages, one).expect("reseeds");
    assert_eq!(text(&round_one), format!("randk:fraction=0.1,seed={one}+bf16"));
    assert_eq!(text(&reseed(&registry, &stages, two).expect("reseeds")), format!("randk:fraction=0.1,seed={two}+bf16"));
    let unseeded = registry.parse_pipeline("m22:bits=2").expect("valid");
    assert_eq!(reseed(&registry, &unseeded, one).expect("reseeds"), unseeded, "codecs without a seed are untouched");
}

#[test]
fn the_previous_mean_as_side_information_changes_the_bits_not_the_model() {
    // At one lattice step wyner-ziv decodes to the same points with or without side
    // information: the runs train identically, and only the uplink differs.
    let registry = registry();
    let config = SimulationConfig { rounds: 30, ..SimulationConfig::default() };
    let plain = simulate(&config, &registry, "wyner-ziv:step=0.001").expect("runs");
    let side = SimulationConfig { previous_mean_side_info: true, ..config };
    let with_side = simulate(&side, &registry, "wyner-ziv:step=0.001").expect("runs");
    assert_eq!(plain.final_params, with_side.final_params);
    assert!(
        with_side.total_bits() < plain.total_bits(),
        "{} bits with the previous mean, {} without",
        with_side.total_bits(),
        plain.total_bits()
    );
    // Codecs that use no side information ignore it.
    let raw = simulate(&side, &registry, "bf16").expect("runs");
    assert_eq!(raw, simulate(&config, &registry, "bf16").expect("runs"));
}
