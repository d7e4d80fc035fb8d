//! SecurityPolicies: the effective authentication and authorization of each route on each
//! listener (the Gateway's policy merged with the route's), and their Envoy form — HTTP filters
//! that are off by default and switched on, per route, by per-route configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::{
    CidrRange, DataSource, GrpcService, HttpUri, data_source, grpc_service, http_uri,
};
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission, Policy, Principal, Rbac as RbacRules, permission, principal, rbac,
};
use envoy_types::pb::envoy::extensions::filters::http::basic_auth::v3::{
    BasicAuth as BasicAuthFilter, BasicAuthPerRoute,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::{Cors as CorsFilter, CorsPolicy};
use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
    CheckSettings, ExtAuthz, ExtAuthzPerRoute, check_settings, ext_authz, ext_authz_per_route,
};
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    JwtAuthentication, JwtClaimToHeader, JwtProvider as EnvoyJwtProvider, JwtRequirement,
    JwtRequirementOrList, PerRouteConfig, RemoteJwks as EnvoyRemoteJwks, jwt_provider,
    jwt_requirement, per_route_config,
};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::{
    Rbac as RbacFilter, RbacPerRoute,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};

use super::envoy::{any, millis, secs};
use super::routes::duration_ms;
use crate::model::{
    BasicAuth, ClientCertificate, Config, Cors, ExtAuth, JwtAuth, Kind, ObjectKey, SecurityPolicy,
};

/// Filter names, in the order they run.
pub(crate) const CORS: &str = "envoy.filters.http.cors";
pub(crate) const RBAC: &str = "envoy.filters.http.rbac";
pub(crate) const JWT: &str = "envoy.filters.http.jwt_authn";
pub(crate) const BASIC: &str = "envoy.filters.http.basic_auth";
pub(crate) const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";

/// The effective authentication and authorization of a route on a listener: what Cedar
/// admission sees and what Envoy enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveSecurity {
    /// JWT providers a request must satisfy (any one of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<(String, JwtAuth)>,
    /// Basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<(String, BasicAuth)>,
    /// External authorization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext_auth: Option<(String, ExtAuth)>,
    /// Allowed source CIDRs (empty: all).
    pub ip_allow: Vec<String>,
    /// Denied source CIDRs.
    pub ip_deny: Vec<String>,
    /// CORS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// Listener client certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<(String, ClientCertificate)>,
    /// The route switched off authentication it would have inherited from its Gateway.
    pub authentication_disabled: bool,
    /// The policies that contributed, `namespace/name`.
    pub policies: Vec<String>,
}

impl EffectiveSecurity {
    /// Whether any authentication applies (JWT, basic auth, extAuth or a client certificate).
    pub fn authenticated(&self) -> bool {
        self.jwt.is_some()
            || self.basic_auth.is_some()
            || self.ext_auth.is_some()
            || self.client_certificate.is_some()
    }
}

fn policy_targets(p: &SecurityPolicy, kind: &str, name: &str, section: Option<&str>) -> bool {
    p.spec.target_refs.iter().any(|t| {
        t.group == "gateway.networking.k8s.io"
            && t.kind == kind
            && t.name == name
            && t.section_name.as_deref().is_none_or(|s| Some(s) == section)
    })
}

/// Checks a policy; `Err` says what is wrong.
pub(crate) fn validate(p: &SecurityPolicy) -> Result<(), String> {
    for t in &p.spec.target_refs {
        if t.group != "gateway.networking.k8s.io"
            || !matches!(t.kind.as_str(), "Gateway" | "HTTPRoute" | "GRPCRoute")
        {
            return Err(format!(
                "target `{}/{}` is not a Gateway, HTTPRoute or GRPCRoute",
                t.group, t.kind
            ));
        }
    }
    if let Some(j) = &p.spec.jwt {
        if j.providers.is_empty() {
            return Err("jwt needs at least one provider".into());
        }
        for pr in &j.providers {
            match (&pr.local_jwks, &pr.remote_jwks) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(format!(
                        "jwt provider `{}` needs exactly one of localJwks and remoteJwks",
                        pr.name
                    ));
                }
            }
        }
    }
    if let Some(e) = &p.spec.ext_auth {
        if e.fail_open == Some(true) {
            return Err("extAuth.failOpen is true: Gatehouse never fails open (remove it or set it to false)".into());
        }
        if let Some(t) = &e.timeout {
            duration_ms(t)?;
        }
    }
    for c in p.spec.ip_allow.iter().chain(&p.spec.ip_deny) {
        cidr(c)?;
    }
    if let Some(c) = &p.spec.cors
        && let Some(m) = &c.max_age
    {
        duration_ms(m)?;
    }
    if p.spec.client_certificate.is_some() && p.spec.target_refs.iter().any(|t| t.kind != "Gateway")
    {
        return Err(
            "clientCertificate applies to a Gateway's HTTPS listeners; target a Gateway".into(),
        );
    }
    Ok(())
}

fn cidr(c: &str) -> Result<(IpAddr, u32), String> {
    let (ip, len) = c.split_once('/').unwrap_or((c, ""));
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("`{c}` is not a CIDR (e.g. `10.0.0.0/8`)"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = if len.is_empty() {
        max
    } else {
        len.parse::<u32>()
            .map_err(|_| format!("`{c}` is not a CIDR"))?
    };
    if len > max {
        return Err(format!("`{c}`: prefix length above {max}"));
    }
    Ok((ip, len))
}

/// Whether each SecurityPolicy (namespace, name) is valid.
pub(crate) type Validity = std::collections::HashMap<(String, String), bool>;

/// SecurityPolicies by the object they target (`namespace`, kind, name), each checked once:
/// built once per full translation so that finding a route's policies does not scan them all.
#[derive(Debug, Default)]
pub(crate) struct PolicyIndex<'a> {
    by_target: std::collections::HashMap<(&'a str, &'a str, &'a str), usize>,
    lists: Vec<Vec<Indexed<'a>>>,
    /// No index: each lookup looks through the policies of the target's namespace (for a
    /// few lookups, cheaper than indexing thousands of policies), with the validity of each.
    scan: Option<(&'a Config, &'a Validity)>,
}

#[derive(Clone, Debug)]
struct Indexed<'a> {
    ns: &'a str,
    name: &'a str,
    policy: &'a SecurityPolicy,
    valid: bool,
}

impl<'a> PolicyIndex<'a> {
    /// Indexes every SecurityPolicy of `config`, in the configuration's order, with `valid`
    /// saying whether each (namespace, name, policy) is valid.
    pub(crate) fn with_validity(
        config: &'a Config,
        mut valid: impl FnMut(&str, &str, &SecurityPolicy) -> bool,
    ) -> Self {
        let mut by_target: std::collections::HashMap<_, usize> = Default::default();
        let mut lists: Vec<Vec<Indexed<'a>>> = Vec::new();
        for ((ns, name), (p, _)) in &config.security_policies {
            let valid = valid(ns, name, p);
            for t in &p.spec.target_refs {
                let slot = *by_target
                    .entry((ns.as_str(), t.kind.as_str(), t.name.as_str()))
                    .or_insert_with(|| {
                        lists.push(Vec::new());
                        lists.len() - 1
                    });
                let Some(list) = lists.get_mut(slot) else {
                    continue;
                };
                // A policy naming the same object twice is listed once.
                if list
                    .last()
                    .is_some_and(|x: &Indexed<'a>| x.ns == ns.as_str() && x.name == name.as_str())
                {
                    continue;
                }
                list.push(Indexed {
                    ns,
                    name,
                    policy: p,
                    valid,
                });
            }
        }
        Self {
            by_target,
            lists,
            scan: None,
        }
    }

    /// No index: lookups look through the policies of the target's namespace; `valid` says
    /// whether each policy (namespace, name) is valid (else it is validated).
    pub(crate) fn scanning(config: &'a Config, valid: &'a Validity) -> Self {
        Self {
            scan: Some((config, valid)),
            ..Self::default()
        }
    }

    fn targeting(&self, ns: &str, kind: &str, name: &str) -> std::borrow::Cow<'_, [Indexed<'a>]> {
        if let Some((config, valid)) = self.scan {
            let from = (ns.to_owned(), String::new());
            let found: Vec<Indexed<'a>> = config
                .security_policies
                .range(from..)
                .take_while(|((pns, _), _)| pns == ns)
                .filter(|(_, (p, _))| {
                    p.spec
                        .target_refs
                        .iter()
                        .any(|t| t.kind == kind && t.name == name)
                })
                .map(|((pns, pname), (p, _))| Indexed {
                    ns: pns,
                    name: pname,
                    policy: p,
                    valid: valid
                        .get(&(pns.clone(), pname.clone()))
                        .copied()
                        .unwrap_or_else(|| validate(p).is_ok()),
                })
                .collect();
            return std::borrow::Cow::Owned(found);
        }
        std::borrow::Cow::Borrowed(
            self.by_target
                .get(&(ns, kind, name))
                .and_then(|i| self.lists.get(*i))
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    }
}

/// The effective security of a route (`kind` `ns/name`) on listener `section` of Gateway
/// `gw_ns/gw_name`. Invalid policies are skipped here (they are reported, and the routes they
/// target are not programmed: see [`route_blocked_by`]).
pub(crate) fn effective(
    config: &Config,
    gw_ns: &str,
    gw_name: &str,
    section: &str,
    kind: Kind,
    ns: &str,
    name: &str,
) -> EffectiveSecurity {
    let mut e = EffectiveSecurity::default();
    let gw_policies = config
        .security_policies
        .iter()
        .filter(|((pns, _), (p, _))| {
            pns == gw_ns
                && policy_targets(p, "Gateway", gw_name, Some(section))
                && validate(p).is_ok()
        });
    for ((pns, pname), (p, _)) in gw_policies {
        let id = format!("{pns}/{pname}");
        apply(&mut e, &id, p);
        if let Some(cc) = &p.spec.client_certificate {
            e.client_certificate = Some((id.clone(), cc.clone()));
        }
    }
    let route_policies = config
        .security_policies
        .iter()
        .filter(|((pns, _), (p, _))| {
            pns == ns && policy_targets(p, kind.as_str(), name, None) && validate(p).is_ok()
        });
    for ((pns, pname), (p, _)) in route_policies {
        let id = format!("{pns}/{pname}");
        if p.spec.disable_inherited_authentication {
            e.jwt = None;
            e.basic_auth = None;
            e.ext_auth = None;
            e.authentication_disabled = true;
        }
        apply(&mut e, &id, p);
    }
    e
}

/// [`effective`] with an index built once for the whole translation (same result, without
/// scanning every policy).
pub(crate) fn effective_indexed(
    index: &PolicyIndex<'_>,
    gw_ns: &str,
    gw_name: &str,
    section: &str,
    kind: Kind,
    ns: &str,
    name: &str,
) -> EffectiveSecurity {
    let mut e = EffectiveSecurity::default();
    let gw_targeting = index.targeting(gw_ns, "Gateway", gw_name);
    let gw_policies = gw_targeting
        .iter()
        .filter(|x| x.valid && policy_targets(x.policy, "Gateway", gw_name, Some(section)));
    for x in gw_policies {
        let id = format!("{}/{}", x.ns, x.name);
        apply(&mut e, &id, x.policy);
        if let Some(cc) = &x.policy.spec.client_certificate {
            e.client_certificate = Some((id.clone(), cc.clone()));
        }
    }
    let route_targeting = index.targeting(ns, kind.as_str(), name);
    let route_policies = route_targeting
        .iter()
        .filter(|x| x.valid && policy_targets(x.policy, kind.as_str(), name, None));
    for x in route_policies {
        let id = format!("{}/{}", x.ns, x.name);
        if x.policy.spec.disable_inherited_authentication {
            e.jwt = None;
            e.basic_auth = None;
            e.ext_auth = None;
            e.authentication_disabled = true;
        }
        apply(&mut e, &id, x.policy);
    }
    e
}

fn apply(e: &mut EffectiveSecurity, id: &str, p: &SecurityPolicy) {
    let s = &p.spec;
    if let Some(j) = &s.jwt {
        e.jwt = Some((id.to_owned(), j.clone()));
    }
    if let Some(b) = &s.basic_auth {
        e.basic_auth = Some((id.to_owned(), b.clone()));
    }
    if let Some(x) = &s.ext_auth {
        e.ext_auth = Some((id.to_owned(), x.clone()));
    }
    if !s.ip_allow.is_empty() {
        e.ip_allow = s.ip_allow.clone();
    }
    if !s.ip_deny.is_empty() {
        e.ip_deny = s.ip_deny.clone();
    }
    if let Some(c) = &s.cors {
        e.cors = Some(c.clone());
    }
    e.policies.push(id.to_owned());
}

/// An invalid policy that targets this route (or its Gateway listener): the route is then not
/// programmed, so it is never served with less protection than intended.
pub(crate) fn route_blocked_by(
    index: &PolicyIndex<'_>,
    gw_ns: &str,
    gw_name: &str,
    section: &str,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Option<(String, String)> {
    let gw_targeting = index.targeting(gw_ns, "Gateway", gw_name);
    let gw = gw_targeting
        .iter()
        .filter(|x| policy_targets(x.policy, "Gateway", gw_name, Some(section)));
    let route_targeting = index.targeting(ns, kind.as_str(), name);
    let route = route_targeting
        .iter()
        .filter(|x| policy_targets(x.policy, kind.as_str(), name, None));
    // The first in the configuration's order, as a scan of all policies would find.
    gw.chain(route)
        .filter(|x| !x.valid)
        .min_by_key(|x| (x.ns, x.name))
        .and_then(|x| {
            validate(x.policy)
                .err()
                .map(|e| (format!("{}/{}", x.ns, x.name), e))
        })
}

/// Backend references a policy needs as clusters — JWKS servers (HTTP/1.1) and extAuth (gRPC) —
/// each with the namespace of the policy that names it.
pub(crate) fn backend_refs(
    e: &EffectiveSecurity,
) -> Vec<(crate::model::BackendObjectReference, bool, String)> {
    let ns = |policy: &str| policy.split('/').next().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    if let Some((policy, j)) = &e.jwt {
        for p in &j.providers {
            if let Some(r) = &p.remote_jwks {
                out.push((r.backend_ref.object_ref(), false, ns(policy)));
            }
        }
    }
    if let Some((policy, x)) = &e.ext_auth {
        out.push((x.backend_ref.object_ref(), true, ns(policy)));
    }
    out
}

/// Cluster names, by backend reference, for this route's policy needs.
pub(crate) type PolicyClusters = BTreeMap<crate::model::BackendObjectReference, String>;

fn provider_name(policy: &str, provider: &str) -> String {
    format!("{policy}/{provider}")
}

fn inline_string(s: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineString(s.to_owned())),
        ..Default::default()
    }
}

/// The per-route configuration that switches on, for one route, the filters its effective
/// security needs. `htpasswd` resolves basic-auth user Secrets.
pub(crate) fn per_route(
    e: &EffectiveSecurity,
    clusters: &PolicyClusters,
    htpasswd: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<BTreeMap<String, Any>, String> {
    let mut m = BTreeMap::new();
    if let Some(c) = &e.cors {
        m.insert(CORS.to_owned(), any(&cors_policy(c)?));
    }
    if !e.ip_allow.is_empty() || !e.ip_deny.is_empty() {
        m.insert(
            RBAC.to_owned(),
            any(&RbacPerRoute {
                rbac: Some(ip_rbac(&e.ip_allow, &e.ip_deny)?),
            }),
        );
    }
    if let Some((policy, _)) = &e.jwt {
        m.insert(
            JWT.to_owned(),
            any(&PerRouteConfig {
                requirement_specifier: Some(
                    per_route_config::RequirementSpecifier::RequirementName(policy.clone()),
                ),
            }),
        );
    }
    if let Some((policy, b)) = &e.basic_auth {
        let users = htpasswd(policy, &b.users.name).ok_or_else(|| {
            format!(
                "basic auth of `{policy}`: Secret `{}` with an `.htpasswd` key not found",
                b.users.name
            )
        })?;
        m.insert(
            BASIC.to_owned(),
            any(&BasicAuthPerRoute {
                users: Some(inline_string(&users)),
            }),
        );
    }
    if let Some((policy, x)) = &e.ext_auth {
        let cluster = clusters.get(&x.backend_ref.object_ref()).ok_or_else(|| {
            format!(
                "extAuth of `{policy}`: backend `{}` not resolved",
                x.backend_ref.name
            )
        })?;
        m.insert(
            EXT_AUTHZ.to_owned(),
            any(&ExtAuthzPerRoute {
                r#override: Some(ext_authz_per_route::Override::CheckSettings(
                    CheckSettings {
                        service_override: Some(check_settings::ServiceOverride::GrpcService(grpc(
                            cluster, x,
                        )?)),
                        ..Default::default()
                    },
                )),
            }),
        );
    }
    Ok(m)
}

fn grpc(cluster: &str, x: &ExtAuth) -> Result<GrpcService, String> {
    let timeout = x
        .timeout
        .as_deref()
        .map(duration_ms)
        .transpose()?
        .unwrap_or(1000);
    Ok(GrpcService {
        timeout: millis(timeout),
        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
            grpc_service::EnvoyGrpc {
                cluster_name: cluster.to_owned(),
                ..Default::default()
            },
        )),
        ..Default::default()
    })
}

fn cors_policy(c: &Cors) -> Result<CorsPolicy, String> {
    let max_age = c
        .max_age
        .as_deref()
        .map(duration_ms)
        .transpose()?
        .map(|ms| (ms / 1000).to_string())
        .unwrap_or_default();
    Ok(CorsPolicy {
        allow_origin_string_match: c
            .allow_origins
            .iter()
            .map(|o| StringMatcher {
                match_pattern: Some(if o == "*" {
                    string_matcher::MatchPattern::Prefix(String::new())
                } else {
                    string_matcher::MatchPattern::Exact(o.clone())
                }),
                ignore_case: false,
            })
            .collect(),
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age,
        allow_credentials: Some(BoolValue {
            value: c.allow_credentials,
        }),
        ..Default::default()
    })
}

fn cidr_principal(c: &str) -> Result<Principal, String> {
    let (ip, len) = cidr(c)?;
    Ok(Principal {
        identifier: Some(principal::Identifier::DirectRemoteIp(CidrRange {
            address_prefix: ip.to_string(),
            prefix_len: Some(UInt32Value { value: len }),
        })),
    })
}

/// One ALLOW policy: the peer address (never a forwarded header) is in an allowed range, if
/// any are given, and in no denied range. Everything else gets 403.
fn ip_rbac(allow: &[String], deny: &[String]) -> Result<RbacFilter, String> {
    let mut ids = Vec::new();
    if !allow.is_empty() {
        ids.push(Principal {
            identifier: Some(principal::Identifier::OrIds(principal::Set {
                ids: allow
                    .iter()
                    .map(|c| cidr_principal(c))
                    .collect::<Result<_, _>>()?,
            })),
        });
    }
    if !deny.is_empty() {
        ids.push(Principal {
            identifier: Some(principal::Identifier::NotId(Box::new(Principal {
                identifier: Some(principal::Identifier::OrIds(principal::Set {
                    ids: deny
                        .iter()
                        .map(|c| cidr_principal(c))
                        .collect::<Result<_, _>>()?,
                })),
            }))),
        });
    }
    let principal = Principal {
        identifier: Some(principal::Identifier::AndIds(principal::Set { ids })),
    };
    let policy = Policy {
        permissions: vec![Permission {
            rule: Some(permission::Rule::Any(true)),
        }],
        principals: vec![principal],
        ..Default::default()
    };
    Ok(RbacFilter {
        rules: Some(RbacRules {
            action: rbac::Action::Allow as i32,
            policies: [("ip-rules".to_owned(), policy)].into_iter().collect(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The HTTP filters a connection manager needs for the routes it serves, in order. Filters
/// that enforce something are off by default and on only where a route's per-route
/// configuration switches them on.
pub(crate) fn http_filters(
    all: &[&EffectiveSecurity],
    clusters: &PolicyClusters,
    htpasswd: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<Vec<HttpFilter>, String> {
    let mut out = Vec::new();
    let filter = |name: &str, cfg: Any, disabled: bool| HttpFilter {
        name: name.to_owned(),
        config_type: Some(http_filter::ConfigType::TypedConfig(cfg)),
        disabled,
        ..Default::default()
    };
    if all.iter().any(|e| e.cors.is_some()) {
        out.push(filter(CORS, any(&CorsFilter::default()), false));
    }
    if all
        .iter()
        .any(|e| !e.ip_allow.is_empty() || !e.ip_deny.is_empty())
    {
        out.push(filter(RBAC, any(&RbacFilter::default()), true));
    }
    let jwts: BTreeMap<&str, &JwtAuth> = all
        .iter()
        .filter_map(|e| e.jwt.as_ref())
        .map(|(p, j)| (p.as_str(), j))
        .collect();
    if !jwts.is_empty() {
        let mut cfg = JwtAuthentication {
            bypass_cors_preflight: true,
            ..Default::default()
        };
        for (policy, j) in &jwts {
            let mut names = Vec::new();
            for p in &j.providers {
                let name = provider_name(policy, &p.name);
                let source = match (&p.local_jwks, &p.remote_jwks) {
                    (Some(keys), _) => {
                        jwt_provider::JwksSourceSpecifier::LocalJwks(inline_string(keys))
                    }
                    (None, Some(r)) => {
                        let cluster =
                            clusters.get(&r.backend_ref.object_ref()).ok_or_else(|| {
                                format!("JWKS backend `{}` not resolved", r.backend_ref.name)
                            })?;
                        jwt_provider::JwksSourceSpecifier::RemoteJwks(EnvoyRemoteJwks {
                            http_uri: Some(HttpUri {
                                uri: r.uri.clone(),
                                timeout: secs(5),
                                http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(
                                    cluster.clone(),
                                )),
                            }),
                            cache_duration: secs(300),
                            ..Default::default()
                        })
                    }
                    (None, None) => return Err(format!("jwt provider `{}` has no keys", p.name)),
                };
                cfg.providers.insert(
                    name.clone(),
                    EnvoyJwtProvider {
                        issuer: p.issuer.clone().unwrap_or_default(),
                        audiences: p.audiences.clone(),
                        claim_to_headers: p
                            .claim_to_headers
                            .iter()
                            .map(|c| JwtClaimToHeader {
                                header_name: c.header.clone(),
                                claim_name: c.claim.clone(),
                                ..Default::default()
                            })
                            .collect(),
                        jwks_source_specifier: Some(source),
                        ..Default::default()
                    },
                );
                names.push(name);
            }
            let provider = |n: String| JwtRequirement {
                requires_type: Some(jwt_requirement::RequiresType::ProviderName(n)),
            };
            let requirement = if names.len() == 1 {
                provider(names.remove(0))
            } else {
                JwtRequirement {
                    requires_type: Some(jwt_requirement::RequiresType::RequiresAny(
                        JwtRequirementOrList {
                            requirements: names.into_iter().map(provider).collect(),
                        },
                    )),
                }
            };
            cfg.requirement_map
                .insert((*policy).to_owned(), requirement);
        }
        out.push(filter(JWT, jwt_any(&cfg), true));
    }
    if let Some((policy, b)) = all.iter().find_map(|e| e.basic_auth.as_ref()) {
        let users = htpasswd(policy, &b.users.name).ok_or_else(|| {
            format!(
                "basic auth of `{policy}`: Secret `{}` not found",
                b.users.name
            )
        })?;
        out.push(filter(
            BASIC,
            any(&BasicAuthFilter {
                users: Some(inline_string(&users)),
                ..Default::default()
            }),
            true,
        ));
    }
    if let Some((_, x)) = all.iter().find_map(|e| e.ext_auth.as_ref()) {
        let cluster = clusters
            .get(&x.backend_ref.object_ref())
            .ok_or_else(|| format!("extAuth backend `{}` not resolved", x.backend_ref.name))?;
        let cfg = ExtAuthz {
            services: Some(ext_authz::Services::GrpcService(grpc(cluster, x)?)),
            transport_api_version: envoy_types::pb::envoy::config::core::v3::ApiVersion::V3 as i32,
            // Never fail open: an unreachable or erroring authorizer denies.
            failure_mode_allow: false,
            include_peer_certificate: true,
            ..Default::default()
        };
        out.push(filter(EXT_AUTHZ, any(&cfg), true));
    }
    Ok(out)
}

/// The status of every SecurityPolicy.
pub(crate) fn statuses(config: &Config) -> Vec<super::ObjectStatus> {
    config
        .security_policies
        .iter()
        .map(|((ns, name), (p, origin))| super::ObjectStatus {
            object: ObjectKey::new(Kind::SecurityPolicy, ns, name),
            origin: origin.clone(),
            conditions: vec![match validate(p) {
                Ok(()) => super::Condition::ok("Accepted", "Accepted", "policy accepted"),
                Err(e) => super::Condition::fail(
                    "Accepted",
                    "Invalid",
                    format!("{e}; the routes it targets are not programmed until it is fixed"),
                ),
            }],
            parts: vec![],
        })
        .collect()
}

/// Encodes a JWT filter configuration with its two maps (providers, requirements) in key
/// order. prost encodes a `HashMap` in iteration order, which differs from one map to the
/// next: the same configuration would get new bytes, hence a new version and a listener push
/// to every proxy, on every translation.
fn jwt_any(cfg: &JwtAuthentication) -> Any {
    use prost::encoding::{btree_map, message, string};
    use prost::{Message as _, Name as _};
    let mut rest = cfg.clone();
    let providers: BTreeMap<String, EnvoyJwtProvider> =
        std::mem::take(&mut rest.providers).into_iter().collect();
    let requirements: BTreeMap<String, JwtRequirement> = std::mem::take(&mut rest.requirement_map)
        .into_iter()
        .collect();
    let mut buf = rest.encode_to_vec();
    btree_map::encode(
        |t, k: &String, b: &mut Vec<u8>| string::encode(t, k, b),
        |t, k: &String| string::encoded_len(t, k),
        |t, v: &EnvoyJwtProvider, b: &mut Vec<u8>| message::encode(t, v, b),
        |t, v: &EnvoyJwtProvider| message::encoded_len(t, v),
        1,
        &providers,
        &mut buf,
    );
    btree_map::encode(
        |t, k: &String, b: &mut Vec<u8>| string::encode(t, k, b),
        |t, k: &String| string::encoded_len(t, k),
        |t, v: &JwtRequirement, b: &mut Vec<u8>| message::encode(t, v, b),
        |t, v: &JwtRequirement| message::encoded_len(t, v),
        5,
        &requirements,
        &mut buf,
    );
    Any {
        type_url: JwtAuthentication::type_url(),
        value: buf,
    }
}
