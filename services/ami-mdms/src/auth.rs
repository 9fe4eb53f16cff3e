//! Who is calling: bearer tokens mapped to a principal and its roles, checked on every call.
//!
//! Tokens come from configuration (`AMI_MDMS_TOKENS`, or a file `AMI_MDMS_TOKENS_FILE` such
//! as a mounted Kubernetes secret): entries separated by `;` or new lines, each
//! `<token>=<name>:<role>[,<role>...]`. Roles: `reader` (queries and exports), `operator` (VEE
//! runs, exception resolution, edit proposals, bills, meter upserts) and `approver` (edit
//! reviews). `operator` and `approver` imply `reader`. Without tokens the server refuses to
//! start unless it is explicitly opened (`--insecure-open`), which makes every caller the
//! principal `anonymous` with every role: for a single machine only.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::error::{MdmsError, Result};

/// A role a principal may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read readings, exceptions, edits, meters; export.
    Reader,
    /// Run VEE, resolve exceptions, propose edits, compute bills, register meters.
    Operator,
    /// Approve or reject edits.
    Approver,
}

impl Role {
    fn parse(text: &str) -> Result<Self> {
        match text.trim() {
            "reader" => Ok(Role::Reader),
            "operator" => Ok(Role::Operator),
            "approver" => Ok(Role::Approver),
            other => Err(MdmsError::Config(format!(
                "unknown role {other:?} (reader, operator or approver)"
            ))),
        }
    }

    /// The role's name.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Approver => "approver",
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Its name, recorded in audit trails.
    pub name: String,
    /// Its roles.
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// Fails with [`MdmsError::PermissionDenied`] unless the principal holds `role`
    /// (`operator` and `approver` also hold `reader`).
    pub fn require(&self, role: Role) -> Result<()> {
        let held = self.roles.contains(&role) || (role == Role::Reader && !self.roles.is_empty());
        if held {
            Ok(())
        } else {
            Err(MdmsError::PermissionDenied(format!(
                "{} lacks the {} role",
                self.name,
                role.name()
            )))
        }
    }
}

/// How callers are authenticated.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Bearer tokens.
    Tokens(Arc<HashMap<String, Principal>>),
    /// No authentication: every caller is `anonymous` with every role.
    Open,
}

impl Auth {
    /// Parses the token list (see the module docs).
    pub fn parse_tokens(text: &str) -> Result<Self> {
        let mut map = HashMap::new();
        for entry in text
            .split([';', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'))
        {
            let (token, rest) = entry.split_once('=').ok_or_else(|| {
                MdmsError::Config("token entry without '=' (token=name:roles)".into())
            })?;
            let (name, roles) = rest.split_once(':').ok_or_else(|| {
                MdmsError::Config(format!(
                    "token entry for {:?} without ':' (name:roles)",
                    rest.trim()
                ))
            })?;
            let token = token.trim();
            let name = name.trim();
            if token.len() < 16 {
                return Err(MdmsError::Config(format!(
                    "the token of {name:?} is shorter than 16 characters"
                )));
            }
            if name.is_empty() {
                return Err(MdmsError::Config("token entry with an empty name".into()));
            }
            let roles = roles
                .split(',')
                .map(Role::parse)
                .collect::<Result<BTreeSet<_>>>()?;
            let principal = Principal {
                name: name.to_owned(),
                roles,
            };
            if map.insert(token.to_owned(), principal).is_some() {
                return Err(MdmsError::Config(format!("token of {name:?} given twice")));
            }
        }
        if map.is_empty() {
            return Err(MdmsError::Config("no tokens given".into()));
        }
        Ok(Auth::Tokens(Arc::new(map)))
    }

    /// The caller of a request from its `authorization` metadata.
    pub fn principal(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Principal> {
        match self {
            Auth::Open => Ok(Principal {
                name: "anonymous".into(),
                roles: [Role::Reader, Role::Operator, Role::Approver].into(),
            }),
            Auth::Tokens(map) => {
                let value = metadata
                    .get("authorization")
                    .ok_or_else(|| MdmsError::Unauthenticated("no authorization metadata".into()))?
                    .to_str()
                    .map_err(|_| MdmsError::Unauthenticated("authorization is not text".into()))?;
                let token = value.strip_prefix("Bearer ").ok_or_else(|| {
                    MdmsError::Unauthenticated("authorization is not a bearer token".into())
                })?;
                map.get(token.trim())
                    .cloned()
                    .ok_or_else(|| MdmsError::Unauthenticated("unknown token".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(value: Option<&str>) -> tonic::metadata::MetadataMap {
        let mut m = tonic::metadata::MetadataMap::new();
        if let Some(v) = value {
            m.insert("authorization", v.parse().unwrap());
        }
        m
    }

    #[test]
    fn tokens_give_principals_with_their_roles() {
        let auth = Auth::parse_tokens(
            "alice-token-0123456789=alice:operator; bob-token-0123456789=bob:approver\n# comment\n",
        )
        .unwrap();
        let alice = auth
            .principal(&meta(Some("Bearer alice-token-0123456789")))
            .unwrap();
        assert_eq!(alice.name, "alice");
        alice.require(Role::Operator).unwrap();
        alice.require(Role::Reader).unwrap();
        assert!(matches!(
            alice.require(Role::Approver),
            Err(MdmsError::PermissionDenied(_))
        ));
        for bad in [None, Some("Bearer nope-nope-nope-nope"), Some("Basic x")] {
            assert!(
                matches!(
                    auth.principal(&meta(bad)),
                    Err(MdmsError::Unauthenticated(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_token_lists_are_refused() {
        for bad in [
            "",
            "short=a:reader",
            "long-enough-token-1=a:king",
            "long-enough-token-1=a",
            "long-enough-token-1=a:reader;long-enough-token-1=b:reader",
        ] {
            assert!(Auth::parse_tokens(bad).is_err(), "{bad:?}");
        }
    }
}
