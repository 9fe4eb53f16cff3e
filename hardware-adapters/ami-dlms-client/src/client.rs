//! The DLMS/COSEM client: one association with one logical device over a [`Link`].
//!
//! [`Client::connect`] opens the link (SNRM/UA on HDLC) and associates: an AARQ with the
//! proposed conformance block and maximum PDU size, lowest level security (the password in
//! the AARQ) or HLS-GMAC (our challenge in the AARQ, the meter's in the AARE, then
//! `reply_to_HLS_authentication` on the association object 0-0:40.0.0.255 carrying
//! `SC ‖ IC ‖ GMAC(SC ‖ AK ‖ StoC)`, and the meter's own reply checked the same way). With
//! ciphering, the xDLMS InitiateRequest and every GET, SET and ACTION travel glo-ciphered
//! under the global unicast key with our invocation counter, and the answers are deciphered
//! and their counters checked. [`Client::release`] sends RLRQ, waits for RLRE and closes the
//! link (DISC/UA).
//!
//! GET answers that come in data blocks are fetched block by block (get-request-next) and put
//! back together; every answer is bounded by the negotiated PDU size and by the link's limit.

use std::time::Duration;

use ami_dlms::apdu::{Apdu, DataResult};
use ami_dlms::axdr::{self, Data};
use ami_domain::Obis;
use rand_core::RngCore;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{ClientError, association_diagnostic};
use crate::link::{Framing, Link, Received};
use crate::security::{self, Keys, Protection};

/// How the client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Authentication {
    /// No security (the public client).
    None,
    /// Lowest level security: this password.
    Low(Vec<u8>),
    /// High level security with GMAC (mechanism 5): needs [`ClientConfig::keys`].
    HlsGmac,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authentication::None => f.write_str("None"),
            Authentication::Low(_) => f.write_str("Low(..)"),
            Authentication::HlsGmac => f.write_str("HlsGmac"),
        }
    }
}

/// What the client proposes and how it protects its APDUs.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Framing of the link.
    pub framing: Framing,
    /// Authentication.
    pub authentication: Authentication,
    /// Keys and our system title, for HLS-GMAC and ciphering.
    pub keys: Option<Keys>,
    /// Protection of GET, SET and ACTION (and of the InitiateRequest): anything but `None`
    /// asks for the logical-name-with-ciphering context.
    pub protection: Protection,
    /// Largest APDU we take (client-max-receive-pdu-size).
    pub max_pdu: u16,
    /// Proposed conformance block (24 bits).
    pub conformance: [u8; 3],
    /// How long one answer may take.
    pub timeout: Duration,
}

impl ClientConfig {
    /// A public client (no security) over `framing`.
    pub fn new(framing: Framing) -> Self {
        ClientConfig {
            framing,
            authentication: Authentication::None,
            keys: None,
            protection: Protection::None,
            max_pdu: 1024,
            // priority-mgmt, attribute0 get, block transfer with get/set/action, multiple
            // references; get, set, selective access, event notification, action.
            conformance: [0x00, 0x7E, 0x1F],
            timeout: Duration::from_secs(5),
        }
    }
}

/// What the association agreed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Associated {
    /// Negotiated conformance block.
    pub conformance: [u8; 3],
    /// Largest APDU the meter takes.
    pub server_max_pdu: u16,
    /// The meter's system title (AARE responding-AP-title), when it sent one.
    pub server_system_title: Option<[u8; 8]>,
    /// The authentication mechanism's last arc (0 none, 1 LLS, 5 HLS-GMAC).
    pub mechanism: u8,
}

/// The A-XDR bytes of a value read, and the frames its answer came in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// The value, A-XDR encoded (parse with [`Data::parse_all`]).
    pub data: Vec<u8>,
    /// The frames as received (ciphered answers as they came, before deciphering).
    pub frames: Vec<Vec<u8>>,
}

impl Answer {
    /// The value.
    pub fn value(&self) -> Result<Data<'_>, ClientError> {
        Ok(Data::parse_all(&self.data)?)
    }
}

/// A COSEM attribute or method: class, logical name, index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Interface class.
    pub class: u16,
    /// Logical name.
    pub obis: Obis,
    /// Attribute or method index.
    pub index: i8,
}

impl Target {
    /// Attribute or method `index` of `obis` of class `class`.
    pub const fn new(class: u16, obis: Obis, index: i8) -> Self {
        Target { class, obis, index }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.class.to_be_bytes());
        out.extend_from_slice(&self.obis.to_bytes());
        out.push(self.index as u8);
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "class {} {} #{}", self.class, self.obis, self.index)
    }
}

const CONTEXT_LN: u8 = 1;
const CONTEXT_LN_CIPHERED: u8 = 3;
const MECHANISM_LLS: u8 = 1;
const MECHANISM_GMAC: u8 = 5;
/// The current association object.
pub const ASSOCIATION: Obis = Obis::new(0, 0, 40, 0, 0, 255);

fn ber(tag: u8, value: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    axdr::encode_length(value.len(), out);
    out.extend_from_slice(value);
}

/// The xDLMS InitiateRequest.
pub fn initiate_request(conformance: [u8; 3], max_pdu: u16) -> Vec<u8> {
    let mut v = vec![0x01, 0x00, 0x00, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00];
    v.extend_from_slice(&conformance);
    v.extend_from_slice(&max_pdu.to_be_bytes());
    v
}

/// The fields of an xDLMS InitiateResponse.
pub fn parse_initiate_response(b: &[u8]) -> Result<([u8; 3], u16), ClientError> {
    let bad = |m: &str| ClientError::Protocol(format!("InitiateResponse: {m}: {}", hex::encode(b)));
    match b.first() {
        Some(0x08) => {}
        Some(0x0E) => {
            return Err(ClientError::Service(format!(
                "the meter refused the InitiateRequest (confirmed-service-error {})",
                hex::encode(b)
            )));
        }
        _ => return Err(bad("not an InitiateResponse")),
    }
    let mut rest = b.get(1..).unwrap_or_default();
    // negotiated-quality-of-service OPTIONAL
    match rest.first() {
        Some(0) => rest = rest.get(1..).unwrap_or_default(),
        Some(_) => rest = rest.get(2..).unwrap_or_default(),
        None => return Err(bad("cut short")),
    }
    match rest {
        [_version, 0x5F, 0x1F, 0x04, _, c0, c1, c2, p0, p1, ..] => {
            Ok(([*c0, *c1, *c2], u16::from_be_bytes([*p0, *p1])))
        }
        _ => Err(bad("no conformance block and PDU size")),
    }
}

/// Builds an AARQ.
pub fn aarq(
    context: u8,
    calling_title: Option<&[u8; 8]>,
    mechanism: Option<(u8, &[u8])>,
    user_information: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    ber(
        0xA1,
        &[0x06, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x01, context],
        &mut body,
    );
    if let Some(t) = calling_title {
        let mut inner = Vec::new();
        ber(0x04, t, &mut inner);
        ber(0xA6, &inner, &mut body);
    }
    if let Some((m, value)) = mechanism {
        body.extend_from_slice(&[0x8A, 0x02, 0x07, 0x80]);
        body.extend_from_slice(&[0x8B, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x02, m]);
        let mut inner = Vec::new();
        ber(0x80, value, &mut inner);
        ber(0xAC, &inner, &mut body);
    }
    let mut inner = Vec::new();
    ber(0x04, user_information, &mut inner);
    ber(0xBE, &inner, &mut body);
    let mut out = Vec::new();
    ber(0x60, &body, &mut out);
    out
}

/// A connected, associated client.
#[derive(Debug)]
pub struct Client<S> {
    link: Link<S>,
    config: ClientConfig,
    associated: Option<Associated>,
    invoke_id: u8,
    /// The last invocation counter seen from the meter.
    server_ic: Option<u32>,
    /// Our StoC-check material: the client challenge of HLS.
    client_challenge: Vec<u8>,
}

fn ciphered_tag(plain: u8) -> Option<u8> {
    Some(match plain {
        0xC0 => 0xC8,
        0xC1 => 0xC9,
        0xC3 => 0xCB,
        _ => return None,
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Client<S> {
    /// Opens the link over `io` and associates.
    pub async fn connect(io: S, config: ClientConfig) -> Result<Self, ClientError> {
        if matches!(config.authentication, Authentication::HlsGmac) && config.keys.is_none() {
            return Err(ClientError::Config("HLS-GMAC needs keys".into()));
        }
        if config.protection != Protection::None && config.keys.is_none() {
            return Err(ClientError::Config("ciphering needs keys".into()));
        }
        let mut link = Link::new(io, config.framing, config.timeout);
        link.set_max_apdu(usize::from(config.max_pdu).max(1 << 16));
        let mut client = Client {
            link,
            config,
            associated: None,
            invoke_id: 0,
            server_ic: None,
            client_challenge: Vec::new(),
        };
        client.link.open().await?;
        if let Err(e) = client.associate().await {
            // Leave the line as we found it; the association error is what matters.
            let _ = client.link.close().await;
            return Err(e);
        }
        Ok(client)
    }

    /// What the association agreed.
    pub fn associated(&self) -> Option<&Associated> {
        self.associated.as_ref()
    }

    /// The link (for what HDLC negotiated).
    pub fn link(&self) -> &Link<S> {
        &self.link
    }

    /// Our next invocation counter (to persist between associations).
    pub fn invocation_counter(&self) -> Option<u32> {
        self.config.keys.as_ref().map(|k| k.invocation_counter)
    }

    fn keys(&self) -> Result<&Keys, ClientError> {
        self.config
            .keys
            .as_ref()
            .ok_or_else(|| ClientError::Config("no keys configured".into()))
    }

    fn next_ic(&mut self) -> Result<u32, ClientError> {
        let keys = self
            .config
            .keys
            .as_mut()
            .ok_or_else(|| ClientError::Config("no keys configured".into()))?;
        let ic = keys.invocation_counter;
        keys.invocation_counter = ic
            .checked_add(1)
            .ok_or_else(|| ClientError::Cipher("invocation counter exhausted".into()))?;
        Ok(ic)
    }

    async fn associate(&mut self) -> Result<(), ClientError> {
        let ciphered = self.config.protection != Protection::None;
        let context = if ciphered {
            CONTEXT_LN_CIPHERED
        } else {
            CONTEXT_LN
        };
        let initiate = initiate_request(self.config.conformance, self.config.max_pdu);
        let user_information = if ciphered {
            let sc = self.config.protection.security_control();
            let ic = self.next_ic()?;
            let keys = self.keys()?;
            let content = security::protect(keys, &keys.system_title, sc, ic, &initiate)?;
            let mut v = vec![0x21];
            axdr::encode_length(content.len(), &mut v);
            v.extend_from_slice(&content);
            v
        } else {
            initiate
        };
        let (mechanism, value) = match &self.config.authentication {
            Authentication::None => (None, Vec::new()),
            Authentication::Low(p) => (Some(MECHANISM_LLS), p.clone()),
            Authentication::HlsGmac => {
                let mut c = vec![0u8; 16];
                rand_core::OsRng.fill_bytes(&mut c);
                self.client_challenge = c.clone();
                (Some(MECHANISM_GMAC), c)
            }
        };
        let title = if ciphered || mechanism == Some(MECHANISM_GMAC) {
            Some(self.keys()?.system_title)
        } else {
            None
        };
        let request = aarq(
            context,
            title.as_ref(),
            mechanism.map(|m| (m, value.as_slice())),
            &user_information,
        );
        let got = self.link.exchange(&request, "AARQ").await?;
        let aare = repair_aare(&got.apdu);
        let fields = match Apdu::parse(&aare)? {
            Apdu::Association { tag: 0x61, fields } => fields,
            Apdu::Other { name, .. } => {
                return Err(ClientError::Protocol(format!("{name} instead of an AARE")));
            }
            other => {
                return Err(ClientError::Protocol(format!(
                    "{other:?} instead of an AARE"
                )));
            }
        };
        let result = fields.result.unwrap_or(1);
        let diagnostic = fields.diagnostic.unwrap_or(0);
        if result != 0 {
            // A refused InitiateRequest says more than the ACSE diagnostic.
            if let Some(ui) = fields.user_information
                && ui.first() == Some(&0x0E)
            {
                return Err(ClientError::Refused {
                    result,
                    diagnostic,
                    reason: format!(
                        "{}; xDLMS initiate error {}",
                        association_diagnostic(diagnostic),
                        hex::encode(ui)
                    ),
                });
            }
            return Err(ClientError::Refused {
                result,
                diagnostic,
                reason: association_diagnostic(diagnostic).to_owned(),
            });
        }
        let server_system_title = match fields.system_title {
            Some(t) => Some(<[u8; 8]>::try_from(t).map_err(|_| {
                ClientError::Protocol(format!("responding AP title of {} bytes", t.len()))
            })?),
            None => None,
        };
        let ui = fields.user_information.ok_or_else(|| {
            ClientError::Protocol("AARE without user-information (InitiateResponse)".into())
        })?;
        let initiate_response = match ui.first() {
            Some(0x28) => {
                let st = server_system_title.ok_or_else(|| {
                    ClientError::Protocol(
                        "glo-initiate-response without the meter's system title".into(),
                    )
                })?;
                self.decipher_content(&st, ui.get(1..).unwrap_or_default())?
            }
            _ => ui.to_vec(),
        };
        let (conformance, server_max_pdu) = parse_initiate_response(&initiate_response)?;
        // Meters need not repeat the mechanism name in the AARE.
        let mechanism = fields.mechanism.or(mechanism).unwrap_or(0);
        self.associated = Some(Associated {
            conformance,
            server_max_pdu,
            server_system_title,
            mechanism,
        });
        if matches!(self.config.authentication, Authentication::HlsGmac) {
            self.hls_gmac(&fields.authentication_value.map(<[u8]>::to_vec), diagnostic)
                .await?;
        }
        tracing::debug!(associated = ?self.associated, "associated");
        Ok(())
    }

    async fn hls_gmac(
        &mut self,
        stoc: &Option<Vec<u8>>,
        diagnostic: u8,
    ) -> Result<(), ClientError> {
        let stoc = stoc.as_ref().ok_or_else(|| {
            ClientError::Authentication(format!(
                "HLS-GMAC: the AARE carries no server challenge (diagnostic {diagnostic})"
            ))
        })?;
        let server_title = self
            .associated
            .as_ref()
            .and_then(|a| a.server_system_title)
            .ok_or_else(|| {
                ClientError::Authentication(
                    "HLS-GMAC: the AARE carries no responding AP title (system title)".into(),
                )
            })?;
        let ic = self.next_ic()?;
        let keys = self.keys()?;
        let reply = security::gmac(keys, &keys.system_title, ic, stoc)?;
        let target = Target::new(15, ASSOCIATION, 1);
        let answer = self
            .action(target, Some(&Data::OctetString(&reply)))
            .await
            .map_err(|e| match e {
                ClientError::Action { code, .. } => ClientError::Authentication(format!(
                    "the meter refused our reply to its challenge (action-result {code}): wrong authentication key"
                )),
                other => other,
            })?;
        let fctos = answer
            .as_ref()
            .and_then(|a| Data::parse_all(&a.data).ok().and_then(|d| d.as_bytes().map(<[u8]>::to_vec)))
            .ok_or_else(|| {
                ClientError::Authentication(
                    "the meter did not accept our reply to its challenge (no f(CtoS) returned): wrong authentication key or system title".into(),
                )
            })?;
        let [sc, a, b, c, d, ..] = fctos[..] else {
            return Err(ClientError::Authentication(format!(
                "f(CtoS) of {} bytes",
                fctos.len()
            )));
        };
        let server_ic = u32::from_be_bytes([a, b, c, d]);
        if sc != security::SC_AUTHENTICATED {
            return Err(ClientError::Authentication(format!(
                "f(CtoS) with security control 0x{sc:02x}"
            )));
        }
        let expected = security::gmac(
            self.keys()?,
            &server_title,
            server_ic,
            &self.client_challenge,
        )?;
        if expected != fctos {
            return Err(ClientError::Authentication(
                "the meter's answer to our challenge does not verify: it does not hold our keys"
                    .into(),
            ));
        }
        Ok(())
    }

    fn decipher_content(
        &mut self,
        system_title: &[u8; 8],
        body: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        // body: length + content
        let (content, _) = length_prefixed(body)?;
        let (ic, plain) = security::unprotect(self.keys()?, system_title, content)?;
        if let Some(last) = self.server_ic
            && ic <= last
        {
            return Err(ClientError::Cipher(format!(
                "the meter's invocation counter {ic} does not go up (last {last}): replay?"
            )));
        }
        self.server_ic = Some(ic);
        Ok(plain)
    }

    /// invoke-id-and-priority: high priority, confirmed, invoke id 1. One request is out at
    /// a time on a link, so one id suffices (and some servers answer long reads with the id
    /// they started with).
    fn next_invoke(&mut self) -> u8 {
        self.invoke_id = 1;
        0xC0 | self.invoke_id
    }

    /// Sends a plaintext xDLMS request (ciphering it when the association does), returns the
    /// plaintext answer and the frames as received.
    async fn request(
        &mut self,
        plain: Vec<u8>,
        what: &str,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), ClientError> {
        let associated = self
            .associated
            .as_ref()
            .ok_or_else(|| ClientError::Protocol("not associated".into()))?;
        let server_max = usize::from(associated.server_max_pdu);
        let server_title = associated.server_system_title;
        let protection = self.config.protection;
        let apdu = if protection == Protection::None {
            plain
        } else {
            let tag = plain
                .first()
                .copied()
                .and_then(ciphered_tag)
                .ok_or_else(|| ClientError::Protocol("cannot cipher this request".into()))?;
            let ic = self.next_ic()?;
            let keys = self.keys()?;
            let content = security::protect(
                keys,
                &keys.system_title,
                protection.security_control(),
                ic,
                &plain,
            )?;
            let mut v = vec![tag];
            axdr::encode_length(content.len(), &mut v);
            v.extend_from_slice(&content);
            v
        };
        if server_max > 0 && apdu.len() > server_max {
            return Err(ClientError::TooLarge(format!(
                "{what}: APDU of {} bytes, the meter takes {server_max}",
                apdu.len()
            )));
        }
        let Received {
            apdu: answer,
            frames,
        } = self.link.exchange(&apdu, what).await?;
        let plain = match answer.first() {
            Some(0xCC | 0xCD | 0xCF) => {
                let st = server_title.ok_or_else(|| {
                    ClientError::Cipher("ciphered answer but no meter system title".into())
                })?;
                self.decipher_content(&st, answer.get(1..).unwrap_or_default())?
            }
            Some(0xDB) => {
                let rest = answer.get(1..).unwrap_or_default();
                let (st, rest) = length_prefixed(rest)?;
                let st: [u8; 8] = st
                    .try_into()
                    .map_err(|_| ClientError::Cipher("system title not 8 bytes".into()))?;
                self.decipher_content(&st, rest)?
            }
            Some(0xC4 | 0xC5 | 0xC7) if protection != Protection::None => {
                return Err(ClientError::Cipher(format!(
                    "the meter answered {what} in plaintext on a ciphered association"
                )));
            }
            _ => answer,
        };
        Ok((plain, frames))
    }

    fn check_invoke(&self, got: u8, what: &str) -> Result<(), ClientError> {
        if got & 0x0F != self.invoke_id {
            return Err(ClientError::Protocol(format!(
                "answer to {what} with invoke id {} (sent {})",
                got & 0x0F,
                self.invoke_id
            )));
        }
        Ok(())
    }

    /// GET of one attribute, with an optional selective access (selector, parameters).
    pub async fn get(
        &mut self,
        target: Target,
        access: Option<(u8, &Data<'_>)>,
    ) -> Result<Answer, ClientError> {
        let what = format!("GET {target}");
        let invoke = self.next_invoke();
        let mut req = vec![0xC0, 0x01, invoke];
        target.encode(&mut req);
        match access {
            None => req.push(0),
            Some((selector, params)) => {
                req.extend_from_slice(&[1, selector]);
                params.encode(&mut req);
            }
        }
        let (plain, mut frames) = self.request(req, &what).await?;
        let mut data = Vec::new();
        let mut expected_block = 1u32;
        let mut current = plain;
        loop {
            match service_answer(&current)? {
                Apdu::GetResponse { invoke_id, result } => {
                    self.check_invoke(invoke_id, &what)?;
                    return match result {
                        Ok(_) => Ok(Answer {
                            data: get_response_data(&current)?,
                            frames,
                        }),
                        Err(code) => Err(ClientError::DataAccess { what, code }),
                    };
                }
                Apdu::GetResponseWithDatablock {
                    invoke_id,
                    last_block,
                    block_number,
                    raw,
                } => {
                    self.check_invoke(invoke_id, &what)?;
                    if block_number != expected_block {
                        return Err(ClientError::Protocol(format!(
                            "{what}: data block {block_number}, expected {expected_block}"
                        )));
                    }
                    let raw = raw.map_err(|code| ClientError::DataAccess {
                        what: what.clone(),
                        code,
                    })?;
                    data.extend_from_slice(raw);
                    if data.len() > (1 << 24) {
                        return Err(ClientError::TooLarge(format!(
                            "{what}: over 16 MiB of blocks"
                        )));
                    }
                    if last_block {
                        Data::parse_all(&data)?;
                        return Ok(Answer { data, frames });
                    }
                    expected_block += 1;
                    let invoke = self.next_invoke();
                    let mut next = vec![0xC0, 0x02, invoke];
                    next.extend_from_slice(&block_number.to_be_bytes());
                    let (plain, more) = self.request(next, &what).await?;
                    frames.extend(more);
                    current = plain;
                }
                other => {
                    return Err(ClientError::Protocol(format!(
                        "{what}: answered with {other:?}"
                    )));
                }
            }
        }
    }

    /// SET of one attribute.
    pub async fn set(&mut self, target: Target, value: &Data<'_>) -> Result<(), ClientError> {
        let what = format!("SET {target}");
        let invoke = self.next_invoke();
        let mut req = vec![0xC1, 0x01, invoke];
        target.encode(&mut req);
        req.push(0);
        value.encode(&mut req);
        let (plain, _) = self.request(req, &what).await?;
        match service_answer(&plain)? {
            Apdu::SetResponse { invoke_id, result } => {
                self.check_invoke(invoke_id, &what)?;
                if result != 0 {
                    return Err(ClientError::DataAccess { what, code: result });
                }
                Ok(())
            }
            other => Err(ClientError::Protocol(format!(
                "{what}: answered with {other:?}"
            ))),
        }
    }

    /// ACTION: invokes a method; returns its return parameters, if any.
    pub async fn action(
        &mut self,
        target: Target,
        parameters: Option<&Data<'_>>,
    ) -> Result<Option<Answer>, ClientError> {
        let what = format!("ACTION {target}");
        let invoke = self.next_invoke();
        let mut req = vec![0xC3, 0x01, invoke];
        target.encode(&mut req);
        match parameters {
            Some(p) => {
                req.push(1);
                p.encode(&mut req);
            }
            None => req.push(0),
        }
        let (plain, frames) = self.request(req, &what).await?;
        match service_answer(&plain)? {
            Apdu::ActionResponse {
                invoke_id,
                result,
                data,
            } => {
                self.check_invoke(invoke_id, &what)?;
                if result != 0 {
                    return Err(ClientError::Action { what, code: result });
                }
                match data {
                    None => Ok(None),
                    Some(Err(code)) => Err(ClientError::DataAccess { what, code }),
                    Some(Ok(d)) => Ok(Some(Answer {
                        data: d.to_bytes(),
                        frames,
                    })),
                }
            }
            other => Err(ClientError::Protocol(format!(
                "{what}: answered with {other:?}"
            ))),
        }
    }

    /// Releases the association (RLRQ/RLRE) and closes the link.
    pub async fn release(mut self) -> Result<(), ClientError> {
        let rlrq = [0x62, 0x03, 0x80, 0x01, 0x00];
        let got = self.link.exchange(&rlrq, "RLRQ").await;
        let close = self.link.close().await;
        let got = got?;
        // Only the tag matters: the release is done either way (and gurux-dlms 1.0.203
        // miscounts the RLRE's length).
        if got.apdu.first() != Some(&0x63) {
            return Err(ClientError::Protocol(format!(
                "{} instead of an RLRE",
                hex::encode(&got.apdu)
            )));
        }
        close
    }
}

/// Works around a known server quirk: gurux-dlms 1.0.203 writes the lengths of the
/// responding-AP-title (`A4`) and the responding-authentication-value (`AA`) as the length of
/// the value inside them, two bytes short. Where such a field holds exactly
/// `04|80 <n> <n bytes>` under the outer length `n`, the outer length is put right;
/// everything else is left as it came.
pub fn repair_aare(apdu: &[u8]) -> Vec<u8> {
    let mut out = apdu.to_vec();
    let [0x61, outer, ..] = apdu else {
        return out;
    };
    if *outer >= 0x80 {
        return out;
    }
    let mut pos = 2;
    while let (Some(&tag), Some(&len)) = (apdu.get(pos), apdu.get(pos + 1)) {
        if len >= 0x80 {
            break;
        }
        let len = usize::from(len);
        if (tag == 0xAA && apdu.get(pos + 2) == Some(&0x80)
            || tag == 0xA4 && apdu.get(pos + 2) == Some(&0x04))
            && apdu.get(pos + 3).map(|n| usize::from(*n)) == Some(len)
            && pos + 4 + len <= apdu.len()
        {
            if let Some(b) = out.get_mut(pos + 1) {
                *b = (len + 2) as u8;
            }
            pos += 4 + len;
            continue;
        }
        pos += 2 + len;
    }
    out
}

/// A length-prefixed octet string and what follows it.
fn length_prefixed(b: &[u8]) -> Result<(&[u8], &[u8]), ClientError> {
    // Reuse the A-XDR reader through an octet-string.
    let mut tagged = Vec::with_capacity(b.len() + 1);
    tagged.push(9);
    tagged.extend_from_slice(b);
    let (d, rest) = Data::parse(&tagged)?;
    let n = d.as_bytes().map_or(0, <[u8]>::len);
    let consumed = b.len() - rest.len();
    let content = b
        .get(consumed - n..consumed)
        .ok_or_else(|| ClientError::Protocol("length-prefixed field cut short".into()))?;
    Ok((content, b.get(consumed..).unwrap_or_default()))
}

/// The service APDU of an answer, with errors for exception and service-error answers.
fn service_answer(plain: &[u8]) -> Result<Apdu<'_>, ClientError> {
    match plain.first() {
        Some(0xD8) => Err(ClientError::Service(format!(
            "exception-response {}",
            hex::encode(plain)
        ))),
        Some(0x0E) => Err(ClientError::Service(format!(
            "confirmed-service-error {}",
            hex::encode(plain)
        ))),
        _ => Ok(Apdu::parse(plain)?),
    }
}

/// The A-XDR bytes of a get-response-normal's data (C4 01 invoke 00 <data>).
fn get_response_data(plain: &[u8]) -> Result<Vec<u8>, ClientError> {
    let body = plain
        .get(4..)
        .ok_or_else(|| ClientError::Protocol("get-response cut short".into()))?;
    let (_, rest) = Data::parse(body)?;
    Ok(body
        .get(..body.len() - rest.len())
        .unwrap_or_default()
        .to_vec())
}

/// The data results of a get-response, kept for callers that parse answers themselves.
pub type GetResult<'a> = DataResult<'a>;
