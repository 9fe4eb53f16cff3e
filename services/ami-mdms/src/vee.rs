//! VEE: the rule set of each meter class, run through `vee-rule` Wasm components.
//!
//! A rule set is a list of rule ids (served by whichever installed rule pack lists them) with
//! their parameters. It is configured in TOML:
//!
//! ```toml
//! [class.residential]
//! rules = [
//!   { rule = "high-low-limits", params = { high = "5000", low = "0" } },
//!   { rule = "estimate-linear", params = { max-gap-intervals = "8" } },
//! ]
//! ```
//!
//! Values are decimal strings, never floats. A meter whose class has no set gets the
//! `default` class's.
//!
//! A run checks the series with the validation rules first; a `fail` finding becomes an
//! exception on that interval. The estimation rules (ids starting `estimate-`) then see the
//! series without the failed values, so they estimate those and the gaps alike; an `estimate`
//! becomes a new version (source estimated, actor the rule pack `name@version`, reason the
//! rule id, method the estimation method), which the latest view then shows, and the
//! exceptions of an estimated interval are resolved as replaced by the estimate. The rules
//! that look for gaps get the run's window (`window-start`, `window-end`: the first and last
//! interval ends of the reviewed span on the series' grid) unless the rule set gives one.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use ami_domain::{Obis, Quality, Quantity, Unit};
use ami_mdms_store::{NewException, NewVersion, Source, StoredReading};
use ami_plugin_host::bindings::types as t;
use ami_plugin_host::bindings::vee::exports::ami::plugin::validate as vw;
use ami_plugin_host::convert::{obis_to_wit, quality_to_wit, unit_to_wit};
use ami_plugin_host::{Host, PluginKind};
use serde::Deserialize;

use crate::error::{MdmsError, Result};

/// One rule of a set, with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleConfig {
    /// The rule id.
    pub rule: String,
    /// Its parameters.
    pub params: Vec<(String, Quantity)>,
}

/// The rule sets by meter class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSets {
    classes: BTreeMap<String, Vec<RuleConfig>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    rule: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClass {
    rules: Vec<FileRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    class: BTreeMap<String, FileClass>,
}

/// The rule set the MDMS uses when none is configured: the standard pack's checks with
/// limits suited to a residential electricity meter's 15-minute Wh intervals.
pub const DEFAULT_RULES: &str = r#"
[class.default]
rules = [
  { rule = "missing-intervals", params = { estimate = "0" } },
  { rule = "high-low-limits", params = { high = "25000", low = "0" } },
  { rule = "negative-flow" },
  { rule = "spike", params = { factor = "10", min-history = "96" } },
  { rule = "stuck-register", params = { max-flat-run = "16" } },
  { rule = "zero-consumption", params = { max-zero-run = "96" } },
  { rule = "clock-drift", params = { max-drift-s = "60" } },
  { rule = "estimate-linear", params = { max-gap-intervals = "4" } },
  { rule = "estimate-like-day", params = { like-days = "4" } },
]
"#;

impl RuleSets {
    /// Parses a rule-set file.
    pub fn parse(text: &str) -> Result<Self> {
        let file: File =
            toml::from_str(text).map_err(|e| MdmsError::Config(format!("rule sets: {e}")))?;
        let mut classes = BTreeMap::new();
        for (class, set) in file.class {
            let mut rules = Vec::with_capacity(set.rules.len());
            for r in set.rules {
                if r.rule.trim().is_empty() {
                    return Err(MdmsError::Config(format!("class {class}: empty rule id")));
                }
                let params = r
                    .params
                    .into_iter()
                    .map(|(name, value)| {
                        Quantity::from_str(&value)
                            .map(|q| (name.clone(), q))
                            .map_err(|e| {
                                MdmsError::Config(format!(
                                    "class {class}, rule {}: parameter {name} = {value:?}: {e}",
                                    r.rule
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                rules.push(RuleConfig {
                    rule: r.rule,
                    params,
                });
            }
            classes.insert(class, rules);
        }
        Ok(Self { classes })
    }

    /// The built-in default ([`DEFAULT_RULES`]).
    pub fn standard() -> Self {
        Self::parse(DEFAULT_RULES).unwrap_or_default()
    }

    /// The rules of a class (the `default` class's when it has none).
    pub fn for_class(&self, class: &str) -> &[RuleConfig] {
        self.classes
            .get(class)
            .or_else(|| self.classes.get("default"))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every rule id used by any class.
    pub fn rule_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .classes
            .values()
            .flatten()
            .map(|r| r.rule.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// The rules that take the review window as `window-start` / `window-end`.
const WINDOWED: &[&str] = &[
    "missing-intervals",
    "estimate-linear",
    "estimate-like-day",
    "estimate-register-prorate",
];

/// What one series' VEE run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesOutcome {
    /// Failures, to record as exceptions.
    pub exceptions: Vec<NewException>,
    /// Estimates, to add as versions: (interval end, version).
    pub estimates: Vec<(i64, NewVersion)>,
}

/// One series to validate.
pub struct SeriesInput<'a> {
    /// The meter.
    pub meter: &'a str,
    /// The register.
    pub register: Obis,
    /// Interval length, seconds.
    pub interval_s: u32,
    /// The values under review (latest view).
    pub values: &'a [StoredReading],
    /// Earlier values.
    pub history: &'a [StoredReading],
    /// The review window `(after, until]`, so rules can see gaps at its ends.
    pub window: (i64, i64),
}

fn wit_intervals(values: &[StoredReading]) -> Vec<vw::Interval> {
    values
        .iter()
        .map(|r| vw::Interval {
            ts: r.ts_ms,
            value: t::Quantity {
                mantissa: r.value.mantissa,
                scale: r.value.scale,
            },
            quality: quality_to_wit(r.quality),
        })
        .collect()
}

/// The interval length of a series: the most common step between consecutive values, or
/// `fallback_s` with fewer than two values.
pub fn interval_of(values: &[StoredReading], fallback_s: u32) -> u32 {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for w in values.windows(2) {
        let step = w[1].ts_ms - w[0].ts_ms;
        if step > 0 {
            *counts.entry(step).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(step, n)| (*n, -step))
        .and_then(|(step, _)| u32::try_from(step / 1000).ok())
        .filter(|s| *s > 0)
        .unwrap_or(fallback_s)
}

/// Runs `rules` over one series; blocking (Wasm calls), so call it off the async threads.
pub fn run_series(
    host: &Arc<Host>,
    rules: &[RuleConfig],
    input: &SeriesInput<'_>,
) -> Result<SeriesOutcome> {
    let unit = input
        .values
        .first()
        .map(|r| r.unit)
        .unwrap_or(Unit::WattHour);
    let series = vw::Series {
        meter: input.meter.to_owned(),
        register: obis_to_wit(input.register),
        unit: unit_to_wit(unit),
        interval_s: input.interval_s,
        values: wit_intervals(input.values),
        history: wit_intervals(input.history),
    };
    let mut out = SeriesOutcome::default();
    let (estimators, validators): (Vec<&RuleConfig>, Vec<&RuleConfig>) =
        rules.iter().partition(|r| r.rule.starts_with("estimate-"));
    for rule in validators {
        for f in call_rule(host, rule, &series, input)? {
            if let vw::Verdict::Fail(reason) = f.verdict {
                out.exceptions.push(NewException {
                    meter: input.meter.to_owned(),
                    register: input.register,
                    ts_ms: f.ts,
                    rule: rule.rule.clone(),
                    reason,
                });
            }
        }
    }
    if estimators.is_empty() {
        return Ok(out);
    }
    // The estimators see the series without the values that failed.
    let failed: std::collections::BTreeSet<i64> = out.exceptions.iter().map(|e| e.ts_ms).collect();
    let mut cleaned = series.clone();
    cleaned.values.retain(|v| !failed.contains(&v.ts));
    for rule in estimators {
        let name = plugin_name(host, rule)?;
        for f in call_rule(host, rule, &cleaned, input)? {
            let vw::Verdict::Estimate((q, method)) = f.verdict else {
                continue;
            };
            // An interval an earlier estimator of this run already estimated keeps the first.
            if out.estimates.iter().any(|(ts, _)| *ts == f.ts) {
                continue;
            }
            out.estimates.push((
                f.ts,
                NewVersion {
                    value: Quantity::new(q.mantissa, q.scale),
                    unit,
                    quality: Quality::VALID,
                    source: Source::Estimated,
                    actor: name.clone(),
                    reason: Some(rule.rule.clone()),
                    method: Some(method_name(method).to_owned()),
                },
            ));
        }
    }
    Ok(out)
}

fn plugin_for(host: &Arc<Host>, rule: &RuleConfig) -> Result<Arc<ami_plugin_host::Plugin>> {
    host.plugin_for_rule(PluginKind::VeeRule, &rule.rule)
        .ok_or_else(|| {
            MdmsError::NotFound(format!("no installed rule pack serves rule {}", rule.rule))
        })
}

fn plugin_name(host: &Arc<Host>, rule: &RuleConfig) -> Result<String> {
    let p = plugin_for(host, rule)?;
    Ok(format!("{}@{}", p.manifest().name, p.manifest().version))
}

/// One rule over one series, with the window added for the rules that take one.
fn call_rule(
    host: &Arc<Host>,
    rule: &RuleConfig,
    series: &vw::Series,
    input: &SeriesInput<'_>,
) -> Result<Vec<vw::Finding>> {
    let plugin = plugin_for(host, rule)?;
    let mut params: Vec<vw::Parameter> = rule
        .params
        .iter()
        .map(|(n, q)| vw::Parameter {
            name: n.clone(),
            value: t::Quantity {
                mantissa: q.mantissa,
                scale: q.scale,
            },
        })
        .collect();
    if WINDOWED.contains(&rule.rule.as_str()) {
        let step = i64::from(input.interval_s.max(1)) * 1000;
        let (after, until) = input.window;
        let first = after.div_euclid(step) * step + step;
        let last = until.div_euclid(step) * step;
        for (name, value) in [("window-start", first), ("window-end", last)] {
            if first <= last && !params.iter().any(|p| p.name == name) {
                params.push(vw::Parameter {
                    name: name.into(),
                    value: t::Quantity {
                        mantissa: value,
                        scale: 0,
                    },
                });
            }
        }
    }
    plugin
        .check(&rule.rule, &params, series)?
        .map_err(|e| MdmsError::PluginRefused {
            plugin: format!("{}@{}", plugin.manifest().name, plugin.manifest().version),
            reason: match e {
                vw::RuleError::BadParameter(s) => format!("rule {}: bad parameter: {s}", rule.rule),
                vw::RuleError::Unsuitable(s) => {
                    format!("rule {}: unsuitable series: {s}", rule.rule)
                }
            },
        })
}

/// The estimation method's name as recorded in provenance.
pub const fn method_name(m: vw::EstimationMethod) -> &'static str {
    match m {
        vw::EstimationMethod::LinearInterpolation => "linear-interpolation",
        vw::EstimationMethod::LikeDayProfile => "like-day-profile",
        vw::EstimationMethod::RegisterProrate => "register-prorate",
        vw::EstimationMethod::ZeroFill => "zero-fill",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_sets_parse_and_fall_back_to_default() {
        let sets = RuleSets::parse(
            r#"
[class.default]
rules = [{ rule = "negative-flow" }]
[class.commercial]
rules = [{ rule = "high-low-limits", params = { high = "12.5", low = "-1" } }]
"#,
        )
        .unwrap();
        assert_eq!(
            sets.for_class("commercial")[0].params[0],
            ("high".into(), Quantity::new(125, -1))
        );
        assert_eq!(sets.for_class("residential")[0].rule, "negative-flow");
        assert_eq!(sets.rule_ids(), ["high-low-limits", "negative-flow"]);
        assert!(!RuleSets::standard().for_class("x").is_empty());
    }

    #[test]
    fn bad_rule_sets_say_what_is_wrong() {
        let e =
            RuleSets::parse("[class.a]\nrules = [{ rule = \"x\", params = { high = \"1e\" } }]")
                .unwrap_err()
                .to_string();
        assert!(e.contains("parameter high"), "{e}");
        assert!(RuleSets::parse("[class.a]\nrules = [{ rul = \"x\" }]").is_err());
    }
}
