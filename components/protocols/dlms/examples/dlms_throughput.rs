//! Decodes every plaintext push of `tests/vectors/dlms/dlms.jsonl` many times and prints the
//! time per frame: `cargo run --release -p ami-dlms --example dlms_throughput [ID-PART]`.

use std::path::Path;
use std::time::Instant;

use ami_domain::crypto::NoKeys;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors/dlms/dlms.jsonl");
    let vectors = ami_vectors::load(&path)?;
    let rounds = 20_000u32;
    let only = std::env::args().nth(1).unwrap_or_default();
    for v in vectors
        .iter()
        .filter(|v| v.key.is_none() && v.id.contains(&only))
    {
        let Ok(d) = ami_dlms::decode(&v.frame, 0, &mut NoKeys) else {
            continue;
        };
        if d.readings.is_empty() && d.attributes.is_empty() {
            continue;
        }
        let start = Instant::now();
        let mut values = 0usize;
        for _ in 0..rounds {
            let d = ami_dlms::decode(std::hint::black_box(&v.frame), 0, &mut NoKeys)?;
            values += d.readings.len() + d.attributes.len() + d.events.len();
        }
        let per = start.elapsed() / rounds;
        println!(
            "{:55} {:5} bytes {:3} values {:>8.2?}/frame",
            v.id,
            v.frame.len(),
            values / rounds as usize,
            per
        );
    }
    Ok(())
}
