//! ANSI C12 decoder: C12.18 packets (and C12.21, which adds nothing at this layer but two
//! PSEM services), C12.22 ACSE APDUs with EPSEM, PSEM services, the C12.19 table model, and
//! OSGP (ETSI GS OSG 001) on top of it, in pure Rust.
//!
//! [`decode`] takes one frame and tells the three forms apart by their first byte:
//!
//! * `0xEE` (or an ACK `0x06` / NAK `0x15` before it): a C12.18 packet, or a capture of a
//!   C12.18/C12.21 session (packets back to back, the ACK/NAK bytes of the other side between
//!   them; [`packet`]). Multi-packet messages
//!   are reassembled, each message is a PSEM service ([`psem`]), and a read response is
//!   paired with the read request before it.
//! * `0x60`: a C12.22 ACSE APDU ([`c1222`]) whose EPSEM holds PSEM services. The calling AP
//!   title names the meter. An EPSEM in security mode 1 (authenticated) or 2 (ciphered) is
//!   verified and decrypted with AES-128 EAX' through the [`Crypto`] provider, the meter's
//!   `AnsiC1222` key named by that title (key id 0; other key ids are
//!   [`Error::Unsupported`]).
//! * `0x00`-`0x02`: an OSGP APDU ([`osgp`], ami's profile); the OSGP-AES-128-PSK form is
//!   decrypted through the [`Crypto`] provider, the legacy RC4/OMA-digest forms are refused
//!   with [`Error::Rc4Refused`]. Its services are read in OSGP's encoding (no checksum) and
//!   its tables as an OSGP meter's ([`osgp_tables`]: BT23 summations by OSGP source, BT26
//!   self reads, BT28 present values, BT03 alarms, ET79).
//!
//! Tables come from write requests (meters pushing their tables) and from read responses
//! paired with their requests; they are read by the C12.19 table model ([`tables`]): ST 0
//! sets the formats (or the defaults are used, and the output says so), ST 21/61/71 the
//! dimensions, and ST 1, 12, 21-23, 51-55, 61-64, 71-76 are interpreted.
//!
//! # What comes out
//!
//! * **Meter**: ST 1's `MFG_SERIAL_NUMBER`, else the C12.22 calling AP title (`.1.2.3` for a
//!   relative one), else the OSGP device id.
//! * **Readings**: ST 23 summations, demands (stamped with their event time when the meter
//!   gives it), cumulative and coincident values per tier ([`tables::registers`] for the
//!   register ids), and ST 64-67 load profile intervals with their end times and status
//!   flags ([`tables::load_profile`]).
//! * **Events**: ST 74 history and ST 76 event log entries ([`tables::log`]).
//! * **Attributes**: the frame's structure under ami's registers `0-0:128.x.y` ([`registers`]:
//!   packet fields, PSEM service, table id, offset, count, data), ST 1 identification, ST 52
//!   and ST 55 clocks. Passwords (security, logon) are never output.
//!
//! Nothing panics on any input and allocation is bounded by the input (and by
//! [`tables::load_profile::MAX_INTERVALS`] for declared dimensions); failures are the typed
//! [`Error`], mapped onto [`DecodeError`].

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod c1222;
pub mod error;
pub mod osgp;
pub mod osgp_tables;
pub mod packet;
pub mod psem;
mod read;
pub mod registers;
pub mod tables;

use ami_domain::crypto::Crypto;
use ami_domain::{Obis, Quality, Reading, Unit};

pub use ami_domain::{DecodeError, Decoded};
pub use error::Error;
pub use read::Reader;

use psem::{Answers, Request, Response, ResponseBody, Service};
use registers as reg;
use tables::{Config, load_profile, log, st0, time};

/// The tables a frame carried: table id and bytes, in the order they came.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableSet {
    /// The tables.
    pub tables: Vec<(u16, Vec<u8>)>,
    /// Table pieces that could not be placed (index reads, offsets past the known data).
    pub dropped: usize,
}

impl TableSet {
    /// The bytes of table `id`, if the frame carried them.
    pub fn get(&self, id: u16) -> Option<&[u8]> {
        self.tables
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, d)| d.as_slice())
    }

    /// Places `data` at `offset` of table `id`: offset 0 replaces the start, an offset inside
    /// or at the end of the bytes known so far overwrites and extends; a gap is dropped.
    pub fn put(&mut self, id: u16, offset: usize, data: &[u8]) {
        let slot = match self.tables.iter_mut().find(|(t, _)| *t == id) {
            Some((_, d)) => d,
            None => {
                self.tables.push((id, Vec::new()));
                match self.tables.last_mut() {
                    Some((_, d)) => d,
                    None => return,
                }
            }
        };
        if offset > slot.len() {
            self.dropped += 1;
            return;
        }
        let end = offset + data.len();
        if end > slot.len() {
            slot.resize(end, 0);
        }
        if let Some(dst) = slot.get_mut(offset..end) {
            dst.copy_from_slice(data);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The attributes that describe a PSEM service (never a password): its name and table, and
/// with `detailed` (a frame of one service) its offset, count, data and checksum.
fn describe(service: &Service<'_>, detailed: bool, out: &mut Decoded) {
    let mut put = |o: Obis, v: String| out.attributes.push((o, v));
    match service {
        Service::Request(req) => {
            put(reg::SERVICE, req.name().into());
            if let Some(t) = req.table() {
                put(reg::TABLE, t.to_string());
            }
            if !detailed {
                return;
            }
            match req {
                Request::ReadOffset { offset, count, .. } => {
                    put(reg::OFFSET, offset.to_string());
                    put(reg::COUNT, count.to_string());
                }
                Request::ReadIndex { count, .. } => put(reg::COUNT, count.to_string()),
                Request::WriteFull { data, .. }
                | Request::WriteIndex { data, .. }
                | Request::WriteOffset { data, .. } => {
                    if let Request::WriteOffset { offset, .. } = req {
                        put(reg::OFFSET, offset.to_string());
                    }
                    put(reg::COUNT, data.data.len().to_string());
                    put(reg::DATA, hex(data.data));
                    if data.form != psem::Cksum::Absent {
                        put(reg::CKSUM, data.cksum.to_string());
                    }
                    put(reg::CKSUM_FORM, cksum_form(data.form).into());
                }
                Request::Logon { user_id, .. }
                | Request::Security {
                    user_id: Some(user_id),
                    ..
                } => put(reg::USER_ID, user_id.to_string()),
                Request::Wait { seconds } => put(reg::COUNT, seconds.to_string()),
                _ => {}
            }
        }
        Service::Response(resp) => {
            put(reg::SERVICE, resp.code.name().into());
            if !resp.code.is_ok() {
                put(reg::MEANING, resp.code.meaning().into());
            }
            if !detailed {
                return;
            }
            if let ResponseBody::Table(d) = &resp.body {
                put(reg::COUNT, d.data.len().to_string());
                put(reg::DATA, hex(d.data));
                if d.form != psem::Cksum::Absent {
                    put(reg::CKSUM, d.cksum.to_string());
                }
                put(reg::CKSUM_FORM, cksum_form(d.form).into());
            }
        }
    }
}

fn cksum_form(f: psem::Cksum) -> &'static str {
    match f {
        psem::Cksum::Standard => "standard",
        psem::Cksum::OnesComplement => "ones-complement",
        psem::Cksum::Absent => "absent",
    }
}

/// Reads a sequence of PSEM services (requests and their responses, in order) into `out`'s
/// description and `tables`.
fn services(items: &[&[u8]], tables: &mut TableSet, out: &mut Decoded) -> Result<(), Error> {
    services_in(items, tables, out, psem::Dialect::Psem)
}

/// [`services`] in `dialect`.
fn services_in(
    items: &[&[u8]],
    tables: &mut TableSet,
    out: &mut Decoded,
    dialect: psem::Dialect,
) -> Result<(), Error> {
    let mut pending: Option<Request<'_>> = None;
    for bytes in items {
        let first = bytes.first().copied().unwrap_or(0);
        let service = if first >= 0x20 {
            Service::Request(Request::parse_in(bytes, dialect)?)
        } else {
            let answers = pending.as_ref().map(Answers::of);
            Service::Response(Response::parse_in(bytes, answers, dialect)?)
        };
        describe(&service, items.len() == 1, out);
        match service {
            Service::Request(req) => {
                match &req {
                    Request::WriteFull { table, data } => tables.put(*table, 0, data.data),
                    Request::WriteOffset {
                        table,
                        offset,
                        data,
                    } => tables.put(*table, *offset as usize, data.data),
                    Request::WriteIndex { .. } => tables.dropped += 1,
                    _ => {}
                }
                pending = Some(req);
            }
            Service::Response(resp) => {
                if let (Some(req), ResponseBody::Table(d)) = (pending.take(), &resp.body) {
                    match req {
                        Request::ReadFull { table } => tables.put(table, 0, d.data),
                        Request::ReadOffset { table, offset, .. } => {
                            tables.put(table, offset as usize, d.data)
                        }
                        _ => tables.dropped += 1,
                    }
                }
            }
        }
    }
    Ok(())
}

/// Decodes a C12.18 packet or a capture of packets.
pub fn decode_c1218(frame: &[u8], received_at_ms: i64) -> Result<Decoded, Error> {
    let packets = packet::split(frame)?;
    let mut out = Decoded::default();
    if let [p] = packets.as_slice() {
        let mut put = |o: Obis, v: String| out.attributes.push((o, v));
        put(reg::IDENTITY, p.identity.to_string());
        put(reg::CONTROL, format!("{:02x}", p.control));
        put(reg::SEQUENCE, p.sequence.to_string());
        put(reg::LENGTH, p.length().to_string());
        put(reg::PACKET_DATA, hex(p.data));
        put(reg::CRC, format!("{:04x}", p.crc_wire));
    }
    let messages = packet::reassemble(&packets);
    let mut tables = TableSet::default();
    let mut items: Vec<&[u8]> = Vec::new();
    let single = messages.len() == 1;
    for m in &messages {
        if m.packets > 1 && single {
            out.attributes.push((reg::MESSAGE, hex(&m.data)));
        }
        if m.incomplete {
            // A part of a multi-packet message: its PSEM bytes are not whole.
            out.attributes
                .push((reg::INCOMPLETE, format!("{} packets", m.packets)));
            continue;
        }
        items.push(&m.data);
    }
    services(&items, &mut tables, &mut out)?;
    interpret(&tables, received_at_ms, &mut out)?;
    Ok(out)
}

/// Decodes a C12.22 ACSE APDU; a secured EPSEM (security mode 1 or 2) is verified and
/// decrypted through `crypto` first ([`c1222::open`]) and then decodes as a clear-text one.
pub fn decode_c1222(
    frame: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
) -> Result<Decoded, Error> {
    let apdu = c1222::apdu(frame)?;
    let control = c1222::epsem(apdu.epsem)?.control;
    let opened = c1222::open(&apdu, crypto)?;
    let ep = c1222::epsem(&opened)?;
    let mut out = Decoded::default();
    if let Some(t) = &apdu.called {
        out.attributes.push((reg::CALLED, t.to_string()));
    }
    if let Some(t) = &apdu.calling {
        out.attributes.push((reg::CALLING, t.to_string()));
        out.meter = Some(t.to_string());
    }
    if let Some(i) = apdu.calling_invocation {
        out.attributes.push((reg::INVOCATION, i.to_string()));
    }
    // The control byte as it came (its security mode), not the opened one's.
    out.attributes
        .push((reg::EPSEM_CONTROL, format!("{control:02x}")));
    if let Some(c) = ep.ed_class {
        out.attributes.push((reg::ED_CLASS, hex(&c)));
    }
    let mut tables = TableSet::default();
    services(&ep.services, &mut tables, &mut out)?;
    interpret(&tables, received_at_ms, &mut out)?;
    Ok(out)
}

/// Decodes an OSGP APDU (ami's profile, see [`osgp`]).
pub fn decode_osgp(
    frame: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
) -> Result<Decoded, Error> {
    let apdu = osgp::open(frame, crypto)?;
    let mut out = Decoded {
        meter: Some(apdu.meter()),
        ..Decoded::default()
    };
    out.attributes
        .push((reg::OSGP_SECURITY, "aes-128-psk".into()));
    out.attributes
        .push((reg::OSGP_SEQUENCE, apdu.sequence.to_string()));
    let items = apdu.services()?;
    let mut tables = TableSet::default();
    services_in(&items, &mut tables, &mut out, psem::Dialect::Osgp)?;
    interpret_as(&tables, received_at_ms, &mut out, Profile::Osgp)?;
    Ok(out)
}

/// Decodes one frame (see the crate documentation for the forms), received at
/// `received_at_ms` (ms since the epoch, UTC: the time of readings the frame does not time).
pub fn decode(
    frame: &[u8],
    received_at_ms: i64,
    crypto: &mut dyn Crypto,
) -> Result<Decoded, DecodeError> {
    let got = match frame.first() {
        Some(&(packet::STP | packet::ACK | packet::NAK)) => decode_c1218(frame, received_at_ms),
        Some(0x60) => decode_c1222(frame, received_at_ms, crypto),
        Some(0x00..=0x02) => decode_osgp(frame, received_at_ms, crypto),
        Some(other) => Err(Error::Unsupported(format!(
            "frame starting 0x{other:02X} (0xEE C12.18, 0x60 C12.22, 0x00-0x02 OSGP)"
        ))),
        None => Err(Error::Truncated {
            what: "frame",
            at: 0,
            need: 1,
            have: 0,
        }),
    };
    got.map_err(DecodeError::from)
}

/// How the tables of a frame are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// By the C12.19 table model alone (C12.18, C12.21, C12.22).
    C1219,
    /// As the tables of an OSGP meter ([`osgp_tables`]): BT23 summations by their OSGP
    /// sources, BT26 self reads, BT28 present values, BT03 alarms, ET79 (the alternate event log), and the
    /// BT/ET names of tables.
    Osgp,
}

/// Interprets the tables of a frame into `out` by the C12.19 table model.
pub fn interpret(tables: &TableSet, received_at_ms: i64, out: &mut Decoded) -> Result<(), Error> {
    interpret_as(tables, received_at_ms, out, Profile::C1219)
}

/// Interprets the tables of a frame into `out` by the C12.19 table model, as `profile`
/// says.
pub fn interpret_as(
    tables: &TableSet,
    received_at_ms: i64,
    out: &mut Decoded,
    profile: Profile,
) -> Result<(), Error> {
    let osgp = profile == Profile::Osgp;
    if tables.tables.is_empty() {
        return Ok(());
    }
    let mut cfg = match tables.get(0) {
        Some(d) => {
            let s = st0::st0(d)?;
            out.attributes.push((
                reg::STD_VERSION,
                format!("{}.{}", s.std_version.0, s.std_version.1),
            ));
            s.config
        }
        None => {
            out.attributes
                .push((reg::CONFIG, "ST 0 not in the frame: C12.19 defaults".into()));
            Config::default()
        }
    };
    if let Some(d) = tables.get(1) {
        let s = st0::st1(d, &cfg)?;
        if !s.serial.is_empty() {
            out.meter = Some(s.serial.clone());
            out.attributes.push((reg::SERIAL, s.serial));
        }
        out.attributes.push((reg::MANUFACTURER, s.manufacturer));
        out.attributes.push((reg::MODEL, s.model));
        out.attributes
            .push((reg::FIRMWARE, format!("{}.{}", s.fw.0, s.fw.1)));
        out.attributes
            .push((reg::HARDWARE, format!("{}.{}", s.hw.0, s.hw.1)));
    }
    if let Some(d) = tables.get(21) {
        cfg.registers = Some(tables::registers::st21(d, &cfg)?);
    }
    if let Some(d) = tables.get(61) {
        cfg.load_profile = Some(load_profile::st61(d, &cfg)?);
    }
    if let Some(d) = tables.get(71) {
        cfg.log = Some(log::st71(d, &cfg)?);
    }
    let uoms = match tables.get(12) {
        Some(d) => tables::registers::st12(d, &cfg)?,
        None => Vec::new(),
    };
    // Register values carry no time of their own: the meter's clock when it is UTC.
    let mut stamp = (received_at_ms, Quality::TIME_FROM_RECEIVER);
    for id in [52u16, 55] {
        if let Some(d) = tables.get(id) {
            let c = if id == 52 {
                time::st52(d, &cfg)?
            } else {
                time::st55(d, &cfg)?
            };
            if let Some(t) = c.time {
                out.attributes
                    .push((reg::CLOCK, ami_domain::time::rfc3339(t)));
                if c.gmt() {
                    stamp = (t, Quality::VALID);
                }
            }
            if let Some(s) = c.status {
                out.attributes.push((reg::TIER, (s & 0x07).to_string()));
            }
        }
    }
    if let Some(d) = tables.get(23) {
        let dims = cfg
            .registers
            .ok_or_else(|| Error::Unsupported("ST 23 without ST 21 (its dimensions)".into()))?;
        let sel = match tables.get(22) {
            Some(d) => Some(tables::registers::st22(d, &cfg, &dims)?),
            None => None,
        };
        let st23 = tables::registers::st23(d, &cfg, &dims)?;
        if let Some(n) = st23.demand_resets {
            out.readings.push(Reading {
                register: reg::DEMAND_RESETS,
                value: ami_domain::Quantity::new(i64::from(n), 0),
                unit: Unit::Count,
                ts_ms: stamp.0,
                quality: stamp.1,
            });
        }
        if osgp {
            out.readings.extend(osgp_tables::bt23_summations(
                &st23,
                sel.as_ref(),
                stamp.0,
                stamp.1,
            ));
            // Demands and coincident values: by the C12.19 reading.
            let mut rest = st23.clone();
            for b in &mut rest.blocks {
                b.summations.clear();
            }
            out.readings.extend(tables::registers::st23_readings(
                &rest,
                &cfg,
                &uoms,
                sel.as_ref(),
                stamp.0,
                stamp.1,
            ));
        } else {
            out.readings.extend(tables::registers::st23_readings(
                &st23,
                &cfg,
                &uoms,
                sel.as_ref(),
                stamp.0,
                stamp.1,
            ));
        }
    }
    if osgp {
        if let Some(d) = tables.get(osgp_tables::BT26) {
            let dims = cfg
                .registers
                .ok_or_else(|| Error::Unsupported("BT26 without BT21 (its dimensions)".into()))?;
            let sel = match tables.get(22) {
                Some(d) => Some(tables::registers::st22(d, &cfg, &dims)?),
                None => None,
            };
            for e in osgp_tables::bt26(d, &cfg, &dims)?.entries {
                let (ts, q) = match e.time {
                    Some(t) => (t, Quality::VALID),
                    None => (received_at_ms, Quality::TIME_FROM_RECEIVER),
                };
                out.readings.extend(osgp_tables::bt23_summations(
                    &e.registers,
                    sel.as_ref(),
                    ts,
                    q,
                ));
            }
        }
        if let Some(d) = tables.get(osgp_tables::BT28) {
            let dims = cfg
                .registers
                .ok_or_else(|| Error::Unsupported("BT28 without BT21 (its dimensions)".into()))?;
            let b = osgp_tables::bt28(d, &cfg, &dims)?;
            let (readings, unread) = osgp_tables::bt28_readings(&b, stamp.0, stamp.1);
            out.readings.extend(readings);
            if unread > 0 {
                out.attributes
                    .push((reg::OSGP_UNREAD_PRESENT, unread.to_string()));
            }
        }
        if let Some(d) = tables.get(osgp_tables::BT03) {
            let codes = osgp_tables::bt03_alarms(d, &cfg)?;
            out.events.extend(osgp_tables::alarm_events(
                &codes,
                received_at_ms,
                reg::OSGP_ALARMS,
            ));
        }
        if let Some(d) = tables.get(osgp_tables::ET79) {
            let act = cfg
                .log
                .ok_or_else(|| Error::Unsupported("ET79 without BT71 (its dimensions)".into()))?;
            let l = log::st74(d, &cfg, &act)?;
            out.events
                .extend(log::events(&l, received_at_ms, reg::OSGP_ALT_EVENT_LOG));
        }
    }
    let lp_tables = [64u16, 65, 66, 67];
    if lp_tables.iter().any(|&t| tables.get(t).is_some()) {
        let act = cfg
            .load_profile
            .clone()
            .ok_or_else(|| Error::Unsupported("ST 64 without ST 61 (its dimensions)".into()))?;
        let ctrl = match tables.get(62) {
            Some(d) => load_profile::st62(d, &cfg, &act)?,
            None => {
                return Err(Error::Unsupported(
                    "ST 64 without ST 62 (its interval format)".into(),
                ));
            }
        };
        let status = match tables.get(63) {
            Some(d) => load_profile::st63(d, &cfg, &act)?,
            None => Vec::new(),
        };
        for (set, id) in lp_tables.iter().enumerate() {
            let (Some(d), Some(c)) = (tables.get(*id), ctrl.get(set)) else {
                continue;
            };
            let iv = load_profile::data_set(d, &cfg, &act, set, c, status.get(set))?;
            out.readings
                .extend(load_profile::readings(&iv, &cfg, c, &uoms));
        }
    }
    for (id, source) in [(74u16, reg::HISTORY_LOG), (76, reg::EVENT_LOG)] {
        let Some(d) = tables.get(id) else { continue };
        let act = cfg
            .log
            .ok_or_else(|| Error::Unsupported(format!("ST {id} without ST 71 (its dimensions)")))?;
        let l = if id == 74 {
            log::st74(d, &cfg, &act)?
        } else {
            log::st76(d, &cfg, &act)?
        };
        out.events.extend(log::events(&l, received_at_ms, source));
    }
    const READ: [u16; 16] = [0, 1, 12, 21, 22, 23, 52, 55, 61, 62, 63, 64, 65, 66, 67, 71];
    const OSGP_READ: [u16; 4] = [
        osgp_tables::BT03,
        osgp_tables::BT26,
        osgp_tables::BT28,
        osgp_tables::ET79,
    ];
    for (id, d) in &tables.tables {
        if osgp && OSGP_READ.contains(id) {
            continue;
        }
        if !READ.contains(id) && *id != 74 && *id != 76 {
            let name = if osgp {
                osgp_tables::table_name(*id)
            } else if id & 0x0800 != 0 {
                format!("MT {}", id & 0x07FF)
            } else {
                format!("ST {id}")
            };
            out.attributes
                .push((reg::UNREAD_TABLE, format!("{name}: {} bytes", d.len())));
        }
    }
    Ok(())
}
