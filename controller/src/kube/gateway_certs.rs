//! Each gateway's xDS client certificate, kept in a Secret in the gateway's namespace that the
//! Envoy pods mount.
//!
//! The Secret `gatehouse-xds-NAME` (type `Opaque`) holds `chain.pem` (the leaf, then the CA
//! chain), `key.pem` (the leaf's PKCS#8 key) and `ca.pem` (the trust anchors Envoy checks the
//! controller's server certificate with). [`GatewayCertificates::ensure`] is given the Secret
//! as the controller's watch cache has it (it never reads Secrets itself) and creates it,
//! leaves it alone, or rewrites it:
//!
//! - absent: a new leaf for `spiffe://TD/gateway/NAMESPACE/NAME`, and `POST` the Secret;
//! - present and usable: nothing, until its [`RotationSchedule`] says renewal is due (at half
//!   of its lifetime, brought forward by a stable jitter seeded with the SPIFFE ID);
//! - due, or unusable (a key or certificate missing or corrupt, a certificate that does not
//!   chain to our CA, is expired, or names another identity, a key that does not match, an
//!   outdated `ca.pem`): a new leaf, written with a JSON merge `PATCH` of the named Secret,
//!   conditional on the `resourceVersion` that was checked.
//!
//! Requests: `POST` to the namespace's secrets, `PATCH` of the named Secret: what the
//! controller's Role in each gateway namespace grants for writing. Key material is never
//! logged.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use gatehouse_certs::{
    CertificateAuthority, Clock, GatewayName, Identity, IssuedLeaf, LeafRequest, RotationSchedule,
    rfc3339,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

/// The default lifetime of a gateway's client certificate.
pub const DEFAULT_CERT_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The Secret key of the leaf certificate followed by the CA chain (PEM).
pub const CHAIN_KEY: &str = "chain.pem";
/// The Secret key of the leaf's private key (PKCS#8 PEM).
pub const KEY_KEY: &str = "key.pem";
/// The Secret key of the trust anchors for the controller's server certificate (PEM).
pub const CA_KEY: &str = "ca.pem";
/// The label naming the gateway a Secret belongs to.
pub const GATEWAY_LABEL: &str = "gatehouse.dev/gateway";
/// The label marking objects the controller writes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The annotation with the certificate's start of validity (RFC 3339).
pub const NOT_BEFORE_ANNOTATION: &str = "gatehouse.dev/not-before";
/// The annotation with the certificate's end of validity (RFC 3339).
pub const NOT_AFTER_ANNOTATION: &str = "gatehouse.dev/not-after";

/// The field manager recorded for our writes.
const FIELD_MANAGER: &str = "gatehouse";
/// How soon to look again at a Secret whose write lost a race with another writer.
const RECHECK: Duration = Duration::from_secs(10);

/// The name of `gateway`'s xDS client certificate Secret, in the gateway's namespace.
///
/// Must match `gatehouse_deploy::xds_secret_name`, which the rendered Deployment mounts and
/// the rendered Role names.
pub fn secret_name(gateway: &GatewayName) -> String {
    format!("gatehouse-xds-{}", gateway.name())
}

/// What [`GatewayCertificates::ensure`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertState {
    /// The Secret holds a usable certificate that is not due for renewal.
    Current {
        /// When it is due.
        renew_at: SystemTime,
    },
    /// The Secret did not exist and was created.
    Created {
        /// When the new certificate is due.
        renew_at: SystemTime,
    },
    /// The Secret was rewritten with a new certificate.
    Renewed {
        /// When the new certificate is due.
        renew_at: SystemTime,
        /// Why.
        reason: RenewReason,
    },
    /// Another writer changed the Secret first (create: it exists; patch: it changed or was
    /// deleted); look again when the watch cache has caught up.
    Raced {
        /// When to look again.
        recheck_at: SystemTime,
    },
}

impl CertState {
    /// When to call [`GatewayCertificates::ensure`] for this gateway again.
    pub fn next_due(&self) -> SystemTime {
        match self {
            Self::Current { renew_at }
            | Self::Created { renew_at }
            | Self::Renewed { renew_at, .. } => *renew_at,
            Self::Raced { recheck_at } => *recheck_at,
        }
    }
}

/// Why a certificate was replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewReason {
    /// It reached its renewal time.
    Due,
    /// It could not be used; the text says why (never key material).
    Unusable(String),
}

impl fmt::Display for RenewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Due => f.write_str("renewal due"),
            Self::Unusable(why) => f.write_str(why),
        }
    }
}

/// Keeping a gateway's xDS client certificate Secret failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayCertError {
    /// The CA refused to issue.
    #[error("cannot issue the xDS client certificate of gateway `{gateway}`: {source}")]
    Issue {
        /// `NAMESPACE/NAME`.
        gateway: String,
        /// Why.
        #[source]
        source: gatehouse_certs::CertsError,
    },
    /// The `POST` failed.
    #[error("cannot create Secret `{namespace}/{name}`: {source} (hint: {hint})")]
    Create {
        /// The gateway's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// What to check.
        hint: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The `PATCH` failed.
    #[error("cannot update Secret `{namespace}/{name}`: {source} (hint: {hint})")]
    Patch {
        /// The gateway's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// What to check.
        hint: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A Secret of that name exists with another type, which cannot be changed in place.
    #[error(
        "Secret `{namespace}/{name}` has type `{found}`, not `Opaque` (hint: a Secret's type cannot be changed; delete it and the controller recreates it)"
    )]
    SecretType {
        /// The gateway's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// Its type.
        found: String,
    },
    /// The CA's trust anchors cannot be used to verify certificates.
    #[error("cannot verify certificates against the CA: {0}")]
    Verifier(String),
}

/// Issues gateways' xDS client certificates and keeps them in Secrets.
pub struct GatewayCertificates {
    client: kube::Client,
    ca: Arc<CertificateAuthority>,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for GatewayCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayCertificates")
            .field("ca", &self.ca)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl GatewayCertificates {
    /// Issues from `ca`, with the default lifetime of 24 h, reading the time from `clock`.
    pub fn new(client: kube::Client, ca: Arc<CertificateAuthority>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            ca,
            lifetime: DEFAULT_CERT_LIFETIME,
            clock,
        }
    }

    /// The time on this issuer's clock (what [`CertState::next_due`] is measured against).
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Issues certificates valid for `lifetime` (cut short if the CA expires first).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Makes sure `gateway`'s Secret holds a usable certificate that is not due for renewal.
    ///
    /// `existing` is the Secret as the watch cache has it (`None`: it does not exist). Returns
    /// what was done and, through [`CertState::next_due`], when to call again.
    pub async fn ensure(
        &self,
        gateway: &GatewayName,
        existing: Option<&Secret>,
    ) -> Result<CertState, GatewayCertError> {
        let now = self.clock.now();
        let Some(secret) = existing else {
            return self.create(gateway, now).await;
        };
        let name = secret_name(gateway);
        if let Some(found) = secret.type_.as_deref().filter(|t| *t != "Opaque") {
            return Err(GatewayCertError::SecretType {
                namespace: gateway.namespace().to_owned(),
                name,
                found: found.to_owned(),
            });
        }
        let reason = match self.check(gateway, secret, now)? {
            Ok(schedule) if !schedule.is_due(now) => {
                return Ok(CertState::Current {
                    renew_at: schedule.renew_at(),
                });
            }
            Ok(_) => RenewReason::Due,
            Err(why) => RenewReason::Unusable(why),
        };
        let leaf = self.issue(gateway, now)?;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), gateway.namespace());
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let mut patch = serde_json::json!({
            "metadata": {
                "labels": labels(gateway),
                "annotations": annotations(&leaf),
            },
            "data": self.data(&leaf)
                .into_iter()
                .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v.0)))
                .collect::<BTreeMap<_, _>>(),
        });
        // Only if the Secret is still the one checked: another writer's newer certificate is
        // looked at again rather than overwritten.
        if let (Some(rv), Some(meta)) = (
            secret.metadata.resource_version.as_deref(),
            patch.get_mut("metadata").and_then(|m| m.as_object_mut()),
        ) {
            meta.insert("resourceVersion".to_owned(), rv.into());
        }
        match api.patch(&name, &pp, &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_not_found() => {
                tracing::info!(gateway = %gateway, secret = %name, reason = %status.reason, "xds client certificate secret changed meanwhile, will check again");
                return Ok(CertState::Raced {
                    recheck_at: now + RECHECK,
                });
            }
            Err(source) => {
                let hint = hint(&source, || {
                    format!(
                        "the controller's Role in `{}` must allow patch on the secret `{name}` (by resourceNames)",
                        gateway.namespace()
                    )
                });
                return Err(GatewayCertError::Patch {
                    namespace: gateway.namespace().to_owned(),
                    name,
                    hint,
                    source: Box::new(source),
                });
            }
        }
        let renew_at = self.schedule(gateway, &leaf).renew_at();
        tracing::info!(
            gateway = %gateway,
            secret = %name,
            %reason,
            not_after = %rfc3339(leaf.not_after()),
            renew_at = %rfc3339(renew_at),
            "xds client certificate renewed"
        );
        Ok(CertState::Renewed { renew_at, reason })
    }

    async fn create(
        &self,
        gateway: &GatewayName,
        now: SystemTime,
    ) -> Result<CertState, GatewayCertError> {
        let name = secret_name(gateway);
        let leaf = self.issue(gateway, now)?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(gateway.namespace().to_owned()),
                labels: Some(labels(gateway)),
                annotations: Some(annotations(&leaf)),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(self.data(&leaf)),
            ..Secret::default()
        };
        let api: Api<Secret> = Api::namespaced(self.client.clone(), gateway.namespace());
        let pp = PostParams {
            dry_run: false,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        match api.create(&pp, &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() || status.is_conflict() => {
                tracing::info!(gateway = %gateway, secret = %name, "xds client certificate secret already exists, will check again");
                return Ok(CertState::Raced {
                    recheck_at: now + RECHECK,
                });
            }
            Err(source) => {
                let ns = gateway.namespace();
                let hint = hint(&source, || {
                    format!("the controller's Role in `{ns}` must allow create on secrets")
                });
                return Err(GatewayCertError::Create {
                    namespace: ns.to_owned(),
                    name,
                    hint,
                    source: Box::new(source),
                });
            }
        }
        let renew_at = self.schedule(gateway, &leaf).renew_at();
        tracing::info!(
            gateway = %gateway,
            secret = %name,
            not_after = %rfc3339(leaf.not_after()),
            renew_at = %rfc3339(renew_at),
            "xds client certificate created"
        );
        Ok(CertState::Created { renew_at })
    }

    /// The existing Secret's certificate schedule, or why it cannot be used. The outer error
    /// is ours (no verifier), not the Secret's.
    fn check(
        &self,
        gateway: &GatewayName,
        secret: &Secret,
        now: SystemTime,
    ) -> Result<Result<RotationSchedule, String>, GatewayCertError> {
        let data = secret.data.as_ref();
        let get = |key: &str| data.and_then(|d| d.get(key)).map(|v| v.0.as_slice());
        let Some(chain_pem) = get(CHAIN_KEY) else {
            return Ok(Err(format!("`{CHAIN_KEY}` is missing")));
        };
        let Some(key_pem) = get(KEY_KEY) else {
            return Ok(Err(format!("`{KEY_KEY}` is missing")));
        };
        if get(CA_KEY) != Some(self.anchors_pem().as_bytes()) {
            return Ok(Err(format!(
                "`{CA_KEY}` is missing or not the current trust anchors"
            )));
        }
        let Ok(chain) = CertificateDer::pem_slice_iter(chain_pem).collect::<Result<Vec<_>, _>>()
        else {
            return Ok(Err(format!("`{CHAIN_KEY}` is not PEM certificates")));
        };
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Ok(Err(format!("`{CHAIN_KEY}` holds no certificate")));
        };
        let Ok(key) = PrivatePkcs8KeyDer::from_pem_slice(key_pem) else {
            return Ok(Err(format!("`{KEY_KEY}` is not a PKCS#8 private key")));
        };

        // Signed by our CA, valid now, clientAuth: the same check the xDS server makes.
        let verifier = self.verifier()?;
        let unix_now = UnixTime::since_unix_epoch(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        if let Err(e) = verifier.verify_client_cert(leaf, intermediates, unix_now) {
            return Ok(Err(format!(
                "the certificate does not verify against the CA: {e}"
            )));
        }

        let Ok((_, x509)) = X509Certificate::from_der(leaf) else {
            return Ok(Err("the certificate cannot be parsed".to_owned()));
        };
        let expected = Identity::Gateway(gateway.clone()).spiffe_id(self.ca.trust_domain());
        let uris: Vec<&str> = x509
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::URI(u) => Some(*u),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if uris != [expected.as_str()] {
            return Ok(Err(format!(
                "the certificate is for `{}`, not `{expected}`",
                uris.join(", ")
            )));
        }

        let provider = gatehouse_certs::provider();
        if rustls::sign::CertifiedKey::from_der(chain.clone(), PrivateKeyDer::Pkcs8(key), &provider)
            .is_err()
        {
            return Ok(Err(format!(
                "`{KEY_KEY}` does not belong to the certificate"
            )));
        }

        let not_before = asn1_to_system(x509.validity().not_before);
        let not_after = asn1_to_system(x509.validity().not_after);
        Ok(Ok(RotationSchedule::new(
            not_before,
            not_after,
            expected.as_bytes(),
        )))
    }

    fn issue(
        &self,
        gateway: &GatewayName,
        now: SystemTime,
    ) -> Result<IssuedLeaf, GatewayCertError> {
        let ca_left = self.ca.not_after().duration_since(now).unwrap_or_default();
        let mut req = LeafRequest::new(Identity::Gateway(gateway.clone()));
        req.validity = self.lifetime.min(self.ca.max_leaf_validity()).min(ca_left);
        self.ca
            .issue(&req, now)
            .map_err(|source| GatewayCertError::Issue {
                gateway: gateway.to_string(),
                source,
            })
    }

    fn schedule(&self, gateway: &GatewayName, leaf: &IssuedLeaf) -> RotationSchedule {
        let id = Identity::Gateway(gateway.clone()).spiffe_id(self.ca.trust_domain());
        RotationSchedule::new(leaf.not_before(), leaf.not_after(), id.as_bytes())
    }

    /// The Secret's data for `leaf`.
    fn data(&self, leaf: &IssuedLeaf) -> BTreeMap<String, ByteString> {
        BTreeMap::from([
            (
                CHAIN_KEY.to_owned(),
                ByteString(leaf.chain_pem().into_bytes()),
            ),
            (
                KEY_KEY.to_owned(),
                ByteString(leaf.key().to_pem().as_bytes().to_vec()),
            ),
            (
                CA_KEY.to_owned(),
                ByteString(self.anchors_pem().into_bytes()),
            ),
        ])
    }

    fn anchors_pem(&self) -> String {
        self.ca
            .trust_anchors()
            .iter()
            .map(|c| pem_encode("CERTIFICATE", c))
            .collect()
    }

    fn verifier(
        &self,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, GatewayCertError> {
        let mut roots = rustls::RootCertStore::empty();
        for anchor in self.ca.trust_anchors() {
            roots
                .add(anchor)
                .map_err(|e| GatewayCertError::Verifier(e.to_string()))?;
        }
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), gatehouse_certs::provider())
            .build()
            .map_err(|e| GatewayCertError::Verifier(e.to_string()))
    }
}

fn labels(gateway: &GatewayName) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), "gatehouse".to_owned()),
        (GATEWAY_LABEL.to_owned(), gateway.name().to_owned()),
    ])
}

fn annotations(leaf: &IssuedLeaf) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NOT_BEFORE_ANNOTATION.to_owned(), rfc3339(leaf.not_before())),
        (NOT_AFTER_ANNOTATION.to_owned(), rfc3339(leaf.not_after())),
    ])
}

/// What to check, for an API error: RBAC for a 403, the namespace for a 404.
fn hint(error: &kube::Error, rbac: impl FnOnce() -> String) -> String {
    match error {
        kube::Error::Api(status) if status.is_forbidden() => rbac(),
        kube::Error::Api(status) if status.is_not_found() => {
            "does the gateway's namespace exist?".to_owned()
        }
        kube::Error::Api(_) => "see the API server's message".to_owned(),
        _ => "check the controller's connection to the API server".to_owned(),
    }
}

/// DER as a PEM block (64-column base64).
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An X.509 time as a `SystemTime`.
fn asn1_to_system(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    //! Against kube's `tower-test` mock, which plays the API server: it stores the Secrets it
    //! is sent and answers with them as the API server would (`resourceVersion`, `uid`,
    //! `managedFields`; `Status` objects for errors; merge patches applied, with the
    //! `resourceVersion` precondition). Every certificate is checked by rustls-webpki, and the
    //! rotated one in a real mTLS handshake.

    use std::sync::Mutex;

    use super::*;
    use crate::kube::mock::{query_pairs, respond};
    use gatehouse_certs::{ManualClock, ReloadableCert, TrustDomain};
    use http::{Method, Request, Response};
    use http_body_util::BodyExt as _;
    use kube::client::Body;
    use serde_json::{Value, json};
    use webpki::{EndEntityCert, KeyUsage};

    fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
        crate::kube::mock::status(
            code,
            reason,
            message,
            json!({"name": "gatehouse-xds-public", "kind": "secrets"}),
        )
    }

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    const HOUR: Duration = Duration::from_secs(3600);
    const SECRETS_PATH: &str = "/api/v1/namespaces/edge/secrets";
    const SECRET_PATH: &str = "/api/v1/namespaces/edge/secrets/gatehouse-xds-public";

    #[derive(Clone, Debug)]
    struct Seen {
        method: Method,
        path: String,
        query: String,
        content_type: String,
        body: Value,
    }

    /// The mock API server's state: what it stores, what it saw, what it refuses.
    #[derive(Clone, Default)]
    struct ApiServer {
        stored: Arc<Mutex<BTreeMap<String, Value>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
        forbid: Arc<Mutex<bool>>,
    }

    impl ApiServer {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        fn clear(&self) {
            self.seen.lock().unwrap().clear();
        }

        /// The stored Secret, as the watch cache would hand it over.
        fn secret(&self) -> Secret {
            let stored = self.stored.lock().unwrap();
            serde_json::from_value(stored.get(SECRET_PATH).cloned().unwrap()).unwrap()
        }

        /// Stores `secret` as if another writer had; returns the stored copy.
        fn put(&self, secret: &Secret) -> Secret {
            let mut value = serde_json::to_value(secret).unwrap();
            value["metadata"]["resourceVersion"] = json!("4242");
            self.stored
                .lock()
                .unwrap()
                .insert(SECRET_PATH.to_owned(), value);
            self.secret()
        }

        async fn serve(self, mut handle: Handle) {
            let mut rv = 3000u64;
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await.unwrap().to_bytes();
                let body: Value = if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).unwrap()
                };
                let path = parts.uri.path().to_owned();
                self.seen.lock().unwrap().push(Seen {
                    method: parts.method.clone(),
                    path: path.clone(),
                    query: query_pairs(parts.uri.query()),
                    content_type: parts
                        .headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default(),
                    body: body.clone(),
                });
                if *self.forbid.lock().unwrap() {
                    send.send_response(status(
                        403,
                        "Forbidden",
                        "secrets is forbidden: User \"system:serviceaccount:gatehouse-system:gatehouse-controller\" cannot create resource \"secrets\" in API group \"\" in the namespace \"edge\"",
                    ));
                    continue;
                }
                let mut stored = self.stored.lock().unwrap();
                let response = match parts.method {
                    Method::POST => {
                        let name = body["metadata"]["name"].as_str().unwrap().to_owned();
                        let key = format!("{path}/{name}");
                        match stored.entry(key) {
                            std::collections::btree_map::Entry::Occupied(_) => status(
                                409,
                                "AlreadyExists",
                                &format!("secrets \"{name}\" already exists"),
                            ),
                            std::collections::btree_map::Entry::Vacant(slot) => {
                                rv += 1;
                                respond(201, slot.insert(server_side(body, rv)))
                            }
                        }
                    }
                    Method::PATCH => match stored.get_mut(&path) {
                        None => status(
                            404,
                            "NotFound",
                            "secrets \"gatehouse-xds-public\" not found",
                        ),
                        Some(object)
                            if body["metadata"]["resourceVersion"].is_string()
                                && body["metadata"]["resourceVersion"]
                                    != object["metadata"]["resourceVersion"] =>
                        {
                            status(
                                409,
                                "Conflict",
                                "Operation cannot be fulfilled on secrets \"gatehouse-xds-public\": the object has been modified; please apply your changes to the latest version and try again",
                            )
                        }
                        Some(object) => {
                            merge(object, &body);
                            rv += 1;
                            object["metadata"]["resourceVersion"] = json!(rv.to_string());
                            respond(200, object)
                        }
                    },
                    _ => status(
                        405,
                        "MethodNotAllowed",
                        "the server does not allow this method",
                    ),
                };
                send.send_response(response);
            }
        }
    }

    /// RFC 7386 JSON merge patch.
    fn merge(target: &mut Value, patch: &Value) {
        let Some(fields) = patch.as_object() else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        for (k, v) in fields {
            if v.is_null() {
                target.as_object_mut().unwrap().remove(k);
            } else {
                merge(
                    target
                        .as_object_mut()
                        .unwrap()
                        .entry(k)
                        .or_insert(Value::Null),
                    v,
                );
            }
        }
    }

    fn server_side(mut object: Value, rv: u64) -> Value {
        let meta = object["metadata"].as_object_mut().unwrap();
        meta.insert("uid".into(), json!("8d7c6b5a-0000-4111-8222-333344445555"));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!("2027-01-15T08:00:00Z"));
        meta.insert(
            "managedFields".into(),
            json!([{
                "manager": "gatehouse",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2027-01-15T08:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:ca.pem": {}, "f:chain.pem": {}, "f:key.pem": {}}, "f:type": {}},
            }]),
        );
        object
    }

    struct Fixture {
        ca: Arc<CertificateAuthority>,
        clock: Arc<ManualClock>,
        api: ApiServer,
        certs: GatewayCertificates,
        gateway: GatewayName,
    }

    fn start() -> Fixture {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = Arc::new(ManualClock::new(start));
        let ca = Arc::new(
            CertificateAuthority::generate(TrustDomain::default(), 365 * 24 * HOUR, start).unwrap(),
        );
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = ApiServer::default();
        tokio::spawn(api.clone().serve(handle));
        let certs =
            GatewayCertificates::new(kube::Client::new(svc, "default"), ca.clone(), clock.clone());
        Fixture {
            ca,
            clock,
            api,
            certs,
            gateway: "edge/public".parse().unwrap(),
        }
    }

    fn data(secret: &Secret, key: &str) -> Vec<u8> {
        secret.data.as_ref().unwrap()[key].0.clone()
    }

    fn chain_of(secret: &Secret) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(&data(secret, CHAIN_KEY))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn unix(t: SystemTime) -> UnixTime {
        UnixTime::since_unix_epoch(t.duration_since(SystemTime::UNIX_EPOCH).unwrap())
    }

    /// Checks the Secret's certificate with rustls-webpki (not our verifier): chains to the CA,
    /// valid at `now`, clientAuth; then its URI SAN and EKU with x509-parser. Returns its
    /// serial number.
    fn verify_independently(
        secret: &Secret,
        ca: &CertificateAuthority,
        now: SystemTime,
    ) -> Vec<u8> {
        let chain = chain_of(secret);
        let anchors: Vec<_> = CertificateDer::pem_slice_iter(&data(secret, CA_KEY))
            .map(|c| {
                webpki::anchor_from_trusted_cert(&c.unwrap())
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(anchors.len(), 1);
        assert_eq!(
            CertificateDer::pem_slice_iter(&data(secret, CA_KEY))
                .next()
                .unwrap()
                .unwrap(),
            ca.certificate().clone()
        );
        let ee = EndEntityCert::try_from(&chain[0]).unwrap();
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &chain[1..],
            unix(now),
            KeyUsage::client_auth(),
            None,
            None,
        )
        .expect("chains to our CA for client auth");
        // Not a server certificate.
        assert!(
            ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &chain[1..],
                unix(now),
                KeyUsage::server_auth(),
                None,
                None,
            )
            .is_err()
        );
        let (_, x509) = X509Certificate::from_der(&chain[0]).unwrap();
        let san = x509.subject_alternative_name().unwrap().unwrap();
        let uris: Vec<_> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(u) => Some(*u),
                _ => None,
            })
            .collect();
        assert_eq!(uris, ["spiffe://gatehouse.local/gateway/edge/public"]);
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let key = String::from_utf8(data(secret, KEY_KEY)).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // The key is the certificate's: its public half is the certificate's public key.
        let pkcs8 = PrivatePkcs8KeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.secret_pkcs8_der(),
        )
        .unwrap();
        assert_eq!(
            aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref(),
            x509.public_key().subject_public_key.data.as_ref()
        );
        x509.raw_serial().to_vec()
    }

    #[tokio::test(start_paused = true)]
    async fn creates_a_missing_secret() {
        let f = start();
        let state = f.certs.ensure(&f.gateway, None).await.unwrap();
        let CertState::Created { renew_at } = state else {
            panic!("{state:?}")
        };

        let seen = f.api.seen();
        assert_eq!(seen.len(), 1);
        let post = &seen[0];
        assert_eq!(post.method, Method::POST);
        assert_eq!(post.path, SECRETS_PATH);
        assert_eq!(post.query, "fieldManager=gatehouse");
        assert_eq!(post.content_type, "application/json");
        assert_eq!(post.body["apiVersion"], "v1");
        assert_eq!(post.body["kind"], "Secret");
        assert_eq!(post.body["type"], "Opaque");
        assert_eq!(post.body["metadata"]["name"], "gatehouse-xds-public");
        assert_eq!(post.body["metadata"]["namespace"], "edge");
        assert_eq!(
            post.body["metadata"]["labels"],
            json!({"app.kubernetes.io/managed-by": "gatehouse", "gatehouse.dev/gateway": "public"})
        );
        let annotations = &post.body["metadata"]["annotations"];
        assert!(annotations[NOT_BEFORE_ANNOTATION].is_string());
        assert!(annotations[NOT_AFTER_ANNOTATION].is_string());
        let keys: Vec<_> = post.body["data"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["ca.pem", "chain.pem", "key.pem"]);

        // The data as sent (base64 in JSON) is what the cache hands back.
        let secret = f.api.secret();
        let sent = base64::engine::general_purpose::STANDARD
            .decode(post.body["data"]["chain.pem"].as_str().unwrap())
            .unwrap();
        assert_eq!(sent, data(&secret, CHAIN_KEY));
        verify_independently(&secret, &f.ca, f.clock.now());

        // Due between 40 % and 50 % of the 24 h lifetime.
        let chain = chain_of(&secret);
        let (_, x509) = X509Certificate::from_der(&chain[0]).unwrap();
        let nb = SystemTime::UNIX_EPOCH
            + Duration::from_secs(x509.validity().not_before.timestamp().unsigned_abs());
        let na = SystemTime::UNIX_EPOCH
            + Duration::from_secs(x509.validity().not_after.timestamp().unsigned_abs());
        assert_eq!(
            na.duration_since(nb).unwrap(),
            24 * HOUR + gatehouse_certs::BACKDATE
        );
        let lifetime = na.duration_since(nb).unwrap();
        let due_after = renew_at.duration_since(nb).unwrap();
        assert!(due_after > lifetime.mul_f64(0.4) && due_after <= lifetime / 2);
    }

    #[tokio::test(start_paused = true)]
    async fn leaves_a_fresh_secret_alone() {
        let f = start();
        let created = f.certs.ensure(&f.gateway, None).await.unwrap();
        f.api.clear();
        let secret = f.api.secret();
        let state = f.certs.ensure(&f.gateway, Some(&secret)).await.unwrap();
        assert_eq!(
            state,
            CertState::Current {
                renew_at: created.next_due()
            }
        );
        // Up to a second before it is due.
        let wait = created.next_due().duration_since(f.clock.now()).unwrap();
        f.clock.advance(wait - Duration::from_secs(1));
        let state = f.certs.ensure(&f.gateway, Some(&secret)).await.unwrap();
        assert_eq!(state.next_due(), created.next_due());
        assert!(matches!(state, CertState::Current { .. }));
        assert!(f.api.seen().is_empty(), "no request: {:?}", f.api.seen());
    }

    #[tokio::test(start_paused = true)]
    async fn renews_when_due() {
        let f = start();
        let created = f.certs.ensure(&f.gateway, None).await.unwrap();
        let before = f.api.secret();
        let old_serial = verify_independently(&before, &f.ca, f.clock.now());
        f.api.clear();

        // Move to the renewal time, which comes before half-life.
        let wait = created.next_due().duration_since(f.clock.now()).unwrap();
        assert!(wait < 12 * HOUR);
        f.clock.advance(wait);
        let state = f.certs.ensure(&f.gateway, Some(&before)).await.unwrap();
        let CertState::Renewed { renew_at, reason } = state else {
            panic!("{state:?}")
        };
        assert_eq!(reason, RenewReason::Due);
        assert!(renew_at > created.next_due());

        let seen = f.api.seen();
        assert_eq!(seen.len(), 1);
        let patch = &seen[0];
        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(patch.path, SECRET_PATH);
        assert_eq!(patch.query, "fieldManager=gatehouse");
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert_eq!(
            patch.body["metadata"]["resourceVersion"],
            json!(before.metadata.resource_version.clone().unwrap())
        );
        let keys: Vec<_> = patch.body["data"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["ca.pem", "chain.pem", "key.pem"]);
        assert!(patch.body.get("type").is_none());

        let after = f.api.secret();
        let new_serial = verify_independently(&after, &f.ca, f.clock.now());
        assert_ne!(old_serial, new_serial);
        assert_ne!(data(&before, KEY_KEY), data(&after, KEY_KEY), "a new key");
        // The new one is fresh.
        f.api.clear();
        let state = f.certs.ensure(&f.gateway, Some(&after)).await.unwrap();
        assert_eq!(state, CertState::Current { renew_at });
        assert!(f.api.seen().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn replaces_unusable_secrets() {
        let f = start();
        f.certs.ensure(&f.gateway, None).await.unwrap();
        let good = f.api.secret();

        let other_ca =
            CertificateAuthority::generate(TrustDomain::default(), 365 * 24 * HOUR, f.clock.now())
                .unwrap();
        let foreign = other_ca
            .issue(
                &LeafRequest::new(Identity::Gateway(f.gateway.clone())),
                f.clock.now(),
            )
            .unwrap();
        let wrong_identity =
            f.ca.issue(
                &LeafRequest::new(Identity::Gateway("edge/private".parse().unwrap())),
                f.clock.now(),
            )
            .unwrap();
        let other_key =
            f.ca.issue(
                &LeafRequest::new(Identity::Gateway(f.gateway.clone())),
                f.clock.now(),
            )
            .unwrap();

        let with = |changes: &[(&str, Option<Vec<u8>>)]| {
            let mut s = good.clone();
            let d = s.data.as_mut().unwrap();
            for (k, v) in changes {
                match v {
                    Some(v) => d.insert((*k).to_owned(), ByteString(v.clone())),
                    None => d.remove(*k),
                };
            }
            s
        };
        let cases = [
            (
                "garbage chain",
                with(&[(CHAIN_KEY, Some(b"not a certificate".to_vec()))]),
                "holds no certificate",
            ),
            (
                "corrupt PEM",
                with(&[(
                    CHAIN_KEY,
                    Some(
                        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_vec(),
                    ),
                )]),
                "is not PEM certificates",
            ),
            ("no key", with(&[(KEY_KEY, None)]), "`key.pem` is missing"),
            (
                "no data",
                Secret {
                    data: None,
                    ..good.clone()
                },
                "`chain.pem` is missing",
            ),
            (
                "another CA",
                with(&[
                    (CHAIN_KEY, Some(foreign.chain_pem().into_bytes())),
                    (KEY_KEY, Some(foreign.key().to_pem().as_bytes().to_vec())),
                ]),
                "does not verify against the CA",
            ),
            (
                "another gateway",
                with(&[
                    (CHAIN_KEY, Some(wrong_identity.chain_pem().into_bytes())),
                    (
                        KEY_KEY,
                        Some(wrong_identity.key().to_pem().as_bytes().to_vec()),
                    ),
                ]),
                "spiffe://gatehouse.local/gateway/edge/private",
            ),
            (
                "a key of another certificate",
                with(&[(KEY_KEY, Some(other_key.key().to_pem().as_bytes().to_vec()))]),
                "does not belong to the certificate",
            ),
            (
                "stale trust anchors",
                with(&[(CA_KEY, Some(other_ca.chain_pem().into_bytes()))]),
                "`ca.pem`",
            ),
        ];
        for (what, bad, expected) in cases {
            let bad = f.api.put(&bad);
            f.api.clear();
            let state = f.certs.ensure(&f.gateway, Some(&bad)).await.unwrap();
            let CertState::Renewed { reason, .. } = state else {
                panic!("{what}: {state:?}")
            };
            assert!(
                matches!(&reason, RenewReason::Unusable(why) if why.contains(expected)),
                "{what}: {reason}"
            );
            assert!(!reason.to_string().contains("PRIVATE KEY"));
            let seen = f.api.seen();
            assert_eq!(seen.len(), 1, "{what}");
            assert_eq!(
                (seen[0].method.clone(), seen[0].path.as_str()),
                (Method::PATCH, SECRET_PATH)
            );
            verify_independently(&f.api.secret(), &f.ca, f.clock.now());
        }

        // An expired certificate (the controller was down for two days) is replaced too.
        let good = f.api.put(&good);
        f.clock.advance(48 * HOUR);
        let state = f.certs.ensure(&f.gateway, Some(&good)).await.unwrap();
        assert!(
            matches!(state, CertState::Renewed { reason: RenewReason::Unusable(ref why), .. } if why.contains("does not verify")),
            "{state:?}"
        );
        verify_independently(&f.api.secret(), &f.ca, f.clock.now());
    }

    #[tokio::test(start_paused = true)]
    async fn races_and_refusals() {
        let f = start();
        f.certs.ensure(&f.gateway, None).await.unwrap();
        let stale = f.api.secret();

        // The cache has not seen our Secret yet: the create finds it exists.
        f.api.clear();
        let state = f.certs.ensure(&f.gateway, None).await.unwrap();
        assert_eq!(
            state,
            CertState::Raced {
                recheck_at: f.clock.now() + RECHECK
            }
        );
        assert_eq!(f.api.seen()[0].method, Method::POST);

        // Another writer renewed it after our cache's copy: the PATCH precondition fails and
        // their certificate is not overwritten.
        f.clock.advance(13 * HOUR);
        f.certs.ensure(&f.gateway, Some(&stale)).await.unwrap();
        let theirs = f.api.secret();
        let state = f
            .certs
            .ensure(
                &f.gateway,
                Some(&Secret {
                    data: None,
                    ..stale.clone()
                }),
            )
            .await
            .unwrap();
        assert!(matches!(state, CertState::Raced { .. }), "{state:?}");
        assert_eq!(f.api.secret(), theirs);

        // A type that cannot be patched: an error, and no request.
        f.api.clear();
        let tls = Secret {
            type_: Some("kubernetes.io/tls".to_owned()),
            ..theirs.clone()
        };
        let e = f.certs.ensure(&f.gateway, Some(&tls)).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("has type `kubernetes.io/tls`, not `Opaque`"),
            "{e}"
        );
        assert!(f.api.seen().is_empty());

        // RBAC refuses: the hint names the Role and the verb.
        *f.api.forbid.lock().unwrap() = true;
        let e = f
            .certs
            .ensure(&"edge/other".parse().unwrap(), None)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("cannot create Secret `edge/gatehouse-xds-other`"),
            "{text}"
        );
        assert!(
            text.contains("the controller's Role in `edge` must allow create on secrets"),
            "{text}"
        );
        let e = f
            .certs
            .ensure(
                &f.gateway,
                Some(&Secret {
                    data: None,
                    ..theirs
                }),
            )
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("must allow patch on the secret `gatehouse-xds-public`"),
            "{e}"
        );
    }

    #[test]
    fn secret_names() {
        let gw: GatewayName = "edge/public".parse().unwrap();
        assert_eq!(secret_name(&gw), "gatehouse-xds-public");
    }

    /// rustls reads the time from the test's clock.
    #[derive(Debug)]
    struct ClockTime(Arc<ManualClock>);

    impl rustls::time_provider::TimeProvider for ClockTime {
        fn current_time(&self) -> Option<UnixTime> {
            Some(unix(self.0.now()))
        }
    }

    /// A real TLS 1.3 handshake on loopback: the xDS server's configuration (client
    /// certificates required, verified against `anchors`) against a client presenting the
    /// Secret's `chain.pem` and `key.pem` and trusting its `ca.pem`. Returns the URI SAN the
    /// server saw.
    async fn handshake(
        ca: &CertificateAuthority,
        clock: Arc<ManualClock>,
        secret: &Secret,
    ) -> Result<String, String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let server_leaf = ca
            .issue(
                &LeafRequest {
                    dns_names: vec!["gatehouse-controller.gatehouse-system.svc".to_owned()],
                    ..LeafRequest::new(Identity::Controller)
                },
                clock.now(),
            )
            .unwrap();
        let server_cfg = gatehouse_certs::server_config(
            &ca.trust_anchors(),
            Arc::new(ReloadableCert::new(&server_leaf).unwrap()),
            clock.clone(),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let peer = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            tls.write_all(b"hello").await.unwrap();
            tls.shutdown().await.unwrap();
            let (_, x509) = X509Certificate::from_der(&peer).unwrap();
            let san = x509.subject_alternative_name().unwrap().unwrap();
            Ok::<_, String>(
                san.value
                    .general_names
                    .iter()
                    .find_map(|n| match n {
                        GeneralName::URI(u) => Some((*u).to_owned()),
                        _ => None,
                    })
                    .unwrap(),
            )
        });

        let mut roots = rustls::RootCertStore::empty();
        for anchor in CertificateDer::pem_slice_iter(&data(secret, CA_KEY)) {
            roots.add(anchor.unwrap()).unwrap();
        }
        let key = PrivateKeyDer::from_pem_slice(&data(secret, KEY_KEY)).unwrap();
        let client_cfg = rustls::ClientConfig::builder_with_details(
            gatehouse_certs::provider(),
            Arc::new(ClockTime(clock.clone())),
        )
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain_of(secret), key)
        .unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name =
            rustls::pki_types::ServerName::try_from("gatehouse-controller.gatehouse-system.svc")
                .unwrap();
        // In TLS 1.3 the client finishes before the server has checked its certificate: the
        // refusal shows when reading.
        let client = async {
            let mut tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(buf)
        };
        let (client, server) = tokio::join!(client, server);
        let server = server.unwrap();
        assert_eq!(client.is_ok(), server.is_ok(), "{client:?} / {server:?}");
        if let Ok(buf) = client {
            assert_eq!(buf, b"hello");
        }
        server
    }

    #[tokio::test]
    async fn rotated_certificate_passes_a_real_mtls_handshake() {
        let f = start();
        let created = f.certs.ensure(&f.gateway, None).await.unwrap();
        let first = f.api.secret();
        f.clock
            .advance(created.next_due().duration_since(f.clock.now()).unwrap());
        let state = f.certs.ensure(&f.gateway, Some(&first)).await.unwrap();
        assert!(matches!(state, CertState::Renewed { .. }), "{state:?}");
        let rotated = f.api.secret();
        assert_ne!(chain_of(&first)[0], chain_of(&rotated)[0]);

        let peer = handshake(&f.ca, f.clock.clone(), &rotated).await.unwrap();
        assert_eq!(peer, "spiffe://gatehouse.local/gateway/edge/public");

        // The server really checks: a certificate from another CA is refused.
        let other_ca =
            CertificateAuthority::generate(TrustDomain::default(), 365 * 24 * HOUR, f.clock.now())
                .unwrap();
        let foreign = other_ca
            .issue(
                &LeafRequest::new(Identity::Gateway(f.gateway.clone())),
                f.clock.now(),
            )
            .unwrap();
        let mut bad = rotated.clone();
        let d = bad.data.as_mut().unwrap();
        d.insert(
            CHAIN_KEY.to_owned(),
            ByteString(foreign.chain_pem().into_bytes()),
        );
        d.insert(
            KEY_KEY.to_owned(),
            ByteString(foreign.key().to_pem().as_bytes().to_vec()),
        );
        // Both CAs are named `Gatehouse CA gatehouse.local`: the issuer is found by name and
        // its signature does not check out.
        let e = handshake(&f.ca, f.clock.clone(), &bad).await.unwrap_err();
        assert!(e.contains("invalid peer certificate"), "{e}");
    }
}
