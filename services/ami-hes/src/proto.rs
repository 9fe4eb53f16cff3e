//! The generated `ami.hes.v1` messages, clients and servers (prost + tonic, compiled from
//! `proto/ami/hes/v1/hes.proto` by protox at build time), the encoded file descriptor set for
//! server reflection, and the conversions between the wire types and the crate's own.

#![allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]

use ami_domain::crypto::KeyRole;

use crate::error::{HesError, Result};
use crate::model;
use crate::outage;

/// The generated code of package `ami.hes.v1`.
pub mod v1 {
    tonic::include_proto!("ami.hes.v1");
}

/// The encoded `FileDescriptorSet` of `hes.proto`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ami_hes_v1_descriptor.bin"));

impl From<model::MeterStatus> for v1::MeterStatus {
    fn from(s: model::MeterStatus) -> Self {
        match s {
            model::MeterStatus::Installed => v1::MeterStatus::Installed,
            model::MeterStatus::Commissioned => v1::MeterStatus::Commissioned,
            model::MeterStatus::Disconnected => v1::MeterStatus::Disconnected,
            model::MeterStatus::Retired => v1::MeterStatus::Retired,
        }
    }
}

/// The model status of a wire value; `None` for unspecified.
pub fn status_from_wire(v: i32) -> Result<Option<model::MeterStatus>> {
    match v1::MeterStatus::try_from(v) {
        Ok(v1::MeterStatus::Unspecified) => Ok(None),
        Ok(v1::MeterStatus::Installed) => Ok(Some(model::MeterStatus::Installed)),
        Ok(v1::MeterStatus::Commissioned) => Ok(Some(model::MeterStatus::Commissioned)),
        Ok(v1::MeterStatus::Disconnected) => Ok(Some(model::MeterStatus::Disconnected)),
        Ok(v1::MeterStatus::Retired) => Ok(Some(model::MeterStatus::Retired)),
        Err(_) => Err(HesError::InvalidArgument(format!(
            "unknown meter status {v}"
        ))),
    }
}

impl From<model::Meter> for v1::Meter {
    fn from(m: model::Meter) -> Self {
        v1::Meter {
            serial: m.serial,
            manufacturer: m.manufacturer,
            model: m.model,
            protocol: m.protocol,
            dlms_system_title: m.dlms_system_title.unwrap_or_default(),
            mbus_address: m.mbus_address.unwrap_or_default(),
            osgp_device_id: m.osgp_device_id.unwrap_or_default(),
            adapter: m.adapter,
            concentrator: m.concentrator,
            service_point: m.service_point,
            customer: m.customer,
            location: m.location,
            latitude_e6: m.latitude_e6,
            longitude_e6: m.longitude_e6,
            feeder: m.feeder,
            transformer: m.transformer,
            phase: m.phase,
            status: v1::MeterStatus::from(m.status) as i32,
            status_changed_at_ms: m.status_changed_at_ms,
            created_at_ms: m.created_at_ms,
        }
    }
}

/// The key role of a wire value.
pub fn role_from_wire(v: i32) -> Result<KeyRole> {
    match v1::KeyRole::try_from(v) {
        Ok(v1::KeyRole::DlmsUnicast) => Ok(KeyRole::DlmsUnicast),
        Ok(v1::KeyRole::DlmsBroadcast) => Ok(KeyRole::DlmsBroadcast),
        Ok(v1::KeyRole::DlmsAuthentication) => Ok(KeyRole::DlmsAuthentication),
        Ok(v1::KeyRole::DlmsMaster) => Ok(KeyRole::DlmsMaster),
        Ok(v1::KeyRole::Mbus) => Ok(KeyRole::Mbus),
        Ok(v1::KeyRole::OsgpOmak) => Ok(KeyRole::OsgpOmak),
        Ok(v1::KeyRole::DlmsDedicated) => Ok(KeyRole::DlmsDedicated),
        Ok(v1::KeyRole::AnsiC1222) => Ok(KeyRole::AnsiC1222),
        Ok(v1::KeyRole::Unspecified) | Err(_) => Err(HesError::InvalidArgument(format!(
            "key role {v}: a role is required"
        ))),
    }
}

/// The wire value of a key role.
pub fn role_to_wire(r: KeyRole) -> v1::KeyRole {
    match r {
        KeyRole::DlmsUnicast => v1::KeyRole::DlmsUnicast,
        KeyRole::DlmsBroadcast => v1::KeyRole::DlmsBroadcast,
        KeyRole::DlmsAuthentication => v1::KeyRole::DlmsAuthentication,
        KeyRole::DlmsMaster => v1::KeyRole::DlmsMaster,
        KeyRole::Mbus => v1::KeyRole::Mbus,
        KeyRole::OsgpOmak => v1::KeyRole::OsgpOmak,
        KeyRole::DlmsDedicated => v1::KeyRole::DlmsDedicated,
        KeyRole::AnsiC1222 => v1::KeyRole::AnsiC1222,
    }
}

impl From<model::KeyMetadata> for v1::KeyMetadata {
    fn from(k: model::KeyMetadata) -> Self {
        v1::KeyMetadata {
            serial: k.serial,
            role: role_to_wire(k.role) as i32,
            version: k.version,
            state: match k.state {
                model::KeyState::Active => v1::KeyState::Active,
                model::KeyState::Previous => v1::KeyState::Previous,
                model::KeyState::Retired => v1::KeyState::Retired,
            } as i32,
            created_at_ms: k.created_at_ms,
            grace_until_ms: k.grace_until_ms,
            master_key_id: k.master_key_id,
            created_by: k.created_by,
        }
    }
}

impl From<model::StoredEvent> for v1::MeterEvent {
    fn from(s: model::StoredEvent) -> Self {
        let e = s.event;
        v1::MeterEvent {
            id: s.id,
            serial: e.serial.unwrap_or_default(),
            meter: e.meter,
            kind: e.kind,
            ts_ms: e.ts_ms,
            code: e.code,
            source: e.source.unwrap_or_default(),
            duration_s: e.duration_s,
            frame: e.frame,
        }
    }
}

impl From<outage::Outage> for v1::Outage {
    fn from(o: outage::Outage) -> Self {
        v1::Outage {
            id: o.id,
            scope: match o.scope {
                outage::OutageScope::Meter => v1::OutageScope::Meter,
                outage::OutageScope::Transformer => v1::OutageScope::Transformer,
                outage::OutageScope::Feeder => v1::OutageScope::Feeder,
            } as i32,
            node: o.node,
            state: match o.state {
                outage::OutageState::Detected => v1::OutageState::Detected,
                outage::OutageState::Confirmed => v1::OutageState::Confirmed,
                outage::OutageState::PartiallyRestored => v1::OutageState::PartiallyRestored,
                outage::OutageState::Restored => v1::OutageState::Restored,
            } as i32,
            started_at_ms: o.started_at_ms,
            confirmed_at_ms: o.confirmed_at_ms,
            restored_at_ms: o.restored_at_ms,
            restored: u32::try_from(o.restored.len()).unwrap_or(u32::MAX),
            meters: o.meters.into_iter().collect(),
        }
    }
}
