//! The standard VEE rule pack component: `ami-vee` on the `vee-rule` world.
//!
//! Converts the WIT series and parameters into `ami-vee`'s types (borrowing the values, no
//! copies of strings), runs [`ami_vee::check`] and converts the findings back. The series'
//! meter, register and unit are not needed by any rule and stay on the host's side.

use ami_plugin_sdk::types as t;
use ami_plugin_sdk::vee::exports::ami::plugin::validate as w;

struct Standard;

fn quantity(q: t::Quantity) -> ami_vee::Quantity {
    ami_vee::Quantity::new(q.mantissa, q.scale)
}

fn interval(i: &w::Interval) -> ami_vee::Interval {
    ami_vee::Interval {
        ts: i.ts,
        value: quantity(i.value),
        quality: ami_vee::Quality(u16::from(i.quality.bits())),
    }
}

fn method(m: ami_vee::EstimationMethod) -> w::EstimationMethod {
    match m {
        ami_vee::EstimationMethod::LinearInterpolation => w::EstimationMethod::LinearInterpolation,
        ami_vee::EstimationMethod::LikeDayProfile => w::EstimationMethod::LikeDayProfile,
        ami_vee::EstimationMethod::RegisterProrate => w::EstimationMethod::RegisterProrate,
        ami_vee::EstimationMethod::ZeroFill => w::EstimationMethod::ZeroFill,
    }
}

fn finding(f: ami_vee::Finding) -> w::Finding {
    w::Finding {
        ts: f.ts,
        verdict: match f.verdict {
            ami_vee::Verdict::Pass => w::Verdict::Pass,
            ami_vee::Verdict::Fail(why) => w::Verdict::Fail(why),
            ami_vee::Verdict::Estimate(q, m) => w::Verdict::Estimate((
                t::Quantity {
                    mantissa: q.mantissa,
                    scale: q.scale,
                },
                method(m),
            )),
        },
    }
}

impl w::Guest for Standard {
    fn check(
        rule_id: String,
        params: Vec<w::Parameter>,
        series: w::Series,
    ) -> Result<Vec<w::Finding>, w::RuleError> {
        let params: Vec<ami_vee::Param<'_>> = params
            .iter()
            .map(|p| ami_vee::Param {
                name: &p.name,
                value: quantity(p.value),
            })
            .collect();
        let values: Vec<ami_vee::Interval> = series.values.iter().map(interval).collect();
        let history: Vec<ami_vee::Interval> = series.history.iter().map(interval).collect();
        let s = ami_vee::Series {
            interval_s: series.interval_s,
            values: &values,
            history: &history,
        };
        match ami_vee::check(&rule_id, &params, &s) {
            Ok(found) => Ok(found.into_iter().map(finding).collect()),
            Err(ami_vee::RuleError::BadParameter(m)) => Err(w::RuleError::BadParameter(m)),
            Err(ami_vee::RuleError::Unsuitable(m)) => Err(w::RuleError::Unsuitable(m)),
        }
    }
}

ami_plugin_sdk::export_vee_rule!(Standard);
