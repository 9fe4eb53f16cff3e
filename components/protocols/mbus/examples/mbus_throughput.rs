//! Decodes every frame of the libmbus and wmbusmeters vectors that decodes without a key,
//! many times, and prints the time per frame:
//! `cargo run --release -p ami-mbus --example mbus_throughput [ID-PART]`.

use std::path::Path;
use std::time::Instant;

use ami_domain::crypto::NoKeys;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors");
    let only = std::env::args().nth(1).unwrap_or_default();
    let rounds = 20_000u32;
    for file in ["mbus/mbus-wired.jsonl", "wmbus/wmbus.jsonl"] {
        let text = std::fs::read_to_string(dir.join(file))?;
        let frames: Vec<_> = text
            .lines()
            .filter_map(|l| ami_vectors::vector::parse(l).ok())
            .flatten()
            .filter(|v| v.id.contains(&only))
            .filter(|v| ami_mbus::decode(&v.frame, 0, &mut NoKeys).is_ok())
            .collect();
        let bytes: usize = frames.iter().map(|v| v.frame.len()).sum();
        let start = Instant::now();
        let mut values = 0usize;
        for _ in 0..rounds {
            for v in &frames {
                let d = ami_mbus::decode(std::hint::black_box(&v.frame), 0, &mut NoKeys)?;
                values += d.readings.len() + d.attributes.len() + d.events.len();
            }
        }
        let n = frames.len().max(1) as u32 * rounds;
        let per = start.elapsed() / n;
        println!(
            "{file:28} {:4} frames, {:6.1} bytes and {:5.1} values per frame: {:>8.2?}/frame",
            frames.len(),
            bytes as f64 / frames.len().max(1) as f64,
            values as f64 / f64::from(n),
            per
        );
    }
    Ok(())
}
