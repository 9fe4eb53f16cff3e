//! The COSEM objects a head-end works with, on top of [`Client`]'s GET, SET and ACTION:
//! registers (class 3), the clock (class 8), profile-generic buffers by time range (class 7),
//! the disconnect control (class 70), image transfer (class 18) and the activity calendar
//! (class 20); and the read report handed to the adapter.

use ami_dlms::axdr::Data;
use ami_dlms::cosem::ScalerUnit;
use ami_dlms::datetime::DateTime;
use ami_domain::Obis;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{Answer, Client, Target};
use crate::error::ClientError;

/// The clock.
pub const CLOCK: Obis = Obis::new(0, 0, 1, 0, 0, 255);
/// The disconnect control.
pub const DISCONNECT_CONTROL: Obis = Obis::new(0, 0, 96, 3, 10, 255);
/// The image transfer object.
pub const IMAGE_TRANSFER: Obis = Obis::new(0, 0, 44, 0, 0, 255);
/// The activity calendar.
pub const ACTIVITY_CALENDAR: Obis = Obis::new(0, 0, 13, 0, 0, 255);
/// The tariffication script table the calendar's day profiles run.
pub const TARIFF_SCRIPTS: Obis = Obis::new(0, 0, 10, 0, 100, 255);

/// A register read: value and scaler/unit, with the A-XDR bytes and the frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterRead {
    /// The register.
    pub obis: Obis,
    /// The value as an integer (`None` for non-integer values).
    pub raw: Option<i128>,
    /// Scaler and unit.
    pub scaler_unit: Option<ScalerUnit>,
    /// The value's A-XDR bytes.
    pub value: Vec<u8>,
    /// The scaler_unit's A-XDR bytes.
    pub scaler_unit_bytes: Vec<u8>,
    /// The frames of both answers, as received.
    pub frames: Vec<Vec<u8>>,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
#[cfg(test)]
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A COSEM date-time (12 bytes) of a UTC instant: deviation 0, status 0.
pub fn date_time(unix_ms: i64) -> Result<[u8; 12], ClientError> {
    let secs = unix_ms.div_euclid(1000);
    let hundredths = (unix_ms.rem_euclid(1000) / 10) as u8;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let year = u16::try_from(y)
        .map_err(|_| ClientError::Config(format!("year {y} out of the date-time range")))?;
    // 1970-01-01 was a Thursday (4); COSEM counts Monday as 1.
    let weekday = ((days + 3).rem_euclid(7) + 1) as u8;
    let [yh, yl] = year.to_be_bytes();
    Ok([
        yh,
        yl,
        m as u8,
        d as u8,
        weekday,
        (sod / 3600) as u8,
        (sod / 60 % 60) as u8,
        (sod % 60) as u8,
        hundredths,
        0,
        0,
        0,
    ])
}

/// The UTC instant of a COSEM date-time (as octet-string or date-time data).
pub fn unix_ms(d: &Data<'_>) -> Option<i64> {
    let dt = match d {
        Data::DateTime(b) => DateTime::from_bytes(b),
        other => DateTime::from_slice(other.as_bytes()?)?,
    };
    dt.unix_ms()
}

/// A `Data` that borrows nothing: how the helpers below build values.
fn octets(b: &[u8]) -> Data<'_> {
    Data::OctetString(b)
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Client<S> {
    /// Reads a register (class 3): value (attribute 2) and scaler_unit (attribute 3).
    pub async fn read_register(&mut self, obis: Obis) -> Result<RegisterRead, ClientError> {
        let v = self.get(Target::new(3, obis, 2), None).await?;
        let su = self.get(Target::new(3, obis, 3), None).await?;
        let value = v.value()?;
        let scaler_unit = ScalerUnit::from_data(&su.value()?);
        Ok(RegisterRead {
            obis,
            raw: value.as_i128(),
            scaler_unit,
            value: v.data.clone(),
            scaler_unit_bytes: su.data.clone(),
            frames: v.frames.into_iter().chain(su.frames).collect(),
        })
    }

    /// Reads the clock's time (class 8 attribute 2) as ms since the epoch, UTC, and its
    /// 12 bytes.
    pub async fn read_clock(&mut self) -> Result<(i64, [u8; 12]), ClientError> {
        let a = self.get(Target::new(8, CLOCK, 2), None).await?;
        let d = a.value()?;
        let bytes: [u8; 12] = match &d {
            Data::DateTime(b) => *b,
            other => other
                .as_bytes()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    ClientError::Protocol(format!("clock time is {other:?}, not a date-time"))
                })?,
        };
        let ms = unix_ms(&d).ok_or_else(|| {
            ClientError::Protocol(format!(
                "clock time {} is not a valid date-time",
                hex::encode(bytes)
            ))
        })?;
        Ok((ms, bytes))
    }

    /// Sets the clock (class 8 attribute 2) to a UTC instant.
    pub async fn set_clock(&mut self, unix_ms: i64) -> Result<(), ClientError> {
        let dt = date_time(unix_ms)?;
        self.set(Target::new(8, CLOCK, 2), &octets(&dt)).await
    }

    /// The buffer (attribute 2) of profile `obis` between two UTC instants, by range over the
    /// clock column (selective access 1, restricting object 0-0:1.0.0.255 attribute 2, all
    /// columns). Long answers come in data blocks.
    pub async fn read_profile_range(
        &mut self,
        obis: Obis,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Answer, ClientError> {
        let clock = CLOCK.to_bytes();
        let (from, to) = (date_time(from_ms)?, date_time(to_ms)?);
        let range = Data::Structure(vec![
            Data::Structure(vec![
                Data::LongUnsigned(8),
                octets(&clock),
                Data::Integer(2),
                Data::LongUnsigned(0),
            ]),
            octets(&from),
            octets(&to),
            Data::Array(Vec::new()),
        ]);
        self.get(Target::new(7, obis, 2), Some((1, &range))).await
    }

    /// The disconnect control's output_state (attribute 2): true when the relay is closed.
    pub async fn relay_closed(&mut self) -> Result<bool, ClientError> {
        let a = self
            .get(Target::new(70, DISCONNECT_CONTROL, 2), None)
            .await?;
        match a.value()? {
            Data::Boolean(b) => Ok(b),
            other => Err(ClientError::Protocol(format!(
                "output_state is {other:?}, not a boolean"
            ))),
        }
    }

    /// remote_disconnect (method 1) or remote_reconnect (method 2), then reads output_state.
    pub async fn switch_relay(&mut self, close: bool) -> Result<bool, ClientError> {
        let method = if close { 2 } else { 1 };
        self.action(
            Target::new(70, DISCONNECT_CONTROL, method),
            Some(&Data::Integer(0)),
        )
        .await?;
        self.relay_closed().await
    }

    /// The image transfer's image_block_size (attribute 2).
    pub async fn image_block_size(&mut self) -> Result<u32, ClientError> {
        let a = self.get(Target::new(18, IMAGE_TRANSFER, 2), None).await?;
        a.value()?
            .as_i128()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| {
                ClientError::Protocol("image_block_size is not a positive number".into())
            })
    }

    /// The image transfer's image_transfer_status (attribute 6).
    pub async fn image_transfer_status(&mut self) -> Result<u8, ClientError> {
        let a = self.get(Target::new(18, IMAGE_TRANSFER, 6), None).await?;
        a.value()?
            .as_i128()
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| ClientError::Protocol("image_transfer_status is not an enum".into()))
    }

    /// image_transfer_initiate (method 1).
    pub async fn image_initiate(
        &mut self,
        identifier: &[u8],
        size: u32,
    ) -> Result<(), ClientError> {
        let p = Data::Structure(vec![octets(identifier), Data::DoubleLongUnsigned(size)]);
        self.action(Target::new(18, IMAGE_TRANSFER, 1), Some(&p))
            .await
            .map(drop)
    }

    /// image_block_transfer (method 2).
    pub async fn image_block(&mut self, number: u32, block: &[u8]) -> Result<(), ClientError> {
        let p = Data::Structure(vec![Data::DoubleLongUnsigned(number), octets(block)]);
        self.action(Target::new(18, IMAGE_TRANSFER, 2), Some(&p))
            .await
            .map(drop)
    }

    /// image_verify (method 3).
    pub async fn image_verify(&mut self) -> Result<(), ClientError> {
        self.action(Target::new(18, IMAGE_TRANSFER, 3), Some(&Data::Integer(0)))
            .await
            .map(drop)
    }

    /// image_activate (method 4).
    pub async fn image_activate(&mut self) -> Result<(), ClientError> {
        self.action(Target::new(18, IMAGE_TRANSFER, 4), Some(&Data::Integer(0)))
            .await
            .map(drop)
    }

    /// A whole image transfer: initiate, the blocks of the meter's block size, verify,
    /// and (if `activate`) activate.
    pub async fn transfer_image(
        &mut self,
        identifier: &[u8],
        image: &[u8],
        activate: bool,
    ) -> Result<u32, ClientError> {
        let size = u32::try_from(image.len())
            .map_err(|_| ClientError::TooLarge("image over 4 GiB".into()))?;
        let block = self.image_block_size().await? as usize;
        self.image_initiate(identifier, size).await?;
        let mut n = 0u32;
        for chunk in image.chunks(block) {
            self.image_block(n, chunk).await?;
            n += 1;
        }
        self.image_verify().await?;
        if activate {
            self.image_activate().await?;
        }
        Ok(n)
    }

    /// Writes the passive day profiles (activity calendar attribute 9): for each day id its
    /// `(start minute of the day, script selector)` actions on the tariff script table.
    pub async fn set_day_profiles_passive(
        &mut self,
        days: &[(u8, Vec<(u16, u16)>)],
    ) -> Result<(), ClientError> {
        let script = TARIFF_SCRIPTS.to_bytes();
        let times: Vec<Vec<[u8; 4]>> = days
            .iter()
            .map(|(_, actions)| {
                actions
                    .iter()
                    .map(|(minute, _)| [(minute / 60) as u8, (minute % 60) as u8, 0, 0])
                    .collect()
            })
            .collect();
        let table = Data::Array(
            days.iter()
                .zip(&times)
                .map(|((id, actions), times)| {
                    Data::Structure(vec![
                        Data::Unsigned(*id),
                        Data::Array(
                            actions
                                .iter()
                                .zip(times)
                                .map(|((_, selector), t)| {
                                    Data::Structure(vec![
                                        octets(t),
                                        octets(&script),
                                        Data::LongUnsigned(*selector),
                                    ])
                                })
                                .collect(),
                        ),
                    ])
                })
                .collect(),
        );
        self.set(Target::new(20, ACTIVITY_CALENDAR, 9), &table)
            .await
    }

    /// activate_passive_calendar (method 1).
    pub async fn activate_passive_calendar(&mut self) -> Result<(), ClientError> {
        self.action(
            Target::new(20, ACTIVITY_CALENDAR, 1),
            Some(&Data::Integer(0)),
        )
        .await
        .map(drop)
    }

    /// The active day profiles (attribute 5) as `(day id, [(start minute, selector)])`.
    pub async fn day_profiles_active(&mut self) -> Result<Vec<(u8, Vec<(u16, u16)>)>, ClientError> {
        let a = self
            .get(Target::new(20, ACTIVITY_CALENDAR, 5), None)
            .await?;
        let d = a.value()?;
        let bad = || {
            ClientError::Protocol("day_profile_table_active is not a table of day profiles".into())
        };
        let mut out = Vec::new();
        for day in d.elements().ok_or_else(bad)? {
            let [id, actions] = day.elements().ok_or_else(bad)? else {
                return Err(bad());
            };
            let id = id
                .as_i128()
                .and_then(|v| u8::try_from(v).ok())
                .ok_or_else(bad)?;
            let mut list = Vec::new();
            for act in actions.elements().ok_or_else(bad)? {
                let [time, _script, selector] = act.elements().ok_or_else(bad)? else {
                    return Err(bad());
                };
                let t = match time {
                    Data::Time(t) => t.to_vec(),
                    other => other.as_bytes().ok_or_else(bad)?.to_vec(),
                };
                let (h, m) = (
                    u16::from(*t.first().ok_or_else(bad)?),
                    u16::from(*t.get(1).ok_or_else(bad)?),
                );
                let s = selector
                    .as_i128()
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or_else(bad)?;
                list.push((h * 60 + m, s));
            }
            out.push((id, list));
        }
        Ok(out)
    }
}

/// The read report: a data-notification APDU (`0F`, long-invoke-id, the meter's clock as
/// date-time, and a body of `{logical name, value, scaler_unit}` structures), which the
/// `dlms` decoder of the ingest turns into readings stamped with the meter's clock.
pub fn read_report(
    invoke: u32,
    clock: Option<&[u8; 12]>,
    registers: &[RegisterRead],
) -> Result<Vec<u8>, ClientError> {
    let values: Vec<(Data<'_>, Option<Data<'_>>)> = registers
        .iter()
        .map(|r| {
            let v = Data::parse_all(&r.value)?;
            let su = Data::parse_all(&r.scaler_unit_bytes).ok();
            Ok((v, su))
        })
        .collect::<Result<_, ClientError>>()?;
    let names: Vec<[u8; 6]> = registers.iter().map(|r| r.obis.to_bytes()).collect();
    let clock_name = CLOCK.to_bytes();
    let mut items: Vec<Data<'_>> = Vec::new();
    if let Some(c) = clock {
        items.push(Data::Structure(vec![octets(&clock_name), octets(c)]));
    }
    for ((v, su), name) in values.into_iter().zip(&names) {
        let mut e = vec![octets(name), v];
        if let Some(su) = su {
            e.push(su);
        }
        items.push(Data::Structure(e));
    }
    let mut out = vec![0x0F];
    out.extend_from_slice(&invoke.to_be_bytes());
    match clock {
        Some(c) => {
            out.push(12);
            out.extend_from_slice(c);
        }
        None => out.push(0),
    }
    Data::Array(items).encode(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_round_trip_through_the_decoder() -> Result<(), ClientError> {
        for ms in [
            0i64,
            1_767_225_600_000,
            1_767_312_000_000 + 3_723_450,
            951_782_400_000,
        ] {
            let b = date_time(ms)?;
            assert_eq!(unix_ms(&Data::DateTime(b)), Some(ms - ms.rem_euclid(10)));
        }
        // 2026-01-01 is a Thursday.
        assert_eq!(date_time(1_767_225_600_000)?[4], 4);
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
        Ok(())
    }
}
