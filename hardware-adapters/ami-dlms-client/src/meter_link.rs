//! Signed head-end commands on DLMS meters: [`DlmsMeterLink`] implements
//! [`MeterLink`](ami_adapter::MeterLink) by opening an association to the meter for each
//! command (TCP, wrapper or HDLC), carrying it out and releasing the association.
//!
//! | command | on the meter |
//! | --- | --- |
//! | `ReadNow` | GET of the configured registers (value and scaler_unit) and the clock; the answer is the read report (see [`read_report`]), also handed to the adapter (protocol `dlms`) when one is attached; the relay state when the meter has a disconnect control |
//! | `Disconnect` / `Reconnect` | ACTION remote_disconnect / remote_reconnect on 0-0:96.3.10.255, then GET of its output_state, reported as the relay state |
//! | `SetClock` | SET of the clock's time |
//! | `SetTou` | SET of the activity calendar's passive day profiles (weekday and weekend), then ACTION activate_passive_calendar |
//! | `FirmwareBlock` | kept in memory until the image is whole (blocks in order; out of order is refused with the block expected); the last block runs the transfer: image_transfer_initiate, the blocks in the meter's own block size, image_verify |
//! | `FirmwareVerify` | the CRC-32 of the image checked, then image_verify again |
//! | `FirmwareActivate` | image_activate |
//!
//! The meter's invocation counter of each meter is kept between associations, so ciphered
//! associations never reuse an IV.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use ami_adapter::{Adapter, LinkError, MeterLink, SpoolFrame};
use ami_bus::command::{AckResult, CommandKind};
use ami_domain::Obis;
use tokio::net::TcpStream;

use crate::client::{Client, ClientConfig};
use crate::error::ClientError;
use crate::objects::{RegisterRead, read_report};

/// Where a meter is and what to read from it.
#[derive(Clone, Debug)]
pub struct MeterTarget {
    /// `host:port` of the meter (or of the concentrator's TCP port for it).
    pub address: String,
    /// Association settings (framing, authentication, keys).
    pub config: ClientConfig,
    /// Registers read by `ReadNow`.
    pub registers: Vec<Obis>,
    /// Whether the meter has a disconnect control to report the relay state from.
    pub has_relay: bool,
}

#[derive(Debug, Default)]
struct Image {
    version: String,
    total: u32,
    blocks: Vec<u8>,
    next: u32,
    transferred: bool,
}

/// The meter link of the DLMS client adapter.
#[derive(Debug)]
pub struct DlmsMeterLink {
    meters: HashMap<String, MeterTarget>,
    adapter: Option<Adapter>,
    counters: Mutex<HashMap<String, u32>>,
    images: Mutex<HashMap<String, Image>>,
    invoke: std::sync::atomic::AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How a client error reaches the head-end.
pub fn link_error(e: ClientError) -> LinkError {
    match e {
        ClientError::Io(_) | ClientError::Timeout(_) | ClientError::Closed(_) => {
            LinkError::Unreachable(e.to_string())
        }
        ClientError::Config(_) => LinkError::Unsupported(e.to_string()),
        other => LinkError::Refused {
            detail: other.to_string(),
            result: None,
        },
    }
}

impl DlmsMeterLink {
    /// A link to `meters` (by the names the head-end uses), handing read reports to
    /// `adapter` when given.
    pub fn new(meters: HashMap<String, MeterTarget>, adapter: Option<Adapter>) -> Self {
        DlmsMeterLink {
            meters,
            adapter,
            counters: Mutex::new(HashMap::new()),
            images: Mutex::new(HashMap::new()),
            invoke: std::sync::atomic::AtomicU32::new(1),
        }
    }

    async fn open(&self, meter: &str) -> Result<(Client<TcpStream>, &MeterTarget), LinkError> {
        let target = self.meters.get(meter).ok_or_else(|| {
            LinkError::Unsupported(format!("meter {meter} is not behind this adapter"))
        })?;
        let mut config = target.config.clone();
        if let (Some(k), Some(ic)) = (config.keys.as_mut(), lock(&self.counters).get(meter)) {
            k.invocation_counter = k.invocation_counter.max(*ic);
        }
        let io = tokio::time::timeout(config.timeout, TcpStream::connect(&target.address))
            .await
            .map_err(|_| {
                LinkError::Unreachable(format!("connecting to {}: timeout", target.address))
            })?
            .map_err(|e| {
                LinkError::Unreachable(format!("connecting to {}: {e}", target.address))
            })?;
        let client = Client::connect(io, config).await.map_err(link_error)?;
        Ok((client, target))
    }

    async fn close(&self, meter: &str, client: Client<TcpStream>) {
        if let Some(ic) = client.invocation_counter() {
            lock(&self.counters).insert(meter.to_owned(), ic);
        }
        if let Err(e) = client.release().await {
            tracing::warn!(%meter, error = %e, "release failed");
        }
    }

    /// Reads the registers and the clock and builds the read report; hands it to the
    /// adapter when one is attached.
    pub async fn read(&self, meter: &str) -> Result<AckResult, LinkError> {
        let (mut c, target) = self.open(meter).await?;
        let result = async {
            let mut reads: Vec<RegisterRead> = Vec::new();
            for obis in &target.registers {
                reads.push(c.read_register(*obis).await?);
            }
            let clock = c.read_clock().await.ok().map(|(_, b)| b);
            let relay = if target.has_relay {
                Some(c.relay_closed().await?)
            } else {
                None
            };
            Ok::<_, ClientError>((reads, clock, relay))
        }
        .await;
        if let Some(ic) = c.invocation_counter() {
            lock(&self.counters).insert(meter.to_owned(), ic);
        }
        self.close(meter, c).await;
        let (reads, clock, relay_closed) = result.map_err(link_error)?;
        let invoke = self
            .invoke
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let frame = read_report(invoke, clock.as_ref(), &reads).map_err(link_error)?;
        if let Some(a) = &self.adapter {
            a.accept(vec![SpoolFrame {
                protocol: "dlms".into(),
                meter_hint: Some(meter.to_owned()),
                received_at_ms: now_ms(),
                traceparent: None,
                rssi_dbm: None,
                data: frame.clone().into(),
            }])
            .map_err(|e| LinkError::Unreachable(format!("spool: {e}")))?;
        }
        Ok(AckResult::Read {
            frame,
            relay_closed,
        })
    }

    async fn with_client<T>(
        &self,
        meter: &str,
        f: impl AsyncFnOnce(&mut Client<TcpStream>) -> Result<T, ClientError>,
    ) -> Result<T, LinkError> {
        let (mut c, _) = self.open(meter).await?;
        let r = f(&mut c).await;
        self.close(meter, c).await;
        r.map_err(link_error)
    }

    async fn firmware_block(
        &self,
        meter: &str,
        version: &str,
        number: u32,
        total: u32,
        data: &[u8],
    ) -> Result<AckResult, LinkError> {
        let complete = {
            let mut images = lock(&self.images);
            if number == 0 {
                images.insert(
                    meter.to_owned(),
                    Image {
                        version: version.to_owned(),
                        total,
                        ..Image::default()
                    },
                );
            }
            let Some(img) = images
                .get_mut(meter)
                .filter(|i| i.version == version && i.total == total)
            else {
                return Err(LinkError::Refused {
                    detail: format!("no transfer of image {version} under way: start from block 0"),
                    result: Some(AckResult::Firmware { next_block: 0 }),
                });
            };
            if number != img.next {
                return Err(LinkError::Refused {
                    detail: format!("block {number} out of order, expected {}", img.next),
                    result: Some(AckResult::Firmware {
                        next_block: img.next,
                    }),
                });
            }
            if img.blocks.len() + data.len() > 64 << 20 {
                return Err(LinkError::Refused {
                    detail: "image over 64 MiB".into(),
                    result: None,
                });
            }
            img.blocks.extend_from_slice(data);
            img.next += 1;
            (img.next == img.total).then(|| img.blocks.clone())
        };
        if let Some(image) = complete {
            let id = version.as_bytes().to_vec();
            self.with_client(meter, async move |c| {
                c.transfer_image(&id, &image, false).await
            })
            .await?;
            if let Some(img) = lock(&self.images).get_mut(meter) {
                img.transferred = true;
            }
        }
        Ok(AckResult::Firmware {
            next_block: number + 1,
        })
    }
}

impl MeterLink for DlmsMeterLink {
    async fn execute(&self, meter: &str, command: &CommandKind) -> Result<AckResult, LinkError> {
        match command {
            CommandKind::ReadNow => self.read(meter).await,
            CommandKind::Disconnect | CommandKind::Reconnect => {
                let close = matches!(command, CommandKind::Reconnect);
                let closed = self
                    .with_client(meter, async move |c| c.switch_relay(close).await)
                    .await?;
                if closed != close {
                    return Err(LinkError::Refused {
                        detail: format!(
                            "the relay reads {} after the command",
                            if closed { "closed" } else { "open" }
                        ),
                        result: Some(AckResult::Relay { closed }),
                    });
                }
                Ok(AckResult::Relay { closed })
            }
            CommandKind::SetClock { to_ms } => {
                let to = *to_ms;
                self.with_client(meter, async move |c| c.set_clock(to).await)
                    .await?;
                Ok(AckResult::Done)
            }
            CommandKind::SetTou { switches, weekend } => {
                let weekday: Vec<(u16, u16)> =
                    switches.iter().map(|(m, t)| (*m, u16::from(*t))).collect();
                let mut days = vec![(1u8, weekday.clone())];
                days.push((2, weekend.map_or(weekday, |t| vec![(0, u16::from(t))])));
                self.with_client(meter, async move |c| {
                    c.set_day_profiles_passive(&days).await?;
                    c.activate_passive_calendar().await
                })
                .await?;
                Ok(AckResult::Done)
            }
            CommandKind::FirmwareBlock {
                version,
                number,
                total,
                data,
            } => {
                self.firmware_block(meter, version, *number, *total, data)
                    .await
            }
            CommandKind::FirmwareVerify { crc32 } => {
                let image = lock(&self.images)
                    .get(meter)
                    .filter(|i| i.transferred)
                    .map(|i| i.blocks.clone());
                let image = image.ok_or_else(|| LinkError::Refused {
                    detail: "no image transferred to verify".into(),
                    result: None,
                })?;
                let got = crc32fast::hash(&image);
                if got != *crc32 {
                    return Err(LinkError::Refused {
                        detail: format!("image CRC-32 {got:08x}, the head-end says {crc32:08x}"),
                        result: None,
                    });
                }
                self.with_client(meter, async |c| c.image_verify().await)
                    .await?;
                Ok(AckResult::Verified)
            }
            CommandKind::FirmwareActivate => {
                let version = lock(&self.images)
                    .get(meter)
                    .filter(|i| i.transferred)
                    .map(|i| i.version.clone())
                    .ok_or_else(|| LinkError::Refused {
                        detail: "no verified image to activate".into(),
                        result: None,
                    })?;
                self.with_client(meter, async |c| c.image_activate().await)
                    .await?;
                lock(&self.images).remove(meter);
                Ok(AckResult::Activated { version })
            }
            other => Err(LinkError::Unsupported(format!(
                "{} is not carried out by the DLMS client",
                other.name()
            ))),
        }
    }
}
