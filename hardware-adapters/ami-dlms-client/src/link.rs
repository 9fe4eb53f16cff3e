//! The byte-stream side of the client: the IEC 62056-47 wrapper and IEC 62056-46 HDLC, over
//! any `AsyncRead + AsyncWrite` (a TCP socket, a serial port, a test pipe).
//!
//! [`Link::exchange`] sends one APDU and returns the whole APDU that answers it, with the
//! frames as they came off the line. On HDLC that means: the connection is set up by
//! SNRM/UA with negotiated maximum information field lengths and window sizes; APDUs travel
//! in I-frames behind the LLC header with send and receive sequence numbers checked both
//! ways; an APDU longer than the peer takes is segmented (each segment acknowledged by RR
//! before the next goes), and a segmented answer is acknowledged segment by segment with RR
//! and put back together; DISC/UA ends it. Frames are read by their length field, bounded by
//! what was negotiated, and every wait has a deadline.

use std::time::Duration;

use ami_dlms::hdlc::{self, Address, Control};
use ami_dlms::{llc, wrapper};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ClientError;

/// HDLC settings of the client side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HdlcSettings {
    /// Client address (one byte; 16 is the public client).
    pub client: u16,
    /// Server upper (logical device) address.
    pub server_logical: u16,
    /// Server lower (physical) address.
    pub server_physical: u16,
    /// Size of the server address on the wire: 1, 2 or 4 bytes.
    pub server_address_size: u8,
    /// Longest information field the client proposes to send.
    pub max_info_tx: u16,
    /// Longest information field the client proposes to receive.
    pub max_info_rx: u16,
}

impl Default for HdlcSettings {
    fn default() -> Self {
        HdlcSettings {
            client: 16,
            server_logical: 1,
            server_physical: 17,
            server_address_size: 4,
            max_info_tx: 128,
            max_info_rx: 128,
        }
    }
}

/// How APDUs are framed on the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The TCP/UDP wrapper with the client's and the server's wPort.
    Wrapper {
        /// Client wPort (the client SAP, 16 public).
        client: u16,
        /// Server wPort (the logical device, 1 management).
        server: u16,
    },
    /// HDLC.
    Hdlc(HdlcSettings),
}

/// What the HDLC connection negotiated (UA parameters, or the defaults of IEC 62056-46).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Longest information field we send.
    pub max_info_tx: usize,
    /// Longest information field the server sends.
    pub max_info_rx: usize,
    /// Frames the server takes before it acknowledges.
    pub window_tx: u32,
    /// Frames we take before we acknowledge.
    pub window_rx: u32,
}

/// An APDU and the frames it came in, as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The APDU (LLC header removed).
    pub apdu: Vec<u8>,
    /// The frames as they came off the line.
    pub frames: Vec<Vec<u8>>,
}

const SNRM: u8 = 0x93;
const DISC: u8 = 0x53;

/// A framed connection to one meter.
#[derive(Debug)]
pub struct Link<S> {
    io: S,
    framing: Framing,
    timeout: Duration,
    buf: Vec<u8>,
    /// V(S), V(R) of HDLC.
    send_seq: u8,
    recv_seq: u8,
    negotiated: Option<Negotiated>,
    /// Longest APDU accepted from the server (bounds reassembly).
    max_apdu: usize,
}

fn u(v: &[u8]) -> u32 {
    v.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
}

/// Reads the HDLC parameter negotiation field (`81 80 len {id len value}*`).
pub fn parse_hdlc_parameters(info: &[u8], into: &mut Negotiated) -> Result<(), ClientError> {
    let Some(rest) = info.strip_prefix(&[0x81, 0x80][..]) else {
        return Err(ClientError::Protocol(format!(
            "UA parameters do not start with 81 80: {}",
            hex::encode(info)
        )));
    };
    let (&len, mut rest) = rest
        .split_first()
        .ok_or_else(|| ClientError::Protocol("UA parameters without a length".into()))?;
    if rest.len() < usize::from(len) {
        return Err(ClientError::Protocol(format!(
            "UA parameters of length {len}, {} bytes came",
            rest.len()
        )));
    }
    rest = rest.get(..usize::from(len)).unwrap_or_default();
    while let [id, n, tail @ ..] = rest {
        let n = usize::from(*n);
        if n == 0 || n > 4 || tail.len() < n {
            return Err(ClientError::Protocol(format!(
                "UA parameter 0x{id:02x} of length {n}"
            )));
        }
        let (v, next) = tail.split_at(n);
        let v = u(v);
        match id {
            // The server's transmit is our receive and the other way round.
            0x05 => into.max_info_rx = v as usize,
            0x06 => into.max_info_tx = v as usize,
            0x07 => into.window_rx = v,
            0x08 => into.window_tx = v,
            _ => {}
        }
        rest = next;
    }
    if into.max_info_tx < 16 || into.max_info_rx < 16 {
        return Err(ClientError::Protocol(format!(
            "UA negotiates information fields of {}/{} bytes",
            into.max_info_tx, into.max_info_rx
        )));
    }
    Ok(())
}

fn push_param(out: &mut Vec<u8>, id: u8, v: u32) {
    out.push(id);
    if v <= 0xFF && id < 7 {
        out.extend_from_slice(&[1, v as u8]);
    } else if v <= 0xFFFF && id < 7 {
        out.push(2);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else {
        out.push(4);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Link<S> {
    /// A link over `io`; nothing is sent until [`Link::open`].
    pub fn new(io: S, framing: Framing, timeout: Duration) -> Self {
        Link {
            io,
            framing,
            timeout,
            buf: Vec::new(),
            send_seq: 0,
            recv_seq: 0,
            negotiated: None,
            max_apdu: 1 << 20,
        }
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// What HDLC negotiated (`None` on the wrapper or before [`Link::open`]).
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// Bounds the APDUs accepted from the server.
    pub fn set_max_apdu(&mut self, n: usize) {
        self.max_apdu = n.max(64);
    }

    fn addresses(h: &HdlcSettings) -> (Address, Address) {
        (
            if h.server_address_size == 1 {
                Address::one(h.server_logical)
            } else {
                Address::server(h.server_logical, h.server_physical, h.server_address_size)
            },
            Address::one(h.client),
        )
    }

    /// Sets the link up: SNRM/UA on HDLC (nothing on the wrapper).
    pub async fn open(&mut self) -> Result<(), ClientError> {
        let Framing::Hdlc(h) = self.framing else {
            return Ok(());
        };
        let mut params = Vec::new();
        push_param(&mut params, 0x05, u32::from(h.max_info_tx));
        push_param(&mut params, 0x06, u32::from(h.max_info_rx));
        push_param(&mut params, 0x07, 1);
        push_param(&mut params, 0x08, 1);
        let mut info = vec![0x81, 0x80, params.len() as u8];
        info.extend_from_slice(&params);
        self.send_hdlc(&h, SNRM, false, &info).await?;
        let frame = self.read_frame("SNRM").await?;
        let (f, _) = hdlc::parse(&frame)?;
        let mut n = Negotiated {
            max_info_tx: 128,
            max_info_rx: 128,
            window_tx: 1,
            window_rx: 1,
        };
        match f.control {
            Control::Ua => {
                if !f.information.is_empty() {
                    parse_hdlc_parameters(f.information, &mut n)?;
                }
            }
            Control::Dm => {
                return Err(ClientError::Protocol(
                    "the meter answered SNRM with DM (disconnected mode)".into(),
                ));
            }
            other => {
                return Err(ClientError::Protocol(format!(
                    "the meter answered SNRM with {other:?}"
                )));
            }
        }
        n.max_info_tx = n.max_info_tx.min(usize::from(h.max_info_tx));
        self.negotiated = Some(n);
        self.send_seq = 0;
        self.recv_seq = 0;
        tracing::debug!(?n, "HDLC connected");
        Ok(())
    }

    /// Ends the link: DISC/UA on HDLC (a DM answer is fine too), then shuts the stream.
    pub async fn close(&mut self) -> Result<(), ClientError> {
        if let Framing::Hdlc(h) = self.framing {
            self.send_hdlc(&h, DISC, false, &[]).await?;
            let frame = self.read_frame("DISC").await?;
            let (f, _) = hdlc::parse(&frame)?;
            if !matches!(f.control, Control::Ua | Control::Dm) {
                return Err(ClientError::Protocol(format!(
                    "the meter answered DISC with {:?}",
                    f.control
                )));
            }
            self.negotiated = None;
        }
        self.io.shutdown().await?;
        Ok(())
    }

    async fn send_hdlc(
        &mut self,
        h: &HdlcSettings,
        control: u8,
        segmented: bool,
        info: &[u8],
    ) -> Result<(), ClientError> {
        let (dst, src) = Self::addresses(h);
        let frame = hdlc::encode(&dst, &src, control, segmented, info)
            .map_err(|e| ClientError::TooLarge(e.to_string()))?;
        self.io.write_all(&frame).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Reads one whole frame off the stream (bytes before an HDLC flag are skipped).
    async fn read_frame(&mut self, what: &str) -> Result<Vec<u8>, ClientError> {
        let limit = match self.framing {
            Framing::Wrapper { .. } => 8 + 0xFFFF,
            Framing::Hdlc(_) => hdlc::MAX_FRAME_LENGTH + 2,
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Framing::Hdlc(_) = self.framing {
                let skip = self
                    .buf
                    .iter()
                    .position(|b| *b == hdlc::FLAG)
                    .unwrap_or(self.buf.len());
                if skip > 0 {
                    tracing::debug!(bytes = skip, "noise before an HDLC flag skipped");
                    self.buf.drain(..skip);
                }
                // Back-to-back frames may share a flag: a flag followed by a flag is one.
                while self.buf.len() >= 2 && self.buf.get(1) == Some(&hdlc::FLAG) {
                    self.buf.remove(0);
                }
            }
            let need = match self.framing {
                Framing::Wrapper { .. } => wrapper::frame_len(&self.buf),
                Framing::Hdlc(_) => hdlc::frame_len(&self.buf),
            };
            if let Some(n) = need {
                if n > limit {
                    return Err(ClientError::Protocol(format!(
                        "frame of {n} bytes announced while {what} (at most {limit})"
                    )));
                }
                if self.buf.len() >= n {
                    let frame: Vec<u8> = self.buf.drain(..n).collect();
                    return Ok(frame);
                }
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, self.io.read(&mut chunk))
                .await
                .map_err(|_| ClientError::Timeout(what.to_owned()))??;
            if read == 0 {
                return Err(ClientError::Closed(what.to_owned()));
            }
            self.buf
                .extend_from_slice(chunk.get(..read).unwrap_or_default());
        }
    }

    /// Sends `apdu` and returns the APDU that answers it.
    pub async fn exchange(&mut self, apdu: &[u8], what: &str) -> Result<Received, ClientError> {
        match self.framing {
            Framing::Wrapper { client, server } => {
                let frame = wrapper::encode(client, server, apdu)
                    .map_err(|e| ClientError::TooLarge(e.to_string()))?;
                self.io.write_all(&frame).await?;
                self.io.flush().await?;
                let got = self.read_frame(what).await?;
                let (h, body) = wrapper::parse(&got)?;
                if h.source_wport != server || h.destination_wport != client {
                    return Err(ClientError::Protocol(format!(
                        "wrapper frame from wPort {} to {} (expected {server} to {client})",
                        h.source_wport, h.destination_wport
                    )));
                }
                Ok(Received {
                    apdu: body.to_vec(),
                    frames: vec![got],
                })
            }
            Framing::Hdlc(h) => {
                self.send_apdu_hdlc(&h, apdu, what).await?;
                self.receive_apdu_hdlc(&h, what).await
            }
        }
    }

    fn negotiated_or_err(&self) -> Result<Negotiated, ClientError> {
        self.negotiated
            .ok_or_else(|| ClientError::Protocol("HDLC link not open (no SNRM/UA yet)".into()))
    }

    fn i_control(&self) -> u8 {
        (self.recv_seq << 5) | 0x10 | (self.send_seq << 1)
    }

    async fn send_apdu_hdlc(
        &mut self,
        h: &HdlcSettings,
        apdu: &[u8],
        what: &str,
    ) -> Result<(), ClientError> {
        let n = self.negotiated_or_err()?;
        let mut info = Vec::with_capacity(apdu.len() + 3);
        info.extend_from_slice(&llc::COMMAND);
        info.extend_from_slice(apdu);
        let chunks: Vec<&[u8]> = info.chunks(n.max_info_tx.max(1)).collect();
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let segmented = i < last;
            let control = self.i_control();
            self.send_hdlc(h, control, segmented, chunk).await?;
            self.send_seq = (self.send_seq + 1) % 8;
            if segmented {
                // The server acknowledges each segment with RR before it takes the next.
                let frame = self.read_frame(what).await?;
                let (f, _) = hdlc::parse(&frame)?;
                match f.control {
                    Control::Rr { receive } if receive == self.send_seq => {}
                    Control::Rr { receive } => {
                        return Err(ClientError::Protocol(format!(
                            "RR N(R)={receive} after segment {i} of {what}, expected {}",
                            self.send_seq
                        )));
                    }
                    other => {
                        return Err(ClientError::Protocol(format!(
                            "{other:?} instead of RR after segment {i} of {what}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    async fn receive_apdu_hdlc(
        &mut self,
        h: &HdlcSettings,
        what: &str,
    ) -> Result<Received, ClientError> {
        let mut info = Vec::new();
        let mut frames = Vec::new();
        loop {
            let frame = self.read_frame(what).await?;
            let (f, _) = hdlc::parse(&frame)?;
            if f.destination.logical != h.client {
                return Err(ClientError::Protocol(format!(
                    "HDLC frame for client {} (we are {})",
                    f.destination.logical, h.client
                )));
            }
            match f.control {
                Control::I { send, receive } => {
                    if send != self.recv_seq {
                        return Err(ClientError::Protocol(format!(
                            "I-frame N(S)={send} while {what}, expected {}",
                            self.recv_seq
                        )));
                    }
                    if receive != self.send_seq {
                        return Err(ClientError::Protocol(format!(
                            "I-frame N(R)={receive} while {what}, expected {}",
                            self.send_seq
                        )));
                    }
                    self.recv_seq = (self.recv_seq + 1) % 8;
                    if info.len() + f.information.len() > self.max_apdu + 3 {
                        return Err(ClientError::TooLarge(format!(
                            "segmented answer to {what} longer than {} bytes",
                            self.max_apdu
                        )));
                    }
                    info.extend_from_slice(f.information);
                    let segmented = f.segmented;
                    frames.push(frame);
                    if segmented {
                        let rr = (self.recv_seq << 5) | 0x11;
                        self.send_hdlc(h, rr, false, &[]).await?;
                        continue;
                    }
                    // As the decoder does: an answer without the LLC header is taken as the
                    // bare APDU (gurux-dlms 1.0.203 leaves it off its RLRE).
                    let apdu = llc::strip(&info).unwrap_or(&info).to_vec();
                    return Ok(Received { apdu, frames });
                }
                Control::Rr { .. } => continue,
                Control::Dm => {
                    return Err(ClientError::Protocol(format!(
                        "the meter is in disconnected mode (DM) while {what}"
                    )));
                }
                Control::Frmr => {
                    return Err(ClientError::Protocol(format!(
                        "the meter rejected our frame (FRMR) while {what}"
                    )));
                }
                other => {
                    return Err(ClientError::Protocol(format!(
                        "{other:?} frame while {what}"
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::duplex;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn server_frame(control: u8, segmented: bool, info: &[u8]) -> Vec<u8> {
        hdlc::encode(
            &Address::one(16),
            &Address::server(1, 17, 4),
            control,
            segmented,
            info,
        )
        .unwrap()
    }

    /// A scripted meter: for each frame the client sends, the next answer (if any).
    async fn play(mut io: tokio::io::DuplexStream, answers: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for a in answers {
            let mut buf = [0u8; 4096];
            let n = io.read(&mut buf).await.unwrap_or(0);
            got.push(buf[..n].to_vec());
            if !a.is_empty() {
                io.write_all(&a).await.unwrap();
            }
        }
        got
    }

    #[test]
    fn hdlc_reassembles_segments_and_acknowledges_each_with_rr() {
        rt().block_on(async {
            let (client, server) = duplex(8192);
            let ua = server_frame(
                0x73,
                false,
                &[0x81, 0x80, 0x06, 0x05, 0x01, 0x40, 0x06, 0x01, 0x40],
            );
            // Answer in two segments: N(S)=0 then N(S)=1, both acknowledging our one frame.
            let mut info = llc::RESPONSE.to_vec();
            info.extend_from_slice(&[0xC4, 0x01, 0xC1, 0x00, 0x09, 0x04, 1, 2, 3, 4]);
            let (a, b) = info.split_at(6);
            let first = server_frame(0x30, true, a);
            let second = server_frame(0x32, false, b);
            let meter = tokio::spawn(play(server, vec![ua, [first, second].concat(), Vec::new()]));
            let mut link = Link::new(
                client,
                Framing::Hdlc(HdlcSettings::default()),
                Duration::from_secs(2),
            );
            link.open().await.unwrap();
            assert_eq!(link.negotiated().unwrap().max_info_tx, 64);
            let r = link.exchange(&[0xC0, 0x01, 0xC1], "GET").await.unwrap();
            assert_eq!(r.apdu, &info[3..]);
            assert_eq!(r.frames.len(), 2);
            drop(link);
            let sent = meter.await.unwrap();
            // The client's RR after the first segment: N(R)=1.
            let (rr, _) = hdlc::parse(&sent[2]).unwrap();
            assert_eq!(rr.control, Control::Rr { receive: 1 });
        });
    }

    #[test]
    fn hdlc_refuses_a_wrong_sequence_number() {
        rt().block_on(async {
            let (client, server) = duplex(8192);
            let ua = server_frame(0x73, false, &[]);
            let mut info = llc::RESPONSE.to_vec();
            info.extend_from_slice(&[0xC4, 0x01, 0xC1, 0x00, 0x00]);
            let wrong = server_frame(0x34, false, &info); // N(S)=2, expected 0
            let _meter = tokio::spawn(play(server, vec![ua, wrong]));
            let mut link = Link::new(
                client,
                Framing::Hdlc(HdlcSettings::default()),
                Duration::from_secs(2),
            );
            link.open().await.unwrap();
            let err = link.exchange(&[0xC0], "GET").await.unwrap_err();
            assert!(
                matches!(err, ClientError::Protocol(ref m) if m.contains("N(S)=2")),
                "{err}"
            );
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever a meter answers, the link returns (an APDU or a typed error) without
        /// panicking and without waiting past its deadline.
        #[test]
        fn any_answer_is_an_apdu_or_an_error(answer in proptest::collection::vec(any::<u8>(), 0..300), hdlc in any::<bool>()) {
            rt().block_on(async {
                let (client, server) = duplex(8192);
                let framing = if hdlc {
                    Framing::Hdlc(HdlcSettings::default())
                } else {
                    Framing::Wrapper { client: 16, server: 1 }
                };
                let _meter = tokio::spawn(play(server, vec![answer.clone(), answer]));
                let mut link = Link::new(client, framing, Duration::from_millis(100));
                if link.open().await.is_ok() {
                    let _ = link.exchange(&[0xC0, 0x01], "GET").await;
                }
            });
        }
    }
}
