//! The flat `name = decimal` parameter list, read with bookkeeping: every parameter must be
//! read by the tariff, so a misspelt name is reported instead of silently ignored.

use ami_domain::Quantity;

use crate::decimal::Dec;
use crate::{Parameter, TariffError};

fn bad(msg: String) -> TariffError {
    TariffError::BadParameter(msg)
}

/// The parameters of one call, with which of them have been read.
pub(crate) struct Params<'a> {
    list: &'a [Parameter],
    used: Vec<bool>,
}

impl<'a> Params<'a> {
    /// Wraps the list; a name given twice is an error.
    pub(crate) fn new(list: &'a [Parameter]) -> Result<Self, TariffError> {
        let mut names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w.first() == w.get(1)) {
            let name = w.first().copied().unwrap_or_default();
            return Err(bad(format!("parameter {name} is given twice")));
        }
        Ok(Self {
            list,
            used: vec![false; list.len()],
        })
    }

    /// Every parameter name.
    pub(crate) fn names(&self) -> Vec<&'a str> {
        self.list.iter().map(|p| p.name.as_str()).collect()
    }

    /// The value of `name`, if given (it counts as read).
    pub(crate) fn get(&mut self, name: &str) -> Option<Quantity> {
        let i = self.list.iter().position(|p| p.name == name)?;
        if let Some(u) = self.used.get_mut(i) {
            *u = true;
        }
        self.list.get(i).map(|p| p.value)
    }

    /// The value of `name`, which must be given.
    pub(crate) fn require(&mut self, name: &str) -> Result<Quantity, TariffError> {
        self.get(name).ok_or_else(|| self.missing(name))
    }

    /// `name` is missing; an unread parameter beside it (same prefix) is likely misspelt.
    fn missing(&self, name: &str) -> TariffError {
        let prefix = name.rsplit_once('.').map_or("", |(p, _)| p);
        let near = self
            .list
            .iter()
            .zip(&self.used)
            .find(|(p, used)| {
                !**used
                    && !prefix.is_empty()
                    && p.name.rsplit_once('.').map(|(x, _)| x) == Some(prefix)
            })
            .map(|(p, _)| p.name.as_str());
        match near {
            Some(n) => bad(format!("parameter {name} is missing (is {n} misspelt?)")),
            None => bad(format!("parameter {name} is missing")),
        }
    }

    /// A whole number in `lo..=hi`, or `default` when absent.
    pub(crate) fn int_or(
        &mut self,
        name: &str,
        lo: i64,
        hi: i64,
        default: Option<i64>,
    ) -> Result<i64, TariffError> {
        let Some(q) = self.get(name) else {
            return default.ok_or_else(|| self.missing(name));
        };
        Dec::from_q(q)
            .to_int()
            .and_then(|v| i64::try_from(v).ok())
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(|| {
                bad(format!(
                    "parameter {name} = {q} must be a whole number in {lo}..={hi}"
                ))
            })
    }

    /// Fails on the first parameter nobody read.
    pub(crate) fn finish(self, tariff: &str) -> Result<(), TariffError> {
        match self.list.iter().zip(&self.used).find(|(_, used)| !**used) {
            Some((p, _)) => Err(bad(format!(
                "unknown parameter {} for tariff {tariff}",
                p.name
            ))),
            None => Ok(()),
        }
    }
}

/// Whether `s` is a usable season or period name: `[a-z0-9-]+`.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, m: i64, s: i8) -> Parameter {
        Parameter::new(name, Quantity::new(m, s))
    }

    #[test]
    fn reports_twice_missing_range_and_unread() {
        let twice = [p("a", 1, 0), p("a", 2, 0)];
        assert!(
            matches!(Params::new(&twice), Err(TariffError::BadParameter(m)) if m.contains("a is given twice"))
        );

        let list = [p("n", 155, -1), p("m", 7, 0), p("typo", 1, 0)];
        let mut ps = Params::new(&list).unwrap();
        assert!(
            matches!(ps.int_or("n", 0, 100, None), Err(TariffError::BadParameter(m)) if m.contains("n = 15.5 must be a whole number"))
        );
        assert_eq!(ps.int_or("m", 0, 10, None).unwrap(), 7);
        assert_eq!(ps.int_or("absent", 0, 10, Some(3)).unwrap(), 3);
        assert!(
            matches!(ps.require("gone"), Err(TariffError::BadParameter(m)) if m == "parameter gone is missing")
        );
        assert!(
            matches!(ps.finish("tou"), Err(TariffError::BadParameter(m)) if m == "unknown parameter typo for tariff tou")
        );
    }

    #[test]
    fn names() {
        assert!(is_name("summer-2"));
        assert!(!is_name("Summer"));
        assert!(!is_name(""));
        assert!(!is_name("a b"));
    }
}
