//! Example VEE rule pack with two rules:
//!
//! - `limits`: fails every interval outside `[min, max]` (parameters, in the series' unit);
//! - `linear-fill`: estimates each missing interval (a gap in the timestamps) by linear
//!   interpolation between its neighbours.

use ami_plugin_sdk::convert::{quantity, quantity_from};
use ami_plugin_sdk::domain::Quantity;
use ami_plugin_sdk::vee::exports::ami::plugin::validate::{
    EstimationMethod, Finding, Guest, Parameter, RuleError, Series, Verdict,
};

struct Rules;

fn param(params: &[Parameter], name: &str) -> Result<Quantity, RuleError> {
    params
        .iter()
        .find(|p| p.name == name)
        .map(|p| quantity_from(p.value))
        .ok_or_else(|| RuleError::BadParameter(format!("parameter {name} is required")))
}

impl Guest for Rules {
    fn check(
        rule_id: String,
        params: Vec<Parameter>,
        series: Series,
    ) -> Result<Vec<Finding>, RuleError> {
        match rule_id.as_str() {
            "limits" => {
                let (min, max) = (param(&params, "min")?, param(&params, "max")?);
                Ok(series
                    .values
                    .iter()
                    .filter_map(|v| {
                        let x = quantity_from(v.value);
                        let why = if x < min {
                            format!("{x} below {min}")
                        } else if x > max {
                            format!("{x} above {max}")
                        } else {
                            return None;
                        };
                        Some(Finding {
                            ts: v.ts,
                            verdict: Verdict::Fail(why),
                        })
                    })
                    .collect())
            }
            "linear-fill" => {
                let step = i64::from(series.interval_s) * 1000;
                if step == 0 {
                    return Err(RuleError::Unsuitable("interval length is zero".into()));
                }
                let mut out = Vec::new();
                for pair in series.values.windows(2) {
                    let [a, b] = pair else { continue };
                    let gaps = (b.ts - a.ts) / step - 1;
                    let (ya, yb) = (quantity_from(a.value), quantity_from(b.value));
                    let scale = ya.scale.min(yb.scale);
                    let (Some(ya), Some(yb)) = (ya.rescaled(scale), yb.rescaled(scale)) else {
                        continue;
                    };
                    for k in 1..=gaps.clamp(0, 10_000) {
                        let m = ya.mantissa + (yb.mantissa - ya.mantissa) * k / (gaps + 1);
                        out.push(Finding {
                            ts: a.ts + k * step,
                            verdict: Verdict::Estimate((
                                quantity(Quantity::new(m, scale)),
                                EstimationMethod::LinearInterpolation,
                            )),
                        });
                    }
                }
                Ok(out)
            }
            other => Err(RuleError::BadParameter(format!("unknown rule {other:?}"))),
        }
    }
}

ami_plugin_sdk::export_vee_rule!(Rules);
