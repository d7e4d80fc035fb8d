//! Decomposing the configuration into claims: every programmed route attachment (route ×
//! listener, from the translation's effective security) becomes `attachRoute`, one
//! `claimHostname` per hostname, one `exposePath` per match, `disableAuthn` per match when it
//! drops its Gateway's authentication, one `referenceBackend` per backend reference, and one
//! claim per authn/authz setting in force.

use std::collections::BTreeSet;
use std::sync::Arc;

use gatehouse_policies::{
    Attachment, AuthnFacts, BackendFacts, Claim, ClaimKind, JwtProviderFacts, ListenerFacts,
    PathFacts, RouteFacts, SourceFacts, is_public,
};

use crate::model::{BackendObjectReference, Config, Kind, ObjectKey};
use crate::translate::{EffectiveSecurity, RouteSecurity, Translation, gateway_security};

/// A claim and the object that makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectClaim {
    /// The object (a route).
    pub object: ObjectKey,
    /// The claim.
    pub claim: Claim,
}

/// The authentication facts of an effective security.
pub(crate) fn authn_facts(e: &EffectiveSecurity) -> AuthnFacts {
    AuthnFacts {
        jwt: e.jwt.is_some(),
        basic_auth: e.basic_auth.is_some(),
        ext_auth: e.ext_auth.is_some(),
        client_certificate: e.client_certificate.is_some(),
        ip_allow_list: !e.ip_allow.is_empty(),
        disabled: e.authentication_disabled,
        jwt_issuers: e
            .jwt
            .iter()
            .flat_map(|(_, j)| j.providers.iter().filter_map(|p| p.issuer.clone()))
            .collect(),
    }
}

/// A Gateway API duration (`1s`, `500ms`, `1m`, `1h`) in milliseconds.
pub(crate) fn duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn source(config: &Config, policy: &str) -> SourceFacts {
    let (ns, name) = policy.split_once('/').unwrap_or(("", policy));
    let from_gateway = config
        .security_policies
        .get(&(ns.to_owned(), name.to_owned()))
        .is_some_and(|(p, _)| p.spec.target_refs.iter().any(|t| t.kind == "Gateway"));
    SourceFacts {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        from_gateway,
    }
}

/// The paths a route exposes: `(path, method, header matches)`, deduplicated, in order.
fn paths(config: &Config, key: &ObjectKey) -> Vec<(PathFacts, Option<String>, usize)> {
    let mut out: Vec<(PathFacts, Option<String>, usize)> = Vec::new();
    let mut push = |p: (PathFacts, Option<String>, usize)| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    let id = (key.namespace.clone(), key.name.clone());
    match key.kind {
        Kind::HTTPRoute => {
            let Some((r, _)) = config.http_routes.get(&id) else {
                return out;
            };
            for rule in &r.spec.rules {
                if rule.matches.is_empty() {
                    push((PathFacts::default(), None, 0));
                }
                for m in &rule.matches {
                    let path = m
                        .path
                        .as_ref()
                        .map_or_else(PathFacts::default, |p| PathFacts {
                            match_type: p.match_type.clone().unwrap_or_else(|| "PathPrefix".into()),
                            value: p.value.clone().unwrap_or_else(|| "/".into()),
                        });
                    push((path, m.method.clone(), m.headers.len()));
                }
            }
        }
        Kind::GRPCRoute => {
            let Some((r, _)) = config.grpc_routes.get(&id) else {
                return out;
            };
            for rule in &r.spec.rules {
                if rule.matches.is_empty() {
                    push((PathFacts::default(), None, 0));
                }
                for m in &rule.matches {
                    let mm = m.method.as_ref();
                    let regex = mm
                        .and_then(|x| x.match_type.as_deref())
                        .is_some_and(|t| t == "RegularExpression");
                    let service = mm.and_then(|x| x.service.as_deref());
                    let method = mm.and_then(|x| x.method.as_deref());
                    let path = match (service, method) {
                        (Some(s), Some(me)) => PathFacts {
                            match_type: if regex { "RegularExpression" } else { "Exact" }.into(),
                            value: format!("/{s}/{me}"),
                        },
                        (Some(s), None) => PathFacts {
                            match_type: if regex {
                                "RegularExpression"
                            } else {
                                "PathPrefix"
                            }
                            .into(),
                            value: format!("/{s}/"),
                        },
                        (None, Some(me)) => PathFacts {
                            match_type: "RegularExpression".into(),
                            value: format!("/[^/]+/{me}"),
                        },
                        (None, None) => PathFacts::default(),
                    };
                    push((path, Some("POST".into()), m.headers.len()));
                }
            }
        }
        _ => {}
    }
    out
}

/// A route's backend references: `(reference, mirror)`.
fn backend_refs(config: &Config, key: &ObjectKey) -> Vec<(BackendObjectReference, bool)> {
    let id = (key.namespace.clone(), key.name.clone());
    let mut out = Vec::new();
    match key.kind {
        Kind::HTTPRoute => {
            if let Some((r, _)) = config.http_routes.get(&id) {
                for rule in &r.spec.rules {
                    out.extend(rule.backend_refs.iter().map(|b| (b.object_ref(), false)));
                    out.extend(
                        rule.filters
                            .iter()
                            .filter_map(|f| f.request_mirror.as_ref())
                            .map(|m| (m.backend_ref.clone(), true)),
                    );
                }
            }
        }
        Kind::GRPCRoute => {
            if let Some((r, _)) = config.grpc_routes.get(&id) {
                for rule in &r.spec.rules {
                    out.extend(rule.backend_refs.iter().map(|b| (b.object_ref(), false)));
                }
            }
        }
        _ => {}
    }
    let mut seen = BTreeSet::new();
    out.retain(|x| seen.insert(x.clone()));
    out
}

/// The listener facts of `gateway` (`NAMESPACE/NAME`) listener `section`.
pub(crate) fn listener_facts(config: &Config, gateway: &str, section: &str) -> ListenerFacts {
    let (ns, name) = gateway.split_once('/').unwrap_or(("", gateway));
    let gw = config.gateways.get(&(ns.to_owned(), name.to_owned()));
    let labels = gw
        .map(|(g, _)| g.metadata.labels.clone())
        .unwrap_or_default();
    let l = gw.and_then(|(g, _)| g.spec.listeners.iter().find(|l| l.name == section));
    ListenerFacts {
        gateway_namespace: ns.to_owned(),
        gateway_name: name.to_owned(),
        public: is_public(&labels),
        gateway_labels: labels,
        name: section.to_owned(),
        port: l.map_or(0, |l| l.port),
        protocol: l.map_or_else(String::new, |l| l.protocol.clone()),
        hostname: l.and_then(|l| l.hostname.clone()),
    }
}

/// Every claim of one route attachment.
fn attachment_claims(config: &Config, rs: &RouteSecurity, out: &mut Vec<ObjectClaim>) {
    let key = &rs.route;
    let e = &rs.security;
    let listener = listener_facts(config, &rs.gateway, &rs.listener);
    let attachment = Arc::new(Attachment {
        route: RouteFacts {
            kind: key.kind.as_str().to_owned(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            hostnames: rs.hostnames.clone(),
            authn: authn_facts(e),
        },
        listener,
    });
    let mut push = |kind: ClaimKind| {
        out.push(ObjectClaim {
            object: key.clone(),
            claim: Claim {
                attachment: attachment.clone(),
                kind,
            },
        });
    };
    push(ClaimKind::AttachRoute);
    for h in &rs.hostnames {
        push(ClaimKind::ClaimHostname {
            hostname: h.clone(),
        });
    }
    let paths = paths(config, key);
    for (path, method, header_matches) in &paths {
        push(ClaimKind::ExposePath {
            path: path.clone(),
            method: method.clone(),
            header_matches: *header_matches,
        });
    }
    if e.authentication_disabled {
        let (gw_ns, gw_name) = rs.gateway.split_once('/').unwrap_or(("", &rs.gateway));
        let inherited = authn_facts(&gateway_security(config, gw_ns, gw_name, &rs.listener));
        for (path, _, _) in &paths {
            push(ClaimKind::DisableAuthn {
                path: path.clone(),
                inherited: inherited.clone(),
            });
        }
    }
    for (r, mirror) in backend_refs(config, key) {
        let group = r.group.clone().unwrap_or_default();
        let kind = r.kind.clone().unwrap_or_else(|| "Service".into());
        let namespace = r.namespace.clone().unwrap_or_else(|| key.namespace.clone());
        let reference_grant = namespace != key.namespace
            && config.reference_granted(
                "gateway.networking.k8s.io",
                key.kind.as_str(),
                &key.namespace,
                &group,
                &kind,
                &namespace,
                &r.name,
            );
        push(ClaimKind::ReferenceBackend {
            backend: BackendFacts {
                group,
                kind,
                namespace,
                name: r.name.clone(),
                port: r.port,
            },
            reference_grant,
            mirror,
        });
    }
    if let Some((policy, j)) = &e.jwt {
        for p in &j.providers {
            push(ClaimKind::UseJwtProvider {
                source: source(config, policy),
                provider: JwtProviderFacts {
                    name: p.name.clone(),
                    issuer: p.issuer.clone(),
                    audiences: p.audiences.clone(),
                    jwks_uri: p.remote_jwks.as_ref().map(|r| r.uri.clone()),
                },
            });
        }
    }
    if let Some((policy, c)) = &e.client_certificate {
        push(ClaimKind::RequireClientCertificate {
            source: source(config, policy),
            ca_certificates: c.ca_certificate_refs.len(),
            required_sans: c.required_sans.clone(),
        });
    }
    if let Some((policy, x)) = &e.ext_auth {
        let ns = policy.split('/').next().unwrap_or_default();
        push(ClaimKind::UseExtAuth {
            source: source(config, policy),
            fail_open: x.fail_open.unwrap_or(false),
            timeout_ms: x
                .timeout
                .as_deref()
                .map_or(Some(1000), duration_ms)
                .unwrap_or(0),
            backend: format!(
                "{}/{}",
                x.backend_ref.namespace.as_deref().unwrap_or(ns),
                x.backend_ref.name
            ),
        });
    }
    if !e.ip_allow.is_empty() || !e.ip_deny.is_empty() {
        push(ClaimKind::SetIpRules {
            allow: e.ip_allow.clone(),
            deny: e.ip_deny.clone(),
        });
    }
    if let Some(c) = &e.cors {
        push(ClaimKind::ConfigureCors {
            allow_origins: c.allow_origins.clone(),
            allow_credentials: c.allow_credentials,
            allow_methods: c.allow_methods.clone(),
            allow_headers: c.allow_headers.clone(),
        });
    }
    if let Some((policy, _)) = &e.basic_auth {
        push(ClaimKind::UseBasicAuth {
            source: source(config, policy),
        });
    }
}

/// Every claim of the configuration: those of each route attachment the translation
/// programmed, in the translation's order.
pub fn claims(config: &Config, translation: &Translation) -> Vec<ObjectClaim> {
    let mut out = Vec::new();
    for rs in &translation.security {
        attachment_claims(config, rs, &mut out);
    }
    out
}

/// The claims of some route attachments.
pub(crate) fn claims_of<'a>(
    config: &Config,
    attachments: impl Iterator<Item = &'a RouteSecurity>,
) -> Vec<ObjectClaim> {
    let mut out = Vec::new();
    for rs in attachments {
        attachment_claims(config, rs, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(duration_ms("2s"), Some(2000));
        assert_eq!(duration_ms("1m"), Some(60_000));
        assert_eq!(duration_ms("x"), None);
    }
}
