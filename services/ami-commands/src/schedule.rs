//! Read schedules for polled meters: every meter read once in a window, spread over it, with
//! at most a given number of reads at once on each network segment (a concentrator polls a
//! few meters at a time; a cell has a few channels).
//!
//! Each segment gets `cap` lanes; its meters are dealt to the lanes in turn, and each lane's
//! reads are spaced evenly over the window, never closer than one read's duration, so a lane
//! never holds two reads at once and a segment never more than `cap`. Lanes start staggered
//! by a fraction of the spacing, so the reads of a segment do not all start together.

use std::collections::{BTreeMap, HashMap};

/// A meter to poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolledMeter {
    /// The meter.
    pub meter: String,
    /// Its network segment.
    pub segment: String,
}

/// What to schedule.
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    /// Start of the window, ms since the Unix epoch.
    pub window_start_ms: i64,
    /// Length of the window, ms.
    pub window_ms: i64,
    /// How long one read takes (the slot it occupies), ms.
    pub read_ms: i64,
    /// Reads at once on a segment without its own cap.
    pub default_cap: u32,
    /// Caps of particular segments.
    pub caps: HashMap<String, u32>,
}

impl ScheduleSpec {
    /// The cap of `segment`.
    pub fn cap(&self, segment: &str) -> u32 {
        self.caps.get(segment).copied().unwrap_or(self.default_cap)
    }
}

/// One read in the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledRead {
    /// The meter.
    pub meter: String,
    /// Its segment.
    pub segment: String,
    /// When it starts, ms since the Unix epoch.
    pub start_ms: i64,
    /// When its slot ends.
    pub end_ms: i64,
}

/// Why no schedule fits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The window, the read duration or a cap is not positive.
    #[error("invalid schedule: {0}")]
    Invalid(String),
    /// A segment has more meters than its cap lets the window hold.
    #[error(
        "segment {segment}: {meters} reads at {cap} at once need {needed_ms} ms, the window is {window_ms} ms"
    )]
    WindowTooShort {
        /// The segment.
        segment: String,
        /// Its meters.
        meters: usize,
        /// Its cap.
        cap: u32,
        /// The window it would need.
        needed_ms: i64,
        /// The window given.
        window_ms: i64,
    },
}

/// The schedule of `meters` under `spec`, ordered by start time.
pub fn schedule_reads(
    meters: &[PolledMeter],
    spec: &ScheduleSpec,
) -> Result<Vec<ScheduledRead>, ScheduleError> {
    if spec.window_ms <= 0 || spec.read_ms <= 0 {
        return Err(ScheduleError::Invalid(format!(
            "window {} ms, read {} ms",
            spec.window_ms, spec.read_ms
        )));
    }
    let mut by_segment: BTreeMap<&str, Vec<&PolledMeter>> = BTreeMap::new();
    for m in meters {
        by_segment.entry(m.segment.as_str()).or_default().push(m);
    }
    let mut out = Vec::with_capacity(meters.len());
    for (segment, ms) in by_segment {
        let cap = spec.cap(segment);
        if cap == 0 {
            return Err(ScheduleError::Invalid(format!(
                "segment {segment} has cap 0"
            )));
        }
        let lanes = (cap as usize).min(ms.len());
        let per_lane = ms.len().div_ceil(lanes) as i64;
        let needed = per_lane.saturating_mul(spec.read_ms);
        if needed > spec.window_ms {
            return Err(ScheduleError::WindowTooShort {
                segment: segment.to_owned(),
                meters: ms.len(),
                cap,
                needed_ms: needed,
                window_ms: spec.window_ms,
            });
        }
        // Even spacing within a lane; the slack left by the last read staggers the lanes.
        let spacing = spec.window_ms / per_lane;
        let slack = spacing - spec.read_ms;
        for (j, m) in ms.iter().enumerate() {
            let lane = (j % lanes) as i64;
            let slot = (j / lanes) as i64;
            let offset = slack * lane / lanes as i64;
            let start = spec.window_start_ms + slot * spacing + offset;
            out.push(ScheduledRead {
                meter: m.meter.clone(),
                segment: segment.to_owned(),
                start_ms: start,
                end_ms: start + spec.read_ms,
            });
        }
    }
    out.sort_by(|a, b| {
        a.start_ms
            .cmp(&b.start_ms)
            .then_with(|| a.meter.cmp(&b.meter))
    });
    Ok(out)
}

/// The most reads of `segment` in progress at once in `reads` (a read holds `[start, end)`).
pub fn peak_concurrency(reads: &[ScheduledRead], segment: &str) -> usize {
    let mut edges: Vec<(i64, i32)> = reads
        .iter()
        .filter(|r| r.segment == segment)
        .flat_map(|r| [(r.start_ms, 1), (r.end_ms, -1)])
        .collect();
    // Ends before starts at the same instant.
    edges.sort_unstable();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(segments: &[(&str, usize)]) -> Vec<PolledMeter> {
        segments
            .iter()
            .flat_map(|(s, n)| {
                (0..*n).map(move |i| PolledMeter {
                    meter: format!("{s}-m{i}"),
                    segment: (*s).to_owned(),
                })
            })
            .collect()
    }

    #[test]
    fn no_segment_ever_exceeds_its_cap_and_every_meter_is_read_once_in_the_window() {
        let meters = fleet(&[
            ("dcu-1", 500),
            ("dcu-2", 37),
            ("cell-9", 1),
            ("feeder-3", 120),
        ]);
        let spec = ScheduleSpec {
            window_start_ms: 1_000_000,
            window_ms: 3_600_000,
            read_ms: 20_000,
            default_cap: 4,
            caps: HashMap::from([("dcu-1".to_owned(), 8), ("feeder-3".to_owned(), 2)]),
        };
        let reads = schedule_reads(&meters, &spec).unwrap();
        assert_eq!(reads.len(), meters.len());
        let mut seen: Vec<&str> = reads.iter().map(|r| r.meter.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), meters.len(), "each meter once");
        for r in &reads {
            assert!(r.start_ms >= spec.window_start_ms);
            assert!(r.end_ms <= spec.window_start_ms + spec.window_ms, "{r:?}");
        }
        for (segment, cap) in [("dcu-1", 8), ("dcu-2", 4), ("cell-9", 4), ("feeder-3", 2)] {
            let peak = peak_concurrency(&reads, segment);
            assert!(peak <= cap, "{segment}: {peak} at once, cap {cap}");
            assert!(peak >= 1);
        }
        // Spread, not bunched: dcu-1's 500 reads over 8 lanes use most of the hour.
        let last = reads
            .iter()
            .filter(|r| r.segment == "dcu-1")
            .map(|r| r.start_ms)
            .max()
            .unwrap();
        assert!(last - spec.window_start_ms > spec.window_ms * 9 / 10);
        // The check itself sees overlap when there is some.
        let mut bunched = reads.clone();
        for r in bunched.iter_mut().filter(|r| r.segment == "feeder-3") {
            r.start_ms = 0;
            r.end_ms = 10;
        }
        assert_eq!(peak_concurrency(&bunched, "feeder-3"), 120);
    }

    #[test]
    fn a_window_too_short_is_an_error() {
        let meters = fleet(&[("dcu-1", 100)]);
        let spec = ScheduleSpec {
            window_start_ms: 0,
            window_ms: 60_000,
            read_ms: 10_000,
            default_cap: 2,
            caps: HashMap::new(),
        };
        assert!(matches!(
            schedule_reads(&meters, &spec),
            Err(ScheduleError::WindowTooShort {
                needed_ms: 500_000,
                ..
            })
        ));
        let spec = ScheduleSpec {
            default_cap: 0,
            ..spec
        };
        assert!(matches!(
            schedule_reads(&meters, &spec),
            Err(ScheduleError::Invalid(_))
        ));
    }
}
