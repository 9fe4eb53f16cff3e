//! Role-based authorisation of every gRPC call, in one tower layer in front of all services.
//!
//! A call carries `authorization: Bearer <token>`; the token maps to a [`Principal`] (a name
//! and roles). [`required_access`] says, per full method path, what a call needs; the layer
//! refuses a missing or unknown token with `UNAUTHENTICATED` and a principal without the role
//! with `PERMISSION_DENIED`, before the service sees the call, and hands the principal to the
//! service in the request's extensions. A method not in the table is refused: a new rpc
//! without a role cannot slip through (a test checks the table against the proto).
//!
//! # Tokens
//!
//! From `AMI_HES_TOKENS` or a file (`AMI_HES_TOKENS_FILE`): entries separated by newlines or
//! `;`, each `<principal> <role>[,<role>...] <token>` (whitespace-separated; the token is the
//! rest of the entry and may not hold whitespace or `;`); blank entries and `#` comments are
//! skipped. Roles: `reader` (registry, events, outages: read), `operator` (reader, plus CSV
//! import, status changes, key metadata, and commands: submit, bulk disconnect requests,
//! firmware campaigns), `key-admin` (reader, plus putting and rotating keys), `admin`
//! (everything, including the second approval of bulk disconnects). Tokens are kept only as
//! SHA-256 digests.
//!
//! The standard health service is open (probes carry no token); reflection needs any valid
//! token.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{HesError, Result};

/// A role a principal may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Read the registry, events and outages.
    Reader,
    /// Reader, plus import meters, change statuses, read key metadata.
    Operator,
    /// Reader, plus put and rotate keys.
    KeyAdmin,
    /// Everything.
    Admin,
}

impl Role {
    /// Its name in token configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::KeyAdmin => "key-admin",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        [Role::Reader, Role::Operator, Role::KeyAdmin, Role::Admin]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The name, for audit (key records keep who stored them).
    pub name: String,
    /// The roles.
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether the principal may do what `needed` allows.
    pub fn has(&self, needed: Role) -> bool {
        self.roles.iter().any(|&r| {
            r == needed
                || r == Role::Admin
                || (needed == Role::Reader && matches!(r, Role::Operator | Role::KeyAdmin))
        })
    }
}

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing (health checks).
    Public,
    /// Any valid token (reflection).
    Authenticated,
    /// A role.
    Role(Role),
}

/// What the method at `path` (`/package.Service/Method`) needs; `None`: unknown, refused.
pub fn required_access(path: &str) -> Option<Access> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    Some(match (service, method) {
        ("grpc.health.v1.Health", _) => Access::Public,
        ("grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection", _) => {
            Access::Authenticated
        }
        ("ami.hes.v1.RegistryService", "GetMeter" | "ListMeters") => Access::Role(Role::Reader),
        ("ami.hes.v1.RegistryService", "ImportMeters" | "UpdateStatus") => {
            Access::Role(Role::Operator)
        }
        ("ami.hes.v1.KeyService", "ListKeys") => Access::Role(Role::Operator),
        ("ami.hes.v1.KeyService", "PutKey" | "RotateKey") => Access::Role(Role::KeyAdmin),
        ("ami.hes.v1.EventService", "QueryEvents" | "StreamEvents") => Access::Role(Role::Reader),
        ("ami.hes.v1.OutageService", "ListOutages" | "StreamOutages") => Access::Role(Role::Reader),
        // Commands: the engine checks again with the roles `crate::commands::engine_roles`
        // maps these onto (admin: supervisor, operator: operator, the others: reader).
        (
            "ami.hes.v1.CommandService",
            "GetCommand" | "GetAudit" | "WatchCommands" | "GetBulk" | "GetCampaign"
            | "GetSigningKey",
        ) => Access::Role(Role::Reader),
        (
            "ami.hes.v1.CommandService",
            "SubmitCommand" | "RequestBulkDisconnect" | "StartCampaign",
        ) => Access::Role(Role::Operator),
        ("ami.hes.v1.CommandService", "ApproveBulk" | "RejectBulk") => Access::Role(Role::Admin),
        _ => return None,
    })
}

/// Where the tokens come from.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The entries themselves (as `AMI_HES_TOKENS` holds them).
    Inline(Zeroizing<String>),
    /// A file of entries (`AMI_HES_TOKENS_FILE`).
    File(std::path::PathBuf),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            TokenSource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl TokenSource {
    /// `AMI_HES_TOKENS`, else `AMI_HES_TOKENS_FILE`; neither is a configuration error (a HES
    /// without tokens would refuse every call).
    pub fn from_env() -> Result<Self> {
        if let Ok(v) = std::env::var("AMI_HES_TOKENS") {
            return Ok(TokenSource::Inline(Zeroizing::new(v)));
        }
        if let Ok(p) = std::env::var("AMI_HES_TOKENS_FILE") {
            return Ok(TokenSource::File(p.into()));
        }
        Err(HesError::Config(
            "no api tokens: set AMI_HES_TOKENS or AMI_HES_TOKENS_FILE".into(),
        ))
    }
}

/// Maps tokens to principals.
#[derive(Clone, Default)]
pub struct Authorizer {
    tokens: HashMap<[u8; 32], Principal>,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authorizer({} tokens)", self.tokens.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authorizer {
    /// Parses token entries (see the module docs).
    pub fn parse(text: &str) -> Result<Self> {
        let mut tokens = HashMap::new();
        for (i, entry) in text.split(['\n', ';']).enumerate() {
            let entry = entry.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let bad = |why: &str| HesError::Config(format!("api token entry {}: {why}", i + 1));
            let mut parts = entry.split_whitespace();
            let (Some(name), Some(roles), Some(token), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("expected `<principal> <role>[,<role>...] <token>`"));
            };
            let roles = roles
                .split(',')
                .map(|r| Role::parse(r).ok_or_else(|| bad(&format!("unknown role {r:?}"))))
                .collect::<Result<Vec<_>>>()?;
            if token.len() < 16 {
                return Err(bad("a token needs at least 16 characters"));
            }
            let principal = Principal {
                name: name.to_owned(),
                roles,
            };
            if tokens.insert(digest(token), principal).is_some() {
                return Err(bad("token given twice"));
            }
        }
        Ok(Authorizer { tokens })
    }

    /// Loads the tokens of a source.
    pub fn from_source(source: &TokenSource) -> Result<Self> {
        match source {
            TokenSource::Inline(t) => Self::parse(t),
            TokenSource::File(p) => Self::from_file(p),
        }
    }

    /// Loads a token file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                HesError::Config(format!("api token file {}: {e}", path.display()))
            })?);
        Self::parse(&text)
    }

    /// Decides a call to `path` with `authorization` metadata: the principal (`None` for a
    /// public method), or why not.
    pub fn check(&self, path: &str, authorization: Option<&str>) -> Result<Option<Principal>> {
        let access = required_access(path);
        if access == Some(Access::Public) {
            return Ok(None);
        }
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| HesError::Unauthenticated("missing bearer token".into()))?;
        let principal = self
            .tokens
            .get(&digest(token))
            .ok_or_else(|| HesError::Unauthenticated("unknown token".into()))?;
        match access {
            Some(Access::Public | Access::Authenticated) => Ok(Some(principal.clone())),
            Some(Access::Role(r)) if principal.has(r) => Ok(Some(principal.clone())),
            Some(Access::Role(r)) => Err(HesError::PermissionDenied {
                principal: principal.name.clone(),
                needed: r.name(),
            }),
            None => Err(HesError::PermissionDenied {
                principal: principal.name.clone(),
                needed: "a known method",
            }),
        }
    }
}

/// The tower layer putting [`Authorizer::check`] in front of every service.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    auth: Arc<Authorizer>,
}

impl AuthLayer {
    /// The layer over an authorizer.
    pub fn new(auth: Arc<Authorizer>) -> Self {
        AuthLayer { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authorizer>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<std::result::Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match self.auth.check(req.uri().path(), authorization) {
            Ok(principal) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                Box::pin(self.inner.call(req))
            }
            Err(e) => {
                tracing::debug!(path = req.uri().path(), error = %e, "call refused");
                let response = tonic::Status::from(e).into_http::<RB>();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKENS: &str = "# who roles token\n\
        alice reader tok-alice-0123456789\n\
        bob operator,key-admin tok-bob-0123456789;carol admin tok-carol-0123456789";

    #[test]
    fn tokens_and_roles() {
        let a = Authorizer::parse(TOKENS).unwrap();
        let get = "/ami.hes.v1.RegistryService/GetMeter";
        let put = "/ami.hes.v1.KeyService/PutKey";
        assert!(matches!(
            a.check(get, None),
            Err(HesError::Unauthenticated(_))
        ));
        assert!(matches!(
            a.check(get, Some("Bearer nope-nope-nope-nope")),
            Err(HesError::Unauthenticated(_))
        ));
        let p = a.check(get, Some("Bearer tok-alice-0123456789")).unwrap();
        assert_eq!(p.unwrap().name, "alice");
        assert!(matches!(
            a.check(put, Some("Bearer tok-alice-0123456789")),
            Err(HesError::PermissionDenied { .. })
        ));
        assert!(a.check(put, Some("Bearer tok-bob-0123456789")).is_ok());
        assert!(a.check(put, Some("Bearer tok-carol-0123456789")).is_ok());
        assert!(a.check(get, Some("Bearer tok-bob-0123456789")).is_ok());
        assert_eq!(a.check("/grpc.health.v1.Health/Check", None).unwrap(), None);
        assert!(matches!(
            a.check(
                "/ami.hes.v1.Unknown/Thing",
                Some("Bearer tok-carol-0123456789")
            ),
            Err(HesError::PermissionDenied { .. })
        ));
    }

    #[test]
    fn bad_token_files_are_refused() {
        assert!(Authorizer::parse("alice reader").is_err());
        assert!(Authorizer::parse("alice wizard tok-0123456789abcdef").is_err());
        assert!(Authorizer::parse("alice reader short").is_err());
        assert!(
            Authorizer::parse("a reader tok-0123456789abcdef\nb admin tok-0123456789abcdef")
                .is_err()
        );
        assert!(format!("{:?}", Authorizer::parse(TOKENS).unwrap()).contains("3 tokens"));
    }
}
