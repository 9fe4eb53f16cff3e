//! Decodes every readout of `tests/vectors/iec62056-21/iec62056-21.jsonl` that decodes on its
//! own many times and prints the time per readout:
//! `cargo run --release -p ami-iec62056-21 --example iec_throughput [ID-PART]`.

use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/vectors/iec62056-21/iec62056-21.jsonl");
    let vectors = ami_vectors::load(&path)?;
    let rounds = 20_000u32;
    let only = std::env::args().nth(1).unwrap_or_default();
    let (mut total, mut frames) = (std::time::Duration::ZERO, 0u32);
    for v in vectors.iter().filter(|v| {
        v.preceding.is_empty()
            && v.id.contains(&only)
            && ami_iec62056_21::decode(&v.frame, 0).is_ok()
    }) {
        let start = Instant::now();
        let mut values = 0usize;
        for _ in 0..rounds {
            let d = ami_iec62056_21::decode(std::hint::black_box(&v.frame), 0)?;
            values += d.readings.len() + d.attributes.len();
        }
        let elapsed = start.elapsed();
        total += elapsed;
        frames += rounds;
        let per = elapsed / rounds;
        let per_value = values / rounds as usize;
        println!(
            "{:50} {:5} bytes {:3} values {:>8.2?}/readout",
            v.id,
            v.frame.len(),
            per_value,
            per
        );
    }
    if frames > 0 {
        println!(
            "all: {:>8.2?}/readout, {:.0} readouts/s",
            total / frames,
            f64::from(frames) / total.as_secs_f64()
        );
    }
    Ok(())
}
