//! One vectors file, read line by line.

use std::path::Path;

/// One test vector.
#[derive(Debug, Clone)]
pub struct Vector {
    /// Unique id within the file.
    pub id: String,
    /// The frame's bytes (from `frame_hex` or `frame_text`).
    pub frame: Vec<u8>,
    /// Frames to feed first (multi-frame state).
    pub preceding: Vec<Vec<u8>>,
    /// AES-128 key (encryption key for DLMS), if any.
    pub key: Option<Vec<u8>>,
    /// DLMS authentication key, if any.
    pub auth_key: Option<Vec<u8>>,
    /// The whole JSON line, for per-peer fields.
    pub raw: serde_json::Value,
    /// Why the vector itself is unusable (a frame that is not hex), if it is.
    pub problem: Option<String>,
}

/// Why a vectors file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// The file could not be read.
    #[error("cannot read vectors file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a JSON object of the expected shape.
    #[error("vectors line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The peer's expected values cannot be read.
    #[error("vector {id}: {reason}")]
    Expected {
        /// The vector's id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

fn hex_field(
    obj: &serde_json::Value,
    name: &str,
    line: usize,
) -> Result<Option<Vec<u8>>, VectorError> {
    match obj.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => {
            hex::decode(s).map(Some).map_err(|e| VectorError::Line {
                line,
                reason: format!("{name} is not hex: {e}"),
            })
        }
        Some(_) => Err(VectorError::Line {
            line,
            reason: format!("{name} is not a string"),
        }),
    }
}

/// Parses vectors from JSON-lines text.
pub fn parse(text: &str) -> Result<Vec<Vector>, VectorError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let raw: serde_json::Value = serde_json::from_str(line).map_err(|e| VectorError::Line {
            line: line_no,
            reason: e.to_string(),
        })?;
        let id = raw
            .get("id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| VectorError::Line {
                line: line_no,
                reason: "no id".into(),
            })?
            .to_owned();
        // A frame that is not valid hex makes this one vector fail, not the whole file.
        let (frame_hex, problem) = match hex_field(&raw, "frame_hex", line_no) {
            Ok(bytes) => (bytes, None),
            Err(e) => (Some(Vec::new()), Some(e.to_string())),
        };
        let frame = match (frame_hex, raw.get("frame_text")) {
            (Some(bytes), _) => bytes,
            (None, Some(serde_json::Value::String(t))) => t.as_bytes().to_vec(),
            _ => {
                return Err(VectorError::Line {
                    line: line_no,
                    reason: format!("vector {id} has neither frame_hex nor frame_text"),
                });
            }
        };
        let preceding = match raw.get("preceding_frames_hex") {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .and_then(|s| hex::decode(s).ok())
                        .ok_or_else(|| VectorError::Line {
                            line: line_no,
                            reason: "preceding_frames_hex holds a non-hex item".into(),
                        })
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        out.push(Vector {
            problem,
            key: hex_field(&raw, "key_hex", line_no)?,
            auth_key: hex_field(&raw, "auth_key_hex", line_no)?,
            id,
            frame,
            preceding,
            raw,
        });
    }
    Ok(out)
}

/// Reads a vectors file.
pub fn load(path: &Path) -> Result<Vec<Vector>, VectorError> {
    let text = std::fs::read_to_string(path).map_err(|source| VectorError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}
