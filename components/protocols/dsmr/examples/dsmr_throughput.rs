//! Decodes every plaintext telegram of `tests/vectors/dsmr/dsmr.jsonl` many times and prints
//! the time per telegram: `cargo run --release -p ami-dsmr --example dsmr_throughput [ID-PART]`.

use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/dsmr/dsmr.jsonl");
    let vectors = ami_vectors::load(&path)?;
    let rounds = 20_000u32;
    let only = std::env::args().nth(1).unwrap_or_default();
    let (mut total, mut telegrams) = (std::time::Duration::ZERO, 0u32);
    for v in vectors
        .iter()
        .filter(|v| v.frame.first() == Some(&b'/') && v.id.contains(&only))
    {
        let start = Instant::now();
        let mut values = 0usize;
        for _ in 0..rounds {
            let d = ami_dsmr::decode(std::hint::black_box(&v.frame), 0)?;
            values += d.readings.len() + d.attributes.len() + d.events.len();
        }
        let elapsed = start.elapsed();
        total += elapsed;
        telegrams += rounds;
        let per = elapsed / rounds;
        let per_value = values / rounds as usize;
        println!(
            "{:45} {:5} bytes {:3} values {:>8.2?}/telegram",
            v.id,
            v.frame.len(),
            per_value,
            per
        );
    }
    if telegrams > 0 {
        println!(
            "all: {:>8.2?}/telegram, {:.0} telegrams/s",
            total / telegrams,
            f64::from(telegrams) / total.as_secs_f64()
        );
    }
    Ok(())
}
