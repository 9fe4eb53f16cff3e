//! A fleet of virtual meters advancing in simulated time.

use crate::shape;

/// One virtual electricity meter (with an optional gas meter on M-Bus channel 1).
#[derive(Clone, Debug)]
pub struct Meter {
    /// Equipment identifier (what the meter prints in 0-0:96.1.1).
    pub id: String,
    /// Imported energy, Wh, tariff 1 (night/low) and 2 (day/normal).
    pub import_wh: [u64; 2],
    /// Exported energy, Wh, per tariff.
    pub export_wh: [u64; 2],
    /// Present import and export power, W.
    pub power_w: (u64, u64),
    /// Gas volume, litres (0.001 m3).
    pub gas_l: u64,
    /// Size of the household relative to the average.
    pub scale: f64,
    /// PV peak power, W (0 = none).
    pub pv_peak_w: f64,
    /// Relay state: false = disconnected (the meter then measures nothing).
    pub relay_closed: bool,
    /// Remainders of energy below 1 Wh, carried between steps.
    carry: (f64, f64),
}

impl Meter {
    /// Advances this meter by `step_ms` ending at `ts_ms`.
    pub fn step(&mut self, ts_ms: i64, step_ms: i64) {
        let (load, pv) = if self.relay_closed {
            (
                shape::household_w(ts_ms, self.scale),
                shape::pv_w(ts_ms, self.pv_peak_w),
            )
        } else {
            (0.0, 0.0)
        };
        let net = load - pv;
        let hours = step_ms as f64 / 3_600_000.0;
        // Tariff 1 (low) from 23:00 to 07:00 local and at weekends, as Dutch tariffs do.
        let hour = (ts_ms.div_euclid(3_600_000) + 1).rem_euclid(24);
        let tariff = usize::from(!(23..24).contains(&hour) && hour >= 7);
        if net >= 0.0 {
            self.power_w = (net.round() as u64, 0);
            self.carry.0 += net * hours;
        } else {
            self.power_w = (0, (-net).round() as u64);
            self.carry.1 += -net * hours;
        }
        let (imp, exp) = (self.carry.0.floor(), self.carry.1.floor());
        self.carry.0 -= imp;
        self.carry.1 -= exp;
        if let Some(v) = self.import_wh.get_mut(tariff) {
            *v += imp as u64;
        }
        if let Some(v) = self.export_wh.get_mut(tariff) {
            *v += exp as u64;
        }
        // Gas for heating and hot water, about a litre a minute at the evening peak.
        self.gas_l += (load / 900.0 * step_ms as f64 / 60_000.0).round() as u64;
    }
}

/// A fleet of meters.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// The meters.
    pub meters: Vec<Meter>,
}

impl Fleet {
    /// `n` meters with deterministic variety: sizes from 0.5 to 1.8, one in four with PV.
    pub fn new(n: usize) -> Self {
        let meters = (0..n)
            .map(|i| {
                let r = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                Meter {
                    id: format!("E{:016}", 1_000_000 + i),
                    import_wh: [1_000_000 + r % 900_000, 1_200_000 + r % 700_000],
                    export_wh: [0, 0],
                    power_w: (0, 0),
                    gas_l: 500_000 + r % 400_000,
                    scale: 0.5 + (r % 1300) as f64 / 1000.0,
                    pv_peak_w: if i % 4 == 0 {
                        3000.0 + (r % 2000) as f64
                    } else {
                        0.0
                    },
                    relay_closed: true,
                    carry: (0.0, 0.0),
                }
            })
            .collect();
        Self { meters }
    }

    /// Advances every meter to `ts_ms` by `step_ms`.
    pub fn step(&mut self, ts_ms: i64, step_ms: i64) {
        for m in &mut self.meters {
            m.step(ts_ms, step_ms);
        }
    }
}
