//! The bridge loop: one MQTT connection with a persistent session and manual
//! acknowledgements, subscribed (QoS 1) to every route's filter. A message is acknowledged to
//! the broker only once its frame is in the adapter's spool, so a bridge that dies between
//! the two gets the message again from the broker; a message with a bad payload is
//! acknowledged and dropped (it would never get better), counted and logged with the
//! reason. When the spool refuses a frame (full), the message is left unacknowledged and the
//! bridge reconnects after a pause, so the broker delivers it again.
//!
//! The connection is kept up: after an error the bridge waits (backing off up to 30 s) and
//! reconnects; subscriptions are made again whenever the broker has no session for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ami_adapter::Adapter;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::watch;

use crate::config::BridgeConfig;
use crate::route::{Routed, Router};

/// Counters of a bridge.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Messages received.
    pub received: AtomicU64,
    /// Frames accepted into the spool.
    pub accepted: AtomicU64,
    /// Messages with a bad payload, dropped.
    pub bad_payload: AtomicU64,
    /// Messages on a topic no route matches, dropped.
    pub unrouted: AtomicU64,
    /// Frames the spool refused (left unacknowledged for the broker to send again).
    pub refused: AtomicU64,
    /// Subscriptions the broker granted (one per route per (re)subscription).
    pub subscribed: AtomicU64,
    /// Connections made.
    pub connections: AtomicU64,
    /// Connection errors.
    pub connection_errors: AtomicU64,
}

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The client's request queue is gone (the event loop ended).
    #[error("mqtt client: {0}")]
    Client(String),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The client options of `cfg`.
pub fn options(cfg: &BridgeConfig) -> MqttOptions {
    let m = &cfg.mqtt;
    let mut o = MqttOptions::new(m.client_id.clone(), m.host.clone(), m.port);
    o.set_keep_alive(Duration::from_secs(m.keep_alive_s.max(5)));
    o.set_clean_session(false);
    o.set_manual_acks(true);
    o.set_max_packet_size(m.max_packet, m.max_packet);
    if let (Some(u), Some(p)) = (&m.username, &m.password) {
        o.set_credentials(u.clone(), p.clone());
    }
    o
}

async fn subscribe(client: &AsyncClient, router: &Router) -> Result<(), BridgeError> {
    for r in router.routes() {
        client
            .subscribe(r.filter.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|e| BridgeError::Client(e.to_string()))?;
    }
    Ok(())
}

/// Polls the event loop until the DISCONNECT queued last has been sent (so every ack queued
/// before it has been sent too), the connection fails, or 2 s pass. Messages that arrive
/// meanwhile are not acknowledged: the broker keeps them for the next connection.
async fn drain_until_disconnected(events: &mut rumqttc::EventLoop) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// Runs the bridge into `adapter` until `stop` turns true.
pub async fn run(
    cfg: &BridgeConfig,
    adapter: &Adapter,
    stats: &BridgeStats,
    mut stop: watch::Receiver<bool>,
) -> Result<(), BridgeError> {
    let router = Router::new(cfg.routes.clone());
    let (client, mut events) = AsyncClient::new(options(cfg), 256);
    let mut backoff = Duration::from_millis(200);
    loop {
        if *stop.borrow() {
            // Acks queued before the DISCONNECT go out first; a message not acked stays with
            // the broker's session for next time.
            let _ = client.try_disconnect();
            drain_until_disconnected(&mut events).await;
            return Ok(());
        }
        let event = tokio::select! {
            e = events.poll() => e,
            _ = stop.changed() => continue,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                stats.connections.fetch_add(1, Ordering::Relaxed);
                backoff = Duration::from_millis(200);
                tracing::info!(broker = %cfg.mqtt.host, session_present = ack.session_present, "connected");
                if !ack.session_present {
                    subscribe(&client, &router).await?;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                let granted = s
                    .return_codes
                    .iter()
                    .filter(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    .count();
                stats
                    .subscribed
                    .fetch_add(granted as u64, Ordering::Relaxed);
                if granted < s.return_codes.len() {
                    tracing::error!("the broker refused a subscription");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                stats.received.fetch_add(1, Ordering::Relaxed);
                match router.route(&p.topic, &p.payload, now_ms()) {
                    Routed::Frame(f) => match adapter.accept(vec![f]) {
                        Ok(_) => {
                            stats.accepted.fetch_add(1, Ordering::Relaxed);
                            client
                                .ack(&p)
                                .await
                                .map_err(|e| BridgeError::Client(e.to_string()))?;
                        }
                        Err(e) => {
                            stats.refused.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(topic = %p.topic, error = %e, "spool refused the frame; left for the broker to send again");
                            // Reconnect after a pause: the broker re-sends what is unacked
                            // (the acks queued before go out before the DISCONNECT).
                            let _ = client.disconnect().await;
                            drain_until_disconnected(&mut events).await;
                            tokio::select! {
                                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                                _ = stop.changed() => {}
                            }
                        }
                    },
                    Routed::Bad(e) => {
                        stats.bad_payload.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(topic = %p.topic, bytes = p.payload.len(), error = %e, "message dropped");
                        client
                            .ack(&p)
                            .await
                            .map_err(|e| BridgeError::Client(e.to_string()))?;
                    }
                    Routed::Unrouted => {
                        stats.unrouted.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(topic = %p.topic, "no route for the topic; message dropped");
                        client
                            .ack(&p)
                            .await
                            .map_err(|e| BridgeError::Client(e.to_string()))?;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let n = stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                if n == 0 || backoff >= Duration::from_secs(30) {
                    tracing::warn!(error = %e, "mqtt connection error; reconnecting");
                } else {
                    tracing::debug!(error = %e, "mqtt connection error; reconnecting");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
