//! Rule parameters: what each rule accepts ([`ParamSpec`]), and typed reads of the caller's
//! list that refuse unknown names, repeats and values out of range.

use ami_domain::Quantity;

use crate::{Param, RuleError, RuleSpec};

/// The default of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamDefault {
    /// The caller must give it.
    Required,
    /// Absent means the feature it controls is off (or another parameter stands in).
    Optional,
    /// This value, `mantissa * 10^scale`.
    Value(i64, i8),
    /// Worked out from the series; the text says how.
    Computed(&'static str),
}

/// One parameter a rule accepts.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// Its name, kebab-case.
    pub name: &'static str,
    /// What it means, in the series' unit where it is a value.
    pub doc: &'static str,
    /// What applies when the caller leaves it out.
    pub default: ParamDefault,
}

/// The caller's parameters, checked against a rule's spec.
pub(crate) struct Params<'a> {
    rule: &'static RuleSpec,
    given: &'a [Param<'a>],
}

fn bad(rule: &RuleSpec, name: &str, what: &str) -> RuleError {
    RuleError::BadParameter(format!("{}: parameter {name} {what}", rule.id))
}

impl<'a> Params<'a> {
    /// Checks that every given name is one the rule accepts, once.
    pub(crate) fn new(rule: &'static RuleSpec, given: &'a [Param<'a>]) -> Result<Self, RuleError> {
        for (i, p) in given.iter().enumerate() {
            if !rule.params.iter().any(|s| s.name == p.name) {
                let known: Vec<&str> = rule.params.iter().map(|s| s.name).collect();
                return Err(RuleError::BadParameter(format!(
                    "{}: unknown parameter {:?} (accepts {})",
                    rule.id,
                    p.name,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            if given.iter().take(i).any(|q| q.name == p.name) {
                return Err(bad(rule, p.name, "given twice"));
            }
        }
        Ok(Params { rule, given })
    }

    fn spec(&self, name: &str) -> Option<&'static ParamSpec> {
        self.rule.params.iter().find(|s| s.name == name)
    }

    /// The value of `name`: given, else its fixed default, else `None`.
    pub(crate) fn quantity(&self, name: &str) -> Option<Quantity> {
        if let Some(p) = self.given.iter().find(|p| p.name == name) {
            return Some(p.value);
        }
        match self.spec(name).map(|s| s.default) {
            Some(ParamDefault::Value(m, s)) => Some(Quantity::new(m, s)),
            _ => None,
        }
    }

    /// The value of a required parameter.
    pub(crate) fn required(&self, name: &str) -> Result<Quantity, RuleError> {
        self.quantity(name)
            .ok_or_else(|| bad(self.rule, name, "is required"))
    }

    /// An exact integer parameter within `[min, max]`.
    pub(crate) fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, RuleError> {
        let Some(q) = self.quantity(name) else {
            return Ok(None);
        };
        let n = q
            .rescaled(0)
            .filter(|n| (min..=max).contains(&n.mantissa))
            .ok_or_else(|| {
                bad(
                    self.rule,
                    name,
                    &format!("must be a whole number from {min} to {max}, not {q}"),
                )
            })?;
        Ok(Some(n.mantissa))
    }

    /// A count (at least `min`, at most a million).
    pub(crate) fn count(&self, name: &str, min: u32) -> Result<Option<u32>, RuleError> {
        Ok(self
            .integer(name, i64::from(min), 1_000_000)?
            .and_then(|n| u32::try_from(n).ok()))
    }

    /// A yes/no parameter, `0` or `1`.
    pub(crate) fn flag(&self, name: &str) -> Result<bool, RuleError> {
        Ok(self.integer(name, 0, 1)? == Some(1))
    }

    /// A timestamp parameter, UTC milliseconds.
    pub(crate) fn timestamp(&self, name: &str) -> Result<Option<i64>, RuleError> {
        self.integer(name, i64::MIN, i64::MAX)
    }

    /// A duration in seconds (down to milliseconds, at most a year), as milliseconds.
    pub(crate) fn seconds_as_ms(&self, name: &str) -> Result<Option<i64>, RuleError> {
        let Some(q) = self.quantity(name) else {
            return Ok(None);
        };
        q.rescaled(-3)
            .map(|ms| ms.mantissa)
            .filter(|ms| (0..=31_622_400_000).contains(ms))
            .map(Some)
            .ok_or_else(|| {
                bad(
                    self.rule,
                    name,
                    &format!("must be 0 to 31622400 seconds in steps of at least 0.001, not {q}"),
                )
            })
    }

    /// A non-negative value parameter.
    pub(crate) fn non_negative(&self, name: &str) -> Result<Option<Quantity>, RuleError> {
        match self.quantity(name) {
            Some(q) if q.mantissa < 0 => Err(bad(self.rule, name, "must not be negative")),
            q => Ok(q),
        }
    }

    /// The rule these parameters are for.
    pub(crate) fn rule(&self) -> &'static RuleSpec {
        self.rule
    }

    /// An error about parameter `name`.
    pub(crate) fn bad(&self, name: &str, what: &str) -> RuleError {
        bad(self.rule, name, what)
    }
}
