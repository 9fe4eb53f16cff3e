//! PSEM (Protocol Specification for Electric Metering) services: the requests and responses
//! that C12.18 packets, C12.21 modem sessions, C12.22 EPSEM and OSGP APDUs carry.
//!
//! Table ids, offsets and counts are big-endian (`<table: u16> <offset: u24> <count: u16>`);
//! table data travels with a one-byte checksum, the two's complement of the byte sum (the
//! standard). Some implementations send the one's complement (`!sum`): such data is accepted
//! and reported as [`Cksum::OnesComplement`], anything else fails with [`Error::Cksum`].
//!
//! OSGP encodes the same services without the checksum ([`Dialect::Osgp`]): the OSGP
//! Alliance's *MEP Client Developer's Guide* (078-0372-01BD), chapter 2, Tables 2.6-2.7
//! ("C12.18 Packet Structure"): `0x30` full read `<table> [<length>]`, `0x3F` partial
//! read `<table> <offset> <count>`, `0x40` full write `<table> <length> <data>`, `0x4F`
//! partial write `<table> <offset> <length> <data>`, `0x00` ok `<count> <table data>`; its
//! worked examples (RC4 Examples 1 and 2) carry no checksum byte. In that dialect a
//! checksum that is there (the service is one byte longer than its data) is still checked.

use crate::Error;
use crate::read::Reader;

/// How a table-data checksum matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cksum {
    /// The standard's two's complement of the byte sum.
    Standard,
    /// The one's complement of the byte sum (a variant some implementations send).
    OnesComplement,
    /// No checksum: OSGP's encoding ([`Dialect::Osgp`]).
    Absent,
}

/// Which encoding of the services is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// C12.18/C12.22 PSEM: table data with its checksum.
    #[default]
    Psem,
    /// OSGP: table data without a checksum (one is accepted and checked if present).
    Osgp,
}

/// The standard checksum of table data: the two's complement of the byte sum.
pub fn cksum(data: &[u8]) -> u8 {
    data.iter()
        .fold(0u8, |s, &b| s.wrapping_add(b))
        .wrapping_neg()
}

/// Checks `got` against `data`.
pub fn check_cksum(what: &'static str, data: &[u8], got: u8) -> Result<Cksum, Error> {
    let standard = cksum(data);
    if got == standard {
        Ok(Cksum::Standard)
    } else if got == standard.wrapping_sub(1) {
        Ok(Cksum::OnesComplement)
    } else {
        Err(Error::Cksum {
            what,
            got,
            computed: standard,
        })
    }
}

/// Table data with its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableData<'a> {
    /// The data.
    pub data: &'a [u8],
    /// The checksum byte.
    pub cksum: u8,
    /// How it matched.
    pub form: Cksum,
}

fn table_data<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
    dialect: Dialect,
) -> Result<TableData<'a>, Error> {
    let count = usize::from(r.u16_be("PSEM count")?);
    let data = r.take(count, what)?;
    if dialect == Dialect::Osgp && r.remaining() == 0 {
        return Ok(TableData {
            data,
            cksum: 0,
            form: Cksum::Absent,
        });
    }
    let cksum = r.u8("PSEM checksum")?;
    let form = check_cksum(what, data, cksum)?;
    Ok(TableData { data, cksum, form })
}

/// A PSEM request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `0x20` identification.
    Ident,
    /// `0x21` terminate.
    Terminate,
    /// `0x22` disconnect (C12.22).
    Disconnect,
    /// `0x30` full table read.
    ReadFull {
        /// Table id (bit 11: manufacturer table).
        table: u16,
    },
    /// `0x31`-`0x39` partial read by index (1 to 9 indices).
    ReadIndex {
        /// Table id.
        table: u16,
        /// The indices.
        index: Vec<u16>,
        /// Element count.
        count: u16,
    },
    /// `0x3E` default table read.
    ReadDefault,
    /// `0x3F` partial read by offset.
    ReadOffset {
        /// Table id.
        table: u16,
        /// Byte offset.
        offset: u32,
        /// Byte count.
        count: u16,
    },
    /// `0x40` full table write.
    WriteFull {
        /// Table id.
        table: u16,
        /// The table.
        data: TableData<'a>,
    },
    /// `0x41`-`0x49` partial write by index.
    WriteIndex {
        /// Table id.
        table: u16,
        /// The indices.
        index: Vec<u16>,
        /// The data.
        data: TableData<'a>,
    },
    /// `0x4F` partial write by offset.
    WriteOffset {
        /// Table id.
        table: u16,
        /// Byte offset.
        offset: u32,
        /// The data.
        data: TableData<'a>,
    },
    /// `0x50` logon.
    Logon {
        /// User id.
        user_id: u16,
        /// User name (10 bytes).
        user: &'a [u8],
    },
    /// `0x51` security (password; never printed by this crate).
    Security {
        /// The 20-byte password.
        password: &'a [u8],
        /// The user id C12.22 adds after the password (a sessionless request), if present.
        user_id: Option<u16>,
    },
    /// `0x52` logoff.
    Logoff,
    /// `0x53` authenticate (C12.21).
    Authenticate {
        /// The authentication algorithm's bytes.
        data: &'a [u8],
    },
    /// `0x60`-`0x6B` negotiate.
    Negotiate {
        /// Maximum packet size.
        packet_size: u16,
        /// Maximum number of packets per message.
        nbr_packets: u8,
        /// Baud rate codes offered (0 to 11).
        baud_rates: &'a [u8],
    },
    /// `0x70` wait.
    Wait {
        /// Seconds to keep the session.
        seconds: u8,
    },
    /// `0x71` timing setup (C12.21).
    TimingSetup {
        /// Traffic, inter-character, response timeouts and retries.
        data: &'a [u8],
    },
}

impl Request<'_> {
    /// The service's name as the vectors and `ami decode` print it.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ident => "ident",
            Request::Terminate => "terminate",
            Request::Disconnect => "disconnect",
            Request::ReadFull { .. } => "read-full",
            Request::ReadIndex { .. } => "read-partial-index",
            Request::ReadDefault => "read-default",
            Request::ReadOffset { .. } => "read-partial-offset",
            Request::WriteFull { .. } => "write-full",
            Request::WriteIndex { .. } => "write-partial-index",
            Request::WriteOffset { .. } => "write-partial-offset",
            Request::Logon { .. } => "logon",
            Request::Security { .. } => "security",
            Request::Logoff => "logoff",
            Request::Authenticate { .. } => "authenticate",
            Request::Negotiate { .. } => "negotiate",
            Request::Wait { .. } => "wait",
            Request::TimingSetup { .. } => "timing-setup",
        }
    }

    /// The table the request names, if it names one.
    pub fn table(&self) -> Option<u16> {
        match self {
            Request::ReadFull { table }
            | Request::ReadIndex { table, .. }
            | Request::ReadOffset { table, .. }
            | Request::WriteFull { table, .. }
            | Request::WriteIndex { table, .. }
            | Request::WriteOffset { table, .. } => Some(*table),
            _ => None,
        }
    }

    /// Reads a request; `bytes` is the whole service (code first), nothing may follow it.
    pub fn parse(bytes: &[u8]) -> Result<Request<'_>, Error> {
        Request::parse_in(bytes, Dialect::Psem)
    }

    /// Reads a request in `dialect`.
    pub fn parse_in(bytes: &[u8], dialect: Dialect) -> Result<Request<'_>, Error> {
        let mut r = Reader::new(bytes);
        let code = r.u8("PSEM request code")?;
        let req = match code {
            0x20 => Request::Ident,
            0x21 => Request::Terminate,
            0x22 => Request::Disconnect,
            0x30 => {
                let table = r.u16_be("PSEM table id")?;
                // OSGP's full read may name the length it expects (MEP guide, Table 2.6).
                if dialect == Dialect::Osgp && r.remaining() == 2 {
                    r.u16_be("OSGP full read length")?;
                }
                Request::ReadFull { table }
            }
            0x31..=0x39 => {
                let table = r.u16_be("PSEM table id")?;
                let index = (0..code - 0x30)
                    .map(|_| r.u16_be("PSEM index"))
                    .collect::<Result<_, _>>()?;
                Request::ReadIndex {
                    table,
                    index,
                    count: r.u16_be("PSEM count")?,
                }
            }
            0x3E => Request::ReadDefault,
            0x3F => Request::ReadOffset {
                table: r.u16_be("PSEM table id")?,
                offset: r.u24_be("PSEM offset")?,
                count: r.u16_be("PSEM count")?,
            },
            0x40 => Request::WriteFull {
                table: r.u16_be("PSEM table id")?,
                data: table_data(&mut r, "PSEM write data", dialect)?,
            },
            0x41..=0x49 => {
                let table = r.u16_be("PSEM table id")?;
                let index = (0..code - 0x40)
                    .map(|_| r.u16_be("PSEM index"))
                    .collect::<Result<_, _>>()?;
                Request::WriteIndex {
                    table,
                    index,
                    data: table_data(&mut r, "PSEM write data", dialect)?,
                }
            }
            0x4F => Request::WriteOffset {
                table: r.u16_be("PSEM table id")?,
                offset: r.u24_be("PSEM offset")?,
                data: table_data(&mut r, "PSEM write data", dialect)?,
            },
            0x50 => Request::Logon {
                user_id: r.u16_be("PSEM logon user id")?,
                user: r.take(10, "PSEM logon user")?,
            },
            0x51 => Request::Security {
                password: r.take(20, "PSEM security password")?,
                user_id: if r.remaining() >= 2 {
                    Some(r.u16_be("PSEM security user id")?)
                } else {
                    None
                },
            },
            0x52 => Request::Logoff,
            0x53 => Request::Authenticate { data: r.rest() },
            0x60..=0x6B => Request::Negotiate {
                packet_size: r.u16_be("PSEM negotiate packet size")?,
                nbr_packets: r.u8("PSEM negotiate packet count")?,
                baud_rates: r.take(usize::from(code - 0x60), "PSEM negotiate baud rates")?,
            },
            0x70 => Request::Wait {
                seconds: r.u8("PSEM wait time")?,
            },
            0x71 => Request::TimingSetup { data: r.rest() },
            other => {
                return Err(Error::Unsupported(format!(
                    "PSEM request code 0x{other:02X}"
                )));
            }
        };
        if matches!(
            req,
            Request::Authenticate { .. } | Request::TimingSetup { .. }
        ) {
            return Ok(req);
        }
        if r.remaining() != 0 {
            return Err(Error::malformed(
                "PSEM request",
                format!("{} bytes after a {} request", r.remaining(), req.name()),
            ));
        }
        Ok(req)
    }
}

/// A PSEM response code (`0x00` ok, `0x01`-`0x0A` errors; others are reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseCode(pub u8);

impl ResponseCode {
    /// The code's short name (`ok`, `err`, `sns`, ...).
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00 => "ok",
            0x01 => "err",
            0x02 => "sns",
            0x03 => "isc",
            0x04 => "onp",
            0x05 => "iar",
            0x06 => "bsy",
            0x07 => "dnr",
            0x08 => "dlk",
            0x09 => "rno",
            0x0A => "isss",
            0x0B => "sme",
            0x0C => "uat",
            0x0D => "netr",
            0x0E => "nett",
            0x0F => "rqtl",
            0x10 => "rstl",
            0x11 => "sgnp",
            0x12 => "sgerr",
            _ => "reserved",
        }
    }

    /// What the code means.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x00 => "acknowledge, no problems",
            0x01 => "error, rejected for an unspecified reason",
            0x02 => "service not supported",
            0x03 => "insufficient security clearance",
            0x04 => "operation not possible",
            0x05 => "inappropriate action requested",
            0x06 => "device busy",
            0x07 => "data not ready",
            0x08 => "data locked",
            0x09 => "renegotiate request",
            0x0A => "invalid service sequence state",
            0x0B => "security mechanism error",
            0x0C => "unknown application title",
            0x0D => "network timeout",
            0x0E => "network not reachable",
            0x0F => "request too large",
            0x10 => "response too large",
            0x11 => "segmentation not possible",
            0x12 => "segmentation error",
            _ => "reserved response code",
        }
    }

    /// The acknowledgement `ok`.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }
}

/// What came with a response, read by the request it answers (or guessed without one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseBody<'a> {
    /// Nothing after the code.
    Empty,
    /// Table data (read responses).
    Table(TableData<'a>),
    /// Identification: standard, version, revision, and the feature list.
    Ident {
        /// Reference standard (0 = C12.18, 1 = C12.21, 2 = C12.22...).
        standard: u8,
        /// Version.
        version: u8,
        /// Revision.
        revision: u8,
        /// The bytes after them (feature list up to `0x00`).
        features: &'a [u8],
    },
    /// Negotiate: the packet size, packet count and baud rate accepted.
    Negotiate {
        /// Packet size.
        packet_size: u16,
        /// Packets per message.
        nbr_packets: u8,
        /// Baud rate code.
        baud_rate: u8,
    },
    /// Bytes this crate does not interpret (an error code's extra byte, unknown shapes).
    Raw(&'a [u8]),
}

/// A PSEM response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// The code.
    pub code: ResponseCode,
    /// What follows it.
    pub body: ResponseBody<'a>,
}

/// The kind of request a response answers, as far as its shape goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answers {
    /// A read: `ok` carries table data.
    Read,
    /// Identification.
    Ident,
    /// Negotiation.
    Negotiate,
    /// Anything whose `ok` carries nothing.
    Plain,
}

impl Answers {
    /// The shape of the answer to `req`.
    pub fn of(req: &Request<'_>) -> Answers {
        match req {
            Request::ReadFull { .. }
            | Request::ReadIndex { .. }
            | Request::ReadOffset { .. }
            | Request::ReadDefault => Answers::Read,
            Request::Ident => Answers::Ident,
            Request::Negotiate { .. } => Answers::Negotiate,
            _ => Answers::Plain,
        }
    }
}

impl<'a> Response<'a> {
    /// Reads a response to a request of shape `answers`; without it, an `ok` followed by
    /// `<count> <data> <cksum>` that fits exactly is read as table data.
    pub fn parse(bytes: &'a [u8], answers: Option<Answers>) -> Result<Response<'a>, Error> {
        Response::parse_in(bytes, answers, Dialect::Psem)
    }

    /// Reads a response in `dialect` (see [`Response::parse`]).
    pub fn parse_in(
        bytes: &'a [u8],
        answers: Option<Answers>,
        dialect: Dialect,
    ) -> Result<Response<'a>, Error> {
        let mut r = Reader::new(bytes);
        let code = ResponseCode(r.u8("PSEM response code")?);
        if code.0 >= 0x20 {
            return Err(Error::malformed(
                "PSEM response",
                format!("0x{:02X} is a request code", code.0),
            ));
        }
        let body = if r.remaining() == 0 {
            ResponseBody::Empty
        } else if !code.is_ok() {
            ResponseBody::Raw(r.rest())
        } else {
            match answers {
                Some(Answers::Read) => {
                    ResponseBody::Table(table_data(&mut r, "PSEM read data", dialect)?)
                }
                Some(Answers::Ident) => ResponseBody::Ident {
                    standard: r.u8("PSEM ident standard")?,
                    version: r.u8("PSEM ident version")?,
                    revision: r.u8("PSEM ident revision")?,
                    features: r.rest(),
                },
                Some(Answers::Negotiate) => ResponseBody::Negotiate {
                    packet_size: r.u16_be("PSEM negotiate packet size")?,
                    nbr_packets: r.u8("PSEM negotiate packet count")?,
                    baud_rate: r.u8("PSEM negotiate baud rate")?,
                },
                Some(Answers::Plain) => ResponseBody::Raw(r.rest()),
                None => {
                    let rest = r.rest();
                    let count = rest
                        .get(..2)
                        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])));
                    let osgp = dialect == Dialect::Osgp;
                    if count.is_some_and(|c| c + 3 == rest.len() || (osgp && c + 2 == rest.len())) {
                        ResponseBody::Table(table_data(&mut r, "PSEM read data", dialect)?)
                    } else {
                        ResponseBody::Raw(rest)
                    }
                }
            }
        };
        if matches!(answers, Some(Answers::Read | Answers::Negotiate)) && r.remaining() != 0 {
            return Err(Error::malformed(
                "PSEM response",
                format!("{} bytes after the response", r.remaining()),
            ));
        }
        Ok(Response { code, body })
    }
}

/// A PSEM service: a request (codes `0x20` and up) or a response (below `0x20`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service<'a> {
    /// A request.
    Request(Request<'a>),
    /// A response.
    Response(Response<'a>),
}

impl<'a> Service<'a> {
    /// Reads one service by its first byte; a response is read without its request.
    pub fn parse(bytes: &'a [u8]) -> Result<Service<'a>, Error> {
        match bytes.first() {
            Some(&c) if c >= 0x20 => Ok(Service::Request(Request::parse(bytes)?)),
            Some(_) => Ok(Service::Response(Response::parse(bytes, None)?)),
            None => Err(Error::Truncated {
                what: "PSEM service",
                at: 0,
                need: 1,
                have: 0,
            }),
        }
    }
}

/// Builds table data with its standard checksum: `<count> <data> <cksum>`.
pub fn build_table_data(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 3);
    out.extend_from_slice(&(data.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(data);
    out.push(cksum(data));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_forms() {
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 0];
        assert_eq!(cksum(&data), 0xD3);
        assert_eq!(check_cksum("t", &data, 0xD3), Ok(Cksum::Standard));
        assert_eq!(check_cksum("t", &data, 0xD2), Ok(Cksum::OnesComplement));
        assert!(check_cksum("t", &data, 0x00).is_err());
    }

    #[test]
    fn read_offset_request() {
        let r = Request::parse(&[0x3F, 0x12, 0x34, 0, 0x01, 0xF4, 0x03, 0xE8]).unwrap();
        assert_eq!(
            r,
            Request::ReadOffset {
                table: 0x1234,
                offset: 500,
                count: 1000
            }
        );
    }
}
