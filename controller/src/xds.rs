//! The xDS server: aggregated discovery (delta and state-of-the-world) over mTLS, with
//! per-proxy authorization, ACK/NACK tracking and coalesced pushes.

mod authz;
mod coalesce;
mod delta;
mod listener;
mod service;
mod sotw;
mod status;

pub use authz::SECURITY_TARGET;
pub use delta::DeltaProbe;
pub use listener::{XdsServer, XdsServerConfig, XdsServerError};
pub use service::AdsService;
pub use status::{NackRecord, ProxyRegistry, ProxyStatus, SecurityEvent, TypeStatus};
