//! `ami.mdms.v1` over gRPC: the MeterData, Vee and Billing services on tonic, with server
//! reflection and the standard health service, every call authenticated (see [`crate::auth`]).

use std::future::Future;
use std::sync::Arc;

use ami_mdms_store::{MeterInfo, Span};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

use crate::auth::{Auth, Principal, Role};
use crate::billing::BillRequest;
use crate::convert::{self, obis, reading, timestamp, to_decimal, ts_ms};
use crate::error::{MdmsError, Result};
use crate::export;
use crate::proto::billing_server::{Billing, BillingServer};
use crate::proto::meter_data_server::{MeterData, MeterDataServer};
use crate::proto::vee_server::{Vee, VeeServer};
use crate::proto::{self as pb, FILE_DESCRIPTOR_SET};
use ami_domain::time::now_ms;

use crate::service::{DEFAULT_INTERVAL_S, Mdms};
use crate::vee::interval_of;

/// The gRPC face of an [`Mdms`].
#[derive(Clone)]
pub struct Api {
    mdms: Arc<Mdms>,
    auth: Auth,
}

impl Api {
    /// The API over `mdms`, authenticating with `auth`.
    pub fn new(mdms: Arc<Mdms>, auth: Auth) -> Self {
        Self { mdms, auth }
    }

    fn who<T>(&self, req: &Request<T>, role: Role) -> Result<Principal> {
        let p = self.auth.principal(req.metadata())?;
        p.require(role)?;
        Ok(p)
    }
}

fn span(
    from: Option<&prost_types::Timestamp>,
    to: Option<&prost_types::Timestamp>,
) -> Result<Span> {
    let after = ts_ms("from", from)?;
    let until = ts_ms("to", to)?;
    if after >= until {
        return Err(MdmsError::InvalidRequest("from must be before to".into()));
    }
    Ok(Span::new(after, until))
}

fn exception(x: ami_mdms_store::VeeException) -> pb::VeeException {
    let (status, resolution, by) = match &x.resolved {
        Some(r) => ("resolved", r.text.clone(), r.by.clone()),
        None => ("open", String::new(), String::new()),
    };
    pb::VeeException {
        id: x.id,
        meter: x.meter,
        register: x.register.to_string(),
        ts: Some(timestamp(x.ts_ms)),
        rule: x.rule,
        reason: x.reason,
        status: status.into(),
        resolution,
        resolved_by: by,
        raised_at: Some(timestamp(x.raised_at_ms)),
    }
}

fn edit(e: ami_mdms_store::Edit) -> pb::Edit {
    pb::Edit {
        id: e.id,
        meter: e.edit.meter,
        register: e.edit.register.to_string(),
        ts: Some(timestamp(e.edit.ts_ms)),
        value: Some(to_decimal(e.edit.value)),
        unit: e.edit.unit.symbol().into(),
        reason: e.edit.reason,
        status: e.status.name().into(),
        proposed_by: e.edit.proposed_by,
        reviewed_by: e.review.map(|r| r.by).unwrap_or_default(),
        version: e.version.unwrap_or_default(),
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl MeterData for Api {
    async fn get_readings(
        &self,
        req: Request<pb::GetReadingsRequest>,
    ) -> Reply<pb::GetReadingsResponse> {
        self.who(&req, Role::Reader)?;
        let r = req.get_ref();
        let rows = self
            .mdms
            .readings(
                &r.meter,
                obis("register", &r.register)?,
                span(r.from.as_ref(), r.to.as_ref())?,
                convert::view(r.view)?,
            )
            .await?;
        Ok(Response::new(pb::GetReadingsResponse {
            readings: rows.iter().map(reading).collect(),
        }))
    }

    async fn get_history(
        &self,
        req: Request<pb::GetHistoryRequest>,
    ) -> Reply<pb::GetHistoryResponse> {
        self.who(&req, Role::Reader)?;
        let r = req.get_ref();
        let rows = self
            .mdms
            .history(
                &r.meter,
                obis("register", &r.register)?,
                ts_ms("ts", r.ts.as_ref())?,
            )
            .await?;
        Ok(Response::new(pb::GetHistoryResponse {
            versions: rows.iter().map(reading).collect(),
        }))
    }

    async fn upsert_meters(
        &self,
        req: Request<pb::UpsertMetersRequest>,
    ) -> Reply<pb::UpsertMetersResponse> {
        let who = self.who(&req, Role::Operator)?;
        let meters: Vec<MeterInfo> = req
            .into_inner()
            .meters
            .into_iter()
            .map(|m| MeterInfo {
                id: m.id,
                class: if m.class.is_empty() {
                    "default".into()
                } else {
                    m.class
                },
                feeder: m.feeder,
                transformer: m.transformer,
                customer_class: m.customer_class,
            })
            .collect();
        let n = self.mdms.upsert_meters(&who, &meters).await?;
        Ok(Response::new(pb::UpsertMetersResponse {
            upserted: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }

    async fn list_meters(
        &self,
        req: Request<pb::ListMetersRequest>,
    ) -> Reply<pb::ListMetersResponse> {
        self.who(&req, Role::Reader)?;
        let meters = self.mdms.meters().await?;
        Ok(Response::new(pb::ListMetersResponse {
            meters: meters
                .into_iter()
                .map(|m| pb::Meter {
                    id: m.id,
                    class: m.class,
                    feeder: m.feeder,
                    transformer: m.transformer,
                    customer_class: m.customer_class,
                })
                .collect(),
        }))
    }

    async fn aggregate_load(
        &self,
        req: Request<pb::AggregateLoadRequest>,
    ) -> Reply<pb::AggregateLoadResponse> {
        self.who(&req, Role::Reader)?;
        let r = req.get_ref();
        let agg = self
            .mdms
            .aggregate(
                convert::group_kind(r.group_kind)?,
                &r.group,
                obis("register", &r.register)?,
                span(r.from.as_ref(), r.to.as_ref())?,
                r.interval_s,
            )
            .await?;
        Ok(Response::new(pb::AggregateLoadResponse {
            points: agg
                .points
                .iter()
                .map(|p| pb::LoadPoint {
                    ts: Some(timestamp(p.ts_ms)),
                    value: Some(to_decimal(p.value)),
                    meters: p.meters,
                })
                .collect(),
            unit: agg.unit.map(|u| u.symbol().to_owned()).unwrap_or_default(),
            meters_in_group: agg.meters_in_group,
        }))
    }

    type ExportStream = ReceiverStream<std::result::Result<pb::ExportChunk, Status>>;

    async fn export(&self, req: Request<pb::ExportRequest>) -> Reply<Self::ExportStream> {
        self.who(&req, Role::Reader)?;
        let r = req.into_inner();
        let register = obis("register", &r.register)?;
        let span = span(r.from.as_ref(), r.to.as_ref())?;
        let view = convert::view(r.view)?;
        let format = pb::ExportFormat::try_from(r.format).map_err(|_| {
            MdmsError::InvalidRequest(format!("export format {} is unknown", r.format))
        })?;
        let meters = if r.meters.is_empty() {
            self.mdms
                .meters()
                .await?
                .into_iter()
                .map(|m| m.id)
                .collect()
        } else {
            r.meters
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mdms = Arc::clone(&self.mdms);
        tokio::spawn(async move {
            let text = |t: String| pb::ExportChunk {
                rows: Vec::new(),
                text: t,
            };
            let opening = match format {
                pb::ExportFormat::Csv => Some(text(export::CSV_HEADER.to_owned())),
                pb::ExportFormat::GreenButton => {
                    Some(text(export::espi_open("ami export", now_ms())))
                }
                _ => None,
            };
            if let Some(o) = opening
                && tx.send(Ok(o)).await.is_err()
            {
                return;
            }
            for meter in meters {
                let chunk = match mdms.readings(&meter, register, span, view).await {
                    Err(e) => Err(Status::from(e)),
                    Ok(rows) if rows.is_empty() => continue,
                    Ok(rows) => match format {
                        pb::ExportFormat::Csv => {
                            Ok(text(export::csv_rows(&meter, register, &rows)))
                        }
                        pb::ExportFormat::GreenButton => export::espi_entries(
                            &meter,
                            register,
                            interval_of(&rows, DEFAULT_INTERVAL_S),
                            &rows,
                        )
                        .map(text)
                        .map_err(Status::from),
                        _ => Ok(pb::ExportChunk {
                            rows: rows
                                .iter()
                                .map(|x| pb::ExportRow {
                                    meter: meter.clone(),
                                    register: register.to_string(),
                                    reading: Some(reading(x)),
                                })
                                .collect(),
                            text: String::new(),
                        }),
                    },
                };
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
            if format == pb::ExportFormat::GreenButton {
                let _ = tx.send(Ok(text(export::ESPI_CLOSE.to_owned()))).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[tonic::async_trait]
impl Vee for Api {
    async fn run_vee(&self, req: Request<pb::RunVeeRequest>) -> Reply<pb::RunVeeResponse> {
        let who = self.who(&req, Role::Operator)?;
        let r = req.get_ref();
        let report = self
            .mdms
            .run_vee(
                &who,
                &r.meters,
                obis("register", &r.register)?,
                span(r.from.as_ref(), r.to.as_ref())?,
            )
            .await?;
        Ok(Response::new(pb::RunVeeResponse {
            series: report.series,
            intervals: report.intervals,
            exceptions: report.exceptions,
            estimates: report.estimates,
        }))
    }

    async fn list_exceptions(
        &self,
        req: Request<pb::ListExceptionsRequest>,
    ) -> Reply<pb::ListExceptionsResponse> {
        self.who(&req, Role::Reader)?;
        let r = req.get_ref();
        let meter = (!r.meter.is_empty()).then_some(r.meter.as_str());
        let list = self.mdms.exceptions(meter, r.include_resolved).await?;
        Ok(Response::new(pb::ListExceptionsResponse {
            exceptions: list.into_iter().map(exception).collect(),
        }))
    }

    async fn resolve_exception(
        &self,
        req: Request<pb::ResolveExceptionRequest>,
    ) -> Reply<pb::VeeException> {
        let who = self.who(&req, Role::Operator)?;
        let r = req.get_ref();
        Ok(Response::new(exception(
            self.mdms
                .resolve_exception(&who, r.id, &r.resolution)
                .await?,
        )))
    }

    async fn propose_edit(&self, req: Request<pb::ProposeEditRequest>) -> Reply<pb::Edit> {
        let who = self.who(&req, Role::Operator)?;
        let r = req.get_ref();
        let e = self
            .mdms
            .propose_edit(
                &who,
                &r.meter,
                obis("register", &r.register)?,
                ts_ms("ts", r.ts.as_ref())?,
                convert::decimal("value", r.value.as_ref())?,
                convert::unit(&r.unit)?,
                &r.reason,
            )
            .await?;
        Ok(Response::new(edit(e)))
    }

    async fn review_edit(&self, req: Request<pb::ReviewEditRequest>) -> Reply<pb::Edit> {
        let who = self.who(&req, Role::Approver)?;
        let r = req.get_ref();
        Ok(Response::new(edit(
            self.mdms
                .review_edit(&who, r.id, r.approve, &r.comment)
                .await?,
        )))
    }

    async fn list_edits(&self, req: Request<pb::ListEditsRequest>) -> Reply<pb::ListEditsResponse> {
        self.who(&req, Role::Reader)?;
        let list = self.mdms.edits(req.get_ref().include_closed).await?;
        Ok(Response::new(pb::ListEditsResponse {
            edits: list.into_iter().map(edit).collect(),
        }))
    }
}

#[tonic::async_trait]
impl Billing for Api {
    async fn calculate_bill(&self, req: Request<pb::CalculateBillRequest>) -> Reply<pb::Bill> {
        let who = self.who(&req, Role::Operator)?;
        let r = req.into_inner();
        let request = BillRequest {
            meter: r.meter.clone(),
            tariff: r.tariff.clone(),
            params: r
                .parameters
                .iter()
                .map(|p| {
                    Ok((
                        p.name.clone(),
                        convert::decimal("parameter value", p.value.as_ref())?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?,
            start_ms: ts_ms("period_start", r.period_start.as_ref())?,
            end_ms: ts_ms("period_end", r.period_end.as_ref())?,
            utc_offsets: r
                .utc_offsets
                .iter()
                .map(|o| Ok((ts_ms("utc_offsets.from", o.from.as_ref())?, o.offset_s)))
                .collect::<Result<Vec<_>>>()?,
            special_days: r
                .special_days
                .iter()
                .map(|d| (d.date.clone(), d.day_type.clone()))
                .collect(),
            registers: r
                .registers
                .iter()
                .map(|x| obis("registers", x))
                .collect::<Result<Vec<_>>>()?,
        };
        let bill = self.mdms.calculate_bill(&who, &request).await?;
        Ok(Response::new(pb::Bill {
            meter: r.meter,
            tariff: r.tariff,
            determinants: bill
                .determinants
                .iter()
                .map(|d| pb::Determinant {
                    name: d.name.clone(),
                    register: d.register.to_string(),
                    value: Some(to_decimal(d.value)),
                    at: Some(timestamp(d.at_ms)),
                })
                .collect(),
            lines: bill
                .lines
                .iter()
                .map(|l| pb::LineItem {
                    description: l.description.clone(),
                    determinant: l.determinant.clone(),
                    rate: Some(to_decimal(l.rate)),
                    amount: Some(to_decimal(l.amount)),
                })
                .collect(),
            total: Some(to_decimal(bill.total)),
            computed_by: bill.computed_by,
        }))
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    api: Api,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<MeterDataServer<Api>>().await;
    health.set_serving::<VeeServer<Api>>().await;
    health.set_serving::<BillingServer<Api>>().await;
    // Both reflection versions: grpcurl and most tools speak v1, some clients still v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| MdmsError::Server(format!("reflection: {e}")))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| MdmsError::Server(format!("reflection: {e}")))?;
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(MeterDataServer::new(api.clone()))
        .add_service(VeeServer::new(api.clone()))
        .add_service(BillingServer::new(api))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| MdmsError::Server(e.to_string()))
}
