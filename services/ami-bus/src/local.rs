//! The in-process bus: the single-machine default in place of NATS.
//!
//! It keeps JetStream's semantics that the roles rely on, inside one process: one log per
//! stream, de-duplication by `Nats-Msg-Id` over a window, durable named consumers with a subject
//! filter that several workers share (each message goes to one of them), and back-pressure: a
//! publisher waits while a stream that has consumers holds `capacity` messages not yet consumed
//! by all of them. A stream without consumers keeps its newest `capacity` messages (like a
//! JetStream stream with a message limit that discards old ones). Nothing is written to disk:
//! a process that stops loses what was not consumed, which is why production runs on NATS.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::message::{Acker, Delivery, Message};
use crate::subjects::{StreamKind, Topology};
use crate::{BusError, PublishReport, subject_matches};

/// How many message ids a stream remembers for de-duplication.
const DEDUP_WINDOW: usize = 200_000;

/// The in-process bus.
#[derive(Debug)]
pub struct LocalBus {
    topology: Topology,
    streams: HashMap<StreamKind, Arc<LocalStream>>,
}

#[derive(Debug)]
struct LocalStream {
    state: Mutex<StreamState>,
    /// Woken when messages arrive or are trimmed.
    changed: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct StreamState {
    log: VecDeque<Message>,
    /// Sequence (1-based) of `log[0]`.
    base: u64,
    consumers: HashMap<String, ConsumerState>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

#[derive(Debug)]
struct ConsumerState {
    filter: String,
    /// Sequence of the next message to look at.
    next: u64,
}

impl StreamState {
    fn end(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    /// Drops messages every consumer is past; without consumers, keeps the newest `capacity`.
    fn trim(&mut self, capacity: usize) {
        let keep_from = if self.consumers.is_empty() {
            self.end().saturating_sub(capacity as u64)
        } else {
            self.consumers
                .values()
                .map(|c| c.next)
                .min()
                .unwrap_or(self.base)
        };
        while self.base < keep_from && !self.log.is_empty() {
            self.log.pop_front();
            self.base += 1;
        }
    }

    /// Messages not yet consumed by the slowest consumer.
    fn backlog(&self) -> usize {
        match self.consumers.values().map(|c| c.next).min() {
            Some(next) => self.end().saturating_sub(next) as usize,
            None => 0,
        }
    }

    fn remember(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        self.seen.insert(id.to_owned());
        self.seen_order.push_back(id.to_owned());
        if self.seen_order.len() > DEDUP_WINDOW
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

fn lock(m: &Mutex<StreamState>) -> MutexGuard<'_, StreamState> {
    // A poisoned lock means a panic elsewhere while holding it; the state itself stays
    // consistent (every mutation is complete before any call that could panic).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LocalBus {
    /// A bus whose streams each hold up to `capacity` unconsumed messages.
    pub fn new(topology: Topology, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let streams = StreamKind::ALL
            .into_iter()
            .map(|k| {
                (
                    k,
                    Arc::new(LocalStream {
                        state: Mutex::new(StreamState {
                            base: 1,
                            ..StreamState::default()
                        }),
                        changed: Notify::new(),
                        capacity,
                    }),
                )
            })
            .collect();
        LocalBus { topology, streams }
    }

    /// The names in use.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    fn stream(&self, kind: StreamKind) -> Result<&Arc<LocalStream>, BusError> {
        self.streams
            .get(&kind)
            .ok_or_else(|| BusError::NoStream(self.topology.stream(kind)))
    }

    /// Publishes `msgs` in order; waits while a stream is full.
    pub async fn publish_batch(&self, msgs: Vec<Message>) -> Result<PublishReport, BusError> {
        let mut report = PublishReport::default();
        for (at, msg) in msgs.into_iter().enumerate() {
            let kind = self
                .topology
                .stream_of(&msg.subject)
                .ok_or_else(|| BusError::NoStream(msg.subject.clone()))?;
            let stream = self.stream(kind)?;
            loop {
                let notified = stream.changed.notified();
                {
                    let mut st = lock(&stream.state);
                    if st.backlog() < stream.capacity {
                        if let Some(id) = msg.msg_id()
                            && !st.remember(id)
                        {
                            report.duplicates += 1;
                            report.duplicate_at.push(at);
                            break;
                        }
                        st.log.push_back(msg);
                        st.trim(stream.capacity);
                        report.stored += 1;
                        drop(st);
                        stream.changed.notify_waiters();
                        break;
                    }
                }
                notified.await;
            }
        }
        Ok(report)
    }

    /// The durable consumer `name` on `kind`'s stream, created on first use with `filter`
    /// (a subject pattern; `None` takes the whole stream). Consumers with the same name share
    /// the work.
    pub fn consumer(
        &self,
        kind: StreamKind,
        name: &str,
        filter: Option<String>,
    ) -> Result<LocalConsumer, BusError> {
        let stream = Arc::clone(self.stream(kind)?);
        let filter = filter.unwrap_or_else(|| format!("{}.>", self.topology.root()));
        {
            let mut st = lock(&stream.state);
            let start = st.base;
            st.consumers
                .entry(name.to_owned())
                .or_insert(ConsumerState {
                    filter,
                    next: start,
                });
        }
        Ok(LocalConsumer {
            stream,
            name: name.to_owned(),
        })
    }
}

/// A handle on a durable consumer of the in-process bus.
#[derive(Debug, Clone)]
pub struct LocalConsumer {
    stream: Arc<LocalStream>,
    name: String,
}

impl LocalConsumer {
    /// Up to `max` messages, waiting up to `wait` for the first.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.stream.changed.notified();
            let batch = self.take(max);
            if !batch.is_empty() {
                self.stream.changed.notify_waiters();
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    fn take(&self, max: usize) -> Vec<Delivery> {
        let mut st = lock(&self.stream.state);
        let Some(mut next) = st.consumers.get(&self.name).map(|c| c.next) else {
            return Vec::new();
        };
        let filter = st
            .consumers
            .get(&self.name)
            .map(|c| c.filter.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        while out.len() < max && next < st.end() {
            let idx = (next - st.base) as usize;
            if let Some(msg) = st.log.get(idx)
                && subject_matches(&filter, &msg.subject)
            {
                out.push(Delivery {
                    message: msg.clone(),
                    delivered: 1,
                    stream_seq: next,
                    acker: Acker::Local,
                });
            }
            next += 1;
        }
        if let Some(c) = st.consumers.get_mut(&self.name) {
            c.next = next;
        }
        let cap = self.stream.capacity;
        st.trim(cap);
        out
    }

    /// Messages in the stream this consumer has not taken yet (matching or not).
    pub fn pending(&self) -> u64 {
        let st = lock(&self.stream.state);
        st.consumers
            .get(&self.name)
            .map(|c| st.end().saturating_sub(c.next))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Headers, header};
    use bytes::Bytes;

    fn msg(subject: &str, id: &str) -> Message {
        Message {
            subject: subject.into(),
            headers: Headers::new().with(header::MSG_ID, id),
            payload: Bytes::from(id.to_owned()),
        }
    }

    #[tokio::test]
    async fn shared_consumer_gets_each_message_once_and_duplicates_are_dropped() {
        let bus = LocalBus::new(Topology::default(), 100);
        let a = bus.consumer(StreamKind::Raw, "host", None).unwrap();
        let b = bus.consumer(StreamKind::Raw, "host", None).unwrap();
        let msgs: Vec<Message> = (0..10)
            .map(|i| msg("ami.raw.dsmr.x", &i.to_string()))
            .collect();
        let r = bus.publish_batch(msgs.clone()).await.unwrap();
        assert_eq!((r.stored, r.duplicates), (10, 0));
        let r = bus.publish_batch(msgs).await.unwrap();
        assert_eq!((r.stored, r.duplicates), (0, 10));
        let first = a.fetch(4, Duration::from_millis(10)).await.unwrap();
        let second = b.fetch(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!((first.len(), second.len()), (4, 6));
        assert!(
            a.fetch(1, Duration::from_millis(10))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn filters_and_fan_out_between_consumers() {
        let bus = LocalBus::new(Topology::default(), 100);
        let dsmr = bus
            .consumer(StreamKind::Raw, "d", Some("ami.raw.dsmr.>".into()))
            .unwrap();
        let all = bus.consumer(StreamKind::Raw, "all", None).unwrap();
        bus.publish_batch(vec![msg("ami.raw.dsmr.a", "1"), msg("ami.raw.dlms.a", "2")])
            .await
            .unwrap();
        assert_eq!(dsmr.fetch(10, Duration::ZERO).await.unwrap().len(), 1);
        assert_eq!(all.fetch(10, Duration::ZERO).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_full_stream_holds_the_publisher_until_consumed() {
        let bus = Arc::new(LocalBus::new(Topology::default(), 3));
        let c = bus.consumer(StreamKind::Raw, "c", None).unwrap();
        let b2 = Arc::clone(&bus);
        let publisher = tokio::spawn(async move {
            let msgs = (0..10)
                .map(|i| msg("ami.raw.x.y", &i.to_string()))
                .collect();
            b2.publish_batch(msgs).await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!publisher.is_finished(), "publisher should wait for room");
        assert!(c.pending() <= 3);
        let mut got = 0;
        while got < 10 {
            got += c.fetch(2, Duration::from_secs(1)).await.unwrap().len();
        }
        assert_eq!(publisher.await.unwrap().unwrap().stored, 10);
    }

    #[tokio::test]
    async fn a_stream_without_consumers_keeps_its_newest() {
        let bus = LocalBus::new(Topology::default(), 3);
        let msgs = (0..10)
            .map(|i| msg("ami.dead.x.y", &i.to_string()))
            .collect();
        assert_eq!(bus.publish_batch(msgs).await.unwrap().stored, 10);
        let c = bus.consumer(StreamKind::Dead, "late", None).unwrap();
        let got = c.fetch(10, Duration::ZERO).await.unwrap();
        let ids: Vec<_> = got.iter().filter_map(|d| d.message.msg_id()).collect();
        assert_eq!(ids, ["7", "8", "9"]);
    }

    #[tokio::test]
    async fn unknown_subject_is_an_error() {
        let bus = LocalBus::new(Topology::default(), 3);
        let err = bus
            .publish_batch(vec![msg("other.x", "1")])
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::NoStream(_)));
    }
}
