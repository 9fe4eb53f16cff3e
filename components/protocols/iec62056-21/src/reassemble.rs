//! Reassembly of readouts from a byte stream: serial reads of any size, the partial blocks
//! (`STX data EOT BCC` … `STX data ETX BCC`) of a long readout, and the echoes of the reader's
//! own messages on a half-duplex optical probe.

use ami_domain::DecodeError;

use crate::frame::{ACK, EOT, ETX, STX};

/// The default bound on one readout (1 MiB).
pub const DEFAULT_LIMIT: usize = 1 << 20;

/// The longest identification line or echoed reader message kept while hunting.
const MAX_LINE: usize = 80;

/// Where the reassembler is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for `/` (identification) or STX; everything else is dropped.
    Hunt,
    /// Inside the identification line.
    Ident,
    /// After the identification line: line ends, echoes, then STX or mode D data.
    AfterIdent,
    /// Dropping an echoed reader message up to its LF, then going on in `then`.
    Echo { then: Resume },
    /// Inside a block, after STX.
    Block,
    /// Expecting the BCC of a block closed by `end` (EOT or ETX).
    Bcc { end: u8 },
    /// Between a partial block and the next STX (the reader's ACK or NAK may be echoed).
    BetweenBlocks,
    /// Inside mode D data (no STX).
    ModeD,
    /// After a mode D `!`: up to 4 CRC hex digits, then CR LF.
    ModeDEnd { digits: u8, cr: bool },
}

/// Where to go on after an echoed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    Hunt,
    AfterIdent,
}

/// Turns a meter-side byte stream into complete readouts that [`crate::decode`] accepts.
///
/// * Framed readouts: every block's BCC is checked. A partial block's data is kept and the
///   next block appended; the result is one data message `STX data ETX BCC` with the BCC
///   computed anew over the joined data. A block whose BCC fails yields a
///   [`DecodeError::Checksum`] and is dropped while the blocks before it are kept: the
///   reader answers NAK and the meter repeats the block, which is then appended.
/// * Mode D readouts (`/` identification, data, `!`, optional CRC, CR LF) are passed through
///   byte for byte, since their CRC covers them whole.
/// * Echoed request (`/?…!`) and option select (ACK…) messages, and bytes outside a readout,
///   are dropped. An STX inside a block restarts that block (the meter resent it).
/// * A readout longer than the limit is dropped with a [`DecodeError::Malformed`].
#[derive(Debug, Clone)]
pub struct Reassembler {
    state: State,
    /// The readout being built.
    out: Vec<u8>,
    /// Index in `out` where the current block's data starts.
    block_start: usize,
    /// XOR of the current block's data.
    block_bcc: u8,
    /// XOR of the data of every accepted block.
    data_bcc: u8,
    /// Blocks accepted so far in this readout.
    blocks: usize,
    /// Bytes of the current echoed message.
    echo_len: usize,
    limit: usize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    /// A reassembler bounding each readout to [`DEFAULT_LIMIT`] bytes.
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_LIMIT)
    }

    /// A reassembler bounding each readout to `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            state: State::Hunt,
            out: Vec::new(),
            block_start: 0,
            block_bcc: 0,
            data_bcc: 0,
            blocks: 0,
            echo_len: 0,
            limit,
        }
    }

    /// Bytes held for the readout in progress.
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Feeds the next bytes (a frame, a block, a serial read); returns the readouts completed
    /// by them and the errors met, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Vec<u8>, DecodeError>> {
        let mut done = Vec::new();
        for &b in bytes {
            self.step(b, &mut done);
            if self.out.len() > self.limit {
                done.push(Err(DecodeError::Malformed(format!(
                    "readout longer than {} bytes; dropped",
                    self.limit
                ))));
                self.reset();
            }
        }
        done
    }

    /// Ends the stream: returns the readout in progress if it is complete without a line end
    /// (a mode D `!` with or without CRC, a framed readout ending in `!` whose ETX and BCC
    /// never came, which `decode` accepts unverified), a [`DecodeError::Truncated`] if one
    /// was cut off, `None` if nothing was pending.
    pub fn finish(&mut self) -> Option<Result<Vec<u8>, DecodeError>> {
        let state = self.state;
        let result = match state {
            State::Hunt | State::Echo { then: Resume::Hunt } => None,
            State::ModeDEnd { .. } => Some(Ok(std::mem::take(&mut self.out))),
            State::Block if self.out.ends_with(b"!\r\n") || self.out.ends_with(b"!") => {
                Some(Ok(std::mem::take(&mut self.out)))
            }
            _ => Some(Err(DecodeError::Truncated(format!(
                "stream ended inside a readout ({} bytes held, {} blocks accepted)",
                self.out.len(),
                self.blocks
            )))),
        };
        self.reset();
        result
    }

    fn reset(&mut self) {
        self.state = State::Hunt;
        self.out.clear();
        self.block_start = 0;
        self.block_bcc = 0;
        self.data_bcc = 0;
        self.blocks = 0;
        self.echo_len = 0;
    }

    fn emit(&mut self, done: &mut Vec<Result<Vec<u8>, DecodeError>>) {
        done.push(Ok(std::mem::take(&mut self.out)));
        self.reset();
    }

    fn start_line(&mut self, b: u8) {
        self.reset();
        self.out.push(b);
        self.state = State::Ident;
    }

    fn start_data(&mut self) {
        self.out.push(STX);
        self.block_start = self.out.len();
        self.block_bcc = 0;
        self.state = State::Block;
    }

    fn echo(&mut self, then: Resume) {
        self.echo_len = 0;
        self.state = State::Echo { then };
    }

    fn hunt(&mut self, b: u8) {
        match b {
            b'/' => self.start_line(b),
            STX => {
                self.reset();
                self.start_data();
            }
            _ => {}
        }
    }

    fn step(&mut self, b: u8, done: &mut Vec<Result<Vec<u8>, DecodeError>>) {
        match self.state {
            State::Hunt => self.hunt(b),
            State::Ident => {
                if self.out.len() == 1 && b == b'?' {
                    // The reader's request message, echoed.
                    self.out.clear();
                    self.echo(Resume::Hunt);
                    return;
                }
                if b == STX {
                    // No identification after all: a data message starts.
                    self.reset();
                    self.start_data();
                    return;
                }
                self.out.push(b);
                if b == b'\n' {
                    self.state = State::AfterIdent;
                } else if self.out.len() > MAX_LINE {
                    done.push(Err(DecodeError::Malformed(format!(
                        "identification line longer than {MAX_LINE} bytes"
                    ))));
                    self.reset();
                }
            }
            State::AfterIdent => match b {
                STX => self.start_data(),
                ACK => self.echo(Resume::AfterIdent),
                b'\r' | b'\n' => self.out.push(b),
                // A new identification: the previous one was never followed by data.
                b'/' => self.start_line(b),
                0 | 0x15 => {}
                _ => {
                    self.out.push(b);
                    self.state = if b == b'!' {
                        State::ModeDEnd {
                            digits: 0,
                            cr: false,
                        }
                    } else {
                        State::ModeD
                    };
                }
            },
            State::Echo { then } => {
                self.echo_len += 1;
                if b == b'\n' {
                    self.state = match then {
                        Resume::Hunt => State::Hunt,
                        Resume::AfterIdent => State::AfterIdent,
                    };
                } else if self.echo_len > MAX_LINE {
                    done.push(Err(DecodeError::Malformed(format!(
                        "echoed reader message longer than {MAX_LINE} bytes"
                    ))));
                    self.reset();
                }
            }
            State::Block => match b {
                EOT | ETX => self.state = State::Bcc { end: b },
                STX => {
                    // The meter started the block again.
                    self.out.truncate(self.block_start);
                    self.block_bcc = 0;
                }
                _ => {
                    self.out.push(b);
                    self.block_bcc ^= b;
                }
            },
            State::Bcc { end } => {
                let computed = self.block_bcc ^ end;
                if b != computed {
                    self.out.truncate(self.block_start);
                    self.block_bcc = 0;
                    self.state = State::BetweenBlocks;
                    done.push(Err(DecodeError::Checksum(format!(
                        "block {} BCC 0x{b:02x}, computed 0x{computed:02x}; block dropped",
                        self.blocks + 1
                    ))));
                    return;
                }
                self.blocks += 1;
                self.data_bcc ^= self.block_bcc;
                if end == EOT {
                    self.state = State::BetweenBlocks;
                } else {
                    self.out.push(ETX);
                    let total = self.data_bcc ^ ETX;
                    self.out.push(total);
                    self.emit(done);
                }
            }
            State::BetweenBlocks => match b {
                STX => {
                    self.block_start = self.out.len();
                    self.block_bcc = 0;
                    self.state = State::Block;
                }
                b'/' => {
                    done.push(Err(DecodeError::Truncated(format!(
                        "readout abandoned after {} blocks: a new identification began",
                        self.blocks
                    ))));
                    self.start_line(b);
                }
                _ => {}
            },
            State::ModeD => {
                self.out.push(b);
                if b == b'!' {
                    self.state = State::ModeDEnd {
                        digits: 0,
                        cr: false,
                    };
                }
            }
            State::ModeDEnd { digits, cr } => {
                if !cr && digits < 4 && b.is_ascii_hexdigit() {
                    self.out.push(b);
                    self.state = State::ModeDEnd {
                        digits: digits + 1,
                        cr,
                    };
                } else if !cr && b == b'\r' {
                    self.out.push(b);
                    self.state = State::ModeDEnd { digits, cr: true };
                } else if b == b'\n' {
                    self.out.push(b);
                    self.emit(done);
                } else {
                    // The readout ended without a line end; `b` belongs to what follows.
                    self.emit(done);
                    self.hunt(b);
                }
            }
        }
    }
}
