//! The downlink's memory of command ids on disk, so that a restarted adapter still refuses a
//! replayed command and answers a re-delivered one with what the meter answered before.
//!
//! One append-only file in the adapter's state directory ([`FILE`]), one JSON object a line:
//! `seen` when a command is taken (its id, a SHA-256 digest of its signed content and its
//! deadline), `answer` once its final answer is known (synced before the answer is
//! published). Opening reads it back, drops what no longer matters (entries past their
//! command's deadline: such a command is refused as expired anyway; the oldest beyond the
//! memory's bound), skips a torn last line (a crash while writing) and unreadable lines, and
//! writes the rest to a fresh file that replaces the old one atomically. While running, the
//! file is compacted the same way once it holds far more lines than entries.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ami_bus::command::{AckResult, AckStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The journal's file name in the state directory.
pub const FILE: &str = "downlink-replay.jsonl";

/// Lines the file may hold beyond twice its entries before it is compacted.
const COMPACT_SLACK: usize = 4096;

/// What went wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file or its directory could not be read or written.
    #[error("replay journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An entry could not be written as JSON.
    #[error("replay journal entry for command {id}: {source}")]
    Encode {
        /// The command.
        id: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// The final answer recorded for a command.
pub(crate) type Answer = (AckStatus, Option<AckResult>);

/// What is remembered of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// SHA-256 of the command's signed content.
    pub digest: [u8; 32],
    /// The command's deadline, ms since the Unix epoch.
    pub deadline_ms: i64,
    /// Its final answer, once known.
    pub answer: Option<Answer>,
}

/// The digest a command's signed content is remembered by.
pub(crate) fn digest(content: &[u8]) -> [u8; 32] {
    Sha256::digest(content).into()
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
enum Line {
    Seen {
        id: String,
        digest: String,
        deadline_ms: i64,
    },
    Answer {
        id: String,
        status: AckStatus,
        result: Option<AckResult>,
    },
}

/// The open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    lines: usize,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

fn encode(id: &str, line: &Line) -> Result<Vec<u8>, JournalError> {
    let mut bytes = serde_json::to_vec(line).map_err(|source| JournalError::Encode {
        id: id.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn seen_line(id: &str, e: &Entry) -> Line {
    Line::Seen {
        id: id.to_owned(),
        digest: hex::encode(e.digest),
        deadline_ms: e.deadline_ms,
    }
}

/// Reads the entries of a journal's text, in the order they were first seen: the torn last
/// line and unreadable lines are skipped (their count is returned too).
fn parse(text: &[u8]) -> (Vec<(String, Entry)>, usize) {
    let mut order: Vec<String> = Vec::new();
    let mut entries: std::collections::HashMap<String, Entry> = std::collections::HashMap::new();
    let mut skipped = 0;
    let mut parts = text.split(|b| *b == b'\n').peekable();
    while let Some(raw) = parts.next() {
        // The last part has no newline after it: empty, or a line torn by a crash.
        if parts.peek().is_none() {
            if !raw.is_empty() {
                skipped += 1;
            }
            break;
        }
        if raw.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Line>(raw) {
            Ok(Line::Seen {
                id,
                digest,
                deadline_ms,
            }) => {
                let Some(digest) = hex::decode(&digest)
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                else {
                    skipped += 1;
                    continue;
                };
                if !entries.contains_key(&id) {
                    order.push(id.clone());
                }
                entries.insert(
                    id,
                    Entry {
                        digest,
                        deadline_ms,
                        answer: None,
                    },
                );
            }
            Ok(Line::Answer { id, status, result }) => match entries.get_mut(&id) {
                Some(e) => e.answer = Some((status, result)),
                None => skipped += 1,
            },
            Err(_) => skipped += 1,
        }
    }
    let out = order
        .into_iter()
        .filter_map(|id| entries.remove(&id).map(|e| (id, e)))
        .collect();
    (out, skipped)
}

impl Journal {
    /// Opens (creating if missing) the journal in `dir` and returns what it remembers, oldest
    /// first: entries whose deadline is before `now_ms` are dropped, and only the newest
    /// `remember` kept; the file is rewritten with just those.
    pub fn open(
        dir: &Path,
        now_ms: i64,
        remember: usize,
    ) -> Result<(Journal, Vec<(String, Entry)>), JournalError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(FILE);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&path)(e)),
        };
        let (mut entries, skipped) = parse(&text);
        if skipped > 0 {
            tracing::warn!(path = %path.display(), skipped, "replay journal: torn or unreadable lines skipped");
        }
        entries.retain(|(_, e)| e.deadline_ms >= now_ms);
        let excess = entries.len().saturating_sub(remember.max(1));
        entries.drain(..excess);
        let file = Self::rewrite(dir, &path, entries.iter().map(|(id, e)| (id.as_str(), e)))?;
        let journal = Journal {
            dir: dir.to_owned(),
            path,
            file,
            lines: entries.len() * 2,
        };
        Ok((journal, entries))
    }

    /// Writes `entries` to a fresh file that replaces the journal, and opens it to append.
    fn rewrite<'a>(
        dir: &Path,
        path: &Path,
        entries: impl Iterator<Item = (&'a str, &'a Entry)>,
    ) -> Result<File, JournalError> {
        let tmp = dir.join(format!("{FILE}.tmp"));
        {
            let f = File::create(&tmp).map_err(io(&tmp))?;
            let mut w = BufWriter::new(f);
            for (id, e) in entries {
                w.write_all(&encode(id, &seen_line(id, e))?)
                    .map_err(io(&tmp))?;
                if let Some((status, result)) = &e.answer {
                    let line = Line::Answer {
                        id: id.to_owned(),
                        status: status.clone(),
                        result: result.clone(),
                    };
                    w.write_all(&encode(id, &line)?).map_err(io(&tmp))?;
                }
            }
            let f = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, path).map_err(io(path))?;
        // The rename itself is durable once the directory is synced (best effort: not every
        // platform opens directories).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        OpenOptions::new().append(true).open(path).map_err(io(path))
    }

    /// Records a command taken (not synced: its answer's sync carries it).
    pub fn seen(&mut self, id: &str, e: &Entry) -> Result<(), JournalError> {
        let bytes = encode(id, &seen_line(id, e))?;
        self.file.write_all(&bytes).map_err(io(&self.path))?;
        self.lines += 1;
        Ok(())
    }

    /// Records a command's final answer, synced to disk before it returns.
    pub fn answer(&mut self, id: &str, answer: &Answer) -> Result<(), JournalError> {
        let line = Line::Answer {
            id: id.to_owned(),
            status: answer.0.clone(),
            result: answer.1.clone(),
        };
        let bytes = encode(id, &line)?;
        self.file.write_all(&bytes).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        self.lines += 1;
        Ok(())
    }

    /// Whether the file holds far more lines than `live` entries need.
    pub fn wants_compaction(&self, live: usize) -> bool {
        self.lines > live.saturating_mul(2).saturating_add(COMPACT_SLACK)
    }

    /// Replaces the file with just `entries`.
    pub fn compact<'a>(
        &mut self,
        entries: impl Iterator<Item = (&'a str, &'a Entry)>,
    ) -> Result<(), JournalError> {
        let mut n = 0;
        let counted = entries.inspect(|(_, e)| n += 1 + usize::from(e.answer.is_some()));
        self.file = Self::rewrite(&self.dir, &self.path, counted)?;
        self.lines = n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_bus::command::FailReason;

    fn entry(n: u8, deadline_ms: i64, answer: Option<Answer>) -> Entry {
        Entry {
            digest: digest(&[n]),
            deadline_ms,
            answer,
        }
    }

    #[test]
    fn entries_come_back_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let confirmed: Answer = (
            AckStatus::Confirmed {
                detail: "done".into(),
            },
            Some(AckResult::Relay { closed: false }),
        );
        {
            let (mut j, old) = Journal::open(dir.path(), 0, 10).unwrap();
            assert!(old.is_empty());
            j.seen("a", &entry(1, 1_000, None)).unwrap();
            j.answer("a", &confirmed).unwrap();
            j.seen("b", &entry(2, 2_000, None)).unwrap();
            j.seen("old", &entry(3, 10, None)).unwrap();
        }
        // A crash in the middle of a line.
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"t":"answer","id":"b","status":{"st"#)
            .unwrap();
        drop(f);

        let (_, back) = Journal::open(dir.path(), 500, 10).unwrap();
        assert_eq!(
            back,
            vec![
                ("a".to_owned(), entry(1, 1_000, Some(confirmed.clone()))),
                ("b".to_owned(), entry(2, 2_000, None)),
            ],
            "the entry past its deadline is dropped, the torn answer is not applied"
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n') && !text.contains("old"), "{text}");
        // Opened again, the same (the rewrite is a valid journal).
        let (_, again) = Journal::open(dir.path(), 500, 10).unwrap();
        assert_eq!(again, back);
        // Bounded: only the newest `remember` stay.
        let (_, one) = Journal::open(dir.path(), 500, 1).unwrap();
        assert_eq!(one, vec![("b".to_owned(), entry(2, 2_000, None))]);
    }

    #[test]
    fn compaction_keeps_what_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), 0, 10).unwrap();
        let failed: Answer = (
            AckStatus::Failed {
                reason: FailReason::Expired,
                detail: "late".into(),
            },
            None,
        );
        for i in 0..5u8 {
            j.seen(&format!("c{i}"), &entry(i, 9_000, None)).unwrap();
        }
        let keep = entry(4, 9_000, Some(failed));
        j.compact([("c4", &keep)].into_iter()).unwrap();
        assert!(!j.wants_compaction(1));
        let (_, back) = Journal::open(dir.path(), 0, 10).unwrap();
        assert_eq!(back, vec![("c4".to_owned(), keep)]);
    }
}
