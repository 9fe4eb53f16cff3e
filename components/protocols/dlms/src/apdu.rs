//! xDLMS and ACSE APDUs (IEC 62056-5-3): the services a decoder meets on the wire, parsed
//! into their fields. Data values stay [`Data`]; what they mean is decided by
//! the crate's `interpret` module ([`crate::decode`]).

use ami_domain::{DecodeError, Obis};

use crate::axdr::Data;
use crate::cursor::Cursor;

/// A COSEM attribute or method reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Interface class.
    pub class_id: u16,
    /// Logical name.
    pub instance: Obis,
    /// Attribute or method index.
    pub index: i8,
}

/// Get-Data-Result: data or a data-access-result code.
pub type DataResult<'a> = Result<Data<'a>, u8>;

/// Which key protects a ciphered APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// The global (unicast or broadcast) key.
    Global,
    /// The dedicated key of the association.
    Dedicated,
}

/// A ciphered APDU: security header and the protected bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ciphered<'a> {
    /// The APDU tag (0xDB general-glo-ciphering, 0xC8 glo-get-request, ...).
    pub tag: u8,
    /// Global or dedicated key.
    pub key: KeyKind,
    /// The sender's system title, when the APDU carries it (general ciphering).
    pub system_title: Option<&'a [u8]>,
    /// Security control byte.
    pub security_control: u8,
    /// Invocation counter.
    pub invocation_counter: u32,
    /// The protected bytes: ciphertext (or plaintext when only authenticated) and the tag.
    pub protected: &'a [u8],
}

/// The parts of an AARQ / AARE (and RLRQ / RLRE) a decoder reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Association<'a> {
    /// Application context name (last arc: 1 LN, 2 SN, 3 LN ciphered, 4 SN ciphered).
    pub context: Option<u8>,
    /// Calling (AARQ) or responding (AARE) AP title: the system title.
    pub system_title: Option<&'a [u8]>,
    /// Authentication mechanism (last arc: 1 LLS, 2 HLS, 5 HLS-GMAC, ...).
    pub mechanism: Option<u8>,
    /// Authentication value (password or challenge).
    pub authentication_value: Option<&'a [u8]>,
    /// AARE result (0 accepted, 1 rejected-permanent, 2 rejected-transient).
    pub result: Option<u8>,
    /// AARE result-source diagnostic.
    pub diagnostic: Option<u8>,
    /// The user-information octets (an xDLMS InitiateRequest/Response, maybe ciphered).
    pub user_information: Option<&'a [u8]>,
}

/// A parsed APDU.
#[derive(Clone, Debug, PartialEq)]
pub enum Apdu<'a> {
    /// data-notification (0x0F).
    DataNotification {
        /// long-invoke-id-and-priority.
        long_invoke_id: u32,
        /// The date-time octets (12 bytes when present).
        date_time: Option<&'a [u8]>,
        /// The notification body.
        body: Data<'a>,
        /// The body's A-XDR bytes.
        body_bytes: &'a [u8],
    },
    /// event-notification-request (0xC2).
    EventNotification {
        /// The time octets, when present.
        time: Option<&'a [u8]>,
        /// The attribute that changed.
        attribute: Descriptor,
        /// Its value.
        value: Data<'a>,
    },
    /// get-request-normal (0xC0 01).
    GetRequest {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// The attribute asked for.
        attribute: Descriptor,
        /// Selective access: the selector and its parameters.
        access: Option<(u8, Data<'a>)>,
    },
    /// get-request-next (0xC0 02).
    GetRequestNext {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// The block acknowledged.
        block_number: u32,
    },
    /// get-response-normal (0xC4 01).
    GetResponse {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// The result.
        result: DataResult<'a>,
    },
    /// get-response-with-list (0xC4 03).
    GetResponseWithList {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// The results in request order.
        results: Vec<DataResult<'a>>,
    },
    /// get-response-with-datablock (0xC4 02).
    GetResponseWithDatablock {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// Whether this is the last block.
        last_block: bool,
        /// Block number.
        block_number: u32,
        /// The raw data of this block, or a data-access-result.
        raw: Result<&'a [u8], u8>,
    },
    /// set-request-normal (0xC1 01).
    SetRequest {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// The attribute written.
        attribute: Descriptor,
        /// The value.
        value: Data<'a>,
    },
    /// set-response-normal (0xC5 01).
    SetResponse {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// data-access-result (0 success).
        result: u8,
    },
    /// action-request-normal (0xC3 01).
    ActionRequest {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// The method invoked.
        method: Descriptor,
        /// Its parameters.
        parameters: Option<Data<'a>>,
    },
    /// action-response-normal (0xC7 01).
    ActionResponse {
        /// invoke-id-and-priority.
        invoke_id: u8,
        /// action-result (0 success).
        result: u8,
        /// Return parameters.
        data: Option<DataResult<'a>>,
    },
    /// AARQ (0x60), AARE (0x61), RLRQ (0x62), RLRE (0x63).
    Association {
        /// The tag.
        tag: u8,
        /// Its fields.
        fields: Association<'a>,
    },
    /// A ciphered APDU.
    Ciphered(Ciphered<'a>),
    /// Any other known APDU that carries no meter data (initiate, exception, errors, other
    /// request/response variants), by tag and name.
    Other {
        /// The tag.
        tag: u8,
        /// The service name.
        name: &'static str,
    },
}

fn descriptor(cur: &mut Cursor<'_>, what: &str) -> Result<Descriptor, DecodeError> {
    Ok(Descriptor {
        class_id: cur.u16(what)?,
        instance: Obis::from_bytes(cur.array(what)?),
        index: i8::from_be_bytes(cur.array(what)?),
    })
}

fn data<'a>(cur: &mut Cursor<'a>) -> Result<Data<'a>, DecodeError> {
    let (d, rest) = Data::parse(cur.rest())?;
    *cur = Cursor::new(rest);
    Ok(d)
}

fn data_result<'a>(cur: &mut Cursor<'a>) -> Result<DataResult<'a>, DecodeError> {
    match cur.u8("Get-Data-Result choice")? {
        0 => Ok(Ok(data(cur)?)),
        1 => Ok(Err(cur.u8("data-access-result")?)),
        c => Err(DecodeError::Malformed(format!(
            "Get-Data-Result choice {c}"
        ))),
    }
}

/// Skips an optional selective-access descriptor.
fn access_selection<'a>(cur: &mut Cursor<'a>) -> Result<Option<(u8, Data<'a>)>, DecodeError> {
    if cur.u8("access-selection flag")? == 0 {
        return Ok(None);
    }
    let selector = cur.u8("access selector")?;
    Ok(Some((selector, data(cur)?)))
}

fn other(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0x01 => "initiate-request",
        0x08 => "initiate-response",
        0x0E => "confirmed-service-error",
        0x18 => "unconfirmed-write-request",
        0x05 => "read-request",
        0x0C => "read-response",
        0x06 => "write-request",
        0x0D => "write-response",
        0xC0 => "get-request",
        0xC1 => "set-request",
        0xC3 => "action-request",
        0xC4 => "get-response",
        0xC5 => "set-response",
        0xC7 => "action-response",
        0xD8 => "exception-response",
        _ => return None,
    })
}

/// The name of a ciphered APDU tag and its key, for those this crate decrypts.
pub fn ciphered_service(tag: u8) -> Option<(&'static str, KeyKind)> {
    use KeyKind::{Dedicated, Global};
    Some(match tag {
        0x21 => ("glo-initiate-request", Global),
        0x28 => ("glo-initiate-response", Global),
        0xC8 => ("glo-get-request", Global),
        0xC9 => ("glo-set-request", Global),
        0xCA => ("glo-event-notification-request", Global),
        0xCB => ("glo-action-request", Global),
        0xCC => ("glo-get-response", Global),
        0xCD => ("glo-set-response", Global),
        0xCF => ("glo-action-response", Global),
        0xD0 => ("ded-get-request", Dedicated),
        0xD1 => ("ded-set-request", Dedicated),
        0xD2 => ("ded-event-notification-request", Dedicated),
        0xD3 => ("ded-action-request", Dedicated),
        0xD4 => ("ded-get-response", Dedicated),
        0xD5 => ("ded-set-response", Dedicated),
        0xD7 => ("ded-action-response", Dedicated),
        0xDB => ("general-glo-ciphering", Global),
        0xDC => ("general-ded-ciphering", Dedicated),
        _ => return None,
    })
}

fn ciphered<'a>(cur: &mut Cursor<'a>, tag: u8, key: KeyKind) -> Result<Ciphered<'a>, DecodeError> {
    let system_title = if tag == 0xDB || tag == 0xDC {
        Some(cur.octets("system-title")?)
    } else {
        None
    };
    let content = cur.octets("ciphered content")?;
    let mut c = Cursor::new(content);
    let security_control = c.u8("security control")?;
    let invocation_counter = c.u32("invocation counter")?;
    Ok(Ciphered {
        tag,
        key,
        system_title,
        security_control,
        invocation_counter,
        protected: c.rest(),
    })
}

/// A BER TLV inside an AARQ/AARE: tag, value (short and long definite lengths).
fn ber<'a>(cur: &mut Cursor<'a>) -> Result<(u8, &'a [u8]), DecodeError> {
    let tag = cur.u8("ACSE tag")?;
    let len = cur.length("ACSE length")?;
    Ok((tag, cur.take(len, "ACSE value")?))
}

/// The content of a tagged field: the innermost primitive value (`A2 03 02 01 00` gives `00`).
fn inner(value: &[u8]) -> &[u8] {
    let mut cur = Cursor::new(value);
    match ber(&mut cur) {
        Ok((_, v)) if cur.is_empty() => v,
        _ => value,
    }
}

fn association(body: &[u8]) -> Result<Association<'_>, DecodeError> {
    let mut cur = Cursor::new(body);
    let mut a = Association::default();
    while !cur.is_empty() {
        let (tag, value) = ber(&mut cur)?;
        match tag {
            0xA1 => a.context = inner(value).last().copied(),
            0xA6 | 0xA4 => a.system_title = Some(inner(value)),
            0x8B | 0x89 => a.mechanism = value.last().copied(),
            0xAC | 0xAA => a.authentication_value = Some(inner(value)),
            0xA2 => a.result = inner(value).last().copied(),
            0xA3 => a.diagnostic = inner(inner(value)).last().copied(),
            0xBE => a.user_information = Some(inner(value)),
            _ => {}
        }
    }
    Ok(a)
}

impl<'a> Apdu<'a> {
    /// Parses one APDU; bytes after it are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Apdu<'a>, DecodeError> {
        let mut cur = Cursor::new(bytes);
        let tag = cur.u8("APDU tag")?;
        match tag {
            0x0F => {
                let long_invoke_id = cur.u32("long-invoke-id-and-priority")?;
                let date_time = match cur.peek() {
                    // The Kaifa quirk: a date-time with its A-XDR data tag (09 0C ...).
                    Some(0x09) if cur.rest().get(1) == Some(&0x0C) => {
                        cur.u8("date-time")?;
                        Some(cur.octets("date-time")?)
                    }
                    _ => Some(cur.octets("date-time")?).filter(|d| !d.is_empty()),
                };
                let before = cur.rest();
                let body = data(&mut cur)?;
                let body_bytes = before
                    .get(..before.len() - cur.remaining())
                    .unwrap_or_default();
                Ok(Apdu::DataNotification {
                    long_invoke_id,
                    date_time,
                    body,
                    body_bytes,
                })
            }
            0xC2 => {
                let time = if cur.u8("event time flag")? != 0 {
                    Some(cur.octets("event time")?)
                } else {
                    None
                };
                let attribute = descriptor(&mut cur, "event attribute descriptor")?;
                let value = data(&mut cur)?;
                Ok(Apdu::EventNotification {
                    time,
                    attribute,
                    value,
                })
            }
            0xC0 | 0xC1 | 0xC3 | 0xC4 | 0xC5 | 0xC7 => {
                let choice = cur.u8("service choice")?;
                let invoke_id = cur.u8("invoke-id-and-priority")?;
                Self::service(tag, choice, invoke_id, &mut cur)
            }
            0x60..=0x63 => {
                let body = cur.octets("ACSE APDU")?;
                Ok(Apdu::Association {
                    tag,
                    fields: association(body)?,
                })
            }
            0xDD | 0xDF => Err(DecodeError::Unsupported(format!(
                "{} (0x{tag:02X})",
                if tag == 0xDD {
                    "general-ciphering"
                } else {
                    "general-signing"
                }
            ))),
            0xE0 => Err(DecodeError::Unsupported(
                "general-block-transfer: the adapter reassembles blocks".into(),
            )),
            _ => {
                if let Some((_, key)) = ciphered_service(tag) {
                    return Ok(Apdu::Ciphered(ciphered(&mut cur, tag, key)?));
                }
                match other(tag) {
                    Some(name) => Ok(Apdu::Other { tag, name }),
                    None => Err(DecodeError::Malformed(format!(
                        "unknown APDU tag 0x{tag:02X}"
                    ))),
                }
            }
        }
    }

    fn service(
        tag: u8,
        choice: u8,
        invoke_id: u8,
        cur: &mut Cursor<'a>,
    ) -> Result<Apdu<'a>, DecodeError> {
        Ok(match (tag, choice) {
            (0xC0, 1) => {
                let attribute = descriptor(cur, "attribute descriptor")?;
                let access = access_selection(cur)?;
                Apdu::GetRequest {
                    invoke_id,
                    attribute,
                    access,
                }
            }
            (0xC0, 2) => Apdu::GetRequestNext {
                invoke_id,
                block_number: cur.u32("block number")?,
            },
            (0xC4, 1) => Apdu::GetResponse {
                invoke_id,
                result: data_result(cur)?,
            },
            (0xC4, 2) => {
                let last_block = cur.u8("last-block")? != 0;
                let block_number = cur.u32("block number")?;
                let raw = match cur.u8("datablock result choice")? {
                    0 => Ok(cur.octets("raw-data")?),
                    1 => Err(cur.u8("data-access-result")?),
                    c => {
                        return Err(DecodeError::Malformed(format!(
                            "datablock result choice {c}"
                        )));
                    }
                };
                Apdu::GetResponseWithDatablock {
                    invoke_id,
                    last_block,
                    block_number,
                    raw,
                }
            }
            (0xC4, 3) => {
                let n = cur.length("get-response-with-list count")?;
                let mut results = Vec::with_capacity(n);
                for _ in 0..n {
                    results.push(data_result(cur)?);
                }
                Apdu::GetResponseWithList { invoke_id, results }
            }
            (0xC1, 1) => {
                let attribute = descriptor(cur, "attribute descriptor")?;
                access_selection(cur)?;
                Apdu::SetRequest {
                    invoke_id,
                    attribute,
                    value: data(cur)?,
                }
            }
            (0xC5, 1) => Apdu::SetResponse {
                invoke_id,
                result: cur.u8("set result")?,
            },
            (0xC3, 1) => {
                let method = descriptor(cur, "method descriptor")?;
                let parameters = if cur.u8("parameters flag")? != 0 {
                    Some(data(cur)?)
                } else {
                    None
                };
                Apdu::ActionRequest {
                    invoke_id,
                    method,
                    parameters,
                }
            }
            (0xC7, 1) => {
                let result = cur.u8("action result")?;
                let data = if cur.peek().is_some_and(|f| f != 0) {
                    cur.u8("return parameters flag")?;
                    Some(data_result(cur)?)
                } else {
                    None
                };
                Apdu::ActionResponse {
                    invoke_id,
                    result,
                    data,
                }
            }
            _ => match other(tag) {
                Some(name) => Apdu::Other { tag, name },
                None => {
                    return Err(DecodeError::Malformed(format!("APDU tag 0x{tag:02X}")));
                }
            },
        })
    }
}
