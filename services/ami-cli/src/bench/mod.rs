//! `ami bench plugins`: the same decoder natively and as a sandboxed component, on the same
//! frames, in one run; prints frames/s and the ratio.

use ami_plugin_host::{InputFrame, MemoryKeyStore};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod ingest;
mod mdms;
mod reference;

use crate::native;
use crate::paths::PathArgs;

/// Benchmarks.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Decoders natively and as components (reused instance, batched calls).
    Plugins {
        /// Protocols to measure [default: every protocol with a native build and an installed component].
        #[arg(long)]
        protocol: Vec<String>,
        /// Frames per batch (one call into the component).
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Seconds to spend per protocol (split over alternating slices of each contender).
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Python interpreter with the reference libraries (dsmr-parser, amshan) to time on the
        /// same frames [default: $AMI_BENCH_PYTHON, else ~/.cache/ami-bench-venv/bin/python if present].
        #[arg(long, env = "AMI_BENCH_PYTHON")]
        python: Option<PathBuf>,
        /// Directory of the protocol vectors (frames to decode).
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors"))]
        vectors: PathBuf,
    },
    /// The ingest pipeline end to end through NATS JetStream (adapter -> NATS -> host ->
    /// readings on NATS), next to the raw JetStream publish and consume rates of this machine.
    Ingest(ingest::IngestBenchArgs),
    /// MDMS ingest (bus -> consumer -> store) into PostgreSQL and the embedded store, next to
    /// the raw bulk-insert rate of each database, and VEE through the Wasm rule pack.
    Mdms(mdms::MdmsBenchArgs),
}

fn vectors_file(dir: &std::path::Path, protocol: &str) -> PathBuf {
    let file = match protocol {
        "dlms" => "dlms/dlms.jsonl",
        "dsmr" => "dsmr/dsmr.jsonl",
        "iec62056-21" => "iec62056-21/iec62056-21.jsonl",
        "mbus" => "mbus/mbus-wired.jsonl",
        "wmbus" => "wmbus/wmbus.jsonl",
        other => return dir.join(format!("{other}/{other}.jsonl")),
    };
    dir.join(file)
}

/// Items per second of each contender, measured in alternating slices (`ROUNDS` of each, in
/// turn) and reduced to the median, so that load from elsewhere on a shared machine falls on
/// all contenders alike instead of on whichever ran while it lasted.
const ROUNDS: usize = 15;

fn rates(secs: f64, contenders: &mut [&mut dyn FnMut() -> usize]) -> Vec<f64> {
    let secs = if secs.is_finite() {
        secs.clamp(0.05, 3600.0)
    } else {
        1.0
    };
    let slice = Duration::from_secs_f64(secs / ROUNDS as f64);
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); contenders.len()];
    let mut sink = 0usize;
    for f in contenders.iter_mut() {
        sink = sink.wrapping_add(f()); // warm up
    }
    for _ in 0..ROUNDS {
        for (f, out) in contenders.iter_mut().zip(samples.iter_mut()) {
            let start = Instant::now();
            let mut n = 0usize;
            while start.elapsed() < slice {
                // Each contender returns how many frames it decoded: failures never count.
                let done = f();
                sink = sink.wrapping_add(done);
                n += done;
            }
            out.push(n as f64 / start.elapsed().as_secs_f64());
        }
    }
    std::hint::black_box(sink);
    samples
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        })
        .collect()
}

/// Runs a benchmark.
pub fn run(cmd: BenchCommand, paths: &PathArgs) -> Result<ExitCode> {
    let (protocol, batch, seconds, python, vectors) = match cmd {
        BenchCommand::Ingest(args) => return ingest::run(args, paths),
        BenchCommand::Mdms(args) => return mdms::run(args, paths),
        BenchCommand::Plugins {
            protocol,
            batch,
            seconds,
            python,
            vectors,
        } => (protocol, batch, seconds, python, vectors),
    };
    let python = python.or_else(|| {
        let venv = std::env::var_os("HOME")
            .map(PathBuf::from)?
            .join(".cache/ami-bench-venv/bin/python");
        venv.is_file().then_some(venv)
    });
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        bail!("--seconds must be above 0 and at most 3600");
    }
    let host = paths.host(Arc::new(MemoryKeyStore::new()))?;
    let protocols: Vec<String> = if protocol.is_empty() {
        host.plugins()
            .iter()
            .flat_map(|p| p.manifest().protocols.clone())
            .filter(|p| native::decoder(p).is_some())
            .collect()
    } else {
        protocol
    };
    if protocols.is_empty() {
        bail!(
            "no protocol with both a native decoder and an installed component (run `cargo xtask components`)"
        );
    }
    println!(
        "{:<12} {:>7} {:>14} {:>14} {:>7} {:>14} {:>12}",
        "protocol", "frames", "native fr/s", "wasm fr/s", "ratio", "wasm b=1 fr/s", "readings/fr"
    );
    let mut references = Vec::new();
    for p in protocols {
        let native = native::decoder(&p).with_context(|| format!("no native decoder for {p}"))?;
        let plugin = host
            .decoder_for(&p)
            .with_context(|| format!("no installed component for {p}"))?;
        let file = vectors_file(&vectors, &p);
        if !file.is_file() {
            // OSGP has no published frames (its decoder is proven on frames built in tests).
            println!("{p:<12} no vectors file {}: skipped", file.display());
            continue;
        }
        let all = ami_vectors::load(&file)?;
        // The frames both builds decode: the bench measures decoding, not rejection.
        let good_vectors: Vec<ami_vectors::Vector> = all
            .into_iter()
            .filter(|v| native(&v.frame, 0).is_ok())
            .collect();
        let good: Vec<Vec<u8>> = good_vectors.iter().map(|v| v.frame.clone()).collect();
        if good.is_empty() {
            bail!("no decodable {p} frames in the vectors");
        }
        let frames: Vec<&[u8]> = good.iter().cycle().take(batch).map(Vec::as_slice).collect();
        let inputs: Vec<InputFrame<'_>> = frames
            .iter()
            .map(|f| InputFrame {
                data: f,
                received_at_ms: 0,
                meter_hint: None,
            })
            .collect();
        let readings: usize = frames
            .iter()
            .map(|f| native(f, 0).map(|d| d.readings.len()).unwrap_or(0))
            .sum();
        let mut native_run = || -> usize { frames.iter().filter(|f| native(f, 0).is_ok()).count() };
        let mut wasm_run = || -> usize {
            plugin
                .decode(&inputs)
                .map(|r| r.iter().filter(|d| d.is_ok()).count())
                .unwrap_or(0)
        };
        // The same frames, one call each: what batching saves.
        let mut single_run = || -> usize {
            inputs
                .iter()
                .map(|i| {
                    plugin
                        .decode(std::slice::from_ref(i))
                        .map(|r| r.iter().filter(|d| d.is_ok()).count())
                        .unwrap_or(0)
                })
                .sum()
        };
        let measured = rates(
            seconds * 3.0,
            &mut [&mut native_run, &mut wasm_run, &mut single_run],
        );
        let [native_rate, wasm_rate, single_rate] = measured[..] else {
            bail!("benchmark lost its measurements");
        };
        println!(
            "{:<12} {:>7} {:>14.0} {:>14.0} {:>6.2}x {:>14.0} {:>12.1}",
            p,
            good.len(),
            native_rate,
            wasm_rate,
            wasm_rate / native_rate,
            single_rate,
            readings as f64 / frames.len() as f64
        );
        if let Some(py) = &python {
            // The reference's rate, and ami's again on exactly the frames the reference decoded.
            let row = match reference::run(py, &p, &good_vectors, seconds) {
                Ok(r) => {
                    let subset: Vec<&[u8]> = r
                        .indices
                        .iter()
                        .filter_map(|i| good.get(*i))
                        .cycle()
                        .take(batch)
                        .map(Vec::as_slice)
                        .collect();
                    let sub_inputs: Vec<InputFrame<'_>> = subset
                        .iter()
                        .map(|f| InputFrame {
                            data: f,
                            received_at_ms: 0,
                            meter_hint: None,
                        })
                        .collect();
                    let mut native_sub =
                        || -> usize { subset.iter().filter(|f| native(f, 0).is_ok()).count() };
                    let mut wasm_sub =
                        || -> usize { plugin.decode(&sub_inputs).map(|r| r.len()).unwrap_or(0) };
                    let m = rates(seconds * 2.0, &mut [&mut native_sub, &mut wasm_sub]);
                    let (n, w) = (
                        m.first().copied().unwrap_or(0.0),
                        m.get(1).copied().unwrap_or(0.0),
                    );
                    format!(
                        "{:<12} {:<40} {:>7} {:>11.0} {:>12.0} {:>12.0} {:>9.0}x {:>9.0}x",
                        p,
                        r.library,
                        r.indices.len(),
                        r.frames_per_s,
                        w,
                        n,
                        w / r.frames_per_s,
                        n / r.frames_per_s
                    )
                }
                Err(e) => format!("{p:<12} reference not measured: {e}"),
            };
            references.push(row);
        }
    }
    if !references.is_empty() {
        println!();
        println!(
            "{:<12} {:<40} {:>7} {:>11} {:>12} {:>12} {:>10} {:>10}",
            "protocol",
            "reference (same frames)",
            "frames",
            "ref fr/s",
            "wasm fr/s",
            "native fr/s",
            "wasm/ref",
            "nat/ref"
        );
        for row in references {
            println!("{row}");
        }
    }
    println!(
        "(wasm: one reused instance, {batch} frames per call, results converted to domain types; ratio = wasm / native)"
    );
    Ok(ExitCode::SUCCESS)
}
