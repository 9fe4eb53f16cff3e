//! The MDMS's operations over the store and the plugin host, independent of gRPC: what the
//! [`crate::server`] calls, and what tests and `ami up` call directly.

use std::collections::BTreeSet;
use std::sync::Arc;

use ami_domain::time::now_ms;
use ami_domain::{Obis, Quantity, Unit};
use ami_mdms_store::{
    AnyStore, Catalog, Edit, EditStatus, GroupKind, MeterDataStore, MeterInfo, NewEdit, NewVersion,
    Resolution, Source, Span, StoredReading, VeeException, View,
};
use ami_plugin_host::Host;

use crate::auth::{Principal, Role};
use crate::error::{MdmsError, Result};
use crate::vee::{RuleSets, SeriesInput, interval_of, run_series};

/// Which versions a query returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadView {
    /// The original as received.
    Raw,
    /// The latest version of each interval.
    Latest,
    /// The latest version, without intervals that have an open VEE exception.
    Validated,
}

/// What a VEE run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VeeReport {
    /// Series checked.
    pub series: u32,
    /// Intervals reviewed.
    pub intervals: u32,
    /// New exceptions raised.
    pub exceptions: u32,
    /// Estimates added as versions.
    pub estimates: u32,
}

/// The interval length assumed for a series too short to show its own.
pub const DEFAULT_INTERVAL_S: u32 = 900;

/// The MDMS: store, plugin host and rule sets.
pub struct Mdms {
    store: Arc<AnyStore>,
    host: Arc<Host>,
    rules: RuleSets,
    history_days: u32,
}

impl Mdms {
    /// The MDMS over a migrated store.
    pub fn new(store: Arc<AnyStore>, host: Arc<Host>, rules: RuleSets, history_days: u32) -> Self {
        Self {
            store,
            host,
            rules,
            history_days,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<AnyStore> {
        &self.store
    }

    /// The plugin host.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// Readings of one series in `span`.
    pub async fn readings(
        &self,
        meter: &str,
        register: Obis,
        span: Span,
        view: ReadView,
    ) -> Result<Vec<StoredReading>> {
        match view {
            ReadView::Raw => Ok(self
                .store
                .readings(meter, register, span, View::Raw)
                .await?),
            ReadView::Latest => Ok(self
                .store
                .readings(meter, register, span, View::Latest)
                .await?),
            ReadView::Validated => {
                let rows = self
                    .store
                    .readings(meter, register, span, View::Latest)
                    .await?;
                let open: BTreeSet<i64> = self
                    .store
                    .open_exception_times(meter, register, span.after_ms, span.until_ms)
                    .await?
                    .into_iter()
                    .collect();
                Ok(rows
                    .into_iter()
                    .filter(|r| !open.contains(&r.ts_ms))
                    .collect())
            }
        }
    }

    /// Every version of one interval.
    pub async fn history(
        &self,
        meter: &str,
        register: Obis,
        ts_ms: i64,
    ) -> Result<Vec<StoredReading>> {
        Ok(self.store.history(meter, register, ts_ms).await?)
    }

    /// Registers meters' class and groups.
    pub async fn upsert_meters(&self, who: &Principal, meters: &[MeterInfo]) -> Result<u64> {
        who.require(Role::Operator)?;
        Ok(self.store.upsert_meters(meters).await?)
    }

    /// The known meters.
    pub async fn meters(&self) -> Result<Vec<MeterInfo>> {
        Ok(self.store.meters().await?)
    }

    /// The meters of a group.
    pub async fn group(&self, kind: GroupKind, group: &str) -> Result<Vec<String>> {
        Ok(self.store.meters_in_group(kind, group).await?)
    }

    /// Runs the VEE rule sets over `register` of `meters` (every known meter when empty) in
    /// `span`: failures become exceptions, estimates versions.
    pub async fn run_vee(
        &self,
        who: &Principal,
        meters: &[String],
        register: Obis,
        span: Span,
    ) -> Result<VeeReport> {
        who.require(Role::Operator)?;
        let meters = if meters.is_empty() {
            self.store.meters().await?
        } else {
            let mut known = Vec::with_capacity(meters.len());
            for id in meters {
                known.push(self.store.meter(id).await?.unwrap_or_else(|| MeterInfo {
                    id: id.clone(),
                    class: "default".into(),
                    ..MeterInfo::default()
                }));
            }
            known
        };
        let history_ms = i64::from(self.history_days) * 86_400_000;
        let mut report = VeeReport::default();
        for meter in meters {
            let values = self
                .store
                .readings(&meter.id, register, span, View::Latest)
                .await?;
            let history = if history_ms > 0 {
                let hist = Span::new(span.after_ms.saturating_sub(history_ms), span.after_ms);
                self.store
                    .readings(&meter.id, register, hist, View::Latest)
                    .await?
            } else {
                Vec::new()
            };
            if values.is_empty() && history.is_empty() {
                continue;
            }
            let rules = self.rules.for_class(&meter.class).to_vec();
            let host = Arc::clone(&self.host);
            let id = meter.id.clone();
            let reviewed = values.len();
            let outcome = tokio::task::spawn_blocking(move || {
                let interval_s = interval_of(
                    if values.len() >= 2 { &values } else { &history },
                    DEFAULT_INTERVAL_S,
                );
                run_series(
                    &host,
                    &rules,
                    &SeriesInput {
                        meter: &id,
                        register,
                        interval_s,
                        values: &values,
                        history: &history,
                        window: (span.after_ms, span.until_ms),
                    },
                )
            })
            .await
            .map_err(|e| MdmsError::Server(format!("vee task: {e}")))??;
            report.series += 1;
            report.intervals += u32::try_from(reviewed).unwrap_or(u32::MAX);
            let now = now_ms();
            report.exceptions += u32::try_from(
                self.store
                    .raise_exceptions(&outcome.exceptions, now)
                    .await?,
            )
            .unwrap_or(u32::MAX);
            for (ts, version) in &outcome.estimates {
                self.store
                    .add_version(&meter.id, register, *ts, version)
                    .await?;
                report.estimates += 1;
            }
            if !outcome.estimates.is_empty() {
                // A failed or missing value replaced by an estimate is answered by it.
                let estimated: std::collections::BTreeMap<i64, &NewVersion> =
                    outcome.estimates.iter().map(|(ts, v)| (*ts, v)).collect();
                for x in self.store.exceptions(Some(&meter.id), false).await? {
                    let Some(v) = estimated.get(&x.ts_ms).filter(|_| x.register == register) else {
                        continue;
                    };
                    self.store
                        .resolve_exception(
                            x.id,
                            Resolution {
                                text: format!(
                                    "replaced by an estimate ({})",
                                    v.method.as_deref().unwrap_or("estimate")
                                ),
                                by: v.actor.clone(),
                                at_ms: now,
                            },
                        )
                        .await?;
                }
            }
        }
        Ok(report)
    }

    /// Exceptions, of one meter or all.
    pub async fn exceptions(
        &self,
        meter: Option<&str>,
        include_resolved: bool,
    ) -> Result<Vec<VeeException>> {
        Ok(self.store.exceptions(meter, include_resolved).await?)
    }

    /// Resolves an exception.
    pub async fn resolve_exception(
        &self,
        who: &Principal,
        id: i64,
        resolution: &str,
    ) -> Result<VeeException> {
        who.require(Role::Operator)?;
        if resolution.trim().is_empty() {
            return Err(MdmsError::InvalidRequest(
                "a resolution needs a text".into(),
            ));
        }
        Ok(self
            .store
            .resolve_exception(
                id,
                Resolution {
                    text: resolution.to_owned(),
                    by: who.name.clone(),
                    at_ms: now_ms(),
                },
            )
            .await?)
    }

    /// Proposes a manual edit (pending until another person approves it).
    #[allow(clippy::too_many_arguments)]
    pub async fn propose_edit(
        &self,
        who: &Principal,
        meter: &str,
        register: Obis,
        ts_ms: i64,
        value: Quantity,
        unit: Unit,
        reason: &str,
    ) -> Result<Edit> {
        who.require(Role::Operator)?;
        if reason.trim().is_empty() {
            return Err(MdmsError::InvalidRequest("an edit needs a reason".into()));
        }
        Ok(self
            .store
            .propose_edit(
                &NewEdit {
                    meter: meter.to_owned(),
                    register,
                    ts_ms,
                    value,
                    unit,
                    reason: reason.to_owned(),
                    proposed_by: who.name.clone(),
                },
                now_ms(),
            )
            .await?)
    }

    /// Approves (applies as a new version) or rejects a pending edit. Nobody reviews their
    /// own edit.
    pub async fn review_edit(
        &self,
        who: &Principal,
        id: i64,
        approve: bool,
        comment: &str,
    ) -> Result<Edit> {
        who.require(Role::Approver)?;
        let edit = self.store.edit(id).await?;
        if edit.status != EditStatus::Pending {
            return Err(MdmsError::FailedPrecondition(format!(
                "edit {id} is already {}",
                edit.status.name()
            )));
        }
        if edit.edit.proposed_by == who.name {
            return Err(MdmsError::FailedPrecondition(format!(
                "edit {id} was proposed by {}: another person must review it",
                who.name
            )));
        }
        let review = Resolution {
            text: comment.to_owned(),
            by: who.name.clone(),
            at_ms: now_ms(),
        };
        if !approve {
            return Ok(self
                .store
                .close_edit(id, EditStatus::Rejected, review, None)
                .await?);
        }
        let e = &edit.edit;
        let version = self
            .store
            .add_version(
                &e.meter,
                e.register,
                e.ts_ms,
                &NewVersion {
                    value: e.value,
                    unit: e.unit,
                    quality: ami_domain::Quality::VALID,
                    source: Source::Edited,
                    actor: e.proposed_by.clone(),
                    reason: Some(format!(
                        "{} (edit {id}, approved by {})",
                        e.reason, who.name
                    )),
                    method: Some("manual-edit".into()),
                },
            )
            .await?;
        // The edit answers the interval's open exceptions.
        for x in self.store.exceptions(Some(&e.meter), false).await? {
            if x.register == e.register && x.ts_ms == e.ts_ms {
                self.store
                    .resolve_exception(
                        x.id,
                        Resolution {
                            text: format!("edited (edit {id})"),
                            by: who.name.clone(),
                            at_ms: now_ms(),
                        },
                    )
                    .await?;
            }
        }
        Ok(self
            .store
            .close_edit(id, EditStatus::Approved, review, Some(version))
            .await?)
    }

    /// Edits, pending only unless `include_closed`.
    pub async fn edits(&self, include_closed: bool) -> Result<Vec<Edit>> {
        Ok(self.store.edits(include_closed).await?)
    }
}
