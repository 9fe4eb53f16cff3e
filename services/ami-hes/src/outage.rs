//! Outage detection: from meters' last gasps to the scope of an outage, its confirmation and
//! its restoration.
//!
//! 1. **Collect**: a `last-gasp` or `power-down` event marks its meter *down, pending*; a
//!    `power-up` before evaluation clears it (a blink, no outage).
//! 2. **Correlate**: once the earliest pending gasp under a transformer is [`OutageConfig::window`]
//!    old, that transformer's pending meters are evaluated together: if at least
//!    [`OutageConfig::transformer_percent`] % of the transformer's registered meters (not
//!    retired) are down, the transformer is the candidate; otherwise each meter is.
//!    Transformer candidates of one feeder in the same evaluation become one feeder outage when
//!    they are at least [`OutageConfig::feeder_min_transformers`] and at least
//!    [`OutageConfig::feeder_percent`] % of the feeder's transformers.
//! 3. **Confirm** with a [`Pinger`]: for a transformer or feeder candidate, up to
//!    [`OutageConfig::ping_sample`] of its meters that sent no gasp are asked; if any answers,
//!    the candidate is refuted and its gasping meters are judged one by one. A meter candidate
//!    is confirmed when the meter itself does not answer. Confirmed outages cover every meter
//!    under their node.
//! 4. **Restore**: `power-up` events mark meters back; the outage is *partially restored*
//!    until every meter is, then *restored*. Meters of a partially restored outage that sent
//!    no power-up are pinged after another window, and those answering count as restored.
//!
//! Every change of an outage is published to [`OutageDetector::subscribe`]rs and written to the
//! registry store ([`RegistryStore::save_outage`]), which serves the listings. A detector made
//! with [`OutageDetector::open`] takes the open outages back from the store, so a HES restarted
//! in the middle of an outage still restores it when the power-ups arrive. Only open outages
//! stay in memory (one detector per HES deployment); a change the store did not take is kept
//! and written again at the next [`OutageDetector::tick`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, broadcast};

use crate::error::Result;
use crate::model::{Meter, MeterFilter, MeterStatus};
use crate::store::RegistryStore;

/// How wide an outage is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutageScope {
    /// One meter.
    Meter,
    /// Every meter under a distribution transformer.
    Transformer,
    /// Several transformers of a feeder.
    Feeder,
}

impl OutageScope {
    /// Every scope.
    pub const ALL: [OutageScope; 3] = [
        OutageScope::Meter,
        OutageScope::Transformer,
        OutageScope::Feeder,
    ];

    /// The name used in ids and in the store.
    pub const fn name(self) -> &'static str {
        match self {
            OutageScope::Meter => "meter",
            OutageScope::Transformer => "transformer",
            OutageScope::Feeder => "feeder",
        }
    }

    /// The scope of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Where an outage is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutageState {
    /// Inferred from gasps, being confirmed.
    Detected,
    /// Confirmed.
    Confirmed,
    /// Some meters are back.
    PartiallyRestored,
    /// Every meter is back.
    Restored,
}

impl OutageState {
    /// Every state.
    pub const ALL: [OutageState; 4] = [
        OutageState::Detected,
        OutageState::Confirmed,
        OutageState::PartiallyRestored,
        OutageState::Restored,
    ];

    /// The name used in the store.
    pub const fn name(self) -> &'static str {
        match self {
            OutageState::Detected => "detected",
            OutageState::Confirmed => "confirmed",
            OutageState::PartiallyRestored => "partially-restored",
            OutageState::Restored => "restored",
        }
    }

    /// The state of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One outage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// Unique id: `<scope>:<node>:<start ms>`.
    pub id: String,
    /// Its scope.
    pub scope: OutageScope,
    /// The meter serial, transformer or feeder.
    pub node: String,
    /// Its state.
    pub state: OutageState,
    /// The earliest gasp, Unix ms.
    pub started_at_ms: i64,
    /// When it was confirmed (0: not yet).
    pub confirmed_at_ms: i64,
    /// When the last meter came back (0: not yet).
    pub restored_at_ms: i64,
    /// The meters out, by serial.
    pub meters: BTreeSet<String>,
    /// Those back.
    pub restored: BTreeSet<String>,
}

impl Outage {
    /// Whether it is not fully restored.
    pub fn is_active(&self) -> bool {
        self.state != OutageState::Restored
    }
}

/// Asks meters whether they are powered (an on-demand read through the head end). Returns
/// the serials that answered.
pub trait Pinger: Send + Sync {
    /// Pings `meters`.
    fn ping<'a>(
        &'a self,
        meters: &'a [Meter],
    ) -> Pin<Box<dyn Future<Output = HashSet<String>> + Send + 'a>>;
}

/// A pinger that reaches nobody: every candidate is confirmed on the events' evidence alone
/// (the default until the command engine provides on-demand reads).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPinger;

impl Pinger for NoPinger {
    fn ping<'a>(
        &'a self,
        _: &'a [Meter],
    ) -> Pin<Box<dyn Future<Output = HashSet<String>> + Send + 'a>> {
        Box::pin(async { HashSet::new() })
    }
}

/// A pinger answering for every meter except those it is told are without supply (for tests
/// and simulations, built from the registry state of a scenario).
#[derive(Clone, Debug, Default)]
pub struct StaticPinger {
    down: Arc<std::sync::RwLock<HashSet<String>>>,
}

impl StaticPinger {
    /// Nobody down.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks meters without (or with) supply.
    pub fn set_down<I: IntoIterator<Item = String>>(&self, serials: I, down: bool) {
        if let Ok(mut d) = self.down.write() {
            for s in serials {
                if down {
                    d.insert(s);
                } else {
                    d.remove(&s);
                }
            }
        }
    }
}

impl Pinger for StaticPinger {
    fn ping<'a>(
        &'a self,
        meters: &'a [Meter],
    ) -> Pin<Box<dyn Future<Output = HashSet<String>> + Send + 'a>> {
        let answered = self
            .down
            .read()
            .map(|d| {
                meters
                    .iter()
                    .filter(|m| !d.contains(&m.serial))
                    .map(|m| m.serial.clone())
                    .collect()
            })
            .unwrap_or_default();
        Box::pin(async move { answered })
    }
}

/// Thresholds of the correlation.
#[derive(Clone, Debug)]
pub struct OutageConfig {
    /// How long gasps are gathered before a transformer's meters are evaluated.
    pub window: Duration,
    /// The share (%) of a transformer's meters down that makes it the outage's scope.
    pub transformer_percent: u32,
    /// The share (%) of a feeder's transformers out that makes the feeder the scope.
    pub feeder_percent: u32,
    /// The fewest transformers out for a feeder outage.
    pub feeder_min_transformers: usize,
    /// How many meters to ping to confirm a transformer or feeder outage.
    pub ping_sample: usize,
}

impl Default for OutageConfig {
    fn default() -> Self {
        OutageConfig {
            window: Duration::from_secs(60),
            transformer_percent: 50,
            feeder_percent: 50,
            feeder_min_transformers: 2,
            ping_sample: 3,
        }
    }
}

/// A meter down, not yet evaluated.
#[derive(Clone, Debug)]
struct Pending {
    ts_ms: i64,
    transformer: String,
    feeder: String,
}

#[derive(Default)]
struct State {
    /// By serial (or the decoder's name of an unregistered meter).
    pending: HashMap<String, Pending>,
    /// The open outages by id, and restored ones until they are written.
    outages: BTreeMap<String, Outage>,
    /// The open outage of each meter out.
    by_meter: HashMap<String, String>,
    /// When each partially restored outage was last pinged.
    last_restore_ping: HashMap<String, i64>,
    /// Outages changed and not yet written to the store.
    unsaved: BTreeSet<String>,
}

/// The outage detector: fed meter events, ticked by the clock.
pub struct OutageDetector<S> {
    store: Arc<S>,
    pinger: Arc<dyn Pinger>,
    config: OutageConfig,
    state: Mutex<State>,
    updates: broadcast::Sender<Outage>,
}

impl<S> std::fmt::Debug for OutageDetector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutageDetector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Whether an event kind says the meter lost supply.
pub fn is_down(kind: &str) -> bool {
    matches!(kind, "last-gasp" | "power-down")
}

/// Whether an event kind says the meter has supply again.
pub fn is_up(kind: &str) -> bool {
    matches!(kind, "power-up")
}

fn window_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<S: RegistryStore> OutageDetector<S> {
    /// A detector over the registry, confirming with `pinger`, that knows no outage yet (see
    /// [`OutageDetector::open`] to take back the open ones).
    pub fn new(store: Arc<S>, pinger: Arc<dyn Pinger>, config: OutageConfig) -> Self {
        let (updates, _) = broadcast::channel(1024);
        OutageDetector {
            store,
            pinger,
            config,
            state: Mutex::new(State::default()),
            updates,
        }
    }

    /// A detector over the registry that takes back the open outages stored there (see
    /// [`OutageDetector::load`]).
    pub async fn open(
        store: Arc<S>,
        pinger: Arc<dyn Pinger>,
        config: OutageConfig,
    ) -> Result<Self> {
        let d = Self::new(store, pinger, config);
        let n = d.load().await?;
        if n > 0 {
            tracing::info!(open = n, "open outages taken back from the store");
        }
        Ok(d)
    }

    /// Takes the open outages of the store into account: their meters not yet back are out,
    /// and their power-ups restore them. Returns how many.
    pub async fn load(&self) -> Result<usize> {
        let open = self.store.outages(true).await?;
        let mut st = self.state.lock().await;
        let n = open.len();
        for o in open {
            for m in o.meters.difference(&o.restored) {
                st.by_meter.insert(m.clone(), o.id.clone());
                st.pending.remove(m);
            }
            st.outages.insert(o.id.clone(), o);
        }
        Ok(n)
    }

    /// Every change of every outage from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Outage> {
        self.updates.subscribe()
    }

    /// The outages stored, oldest first: those not fully restored if `active_only`, else the
    /// most recent ones (see [`RegistryStore::outages`]).
    pub async fn outages(&self, active_only: bool) -> Result<Vec<Outage>> {
        {
            let mut st = self.state.lock().await;
            self.flush(&mut st).await?;
        }
        self.store.outages(active_only).await
    }

    /// Publishes a change and marks it to be written.
    fn emit(&self, st: &mut State, o: &Outage, out: &mut Vec<Outage>) {
        out.push(o.clone());
        st.unsaved.insert(o.id.clone());
        let _ = self.updates.send(o.clone());
    }

    /// Writes the changed outages to the store; restored ones then leave the memory.
    async fn flush(&self, st: &mut State) -> Result<()> {
        while let Some(id) = st.unsaved.first().cloned() {
            if let Some(o) = st.outages.get(&id) {
                self.store.save_outage(o).await?;
                if !o.is_active() {
                    st.outages.remove(&id);
                    st.last_restore_ping.remove(&id);
                }
            }
            st.unsaved.remove(&id);
        }
        Ok(())
    }

    /// Takes one event into account: `meter` is the registry's meter (`None` if the meter is
    /// unknown, then `name` is the decoder's name for it). Returns the outage updates it made
    /// (written to the store; if the store fails, at the next tick).
    pub async fn observe(
        &self,
        meter: Option<&Meter>,
        name: &str,
        kind: &str,
        ts_ms: i64,
    ) -> Vec<Outage> {
        let key = meter.map_or(name, |m| m.serial.as_str()).to_owned();
        let mut out = Vec::new();
        let mut st = self.state.lock().await;
        if is_down(kind) {
            if st.by_meter.contains_key(&key) {
                return out;
            }
            let p = st.pending.entry(key).or_insert_with(|| Pending {
                ts_ms,
                transformer: meter.map(|m| m.transformer.clone()).unwrap_or_default(),
                feeder: meter.map(|m| m.feeder.clone()).unwrap_or_default(),
            });
            p.ts_ms = p.ts_ms.min(ts_ms);
        } else if is_up(kind) {
            if st.pending.remove(&key).is_some() {
                return out;
            }
            if let Some(id) = st.by_meter.remove(&key)
                && let Some(o) = st.outages.get_mut(&id)
            {
                o.restored.insert(key);
                Self::settle(o, ts_ms);
                let o = o.clone();
                if !o.is_active() {
                    st.by_meter.retain(|_, v| *v != id);
                }
                self.emit(&mut st, &o, &mut out);
            }
        }
        if let Err(e) = self.flush(&mut st).await {
            tracing::warn!(error = %e, "outage change not stored yet; retried at the next tick");
        }
        out
    }

    fn settle(o: &mut Outage, ts_ms: i64) {
        if o.restored.len() >= o.meters.len() {
            o.state = OutageState::Restored;
            o.restored_at_ms = ts_ms;
        } else if !o.restored.is_empty() {
            o.state = OutageState::PartiallyRestored;
        }
    }

    async fn meters_under(&self, transformer: &str) -> Result<Vec<Meter>> {
        let mut all = self
            .store
            .list_meters(&MeterFilter {
                transformer: Some(transformer.to_owned()),
                limit: crate::model::MAX_PAGE,
                ..MeterFilter::default()
            })
            .await?;
        all.retain(|m| m.status != MeterStatus::Retired);
        Ok(all)
    }

    async fn transformers_of(&self, feeder: &str) -> Result<BTreeSet<String>> {
        let all = self
            .store
            .list_meters(&MeterFilter {
                feeder: Some(feeder.to_owned()),
                limit: crate::model::MAX_PAGE,
                ..MeterFilter::default()
            })
            .await?;
        Ok(all
            .into_iter()
            .filter(|m| m.status != MeterStatus::Retired && !m.transformer.is_empty())
            .map(|m| m.transformer)
            .collect())
    }

    /// Evaluates what is due at `now_ms`: pending gasps whose window closed, and restoration
    /// pings. Returns the outage updates it made.
    pub async fn tick(&self, now_ms: i64) -> Result<Vec<Outage>> {
        let window = window_ms(self.config.window);
        let mut out = Vec::new();
        // Take the groups whose earliest gasp is due: (transformer, or "" and one meter).
        let due: BTreeMap<(String, String), Vec<(String, Pending)>> = {
            let mut st = self.state.lock().await;
            let mut groups: BTreeMap<(String, String), Vec<(String, Pending)>> = BTreeMap::new();
            for (k, p) in &st.pending {
                let g = if p.transformer.is_empty() {
                    (String::new(), k.clone())
                } else {
                    (p.transformer.clone(), String::new())
                };
                groups.entry(g).or_default().push((k.clone(), p.clone()));
            }
            groups.retain(|_, v| {
                v.iter()
                    .map(|(_, p)| p.ts_ms)
                    .min()
                    .is_some_and(|t| t.saturating_add(window) <= now_ms)
            });
            for v in groups.values() {
                for (k, _) in v {
                    st.pending.remove(k);
                }
            }
            groups
        };

        // Transformer candidates by feeder, and meter candidates.
        let mut transformer_candidates: BTreeMap<String, Vec<(String, Vec<Meter>, i64)>> =
            BTreeMap::new();
        let mut meter_candidates: Vec<(String, i64)> = Vec::new();
        for ((transformer, _), gasps) in due {
            let start = gasps.iter().map(|(_, p)| p.ts_ms).min().unwrap_or(now_ms);
            if transformer.is_empty() {
                meter_candidates.extend(gasps.into_iter().map(|(k, p)| (k, p.ts_ms)));
                continue;
            }
            let under = self.meters_under(&transformer).await?;
            let down: HashSet<&str> = gasps.iter().map(|(k, _)| k.as_str()).collect();
            let share_ok = gasps.len() >= 2
                && gasps.len() * 100 >= under.len() * self.config.transformer_percent as usize;
            if share_ok && self.confirm_node(&under, &down).await {
                let feeder = gasps
                    .first()
                    .map(|(_, p)| p.feeder.clone())
                    .unwrap_or_default();
                transformer_candidates
                    .entry(feeder)
                    .or_default()
                    .push((transformer, under, start));
            } else {
                meter_candidates.extend(gasps.into_iter().map(|(k, p)| (k, p.ts_ms)));
            }
        }

        let mut confirmed: Vec<(OutageScope, String, BTreeSet<String>, i64)> = Vec::new();
        for (feeder, cands) in transformer_candidates {
            let total = if feeder.is_empty() {
                0
            } else {
                self.transformers_of(&feeder).await?.len()
            };
            let feeder_ok = !feeder.is_empty()
                && cands.len() >= self.config.feeder_min_transformers
                && cands.len() * 100 >= total * self.config.feeder_percent as usize;
            if feeder_ok {
                let start = cands.iter().map(|c| c.2).min().unwrap_or(now_ms);
                let meters = cands
                    .iter()
                    .flat_map(|c| c.1.iter().map(|m| m.serial.clone()))
                    .collect();
                confirmed.push((OutageScope::Feeder, feeder, meters, start));
            } else {
                for (t, under, start) in cands {
                    let meters = under.into_iter().map(|m| m.serial).collect();
                    confirmed.push((OutageScope::Transformer, t, meters, start));
                }
            }
        }
        // A meter candidate is confirmed when the meter itself does not answer.
        if !meter_candidates.is_empty() {
            let mut known = Vec::new();
            for (k, _) in &meter_candidates {
                if let Some(m) = self.store.meter(k).await? {
                    known.push(m);
                }
            }
            let answered = self.pinger.ping(&known).await;
            for (k, start) in meter_candidates {
                if !answered.contains(&k) {
                    confirmed.push((OutageScope::Meter, k.clone(), BTreeSet::from([k]), start));
                }
            }
        }

        let mut st = self.state.lock().await;
        for (scope, node, meters, start) in confirmed {
            let mut o = Outage {
                id: format!("{}:{node}:{start}", scope.name()),
                scope,
                node,
                state: OutageState::Detected,
                started_at_ms: start,
                confirmed_at_ms: 0,
                restored_at_ms: 0,
                meters,
                restored: BTreeSet::new(),
            };
            let _ = self.updates.send(o.clone());
            out.push(o.clone());
            o.state = OutageState::Confirmed;
            o.confirmed_at_ms = now_ms;
            self.emit(&mut st, &o, &mut out);
            for m in &o.meters {
                st.by_meter.insert(m.clone(), o.id.clone());
                st.pending.remove(m);
            }
            st.outages.insert(o.id.clone(), o);
        }
        self.flush(&mut st).await?;

        // Restoration pings for partially restored outages.
        let stale: Vec<(String, Vec<String>)> = st
            .outages
            .values()
            .filter(|o| {
                o.state == OutageState::PartiallyRestored
                    && st
                        .last_restore_ping
                        .get(&o.id)
                        .is_none_or(|t| t.saturating_add(window) <= now_ms)
            })
            .map(|o| {
                (
                    o.id.clone(),
                    o.meters.difference(&o.restored).cloned().collect(),
                )
            })
            .collect();
        drop(st);
        for (i, missing) in stale {
            let mut ms = Vec::new();
            for s in &missing {
                if let Some(m) = self.store.meter(s).await? {
                    ms.push(m);
                }
            }
            let answered = self.pinger.ping(&ms).await;
            let mut st = self.state.lock().await;
            st.last_restore_ping.insert(i.clone(), now_ms);
            // Only meters of this outage still out count (a power-up may have come meanwhile).
            let answered: Vec<String> = answered
                .into_iter()
                .filter(|s| st.by_meter.get(s) == Some(&i))
                .collect();
            if answered.is_empty() {
                continue;
            }
            for s in &answered {
                st.by_meter.remove(s);
            }
            if let Some(o) = st.outages.get_mut(&i) {
                o.restored.extend(answered);
                Self::settle(o, now_ms);
                let o = o.clone();
                if !o.is_active() {
                    st.by_meter.retain(|_, v| *v != i);
                }
                self.emit(&mut st, &o, &mut out);
            }
        }
        let mut st = self.state.lock().await;
        self.flush(&mut st).await?;
        Ok(out)
    }

    /// Confirms a transformer (or feeder) candidate: up to `ping_sample` of its meters that
    /// sent no gasp (or, if all did, of those that did) are pinged; confirmed if none answers.
    async fn confirm_node(&self, under: &[Meter], down: &HashSet<&str>) -> bool {
        let silent: Vec<Meter> = under
            .iter()
            .filter(|m| !down.contains(m.serial.as_str()))
            .take(self.config.ping_sample)
            .cloned()
            .collect();
        let sample = if silent.is_empty() {
            under
                .iter()
                .take(self.config.ping_sample)
                .cloned()
                .collect()
        } else {
            silent
        };
        self.pinger.ping(&sample).await.is_empty()
    }
}
