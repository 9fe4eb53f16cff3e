//! Independent Python implementations timed on the same frames (`reference.py`).

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const SCRIPT: &str = include_str!("reference.py");

/// What the reference run measured.
pub struct Reference {
    /// Library and version.
    pub library: String,
    /// Frames per second.
    pub frames_per_s: f64,
    /// The frames it decoded, by index (the others are left out of its timing).
    pub indices: Vec<usize>,
}

/// Times the protocol's Python reference on `vectors`' frames for about `seconds`.
pub fn run(
    python: &Path,
    protocol: &str,
    vectors: &[ami_vectors::Vector],
    seconds: f64,
) -> Result<Reference> {
    let frames: Vec<serde_json::Value> = vectors
        .iter()
        .map(|v| serde_json::json!({"hex": hex::encode(&v.frame), "spec": v.raw.get("spec")}))
        .collect();
    let request = serde_json::json!({"protocol": protocol, "frames": frames, "seconds": seconds});
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", python.display()))?;
    child
        .stdin
        .take()
        .context("python stdin")?
        .write_all(request.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("python said: {}", String::from_utf8_lossy(&out.stderr)))?;
    if let Some(e) = answer.get("error").and_then(|e| e.as_str()) {
        bail!("{e}");
    }
    Ok(Reference {
        library: answer
            .get("library")
            .and_then(|l| l.as_str())
            .unwrap_or("?")
            .to_owned(),
        frames_per_s: answer
            .get("frames_per_s")
            .and_then(|r| r.as_f64())
            .context("no rate")?,
        indices: answer
            .get("indices")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|i| i.as_u64().and_then(|i| usize::try_from(i).ok()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}
