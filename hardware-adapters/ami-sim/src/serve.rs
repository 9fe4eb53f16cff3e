//! The simulated DLMS meters served over TCP with the IEC 62056-47 wrapper, as a DLMS
//! gateway serves the logical devices behind one address: the wrapper's destination wPort
//! names the meter (wPort 1 is the fleet's first DLMS meter, 2 the second, ...), each
//! connection is one client's conversation ([`Session`]) with the meters it addresses.
//!
//! A conversation is one client wPort with one meter wPort. A frame that is not a version-1
//! wrapper, or longer than [`MAX_APDU`], ends the connection (its framing is lost); a wPort no
//! DLMS meter answers to gets an exception-response; a meter without supply answers nothing;
//! a connection idle for [`IDLE`], or whose client stops reading for as long, is closed; at
//! most [`MAX_CONNECTIONS`] are served at once (more wait to be accepted). Nothing a client
//! sends stops the listener or another connection, and dropping [`serve`] ends every
//! connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::dlms_server::{Answer, ServerConfig, Session};
use crate::fleet::{Fleet, Protocol};

/// The longest APDU a client may send.
pub const MAX_APDU: usize = 4096;
/// How long a connection may stay silent.
pub const IDLE: Duration = Duration::from_secs(120);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// The wPort of each DLMS meter of `fleet`, in fleet order: `(wport, meter id)`.
pub fn wports(fleet: &Fleet) -> Vec<(u16, String)> {
    fleet
        .meters
        .iter()
        .filter(|m| m.protocol == Protocol::Dlms)
        .zip(1u16..)
        .map(|(m, w)| (w, m.id.clone()))
        .collect()
}

/// Serves `fleet`'s DLMS meters on `listener` until the task is dropped (which ends its
/// connections too).
pub async fn serve(listener: TcpListener, fleet: Arc<Mutex<Fleet>>, cfg: ServerConfig) {
    let cfg = Arc::new(cfg);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "DLMS server: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (fleet, cfg) = (fleet.clone(), cfg.clone());
        connections.spawn(async move {
            if let Err(reason) = connection(stream, &fleet, &cfg).await {
                tracing::info!(%peer, %reason, "DLMS server: connection closed");
            }
            drop(slot);
        });
    }
}

/// Which meter a wPort names, by index in the fleet.
fn meter_index(fleet: &Fleet, wport: u16) -> Option<usize> {
    let nth = usize::from(wport.checked_sub(1)?);
    fleet
        .meters
        .iter()
        .enumerate()
        .filter(|(_, m)| m.protocol == Protocol::Dlms)
        .nth(nth)
        .map(|(i, _)| i)
}

async fn connection(
    mut stream: TcpStream,
    fleet: &Mutex<Fleet>,
    cfg: &ServerConfig,
) -> Result<(), String> {
    let mut sessions: HashMap<(u16, u16), Session> = HashMap::new();
    loop {
        let mut header = [0u8; 8];
        match tokio::time::timeout(IDLE, stream.read_exact(&mut header)).await {
            Err(_) => return Err("idle".into()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(_)) => {}
        }
        let [v0, v1, s0, s1, d0, d1, l0, l1] = header;
        if u16::from_be_bytes([v0, v1]) != 1 {
            return Err(format!("not a wrapper frame (version {v0:02x}{v1:02x})"));
        }
        let (client, wport) = (u16::from_be_bytes([s0, s1]), u16::from_be_bytes([d0, d1]));
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len > MAX_APDU {
            return Err(format!("APDU of {len} bytes, at most {MAX_APDU} taken"));
        }
        let mut apdu = vec![0u8; len];
        tokio::time::timeout(IDLE, stream.read_exact(&mut apdu))
            .await
            .map_err(|_| "idle inside a frame".to_string())?
            .map_err(|e| e.to_string())?;
        let answer = {
            let mut fleet = fleet.lock().unwrap_or_else(PoisonError::into_inner);
            let now = fleet.now_ms();
            match (meter_index(&fleet, wport), now) {
                (Some(i), Some(now)) => fleet.meters.get_mut(i).map(|m| {
                    sessions
                        .entry((client, wport))
                        .or_default()
                        .handle(cfg, m, now, &apdu)
                }),
                _ => None,
            }
        };
        let reply = match answer {
            Some(Some(Answer::Released(a))) => {
                sessions.remove(&(client, wport));
                a
            }
            Some(Some(Answer::Reply(a))) => a,
            // A meter without supply: silence.
            Some(None) => continue,
            // No meter behind this wPort (or the fleet has not started): service-not-allowed,
            // operation-not-possible.
            None => vec![0xD8, 0x01, 0x01],
        };
        let n = u16::try_from(reply.len()).map_err(|_| "answer too long".to_string())?;
        let mut frame = Vec::with_capacity(8 + reply.len());
        frame.extend_from_slice(&[0x00, 0x01]);
        frame.extend_from_slice(&wport.to_be_bytes());
        frame.extend_from_slice(&client.to_be_bytes());
        frame.extend_from_slice(&n.to_be_bytes());
        frame.extend_from_slice(&reply);
        tokio::time::timeout(IDLE, stream.write_all(&frame))
            .await
            .map_err(|_| "the client stopped reading".to_string())?
            .map_err(|e| e.to_string())?;
    }
}
