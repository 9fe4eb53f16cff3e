//! The `ami.hes.v1` gRPC server: configuration, start-up and the five services (registry,
//! keys, events, outages, commands), with server reflection, the standard health service and
//! the authorisation layer on.
//!
//! ```no_run
//! # async fn run() -> Result<(), ami_hes::HesError> {
//! let config = ami_hes::server::ServerConfig::from_env()?;
//! ami_hes::server::serve(config, std::future::pending()).await
//! # }
//! ```
//!
//! Start-up opens the database (`postgres://` or `sqlite:`), applies the migrations, loads the
//! master key and checks every stored key opens under it (a wrong master key stops the start
//! with [`HesError::KeyUnwrap`]), loads the tokens, takes back the open outages, then binds. While serving, it ticks the
//! outage detector every second, retires keys past their grace period, reloads the key
//! provider (changes made by other replicas), and consumes the events stream when a bus is
//! configured. With a bus, it also runs the command engine ([`crate::commands`]), which needs
//! the signing key ([`ServerConfig::signing_key`]): a bus without one stops the start with
//! [`HesError::Config`]. The verifying key is logged at start and served by `GetSigningKey`.
//! Outages are then confirmed by on-demand reads through the engine
//! ([`crate::commands::CommandPinger`]) unless [`ServerConfig::pinger`] names another pinger.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ami_bus::{Bus, ConsumerSettings, StreamKind};
use tokio_stream::wrappers::{BroadcastStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::auth::{AuthLayer, Authorizer, Principal, TokenSource};
use crate::commands::{CommandPinger, Commands, SigningKeySource};
use crate::error::{HesError, Result};
use crate::events::EventHub;
use crate::keys::{KeyBytes, KeyVault, KeyWrapper, LocalMasterKey, MasterKeySource};
use crate::model::{EventFilter, MeterFilter, now_ms};
use crate::outage::{NoPinger, OutageConfig, OutageDetector, Pinger};
use crate::proto::{self, v1};
use crate::store::{AnyStore, RegistryStore};

/// Everything the HES needs to start.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// `postgres://...`, `sqlite:<path>` or `sqlite::memory:`.
    pub database_url: String,
    /// Database pool size (PostgreSQL).
    pub max_connections: u32,
    /// The master key.
    pub master_key: MasterKeySource,
    /// The API tokens.
    pub tokens: TokenSource,
    /// Outage correlation thresholds.
    pub outage: OutageConfig,
    /// Default grace period of a rotated key.
    pub key_grace: Duration,
    /// The bus whose events stream to consume (`None`: events only through
    /// [`Hes::events`]`.ingest`).
    pub bus: Option<Bus>,
    /// The durable consumer name on the events stream (replicas share it).
    pub consumer: String,
    /// How outages are confirmed (`None`: a [`CommandPinger`] when commands are on, else
    /// [`NoPinger`]).
    pub pinger: Option<Arc<dyn Pinger>>,
    /// How long a meter has to answer an outage ping (an on-demand read).
    pub ping_timeout: Duration,
    /// The Ed25519 key commands are signed with; required when [`ServerConfig::bus`] is set.
    pub signing_key: Option<SigningKeySource>,
    /// Retries, deadlines and limits of the command engine.
    pub commands: ami_commands::EngineConfig,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("master_key", &self.master_key)
            .field("tokens", &self.tokens)
            .field("outage", &self.outage)
            .field("bus", &self.bus.is_some())
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

/// A URL without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The default port of the HES.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:50061";

impl ServerConfig {
    /// A configuration with defaults for the rest.
    pub fn new(
        listen: SocketAddr,
        database_url: &str,
        master_key: MasterKeySource,
        tokens: TokenSource,
    ) -> Self {
        ServerConfig {
            listen,
            database_url: database_url.to_owned(),
            max_connections: 8,
            master_key,
            tokens,
            outage: OutageConfig::default(),
            key_grace: crate::keys::DEFAULT_GRACE,
            bus: None,
            consumer: "ami-hes".into(),
            pinger: None,
            ping_timeout: crate::commands::DEFAULT_PING_TIMEOUT,
            signing_key: None,
            commands: ami_commands::EngineConfig::default(),
        }
    }

    /// From the environment: `AMI_HES_LISTEN` (default [`DEFAULT_LISTEN`]),
    /// `AMI_HES_DATABASE_URL` (default `sqlite:ami-hes.db`), `AMI_HES_MASTER_KEY` or
    /// `AMI_HES_MASTER_KEY_FILE`, `AMI_HES_TOKENS` or `AMI_HES_TOKENS_FILE`, and (for
    /// commands) `AMI_HES_SIGNING_KEY` or `AMI_HES_SIGNING_KEY_FILE`. A bad value is an error
    /// naming the variable. The bus is the caller's to set.
    pub fn from_env() -> Result<Self> {
        let listen = std::env::var("AMI_HES_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.into());
        let listen = listen
            .parse()
            .map_err(|_| HesError::Config(format!("AMI_HES_LISTEN {listen:?}: not host:port")))?;
        let db =
            std::env::var("AMI_HES_DATABASE_URL").unwrap_or_else(|_| "sqlite:ami-hes.db".into());
        let mut config = Self::new(
            listen,
            &db,
            MasterKeySource::from_env()?,
            TokenSource::from_env()?,
        );
        config.signing_key = SigningKeySource::from_env();
        Ok(config)
    }
}

/// The running parts of the HES, for in-process use (the `ami` binary's embedded mode feeds
/// events and hands the key provider to the plugin host).
pub struct Hes {
    /// The store.
    pub store: Arc<AnyStore>,
    /// The key vault (its [`KeyVault::provider`] is the host's key store).
    pub vault: Arc<KeyVault<AnyStore>>,
    /// The event hub (and through it the outage detector).
    pub events: Arc<EventHub<AnyStore>>,
    /// The command engine (with a bus only).
    pub commands: Option<Arc<Commands>>,
}

impl std::fmt::Debug for Hes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hes")
    }
}

/// A HES ready to serve: store open and migrated, keys checked, listener bound.
pub struct Bound {
    hes: Arc<Hes>,
    auth: Arc<Authorizer>,
    listener: tokio::net::TcpListener,
    bus: Option<Bus>,
    consumer: String,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bound({:?})", self.listener.local_addr().ok())
    }
}

/// Opens everything and binds the listener (see the module docs).
pub async fn bind(config: ServerConfig) -> Result<Bound> {
    let master: Arc<dyn KeyWrapper> = Arc::new(LocalMasterKey::from_source(&config.master_key)?);
    let auth = Arc::new(Authorizer::from_source(&config.tokens)?);
    let store = Arc::new(AnyStore::open(&config.database_url, config.max_connections).await?);
    store.migrate().await?;
    let vault = Arc::new(KeyVault::new(store.clone(), master).with_grace(config.key_grace));
    let keys = vault.load().await?;
    let commands = match &config.bus {
        None => None,
        Some(bus) => {
            let source = config.signing_key.as_ref().ok_or_else(|| {
                HesError::Config(
                    "commands need a signing key: set AMI_HES_SIGNING_KEY (Ed25519 seed, 64 hex digits) or AMI_HES_SIGNING_KEY_FILE".into(),
                )
            })?;
            let commands = Commands::open(
                &config.database_url,
                config.max_connections,
                bus.clone(),
                source.load()?,
                config.commands.clone(),
            )
            .await?;
            tracing::info!(
                verifying_key = %hex::encode(commands.verifying_key().to_bytes()),
                "commands on: adapters must trust this verifying key"
            );
            Some(Arc::new(commands))
        }
    };
    // Outages are confirmed by on-demand reads when commands are on.
    let pinger: Arc<dyn Pinger> = match (&config.pinger, &commands) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => Arc::new(CommandPinger::new(c.clone(), config.ping_timeout)),
        (None, None) => Arc::new(NoPinger),
    };
    let outages =
        Arc::new(OutageDetector::open(store.clone(), pinger, config.outage.clone()).await?);
    let events = Arc::new(EventHub::new(store.clone(), outages));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| HesError::Transport(format!("bind {}: {e}", config.listen)))?;
    tracing::info!(addr = ?listener.local_addr().ok(), keys, "hes bound");
    Ok(Bound {
        hes: Arc::new(Hes {
            store,
            vault,
            events,
            commands,
        }),
        auth,
        listener,
        bus: config.bus,
        consumer: config.consumer,
    })
}

/// Starts the HES with `config` and serves until `shutdown` resolves.
pub async fn serve(config: ServerConfig, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    bind(config).await?.serve(shutdown).await
}

impl Bound {
    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| HesError::Transport(e.to_string()))
    }

    /// The running parts.
    pub fn hes(&self) -> Arc<Hes> {
        self.hes.clone()
    }

    /// Serves until `shutdown` resolves, with the background tasks.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let hes = self.hes.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();

        let ticker = {
            let hes = hes.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                let mut n = 0u64;
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = every.tick() => {}
                    }
                    if let Err(e) = hes.events.outages().tick(now_ms()).await {
                        tracing::warn!(error = %e, "outage evaluation failed");
                    }
                    n += 1;
                    if n.is_multiple_of(60) {
                        if let Err(e) = hes.vault.retire_expired().await {
                            tracing::warn!(error = %e, "key retirement failed");
                        }
                        if let Err(e) = hes.vault.load().await {
                            tracing::error!(error = %e, "key reload failed");
                        }
                    }
                }
            })
        };
        tasks.push(ticker);

        if let Some(bus) = &self.bus {
            let mut settings = ConsumerSettings::new(&self.consumer);
            settings.filter = Some(format!("{}.events.>", bus.topology().root()));
            let consumer = bus.consumer(StreamKind::Events, &settings).await?;
            let hub = hes.events.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.changed().await;
                };
                if let Err(e) = crate::events::consume(consumer, hub, stopped).await {
                    tracing::error!(error = %e, "event consumer stopped");
                }
            }));
        }

        if let Some(commands) = hes.commands.clone() {
            let stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = commands.run(stop).await {
                    tracing::error!(error = %e, "command engine stopped");
                }
            }));
        }

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<v1::registry_service_server::RegistryServiceServer<Api>>()
            .await;
        health
            .set_serving::<v1::key_service_server::KeyServiceServer<Api>>()
            .await;
        health
            .set_serving::<v1::event_service_server::EventServiceServer<Api>>()
            .await;
        health
            .set_serving::<v1::outage_service_server::OutageServiceServer<Api>>()
            .await;
        if hes.commands.is_some() {
            health
                .set_serving::<v1::command_service_server::CommandServiceServer<Api>>()
                .await;
        } else {
            health
                .set_not_serving::<v1::command_service_server::CommandServiceServer<Api>>()
                .await;
        }
        // Both reflection versions: grpcurl and most tools speak v1, some clients still v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .map_err(|e| HesError::Transport(format!("reflection: {e}")))?;
        let reflection = reflection()
            .build_v1()
            .map_err(|e| HesError::Transport(format!("reflection: {e}")))?;
        let api = Api {
            hes: hes.clone(),
            stopping: stop_rx.clone(),
        };
        let mut stopping = stop_rx.clone();
        let server = tonic::transport::Server::builder()
            .layer(AuthLayer::new(self.auth.clone()))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(v1::registry_service_server::RegistryServiceServer::new(
                api.clone(),
            ))
            .add_service(v1::key_service_server::KeyServiceServer::new(api.clone()))
            .add_service(v1::event_service_server::EventServiceServer::new(
                api.clone(),
            ))
            .add_service(v1::outage_service_server::OutageServiceServer::new(
                api.clone(),
            ))
            .add_service(v1::command_service_server::CommandServiceServer::new(api))
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
        // On shutdown, the background tasks and the open server streams end first, so that the
        // graceful stop does not wait for subscribers that never hang up.
        tokio::pin!(server);
        let result = tokio::select! {
            r = &mut server => r,
            () = shutdown => {
                let _ = stop_tx.send(true);
                server.await
            }
        }
        .map_err(|e| HesError::Transport(e.to_string()));
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        result
    }
}

/// The five services over the running parts.
#[derive(Clone)]
pub struct Api {
    pub(crate) hes: Arc<Hes>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Api {
    /// `stream`, ended when the server begins to shut down.
    pub(crate) fn until_stop<T: Send + 'static>(
        &self,
        stream: impl Stream<Item = std::result::Result<T, Status>> + Send + 'static,
    ) -> StreamOf<T> {
        let mut stopping = self.stopping.clone();
        let stop = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        Box::pin(futures_util::StreamExt::take_until(stream, Box::pin(stop)))
    }
}

fn principal<T>(req: &Request<T>) -> std::result::Result<Principal, Status> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::from(HesError::Unauthenticated("no principal".into())))
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub(crate) type StreamOf<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl v1::registry_service_server::RegistryService for Api {
    async fn get_meter(
        &self,
        req: Request<v1::GetMeterRequest>,
    ) -> std::result::Result<Response<v1::Meter>, Status> {
        let id = req.into_inner().id;
        let m = self
            .hes
            .store
            .meter(id.trim())
            .await?
            .ok_or_else(|| HesError::NotFound(format!("meter {id}")))?;
        Ok(Response::new(m.into()))
    }

    async fn list_meters(
        &self,
        req: Request<v1::ListMetersRequest>,
    ) -> std::result::Result<Response<v1::ListMetersResponse>, Status> {
        let r = req.into_inner();
        let limit = if r.limit == 0 {
            1000
        } else {
            r.limit.min(crate::model::MAX_PAGE)
        };
        let filter = MeterFilter {
            feeder: opt(r.feeder),
            transformer: opt(r.transformer),
            status: proto::status_from_wire(r.status)?,
            after_serial: opt(r.after_serial),
            limit,
        };
        let meters = self.hes.store.list_meters(&filter).await?;
        let next = if meters.len() == limit as usize {
            meters.last().map(|m| m.serial.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(v1::ListMetersResponse {
            meters: meters.into_iter().map(Into::into).collect(),
            next_after_serial: next,
        }))
    }

    async fn import_meters(
        &self,
        req: Request<v1::ImportMetersRequest>,
    ) -> std::result::Result<Response<v1::ImportMetersResponse>, Status> {
        let who = principal(&req)?;
        let report = crate::csv::import(self.hes.store.as_ref(), &req.into_inner().csv).await?;
        tracing::info!(principal = %who.name, imported = report.imported, refused = report.errors.len(), "meters imported");
        Ok(Response::new(v1::ImportMetersResponse {
            imported: report.imported,
            errors: report
                .errors
                .into_iter()
                .map(|e| v1::RowError {
                    line: e.line,
                    message: e.message,
                })
                .collect(),
        }))
    }

    async fn update_status(
        &self,
        req: Request<v1::UpdateStatusRequest>,
    ) -> std::result::Result<Response<v1::Meter>, Status> {
        let r = req.into_inner();
        let to = proto::status_from_wire(r.status)?
            .ok_or_else(|| HesError::InvalidArgument("a status is required".into()))?;
        let m = self.hes.store.set_status(&r.serial, to, now_ms()).await?;
        Ok(Response::new(m.into()))
    }
}

#[tonic::async_trait]
impl v1::key_service_server::KeyService for Api {
    async fn put_key(
        &self,
        req: Request<v1::PutKeyRequest>,
    ) -> std::result::Result<Response<v1::KeyMetadata>, Status> {
        let who = principal(&req)?;
        let r = req.into_inner();
        let role = proto::role_from_wire(r.role)?;
        let key = KeyBytes::from_slice(&r.key)?;
        drop(zeroize::Zeroizing::new(r.key));
        let meta = self.hes.vault.put(&r.serial, role, &key, &who.name).await?;
        Ok(Response::new(meta.into()))
    }

    async fn rotate_key(
        &self,
        req: Request<v1::RotateKeyRequest>,
    ) -> std::result::Result<Response<v1::KeyMetadata>, Status> {
        let who = principal(&req)?;
        let r = req.into_inner();
        let role = proto::role_from_wire(r.role)?;
        let key = if r.new_key.is_empty() {
            None
        } else {
            Some(KeyBytes::from_slice(&r.new_key)?)
        };
        drop(zeroize::Zeroizing::new(r.new_key));
        let grace = (r.grace_seconds > 0).then(|| Duration::from_secs(r.grace_seconds));
        let meta = self
            .hes
            .vault
            .rotate(&r.serial, role, key, grace, &who.name)
            .await?;
        Ok(Response::new(meta.into()))
    }

    async fn list_keys(
        &self,
        req: Request<v1::ListKeysRequest>,
    ) -> std::result::Result<Response<v1::ListKeysResponse>, Status> {
        let serial = req.into_inner().serial;
        let keys = self.hes.vault.list(&serial).await?;
        Ok(Response::new(v1::ListKeysResponse {
            keys: keys.into_iter().map(Into::into).collect(),
        }))
    }
}

#[tonic::async_trait]
impl v1::event_service_server::EventService for Api {
    async fn query_events(
        &self,
        req: Request<v1::QueryEventsRequest>,
    ) -> std::result::Result<Response<v1::QueryEventsResponse>, Status> {
        let r = req.into_inner();
        let filter = EventFilter {
            serial: opt(r.serial),
            kinds: r.kinds,
            after_ms: (r.after_ms != 0).then_some(r.after_ms),
            until_ms: (r.until_ms != 0).then_some(r.until_ms),
            limit: r.limit,
        };
        let events = self.hes.events.query(&filter).await?;
        Ok(Response::new(v1::QueryEventsResponse {
            events: events.into_iter().map(Into::into).collect(),
        }))
    }

    type StreamEventsStream = StreamOf<v1::MeterEvent>;

    async fn stream_events(
        &self,
        req: Request<v1::StreamEventsRequest>,
    ) -> std::result::Result<Response<Self::StreamEventsStream>, Status> {
        let r = req.into_inner();
        let filter = EventFilter {
            serial: opt(r.serial),
            kinds: r.kinds,
            ..EventFilter::default()
        };
        let stream =
            BroadcastStream::new(self.hes.events.subscribe()).filter_map(move |item| match item {
                Ok(e) if filter.matches(&e.event) => Some(Ok(e.into())),
                Ok(_) => None,
                Err(e) => Some(Err(Status::resource_exhausted(format!(
                    "subscriber too slow: {e}"
                )))),
            });
        Ok(Response::new(self.until_stop(stream)))
    }
}

#[tonic::async_trait]
impl v1::outage_service_server::OutageService for Api {
    async fn list_outages(
        &self,
        req: Request<v1::ListOutagesRequest>,
    ) -> std::result::Result<Response<v1::ListOutagesResponse>, Status> {
        let active = req.into_inner().active_only;
        let outages = self.hes.events.outages().outages(active).await?;
        Ok(Response::new(v1::ListOutagesResponse {
            outages: outages.into_iter().map(Into::into).collect(),
        }))
    }

    type StreamOutagesStream = StreamOf<v1::Outage>;

    async fn stream_outages(
        &self,
        _: Request<v1::StreamOutagesRequest>,
    ) -> std::result::Result<Response<Self::StreamOutagesStream>, Status> {
        let stream =
            BroadcastStream::new(self.hes.events.outages().subscribe()).map(|item| match item {
                Ok(o) => Ok(o.into()),
                Err(e) => Err(Status::resource_exhausted(format!(
                    "subscriber too slow: {e}"
                ))),
            });
        Ok(Response::new(self.until_stop(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact_url("postgres://hes:s3cret@db:5432/hes"),
            "postgres://hes:***@db:5432/hes"
        );
        assert_eq!(redact_url("sqlite:ami-hes.db"), "sqlite:ami-hes.db");
    }
}
