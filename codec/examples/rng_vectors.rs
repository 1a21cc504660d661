//! Prints the test vectors of the seeded generator that `spec/FORMAT.md` §9 lists, so another
//! implementation can compare its output line by line: `cargo run -p gradwire-codec --example rng_vectors`.

use gradwire_codec::rng::{SeededRng, chunk_seed, fnv1a64, mix64, splitmix64};

fn main() {
    let mut s = 0u64;
    let sm: Vec<String> = (0..3).map(|_| format!("0x{:016x}", splitmix64(&mut s))).collect();
    println!("splitmix64 from state 0: {}", sm.join(", "));
    println!("mix64(0) = 0x{:016x}, mix64(1) = 0x{:016x}", mix64(0), mix64(1));
    println!("fnv1a64(\"fc1.weight\") = 0x{:016x}", fnv1a64(b"fc1.weight"));
    for (seed, name, chunk) in
        [(0u64, "fc1.weight", 0u64), (42, "fc1.weight", 0), (42, "fc1.weight", 1), (42, "fc2.bias", 7)]
    {
        println!("chunk_seed({seed}, {name:?}, {chunk}) = 0x{:016x}", chunk_seed(seed, name, chunk));
    }
    let mut r = SeededRng::new(42);
    let outs: Vec<String> = (0..4).map(|_| format!("0x{:016x}", r.next_u64())).collect();
    println!("SeededRng::new(42).next_u64() x4: {}", outs.join(", "));
    let mut r = SeededRng::new(42);
    let below: Vec<String> = (0..8).map(|_| r.next_below(10).to_string()).collect();
    println!("SeededRng::new(42).next_below(10) x8: {}", below.join(", "));
    let mut r = SeededRng::new(42);
    let units: Vec<String> = (0..3).map(|_| format!("0x{:08x}", r.next_unit_f32().to_bits())).collect();
    println!("SeededRng::new(42).next_unit_f32() x3 (bits): {}", units.join(", "));
}
