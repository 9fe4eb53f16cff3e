//! The five tariffs: parameters read and checked first, then the data, then the bill.

use std::cmp::Ordering;

use ami_domain::{Obis, Quantity};

use crate::bill::{Builder, EXPORT, IMPORT, MAX_DEMAND, NET, kwh};
use crate::calendar::Local;
use crate::decimal::Dec;
use crate::params::Params;
use crate::schedule::{Schedule, time_of_day};
use crate::series::{Direction, Period, energy, total};
use crate::{Bill, Calendar, Parameter, TARIFF_IDS, TariffError, Usage};

fn bad(msg: String) -> TariffError {
    TariffError::BadParameter(msg)
}

/// Dispatches on the tariff id.
pub(crate) fn compute(
    id: &str,
    params: &[Parameter],
    calendar: &Calendar,
    start: i64,
    end: i64,
    usage: &[Usage],
) -> Result<Bill, TariffError> {
    if !TARIFF_IDS.contains(&id) {
        return Err(bad(format!(
            "unknown tariff {id:?} (one of {})",
            TARIFF_IDS.join(", ")
        )));
    }
    let mut ps = Params::new(params)?;
    let minutes = ps.int_or("interval-minutes", 1, 60, Some(15))?;
    if ![1, 5, 10, 15, 30, 60].contains(&minutes) {
        return Err(bad(format!(
            "parameter interval-minutes = {minutes} is not 1, 5, 10, 15, 30 or 60"
        )));
    }
    let decimals = ps.int_or("currency.decimals", 0, 6, Some(2))?;
    let period = Period::new(start, end, minutes)?;
    let local = Local::new(calendar, start)?;
    let mut bill = Builder::new(decimals, end);
    match id {
        "tou" => tou(&mut ps, &local, &period, usage, false, &mut bill)?,
        "cpp" => tou(&mut ps, &local, &period, usage, true, &mut bill)?,
        "tiered" => tiered(&mut ps, &period, usage, &mut bill)?,
        "demand" => demand(&mut ps, &period, usage, &mut bill)?,
        _ => net_metering(&mut ps, &period, usage, &mut bill)?,
    }
    bill.finish()
}

/// Reads nothing more and fails on any parameter left unread: checks before the data.
fn done(ps: &mut Params<'_>, id: &str) -> Result<(), TariffError> {
    std::mem::replace(ps, Params::new(&[])?).finish(id)
}

/// Register `1-0:1.8.<e>`.
fn import_rate(e: usize) -> Obis {
    Obis::new(1, 0, 1, 8, u8::try_from(e).unwrap_or(u8::MAX), 255)
}

/// `tou`, and `cpp` on top of it.
fn tou(
    ps: &mut Params<'_>,
    local: &Local,
    period: &Period,
    usage: &[Usage],
    cpp: bool,
    bill: &mut Builder,
) -> Result<(), TariffError> {
    let grid = period.iv / 60_000;
    let schedule = Schedule::read(ps, grid)?;
    let event = if cpp {
        let price = ps.require("cpp.price")?;
        let from = time_of_day(ps, "cpp.start", false, grid)?;
        let to = time_of_day(ps, "cpp.end", true, grid)?;
        if from == to {
            return Err(bad("cpp.start and cpp.end make empty event hours".into()));
        }
        Some((price, from, to % 1440))
    } else {
        None
    };
    done(ps, if cpp { "cpp" } else { "tou" })?;

    let series = energy(usage, period, Direction::Import)?;
    let (ns, np) = (schedule.seasons.len(), schedule.periods.len());
    let mut buckets = vec![vec![(Dec::ZERO, 0usize); np]; ns];
    let mut critical = (Dec::ZERO, 0usize);
    for (i, wh) in series.iter().enumerate() {
        let t = local.at(period.start_of(i));
        let marks = local.marks(t.day);
        let in_event = event.is_some_and(|(_, from, to)| {
            marks.cpp
                && if from < to {
                    (from..to).contains(&t.minute)
                } else {
                    t.minute >= from || t.minute < to
                }
        });
        let slot = if in_event {
            &mut critical
        } else {
            let (s, p) = schedule.classify(&t, marks.holiday);
            buckets
                .get_mut(s)
                .and_then(|r| r.get_mut(p))
                .ok_or_else(|| bad("schedule index".into()))?
        };
        slot.0 = slot.0.add(*wh, "energy per period")?;
        slot.1 += 1;
    }
    bill.determinant("kwh.import", IMPORT, kwh(total(&series, "kwh.import")?)?)?;
    for (s, row) in buckets.iter().enumerate() {
        for (p, (wh, count)) in row.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let season = schedule
                .seasons
                .get(s)
                .map(|x| x.name.as_str())
                .unwrap_or_default();
            let name_p = schedule
                .periods
                .get(p)
                .map(String::as_str)
                .unwrap_or_default();
            let name = format!("kwh.import.{season}.{name_p}");
            bill.determinant(&name, import_rate(p + 1), kwh(*wh)?)?;
            bill.line(
                format!("{name_p} energy, {season} season"),
                &name,
                kwh(*wh)?,
                schedule.price(s, p),
            )?;
        }
    }
    if let Some((price, _, _)) = event
        && critical.1 > 0
    {
        let name = "kwh.import.cpp";
        bill.determinant(name, import_rate(np + 1), kwh(critical.0)?)?;
        bill.line("critical peak energy".into(), name, kwh(critical.0)?, price)?;
    }
    Ok(())
}

/// `tiered`: blocks of the period's total import.
fn tiered(
    ps: &mut Params<'_>,
    period: &Period,
    usage: &[Usage],
    bill: &mut Builder,
) -> Result<(), TariffError> {
    let mut count = 0usize;
    for n in ps.names() {
        let Some(rest) = n.strip_prefix("tier.") else {
            continue;
        };
        let Some((k, field)) = rest.split_once('.') else {
            continue;
        };
        if !["price", "up-to"].contains(&field) {
            continue;
        }
        match k.parse::<usize>() {
            Ok(k) if k >= 1 && !rest.starts_with('0') && k <= 1000 => count = count.max(k),
            _ => return Err(bad(format!("tier number {k:?} in {n} is not 1, 2, ..."))),
        }
    }
    if count == 0 {
        return Err(bad("parameter tier.1.price is missing".into()));
    }
    let names = ps.names();
    if let Some(gap) = (1..count).find(|k| {
        !names.contains(&format!("tier.{k}.price").as_str())
            && !names.contains(&format!("tier.{k}.up-to").as_str())
    }) {
        return Err(bad(format!(
            "parameter tier.{gap}.price is missing: tiers are numbered 1, 2, ... without gaps"
        )));
    }
    // (upper bound kWh or open, price)
    let mut tiers: Vec<(Option<Dec>, Quantity)> = Vec::new();
    let mut last = Dec::ZERO;
    for k in 1..=count {
        let price = ps.require(&format!("tier.{k}.price"))?;
        let up_name = format!("tier.{k}.up-to");
        let up = ps.get(&up_name).map(Dec::from_q);
        match (up, k == count) {
            (Some(_), true) => {
                return Err(bad(format!(
                    "parameter {up_name}: the last tier is open-ended, it has no up-to"
                )));
            }
            (None, false) => return Err(bad(format!("parameter {up_name} is missing"))),
            (Some(u), false) => {
                if u.cmp(last, &up_name)? != Ordering::Greater {
                    return Err(bad(format!(
                        "parameter {up_name} must be above the tier below it (and 0)"
                    )));
                }
                last = u;
            }
            (None, true) => {}
        }
        tiers.push((up, price));
    }
    done(ps, "tiered")?;

    let all = kwh(total(
        &energy(usage, period, Direction::Import)?,
        "kwh.import",
    )?)?;
    bill.determinant("kwh.import", IMPORT, all)?;
    let mut lower = Dec::ZERO;
    for (k, (up, price)) in tiers.iter().enumerate() {
        let top = match up {
            Some(u) => all.min(*u, "tier")?,
            None => all,
        };
        let within = top.sub(lower, "tier")?;
        if within.signum() <= 0 && k > 0 {
            break;
        }
        let within = if within.signum() < 0 {
            Dec::ZERO
        } else {
            within
        };
        let name = format!("kwh.import.tier.{}", k + 1);
        bill.determinant(&name, IMPORT, within)?;
        let span = match up {
            Some(u) => format!("up to {} kWh", u.to_quantity(0, "tier")?),
            None => "above".into(),
        };
        bill.line(
            format!("energy in tier {} ({span})", k + 1),
            &name,
            within,
            *price,
        )?;
        if let Some(u) = up {
            lower = *u;
        }
    }
    Ok(())
}

/// `demand`: maximum demand over windows of `demand.sub-intervals` intervals, plus energy.
fn demand(
    ps: &mut Params<'_>,
    period: &Period,
    usage: &[Usage],
    bill: &mut Builder,
) -> Result<(), TariffError> {
    let energy_price = ps.require("energy.price")?;
    let demand_price = ps.require("demand.price")?;
    let subs = ps.int_or("demand.sub-intervals", 1, 60, Some(1))?;
    let window = subs * (period.iv / 60_000);
    if 60 % window != 0 {
        return Err(bad(format!(
            "parameter demand.sub-intervals = {subs}: a {window}-minute window does not divide the hour"
        )));
    }
    done(ps, "demand")?;
    let n = usize::try_from(subs).unwrap_or(1);
    if period.n < n {
        return Err(TariffError::MissingData(format!(
            "the period holds {} intervals, a demand window needs {n}",
            period.n
        )));
    }
    let series = energy(usage, period, Direction::Import)?;
    // kW = Wh in the window x (60 / window minutes) / 1000.
    let per_hour = Dec::int(i128::from(60 / window));
    let mut sum = Dec::ZERO;
    let mut peak: Option<(Dec, usize)> = None;
    for (j, wh) in series.iter().enumerate() {
        sum = sum.add(*wh, "demand window")?;
        if j >= n {
            let out = series.get(j - n).copied().unwrap_or_default();
            sum = sum.sub(out, "demand window")?;
        }
        if j + 1 < n {
            continue;
        }
        let better = match peak {
            None => true,
            Some((p, _)) => sum.cmp(p, "demand")? == Ordering::Greater,
        };
        if better {
            peak = Some((sum, j));
        }
    }
    let (peak_wh, at) = peak.unwrap_or((Dec::ZERO, n - 1));
    let kw = kwh(peak_wh.mul(per_hour, "demand")?)?;
    let energy_kwh = kwh(total(&series, "kwh.import")?)?;
    bill.determinant("kwh.import", IMPORT, energy_kwh)?;
    bill.determinant_at("kw.max-demand", MAX_DEMAND, kw, period.end_of(at))?;
    bill.line("energy".into(), "kwh.import", energy_kwh, energy_price)?;
    bill.line(
        format!("maximum {window}-minute demand"),
        "kw.max-demand",
        kw,
        demand_price,
    )?;
    Ok(())
}

/// `net-metering`: import and export, credited apart or netted with carry-over.
fn net_metering(
    ps: &mut Params<'_>,
    period: &Period,
    usage: &[Usage],
    bill: &mut Builder,
) -> Result<(), TariffError> {
    let import_price = ps.require("import.price")?;
    let netting = ps.int_or("netting", 0, 1, Some(0))? == 1;
    let export_price = if netting {
        None
    } else {
        Some(ps.require("export.price")?)
    };
    let carry_in = if netting {
        let c = ps.get("carry-in.kwh").map(Dec::from_q).unwrap_or_default();
        if c.signum() < 0 {
            return Err(bad("parameter carry-in.kwh must not be negative".into()));
        }
        Some(c)
    } else {
        None
    };
    done(ps, "net-metering").map_err(|e| match e {
        TariffError::BadParameter(m)
            if m.contains("export.price") || m.contains("carry-in.kwh") =>
        {
            bad(format!(
                "{m}: export.price goes with netting = 0, carry-in.kwh with netting = 1"
            ))
        }
        other => other,
    })?;

    let import = kwh(total(
        &energy(usage, period, Direction::Import)?,
        "kwh.import",
    )?)?;
    let export = kwh(total(
        &energy(usage, period, Direction::Export)?,
        "kwh.export",
    )?)?;
    let net = import.sub(export, "kwh.net")?;
    bill.determinant("kwh.import", IMPORT, import)?;
    bill.determinant("kwh.export", EXPORT, export)?;
    bill.determinant("kwh.net", NET, net)?;
    match (export_price, carry_in) {
        (Some(price), _) => {
            let credit = Quantity::new(
                price
                    .mantissa
                    .checked_neg()
                    .ok_or_else(|| TariffError::Overflow("export.price".into()))?,
                price.scale,
            );
            bill.line("imported energy".into(), "kwh.import", import, import_price)?;
            bill.line(
                "exported energy credit".into(),
                "kwh.export",
                export,
                credit,
            )?;
        }
        (None, carry_in) => {
            let carry_in = carry_in.unwrap_or_default();
            let after = net.sub(carry_in, "kwh.billed")?;
            let (billed, carry_out) = if after.signum() >= 0 {
                (after, Dec::ZERO)
            } else {
                (Dec::ZERO, after.neg("kwh.carry-out")?)
            };
            bill.determinant("kwh.carry-in", NET, carry_in)?;
            bill.determinant("kwh.billed", NET, billed)?;
            bill.determinant("kwh.carry-out", NET, carry_out)?;
            bill.line(
                "net energy after export and carried credit".into(),
                "kwh.billed",
                billed,
                import_price,
            )?;
        }
    }
    Ok(())
}
