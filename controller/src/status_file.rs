//! The control plane's status, written as JSON for `gatehouse status` to read: objects and their
//! conditions, configuration problems, gateways and their resources, connected proxies.

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::Diagnostic;
use crate::snapshot::ResourceType;
use crate::xds::{NackRecord, ProxyStatus, SecurityEvent};

/// What `gatehouse status` shows.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StatusReport {
    /// When it was written (RFC 3339).
    pub written_at: String,
    /// The configuration directory.
    pub config_dir: String,
    /// Problems in the configuration files.
    pub diagnostics: Vec<DiagnosticLine>,
    /// Every object and its conditions.
    pub objects: Vec<serde_json::Value>,
    /// Each gateway: resource counts and versions by type.
    pub gateways: BTreeMap<String, BTreeMap<String, (usize, String)>>,
    /// Connected proxies.
    pub proxies: Vec<serde_json::Value>,
    /// The last NACK of each gateway.
    pub last_nacks: BTreeMap<String, serde_json::Value>,
    /// Recent security events.
    pub security_events: Vec<serde_json::Value>,
}

/// One configuration problem.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DiagnosticLine {
    /// `file:line: message`.
    pub text: String,
}

impl StatusReport {
    /// Builds a report.
    pub fn new(
        config_dir: &Path,
        diagnostics: &[Diagnostic],
        objects: &crate::translate::Statuses,
        gateways: &BTreeMap<gatehouse_certs::GatewayName, crate::Snapshot>,
        proxies: &[ProxyStatus],
        nacks: &BTreeMap<String, NackRecord>,
        events: &[SecurityEvent],
    ) -> Self {
        let json = |v: &dyn erased::Ser| v.to_value();
        Self {
            written_at: gatehouse_certs::rfc3339(std::time::SystemTime::now()),
            config_dir: config_dir.display().to_string(),
            diagnostics: diagnostics
                .iter()
                .map(|d| DiagnosticLine {
                    text: d.to_string(),
                })
                .collect(),
            objects: objects.iter().map(|o| json(o)).collect(),
            gateways: gateways
                .iter()
                .map(|(gw, snap)| {
                    let by_type = ResourceType::ALL
                        .iter()
                        .map(|t| {
                            (
                                t.short().to_owned(),
                                (snap.resources(*t).len(), snap.version(*t).to_owned()),
                            )
                        })
                        .collect();
                    (gw.to_string(), by_type)
                })
                .collect(),
            proxies: proxies.iter().map(|p| json(p)).collect(),
            last_nacks: nacks.iter().map(|(k, v)| (k.clone(), json(v))).collect(),
            security_events: events.iter().rev().take(20).map(|e| json(e)).collect(),
        }
    }

    /// Writes the report atomically (temporary file, rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer_pretty(&mut tmp, self)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

mod erased {
    /// Serialise anything to a JSON value (a failure gives `null`).
    pub(super) trait Ser {
        fn to_value(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Ser for T {
        fn to_value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
