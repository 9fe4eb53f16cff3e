//! Where the engine's state lives: [`CommandStore`], with [`MemoryStore`] (tests, `ami up`)
//! and [`crate::PgStore`] (production). Both pass the same tests.
//!
//! Every command change is written together with its audit entry (one transaction on
//! PostgreSQL), so the trail never misses a transition the state shows.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use crate::error::StoreError;
use crate::model::{AuditEntry, BulkRequest, Campaign, CampaignMeter, CommandRecord};

/// Storage of commands, audit, bulk requests and campaigns.
pub trait CommandStore: Send + Sync + 'static {
    /// Whether this process may drive the commands now: takes the single driver lease, or
    /// checks it still holds it. Engines whose store says no neither send nor apply acks.
    fn lead(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a new command and the entry of its creation.
    fn insert_command(
        &self,
        rec: &CommandRecord,
        audit: &AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces a command, appending `audit` when its state changed.
    fn update_command(
        &self,
        rec: &CommandRecord,
        audit: Option<&AuditEntry>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A command by id.
    fn command(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<CommandRecord>, StoreError>> + Send;

    /// Every command not yet confirmed, failed or expired, oldest first.
    fn active_commands(
        &self,
    ) -> impl Future<Output = Result<Vec<CommandRecord>, StoreError>> + Send;

    /// Up to `limit` active commands due at `now_ms` (`next_at_ms <= now_ms`), earliest first.
    fn due_commands(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CommandRecord>, StoreError>> + Send;

    /// Every command of a bulk request.
    fn bulk_commands(
        &self,
        bulk: &str,
    ) -> impl Future<Output = Result<Vec<CommandRecord>, StoreError>> + Send;

    /// A command's audit trail, oldest first.
    fn audit(&self, id: &str) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// Stores or replaces a bulk request.
    fn put_bulk(&self, bulk: &BulkRequest) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A bulk request by id.
    fn bulk(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<BulkRequest>, StoreError>> + Send;

    /// Stores a new campaign with its meters.
    fn insert_campaign(
        &self,
        campaign: &Campaign,
        meters: &[CampaignMeter],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A campaign by id.
    fn campaign(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Campaign>, StoreError>> + Send;

    /// A campaign's meters, in the order given at its start.
    fn campaign_meters(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<CampaignMeter>, StoreError>> + Send;

    /// Replaces one campaign meter.
    fn update_campaign_meter(
        &self,
        meter: &CampaignMeter,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Default)]
struct Inner {
    commands: HashMap<String, CommandRecord>,
    order: Vec<String>,
    audit: HashMap<String, Vec<AuditEntry>>,
    bulks: HashMap<String, BulkRequest>,
    campaigns: HashMap<String, Campaign>,
    campaign_meters: HashMap<String, Vec<CampaignMeter>>,
}

/// The in-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl CommandStore for MemoryStore {
    /// One process holds the memory: it always leads.
    async fn lead(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn insert_command(
        &self,
        rec: &CommandRecord,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.commands.contains_key(&rec.id) {
            return Err(StoreError::Conflict(format!("command {} exists", rec.id)));
        }
        g.commands.insert(rec.id.clone(), rec.clone());
        g.order.push(rec.id.clone());
        g.audit
            .entry(rec.id.clone())
            .or_default()
            .push(audit.clone());
        Ok(())
    }

    async fn update_command(
        &self,
        rec: &CommandRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        let Some(slot) = g.commands.get_mut(&rec.id) else {
            return Err(StoreError::NotFound(format!("command {}", rec.id)));
        };
        *slot = rec.clone();
        if let Some(a) = audit {
            g.audit.entry(rec.id.clone()).or_default().push(a.clone());
        }
        Ok(())
    }

    async fn command(&self, id: &str) -> Result<Option<CommandRecord>, StoreError> {
        Ok(self.lock().commands.get(id).cloned())
    }

    async fn active_commands(&self) -> Result<Vec<CommandRecord>, StoreError> {
        let g = self.lock();
        Ok(g.order
            .iter()
            .filter_map(|id| g.commands.get(id))
            .filter(|c| !c.state.is_final())
            .cloned()
            .collect())
    }

    async fn due_commands(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        let g = self.lock();
        let mut due: Vec<CommandRecord> = g
            .order
            .iter()
            .filter_map(|id| g.commands.get(id))
            .filter(|c| !c.state.is_final() && c.next_at_ms <= now_ms)
            .cloned()
            .collect();
        due.sort_by_key(|c| c.next_at_ms);
        due.truncate(limit);
        Ok(due)
    }

    async fn bulk_commands(&self, bulk: &str) -> Result<Vec<CommandRecord>, StoreError> {
        let g = self.lock();
        Ok(g.order
            .iter()
            .filter_map(|id| g.commands.get(id))
            .filter(|c| c.bulk.as_deref() == Some(bulk))
            .cloned()
            .collect())
    }

    async fn audit(&self, id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.lock().audit.get(id).cloned().unwrap_or_default())
    }

    async fn put_bulk(&self, bulk: &BulkRequest) -> Result<(), StoreError> {
        self.lock().bulks.insert(bulk.id.clone(), bulk.clone());
        Ok(())
    }

    async fn bulk(&self, id: &str) -> Result<Option<BulkRequest>, StoreError> {
        Ok(self.lock().bulks.get(id).cloned())
    }

    async fn insert_campaign(
        &self,
        campaign: &Campaign,
        meters: &[CampaignMeter],
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.campaigns.contains_key(&campaign.id) {
            return Err(StoreError::Conflict(format!(
                "campaign {} exists",
                campaign.id
            )));
        }
        g.campaigns.insert(campaign.id.clone(), campaign.clone());
        g.campaign_meters
            .insert(campaign.id.clone(), meters.to_vec());
        Ok(())
    }

    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        Ok(self.lock().campaigns.get(id).cloned())
    }

    async fn campaign_meters(&self, id: &str) -> Result<Vec<CampaignMeter>, StoreError> {
        Ok(self
            .lock()
            .campaign_meters
            .get(id)
            .cloned()
            .unwrap_or_default())
    }

    async fn update_campaign_meter(&self, meter: &CampaignMeter) -> Result<(), StoreError> {
        let mut g = self.lock();
        let slot = g
            .campaign_meters
            .get_mut(&meter.campaign)
            .and_then(|ms| ms.iter_mut().find(|m| m.target.meter == meter.target.meter));
        match slot {
            Some(s) => {
                *s = meter.clone();
                Ok(())
            }
            None => Err(StoreError::NotFound(format!(
                "meter {} in campaign {}",
                meter.target.meter, meter.campaign
            ))),
        }
    }
}
