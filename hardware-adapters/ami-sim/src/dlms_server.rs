//! The simulated DLMS meter as a DLMS/COSEM server (IEC 62056-5-3, logical-name
//! referencing): what answers a head-end's client that associates and reads, without I/O
//! (one request APDU in, one answer APDU out; [`crate::serve`] carries them over TCP).
//!
//! * Association: an AARQ for the logical-name context without ciphering, with no
//!   authentication (the public client: read only) or lowest level security (the password of
//!   [`ServerConfig::password`]: read, SET and ACTION); the AARE carries the InitiateResponse
//!   with the conformance both sides support and the server's PDU size, and only negotiated
//!   services are served. A wrong password is refused with diagnostic 13
//!   (authentication-failure), a ciphered context with 2, another mechanism with 11, an
//!   InitiateRequest it cannot serve with a confirmed-service-error.
//! * GET (normal, and answers longer than the client's PDU size in data blocks fetched with
//!   get-request-next) of the push list ([`crate::dlms::objects`]: data, registers with
//!   scaler-unit, the clock), the disconnect control `0-0:96.3.10` (class 70) and the load
//!   profile `1-0:99.1.0` (class 7: buffer, capture objects, capture period, entries), whose
//!   buffer is read whole, by range over the clock column (selector 1) or by entry
//!   (selector 2). Its columns are the meter's clock, the AMR status `0-0:96.10.1`, and
//!   import and export energy `1-0:1.8.0` and `1-0:2.8.0`; the meter captures them at the end
//!   of every step it has supply, whether or not its push went out.
//! * SET of the clock (class 8 attribute 2) and ACTION remote_disconnect and
//!   remote_reconnect (class 70 methods 1 and 2) act on the meter as the matching
//!   [`Command`]s do; RLRQ ends the association with an RLRE.
//!
//! Time values without a deviation (unspecified) are the meter's local time (CET/CEST).
//! A meter without supply answers nothing ([`Session::handle`] gives `None`).
//!
//! Anything else is answered, never dropped: an object it does not have with
//! data-access-result object-undefined (4), an attribute it does not serve with
//! object-unavailable (11), a request before the association or one it cannot parse with an
//! exception-response.

use std::collections::VecDeque;

use ami_dlms::apdu::{Apdu, Association, Descriptor};
use ami_dlms::axdr::Data as Parsed;
use ami_dlms::datetime::DateTime;
use ami_domain::Obis;

use crate::clock;
use crate::command::Command;
use crate::dlms::{Data, date_time, ln, objects, put_length};
use crate::fleet::{Meter, PROFILE_LEN, ProfileEntry};

/// The disconnect control object.
pub const DISCONNECT_CONTROL: Obis = Obis::new(0, 0, 96, 3, 10, 255);
/// The load profile object.
pub const LOAD_PROFILE: Obis = Obis::new(1, 0, 99, 1, 0, 255);
/// The clock object.
pub const CLOCK: Obis = Obis::new(0, 0, 1, 0, 0, 255);
/// The AMR profile status object (the profile's status column).
pub const PROFILE_STATUS: Obis = Obis::new(0, 0, 96, 10, 1, 255);

/// Conformance bits the server supports: block-transfer-with-get (11), data-notification
/// (16), get (19), set (20), selective-access (21), event-notification (22), action (23).
pub const CONFORMANCE: [u8; 3] = [0x00, 0x10, 0x9F];

const CONTEXT_LN: u8 = 1;
const MECHANISM_NONE: u8 = 0;
const MECHANISM_LLS: u8 = 1;

/// Conformance bit masks (byte, mask) of the services served.
const BLOCK_TRANSFER_WITH_GET: (usize, u8) = (1, 0x10);
const SET: (usize, u8) = (2, 0x08);
const SELECTIVE_ACCESS: (usize, u8) = (2, 0x04);
const ACTION: (usize, u8) = (2, 0x01);

/// data-access-result codes (IEC 62056-5-3).
mod result {
    pub const READ_WRITE_DENIED: u8 = 3;
    pub const OBJECT_UNDEFINED: u8 = 4;
    pub const OBJECT_CLASS_INCONSISTENT: u8 = 9;
    pub const OBJECT_UNAVAILABLE: u8 = 11;
    pub const TYPE_UNMATCHED: u8 = 12;
    pub const SCOPE_OF_ACCESS_VIOLATED: u8 = 13;
    pub const NO_LONG_GET_IN_PROGRESS: u8 = 16;
    pub const DATA_BLOCK_NUMBER_INVALID: u8 = 19;
    pub const TEMPORARY_FAILURE: u8 = 2;
    pub const OTHER_REASON: u8 = 250;
}

/// How the simulated meters serve.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The lowest-level-security password.
    pub password: Vec<u8>,
    /// The largest APDU the server takes and sends (server-max-receive-pdu-size).
    pub max_pdu: u16,
    /// The load profile's capture period, seconds (the simulator's step).
    pub capture_period_s: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            password: b"00000000".to_vec(),
            max_pdu: 1024,
            capture_period_s: 900,
        }
    }
}

/// What to do with an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send this APDU and go on.
    Reply(Vec<u8>),
    /// Send this APDU (an RLRE); the association is over.
    Released(Vec<u8>),
}

impl Answer {
    /// The APDU to send.
    pub fn apdu(&self) -> &[u8] {
        match self {
            Answer::Reply(a) | Answer::Released(a) => a,
        }
    }
}

#[derive(Clone, Debug)]
struct Associated {
    /// The largest APDU we may send (the smaller of both sides' PDU sizes).
    max_pdu: usize,
    /// The negotiated conformance block.
    conformance: [u8; 3],
    /// Authenticated (LLS): SET and ACTION allowed.
    writable: bool,
}

impl Associated {
    fn has(&self, (byte, mask): (usize, u8)) -> bool {
        self.conformance.get(byte).is_some_and(|b| b & mask != 0)
    }
}

#[derive(Clone, Debug)]
struct Blocks {
    invoke: u8,
    data: Vec<u8>,
    sent: usize,
    block: u32,
}

/// One client's conversation with one meter.
#[derive(Clone, Debug, Default)]
pub struct Session {
    associated: Option<Associated>,
    blocks: Option<Blocks>,
}

fn ber(tag: u8, value: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    put_length(out, value.len());
    out.extend_from_slice(value);
}

fn aare(result: u8, diagnostic: u8, mechanism: Option<u8>, user_information: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    ber(
        0xA1,
        &[0x06, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x01, CONTEXT_LN],
        &mut body,
    );
    ber(0xA2, &[0x02, 0x01, result], &mut body);
    ber(0xA3, &[0xA1, 0x03, 0x02, 0x01, diagnostic], &mut body);
    if let Some(m) = mechanism {
        body.extend_from_slice(&[0x88, 0x02, 0x07, 0x80]);
        body.extend_from_slice(&[0x89, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x02, m]);
    }
    if !user_information.is_empty() {
        let mut inner = Vec::new();
        ber(0x04, user_information, &mut inner);
        ber(0xBE, &inner, &mut body);
    }
    let mut out = Vec::new();
    ber(0x61, &body, &mut out);
    out
}

/// The xDLMS InitiateRequest's conformance block and client PDU size, or the
/// confirmed-service-error (initiate error) to answer it with.
fn initiate(b: &[u8]) -> Result<([u8; 3], u16), u8> {
    const OTHER: u8 = 0;
    const VERSION_TOO_LOW: u8 = 1;
    const PDU_TOO_SHORT: u8 = 3;
    let mut rest = match b {
        [0x01, rest @ ..] => rest,
        _ => return Err(OTHER),
    };
    // dedicated-key, response-allowed, proposed-quality-of-service: OPTIONAL / DEFAULT.
    for optional in 0..3 {
        rest = match rest {
            [0, r @ ..] => r,
            [_, r @ ..] if optional == 0 => {
                let (&n, r) = r.split_first().ok_or(OTHER)?;
                r.get(usize::from(n)..).ok_or(OTHER)?
            }
            [_, _, r @ ..] => r,
            _ => return Err(OTHER),
        };
    }
    match rest {
        [version, 0x5F, 0x1F, 0x04, _, c0, c1, c2, p0, p1] => {
            if *version < 6 {
                return Err(VERSION_TOO_LOW);
            }
            let pdu = u16::from_be_bytes([*p0, *p1]);
            if pdu != 0 && pdu < 12 {
                return Err(PDU_TOO_SHORT);
            }
            Ok(([*c0, *c1, *c2], pdu))
        }
        _ => Err(OTHER),
    }
}

fn exception(state_error: u8, service_error: u8) -> Answer {
    Answer::Reply(vec![0xD8, state_error, service_error])
}

fn get_result(invoke: u8, result: Result<Data, u8>) -> Vec<u8> {
    let mut out = vec![0xC4, 0x01, invoke];
    match result {
        Ok(d) => {
            out.push(0);
            d.encode(&mut out);
        }
        Err(code) => out.extend_from_slice(&[1, code]),
    }
    out
}

fn block_apdu(invoke: u8, last: bool, number: u32, raw: Result<&[u8], u8>) -> Vec<u8> {
    let mut out = vec![0xC4, 0x02, invoke, u8::from(last)];
    out.extend_from_slice(&number.to_be_bytes());
    match raw {
        Ok(raw) => {
            out.push(0);
            put_length(&mut out, raw.len());
            out.extend_from_slice(raw);
        }
        Err(code) => out.extend_from_slice(&[1, code]),
    }
    out
}

/// The profile's columns: class, logical name, attribute.
const CAPTURE_OBJECTS: [(u16, Obis, i8); 4] = [
    (8, CLOCK, 2),
    (1, PROFILE_STATUS, 2),
    (3, Obis::new(1, 0, 1, 8, 0, 255), 2),
    (3, Obis::new(1, 0, 2, 8, 0, 255), 2),
];

fn row(e: &ProfileEntry, columns: &[usize]) -> Data {
    Data::Structure(
        columns
            .iter()
            .map(|c| match c {
                0 => Data::Octets(date_time(row_ms(e)).to_vec()),
                1 => Data::U8(e.status),
                2 => Data::U32(u32::try_from(e.import_wh).unwrap_or(u32::MAX)),
                _ => Data::U32(u32::try_from(e.export_wh).unwrap_or(u32::MAX)),
            })
            .collect(),
    )
}

/// The instant a COSEM date-time names; without a deviation, as the meter's local time.
fn instant(d: &Parsed<'_>) -> Option<i64> {
    let dt = match d {
        Parsed::DateTime(b) => DateTime::from_bytes(b),
        other => DateTime::from_slice(other.as_bytes()?)?,
    };
    if dt.deviation.is_some() {
        return dt.unix_ms();
    }
    let local = dt.local_ms()?;
    // CET is UTC+1, CEST UTC+2: the offset in force an hour before the local time read as UTC.
    let guess = local - 3_600_000;
    Some(local - clock::offset_s(guess.div_euclid(1000)) * 1000)
}

/// A capture's time as its row carries it (COSEM date-times hold hundredths).
fn row_ms(e: &ProfileEntry) -> i64 {
    e.clock_ms - e.clock_ms.rem_euclid(10)
}

/// The columns a selective access asks for (capture object definitions); empty: all.
fn selected_columns(values: Option<&Parsed<'_>>) -> Result<Vec<usize>, u8> {
    let all = (0..CAPTURE_OBJECTS.len()).collect();
    let Some(list) = values else { return Ok(all) };
    let items = list.elements().ok_or(result::TYPE_UNMATCHED)?;
    if items.is_empty() {
        return Ok(all);
    }
    if items.len() > CAPTURE_OBJECTS.len() {
        return Err(result::SCOPE_OF_ACCESS_VIOLATED);
    }
    let columns: Vec<usize> = items
        .iter()
        .map(|def| {
            let f = def.elements().ok_or(result::TYPE_UNMATCHED)?;
            let class = f.first().and_then(Parsed::as_i128);
            let name = f.get(1).and_then(Parsed::as_bytes);
            let attr = f.get(2).and_then(Parsed::as_i128);
            CAPTURE_OBJECTS
                .iter()
                .position(|(c, o, a)| {
                    class == Some(i128::from(*c))
                        && name == Some(&o.to_bytes()[..])
                        && attr == Some(i128::from(*a))
                })
                .ok_or(result::SCOPE_OF_ACCESS_VIOLATED)
        })
        .collect::<Result<_, u8>>()?;
    let mut seen = columns.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != columns.len() {
        return Err(result::SCOPE_OF_ACCESS_VIOLATED);
    }
    Ok(columns)
}

/// The profile buffer, whole or as the selective access restricts it.
fn buffer(profile: &VecDeque<ProfileEntry>, access: Option<&(u8, Parsed<'_>)>) -> Result<Data, u8> {
    let (rows, columns): (Vec<&ProfileEntry>, Vec<usize>) = match access {
        None => (profile.iter().collect(), selected_columns(None)?),
        Some((1, p)) => {
            // range_descriptor: restricting object, from, to, selected values.
            let f = p.elements().ok_or(result::TYPE_UNMATCHED)?;
            let restricting = f
                .first()
                .and_then(Parsed::elements)
                .ok_or(result::TYPE_UNMATCHED)?;
            let on_clock = restricting.first().and_then(Parsed::as_i128) == Some(8)
                && restricting.get(1).and_then(Parsed::as_bytes) == Some(&CLOCK.to_bytes()[..])
                && restricting.get(2).and_then(Parsed::as_i128) == Some(2);
            if !on_clock {
                return Err(result::SCOPE_OF_ACCESS_VIOLATED);
            }
            let from = f.get(1).and_then(instant).ok_or(result::TYPE_UNMATCHED)?;
            let to = f.get(2).and_then(instant).ok_or(result::TYPE_UNMATCHED)?;
            (
                profile
                    .iter()
                    .filter(|e| (from..=to).contains(&row_ms(e)))
                    .collect(),
                selected_columns(f.get(3))?,
            )
        }
        Some((2, p)) => {
            // entry_descriptor: from_entry, to_entry (0: the last), from and to column.
            let f = p.elements().ok_or(result::TYPE_UNMATCHED)?;
            let num = |i: usize| {
                f.get(i)
                    .and_then(Parsed::as_i128)
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or(result::TYPE_UNMATCHED)
            };
            let (from, to) = (num(0)?.max(1), num(1)?);
            let to = if to == 0 {
                profile.len()
            } else {
                to.min(profile.len())
            };
            let (c_from, c_to) = (num(2)?, num(3)?);
            let c_to = if c_to == 0 {
                CAPTURE_OBJECTS.len()
            } else {
                c_to
            };
            if c_from == 0 || c_from > c_to || c_to > CAPTURE_OBJECTS.len() {
                return Err(result::SCOPE_OF_ACCESS_VIOLATED);
            }
            (
                profile
                    .iter()
                    .skip(from - 1)
                    .take((to + 1).saturating_sub(from))
                    .collect(),
                (c_from - 1..c_to).collect(),
            )
        }
        Some(_) => return Err(result::SCOPE_OF_ACCESS_VIOLATED),
    };
    Ok(Data::Array(
        rows.into_iter().map(|e| row(e, &columns)).collect(),
    ))
}

fn read(
    cfg: &ServerConfig,
    m: &Meter,
    now_ms: i64,
    d: &Descriptor,
    access: Option<&(u8, Parsed<'_>)>,
) -> Result<Data, u8> {
    let (class, obis, attr) = (d.class_id, d.instance, d.index);
    if access.is_some() && !(class == 7 && obis == LOAD_PROFILE && attr == 2) {
        return Err(result::SCOPE_OF_ACCESS_VIOLATED);
    }
    let known_class = if obis == DISCONNECT_CONTROL {
        Some(70)
    } else if obis == LOAD_PROFILE {
        Some(7)
    } else if obis == PROFILE_STATUS {
        Some(1)
    } else {
        objects(m, now_ms)
            .into_iter()
            .find(|c| c.obis == obis)
            .map(|c| c.class)
    };
    match known_class {
        None => return Err(result::OBJECT_UNDEFINED),
        Some(k) if k != class => return Err(result::OBJECT_CLASS_INCONSISTENT),
        Some(_) => {}
    }
    if attr == 1 {
        return Ok(ln(obis));
    }
    match (class, attr) {
        (70, 2) => Ok(Data::Boolean(m.relay_closed)),
        (70, 3) => Ok(Data::Enum(u8::from(m.relay_closed))),
        // control_mode 2: remote disconnect and reconnect allowed.
        (70, 4) => Ok(Data::Enum(2)),
        (7, 2) => buffer(m.profile(), access),
        // The AMR profile status: the status of the last capture.
        (1, 2) if obis == PROFILE_STATUS => {
            Ok(Data::U8(m.profile().back().map_or(0, |e| e.status)))
        }
        (7, 3) => Ok(Data::Array(
            CAPTURE_OBJECTS
                .iter()
                .map(|(c, o, a)| {
                    Data::Structure(vec![Data::U16(*c), ln(*o), Data::I8(*a), Data::U16(0)])
                })
                .collect(),
        )),
        (7, 4) => Ok(Data::U32(cfg.capture_period_s)),
        // sort_method 1: fifo.
        (7, 5) => Ok(Data::Enum(1)),
        (7, 7) => Ok(Data::U32(
            u32::try_from(m.profile().len()).unwrap_or(u32::MAX),
        )),
        (7, 8) => Ok(Data::U32(u32::try_from(PROFILE_LEN).unwrap_or(u32::MAX))),
        (1 | 3 | 8, 2) | (3, 3) => {
            let o = objects(m, now_ms)
                .into_iter()
                .find(|c| c.obis == obis)
                .ok_or(result::OBJECT_UNDEFINED)?;
            match (attr, o.scaler_unit) {
                (2, _) => Ok(o.value),
                (_, Some((s, u))) => Ok(Data::Structure(vec![Data::I8(s), Data::Enum(u)])),
                (_, None) => Err(result::OBJECT_UNAVAILABLE),
            }
        }
        _ => Err(result::OBJECT_UNAVAILABLE),
    }
}

impl Session {
    /// A conversation before its AARQ.
    pub fn new() -> Self {
        Session::default()
    }

    /// Whether an association is open.
    pub fn associated(&self) -> bool {
        self.associated.is_some()
    }

    /// Answers one request APDU for meter `m` at true UTC time `now_ms`; a meter without
    /// supply answers nothing.
    pub fn handle(
        &mut self,
        cfg: &ServerConfig,
        m: &mut Meter,
        now_ms: i64,
        apdu: &[u8],
    ) -> Option<Answer> {
        if !m.powered() {
            self.associated = None;
            self.blocks = None;
            return None;
        }
        Some(self.answer(cfg, m, now_ms, apdu))
    }

    fn answer(&mut self, cfg: &ServerConfig, m: &mut Meter, now_ms: i64, apdu: &[u8]) -> Answer {
        let parsed = match Apdu::parse(apdu) {
            Ok(p) => p,
            // service-unknown, other-reason: unparseable or a service we do not know.
            Err(_) => return exception(2, 3),
        };
        let Some(assoc) = self.associated.clone() else {
            return match parsed {
                Apdu::Association { tag: 0x60, fields } => self.associate(cfg, &fields),
                // service-not-allowed, operation-not-possible: no association.
                _ => exception(1, 1),
            };
        };
        match parsed {
            Apdu::Association { tag: 0x60, fields } => self.associate(cfg, &fields),
            Apdu::Association { tag: 0x62, .. } => {
                self.associated = None;
                self.blocks = None;
                // RLRE, reason normal.
                Answer::Released(vec![0x63, 0x03, 0x80, 0x01, 0x00])
            }
            Apdu::GetRequest {
                invoke_id,
                attribute,
                access,
            } => {
                self.blocks = None;
                let value = if access.is_some() && !assoc.has(SELECTIVE_ACCESS) {
                    Err(result::SCOPE_OF_ACCESS_VIOLATED)
                } else {
                    read(cfg, m, now_ms, &attribute, access.as_ref())
                };
                self.get_answer(invoke_id, value)
            }
            Apdu::GetRequestNext {
                invoke_id,
                block_number,
            } => self.next_block(invoke_id, block_number),
            Apdu::SetRequest {
                invoke_id,
                attribute,
                value,
            } => {
                if !assoc.has(SET) {
                    return exception(1, 2);
                }
                let code = if assoc.writable {
                    set(m, now_ms, &attribute, &value)
                } else {
                    result::READ_WRITE_DENIED
                };
                Answer::Reply(vec![0xC5, 0x01, invoke_id, code])
            }
            Apdu::ActionRequest {
                invoke_id, method, ..
            } => {
                if !assoc.has(ACTION) {
                    return exception(1, 2);
                }
                let code = if assoc.writable {
                    action(m, now_ms, &method)
                } else {
                    result::READ_WRITE_DENIED
                };
                Answer::Reply(vec![0xC7, 0x01, invoke_id, code, 0x00])
            }
            // A service we parse but do not serve: service-not-allowed, service-not-supported.
            _ => exception(1, 2),
        }
    }

    fn associate(&mut self, cfg: &ServerConfig, f: &Association<'_>) -> Answer {
        self.associated = None;
        self.blocks = None;
        let refuse = |diagnostic: u8| Answer::Reply(aare(1, diagnostic, f.mechanism, &[]));
        if f.context != Some(CONTEXT_LN) {
            // application-context-name-not-supported (ciphered contexts too).
            return refuse(2);
        }
        match (f.mechanism, f.authentication_value) {
            (None | Some(MECHANISM_NONE), _) => {}
            (Some(MECHANISM_LLS), Some(p)) if p == cfg.password.as_slice() => {}
            (Some(MECHANISM_LLS), Some(_)) => return refuse(13),
            (Some(MECHANISM_LLS), None) => return refuse(14),
            (Some(_), _) => return refuse(11),
        }
        let Some(ui) = f.user_information else {
            return refuse(1);
        };
        let (proposed, client_pdu) = match initiate(ui) {
            Ok(v) => v,
            Err(code) => {
                return Answer::Reply(aare(1, 1, f.mechanism, &[0x0E, 0x01, 0x06, code]));
            }
        };
        let conformance = [
            proposed[0] & CONFORMANCE[0],
            proposed[1] & CONFORMANCE[1],
            proposed[2] & CONFORMANCE[2],
        ];
        if conformance == [0, 0, 0] {
            // incompatible-conformance.
            return Answer::Reply(aare(1, 1, f.mechanism, &[0x0E, 0x01, 0x06, 0x02]));
        }
        let client_pdu = if client_pdu == 0 {
            u16::MAX
        } else {
            client_pdu
        };
        self.associated = Some(Associated {
            max_pdu: usize::from(client_pdu.min(cfg.max_pdu)),
            conformance,
            writable: f.mechanism == Some(MECHANISM_LLS),
        });
        let mut ir = vec![0x08, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00];
        ir.extend_from_slice(&conformance);
        ir.extend_from_slice(&cfg.max_pdu.to_be_bytes());
        // vaa-name: 0x0007 for logical-name referencing.
        ir.extend_from_slice(&[0x00, 0x07]);
        Answer::Reply(aare(0, 0, f.mechanism, &ir))
    }

    fn get_answer(&mut self, invoke: u8, value: Result<Data, u8>) -> Answer {
        let whole = get_result(invoke, value);
        let Some(assoc) = &self.associated else {
            return exception(1, 1);
        };
        if whole.len() <= assoc.max_pdu {
            return Answer::Reply(whole);
        }
        if !assoc.has(BLOCK_TRANSFER_WITH_GET) {
            // Too long for one PDU, and the client takes no blocks.
            return Answer::Reply(get_result(invoke, Err(result::OTHER_REASON)));
        }
        let max = assoc.max_pdu;
        // Data blocks: the A-XDR of the value, after `C4 01 invoke 00`.
        let data = whole.get(4..).unwrap_or_default().to_vec();
        self.blocks = Some(Blocks {
            invoke,
            data,
            sent: 0,
            block: 0,
        });
        self.send_block(max)
    }

    fn send_block(&mut self, max: usize) -> Answer {
        let Some(b) = self.blocks.as_mut() else {
            return Answer::Reply(block_apdu(0, true, 0, Err(result::NO_LONG_GET_IN_PROGRESS)));
        };
        // C4 02 invoke last(1) number(4) choice(1) length(up to 3).
        let room = max.saturating_sub(12).max(1);
        let end = (b.sent + room).min(b.data.len());
        let last = end == b.data.len();
        b.block += 1;
        let apdu = block_apdu(
            b.invoke,
            last,
            b.block,
            Ok(b.data.get(b.sent..end).unwrap_or_default()),
        );
        b.sent = end;
        if last {
            self.blocks = None;
        }
        Answer::Reply(apdu)
    }

    fn next_block(&mut self, invoke: u8, acknowledged: u32) -> Answer {
        let max = self.associated.as_ref().map_or(usize::MAX, |a| a.max_pdu);
        match &mut self.blocks {
            None => Answer::Reply(block_apdu(
                invoke,
                true,
                acknowledged,
                Err(result::NO_LONG_GET_IN_PROGRESS),
            )),
            Some(b) if b.block != acknowledged => {
                self.blocks = None;
                Answer::Reply(block_apdu(
                    invoke,
                    true,
                    acknowledged,
                    Err(result::DATA_BLOCK_NUMBER_INVALID),
                ))
            }
            Some(b) => {
                b.invoke = invoke;
                self.send_block(max)
            }
        }
    }
}

fn set(m: &mut Meter, now_ms: i64, d: &Descriptor, value: &Parsed<'_>) -> u8 {
    match (d.class_id, d.instance, d.index) {
        (8, o, 2) if o == CLOCK => match instant(value) {
            Some(to) => match m.command(now_ms, Command::SetClock(to)) {
                Ok(_) => 0,
                Err(_) => result::TEMPORARY_FAILURE,
            },
            None => result::TYPE_UNMATCHED,
        },
        (_, o, _) if o == CLOCK || o == DISCONNECT_CONTROL || o == LOAD_PROFILE => {
            result::READ_WRITE_DENIED
        }
        _ => {
            if objects(m, now_ms).iter().any(|c| c.obis == d.instance) {
                result::READ_WRITE_DENIED
            } else {
                result::OBJECT_UNDEFINED
            }
        }
    }
}

fn action(m: &mut Meter, now_ms: i64, d: &Descriptor) -> u8 {
    if d.instance != DISCONNECT_CONTROL {
        return result::OBJECT_UNDEFINED;
    }
    if d.class_id != 70 {
        return result::OBJECT_CLASS_INCONSISTENT;
    }
    let command = match d.index {
        1 => Command::Disconnect,
        2 => Command::Reconnect,
        _ => return result::OBJECT_UNAVAILABLE,
    };
    match m.command(now_ms, command) {
        Ok(_) => 0,
        Err(_) => result::TEMPORARY_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{Fleet, FleetConfig, ProtocolMix};

    fn dlms_fleet() -> Fleet {
        let cfg = FleetConfig {
            meters: 1,
            mix: ProtocolMix {
                dsmr: 0,
                dlms: 1,
                wmbus: 0,
                iec62056_21: 0,
            },
            ..FleetConfig::default()
        };
        Fleet::with_config(&cfg).unwrap()
    }

    fn aarq(mechanism: Option<(u8, &[u8])>) -> Vec<u8> {
        let mut body = Vec::new();
        ber(
            0xA1,
            &[0x06, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x01, 1],
            &mut body,
        );
        if let Some((m, v)) = mechanism {
            body.extend_from_slice(&[0x8A, 0x02, 0x07, 0x80]);
            body.extend_from_slice(&[0x8B, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x02, m]);
            let mut inner = Vec::new();
            ber(0x80, v, &mut inner);
            ber(0xAC, &inner, &mut body);
        }
        let ir = [
            0x01, 0, 0, 0, 0x06, 0x5F, 0x1F, 0x04, 0x00, 0x00, 0x7E, 0x1F, 0x01, 0x00,
        ];
        let mut inner = Vec::new();
        ber(0x04, &ir, &mut inner);
        ber(0xBE, &inner, &mut body);
        let mut out = Vec::new();
        ber(0x60, &body, &mut out);
        out
    }

    fn handle(s: &mut Session, cfg: &ServerConfig, m: &mut Meter, apdu: &[u8]) -> Answer {
        s.handle(cfg, m, 1_767_225_600_000, apdu)
            .expect("a powered meter answers")
    }

    fn aare_fields(a: &Answer) -> (Option<u8>, Option<u8>) {
        match Apdu::parse(a.apdu()).unwrap() {
            Apdu::Association { tag: 0x61, fields } => (fields.result, fields.diagnostic),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn passwords_decide_the_association() {
        let mut fleet = dlms_fleet();
        fleet.step(1_767_225_600_000, 900_000);
        let cfg = ServerConfig::default();
        let m = &mut fleet.meters[0];
        let mut s = Session::new();
        let a = handle(&mut s, &cfg, m, &aarq(Some((1, b"wrong"))));
        assert_eq!(aare_fields(&a), (Some(1), Some(13)));
        assert!(!s.associated());
        // Before an association, a GET is an exception, not an answer.
        let get = [0xC0, 0x01, 0xC1, 0, 3, 1, 0, 1, 8, 0, 255, 2, 0];
        assert_eq!(handle(&mut s, &cfg, m, &get).apdu()[0], 0xD8);
        let a = handle(&mut s, &cfg, m, &aarq(Some((5, b"0123456789abcdef"))));
        assert_eq!(aare_fields(&a), (Some(1), Some(11)));
        let a = handle(&mut s, &cfg, m, &aarq(Some((1, b"00000000"))));
        assert_eq!(aare_fields(&a), (Some(0), Some(0)));
        let a = handle(&mut s, &cfg, m, &aarq(None));
        assert_eq!(aare_fields(&a), (Some(0), Some(0)));
    }

    #[test]
    fn hostile_requests_get_answers() {
        let mut fleet = dlms_fleet();
        fleet.step(1_767_225_600_000, 900_000);
        let cfg = ServerConfig::default();
        let m = &mut fleet.meters[0];
        let mut s = Session::new();
        handle(&mut s, &cfg, m, &aarq(None));
        for junk in [
            &[][..],
            &[0xC0],
            &[0xC0, 0x01],
            &[
                0xC0, 0x01, 0xC1, 0, 7, 1, 0, 99, 1, 0, 255, 2, 1, 1, 2, 0xFF,
            ],
            &[0x60, 0x82, 0xFF, 0xFF],
            &[0xC0, 0x02, 0xC1, 0, 0, 0, 9],
            &[0xEE; 40],
        ] {
            let a = handle(&mut s, &cfg, m, junk);
            assert!(!a.apdu().is_empty(), "{junk:02x?}");
        }
        // An object the meter does not have.
        let get = [0xC0, 0x01, 0xC1, 0, 3, 1, 0, 99, 8, 0, 255, 2, 0];
        assert_eq!(
            handle(&mut s, &cfg, m, &get).apdu(),
            [0xC4, 0x01, 0xC1, 1, 4]
        );
        // The same column twice: refused, not multiplied.
        let clock_col = [
            0x02, 0x04, 0x12, 0, 8, 0x09, 6, 0, 0, 1, 0, 0, 255, 0x0F, 2, 0x12, 0, 0,
        ];
        let mut dup = vec![
            0xC0, 0x01, 0xC1, 0, 7, 1, 0, 99, 1, 0, 255, 2, 1, 1, 0x02, 0x04,
        ];
        dup.extend_from_slice(&[
            0x02, 0x04, 0x12, 0, 8, 0x09, 6, 0, 0, 1, 0, 0, 255, 0x0F, 2, 0x12, 0, 0,
        ]);
        dup.extend_from_slice(&[0x09, 0x0C, 0x07, 0xEA, 1, 1, 0xFF, 0, 0, 0, 0, 0, 0, 0]);
        dup.extend_from_slice(&[0x09, 0x0C, 0x07, 0xEA, 1, 2, 0xFF, 0, 0, 0, 0, 0, 0, 0]);
        dup.extend_from_slice(&[0x01, 0x02]);
        dup.extend_from_slice(&clock_col);
        dup.extend_from_slice(&clock_col);
        assert_eq!(
            handle(&mut s, &cfg, m, &dup).apdu(),
            [0xC4, 0x01, 0xC1, 1, 13]
        );
    }

    #[test]
    fn the_public_client_reads_but_does_not_switch_and_a_dark_meter_is_silent() {
        let mut fleet = dlms_fleet();
        fleet.step(1_767_225_600_000, 900_000);
        let cfg = ServerConfig::default();
        let m = &mut fleet.meters[0];
        let mut s = Session::new();
        handle(&mut s, &cfg, m, &aarq(None));
        let disconnect = [0xC3, 0x01, 0xC1, 0, 70, 0, 0, 96, 3, 10, 255, 1, 1, 0x0F, 0];
        assert_eq!(
            handle(&mut s, &cfg, m, &disconnect).apdu(),
            [0xC7, 0x01, 0xC1, 3, 0]
        );
        assert!(m.relay_closed);
        handle(&mut s, &cfg, m, &aarq(Some((1, b"00000000"))));
        assert_eq!(
            handle(&mut s, &cfg, m, &disconnect).apdu(),
            [0xC7, 0x01, 0xC1, 0, 0]
        );
        assert!(!m.relay_closed);
        m.outage_until_ms = Some(i64::MAX);
        assert_eq!(s.handle(&cfg, m, 0, &aarq(None)), None);
    }
}
