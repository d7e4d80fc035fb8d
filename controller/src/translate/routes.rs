//! HTTPRoute and GRPCRoute rules to Envoy routes, ordered by the Gateway API's precedence.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, RuntimeFractionalPercent, header_value_option,
};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, QueryParameterMatcher, RedirectAction, Route, RouteAction,
    RouteMatch, WeightedCluster, header_matcher, query_parameter_matcher, redirect_action, route,
    route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};

use super::envoy::millis;
use crate::model::{
    GrpcRouteRule, HeaderModifier, HttpHeaderMatch, HttpRouteFilter, HttpRouteMatch, HttpRouteRule,
};

/// Where a rule's backend references resolved to: `Some(cluster)` or `None` (unresolved:
/// requests for that share answer 500).
pub(crate) type ResolvedBackends = Vec<(Option<String>, u32)>;

/// The order key of one Envoy route: the Gateway API precedence, then the route's name, then
/// rule and match position.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Precedence {
    path_rank: Reverse<u8>,
    path_len: Reverse<usize>,
    method: Reverse<bool>,
    headers: Reverse<usize>,
    queries: Reverse<usize>,
    route: String,
    rule: usize,
    matched: usize,
}

/// A translated route with its place in the order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RouteEntry {
    pub(crate) precedence: Precedence,
    /// The Envoy `Route`, encoded (route tables are assembled from these bytes).
    pub(crate) route: Vec<u8>,
}

const DEFAULT_TIMEOUT_MS: u64 = 15_000;

/// A rule of an HTTPRoute, as Envoy routes (one per match).
pub(crate) fn http_rule(
    listener_port: u16,
    route_name: &str,
    rule_index: usize,
    rule: &HttpRouteRule,
    backends: &ResolvedBackends,
    mirrors: &[Option<String>],
    per_filter: &BTreeMap<String, Any>,
) -> Result<Vec<RouteEntry>, String> {
    let default_match = [HttpRouteMatch::default()];
    let matches: &[HttpRouteMatch] = if rule.matches.is_empty() {
        &default_match
    } else {
        &rule.matches
    };
    let action = http_action(rule, backends, mirrors, listener_port)?;
    let mut out = Vec::new();
    for (j, m) in matches.iter().enumerate() {
        let (route_match, path_rank, path_len) = http_match(m)?;
        let mut r = Route {
            name: format!("{route_name}/rule/{rule_index}/match/{j}"),
            r#match: Some(route_match),
            action: Some(action.clone()),
            typed_per_filter_config: per_filter.clone().into_iter().collect(),
            ..Default::default()
        };
        apply_header_filters(&mut r, &rule.filters);
        out.push(RouteEntry {
            precedence: Precedence {
                path_rank: Reverse(path_rank),
                path_len: Reverse(path_len),
                method: Reverse(m.method.is_some()),
                headers: Reverse(m.headers.len()),
                queries: Reverse(m.query_params.len()),
                route: route_name.to_owned(),
                rule: rule_index,
                matched: j,
            },
            route: prost::Message::encode_to_vec(&r),
        });
    }
    Ok(out)
}

/// A rule of a GRPCRoute.
pub(crate) fn grpc_rule(
    route_name: &str,
    rule_index: usize,
    rule: &GrpcRouteRule,
    backends: &ResolvedBackends,
    per_filter: &BTreeMap<String, Any>,
) -> Result<Vec<RouteEntry>, String> {
    let default_match = [crate::model::GrpcRouteMatch::default()];
    let matches: &[crate::model::GrpcRouteMatch] = if rule.matches.is_empty() {
        &default_match
    } else {
        &rule.matches
    };
    let action = forward(backends, &[], None);
    let mut out = Vec::new();
    for (j, m) in matches.iter().enumerate() {
        let (path, rank, len) = match &m.method {
            None => (route_match::PathSpecifier::Prefix("/".into()), 1, 1),
            Some(mm) => {
                if mm.match_type.as_deref().is_some_and(|t| t != "Exact") {
                    return Err(format!(
                        "gRPC method match type `{}` is not supported (use Exact)",
                        mm.match_type.as_deref().unwrap_or_default()
                    ));
                }
                match (&mm.service, &mm.method) {
                    (Some(s), Some(me)) => (
                        route_match::PathSpecifier::Path(format!("/{s}/{me}")),
                        3,
                        s.len() + me.len() + 2,
                    ),
                    (Some(s), None) => (
                        route_match::PathSpecifier::Prefix(format!("/{s}/")),
                        1,
                        s.len() + 2,
                    ),
                    (None, Some(me)) => (
                        route_match::PathSpecifier::SafeRegex(regex(&format!(
                            "/[^/]+/{}",
                            regex_escape(me)
                        ))),
                        2,
                        me.len(),
                    ),
                    (None, None) => {
                        return Err("a gRPC method match needs a service or a method".to_owned());
                    }
                }
            }
        };
        let mut headers = headers(&m.headers)?;
        headers.push(HeaderMatcher {
            name: "content-type".into(),
            header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Prefix(
                        "application/grpc".into(),
                    )),
                    ignore_case: false,
                },
            )),
            ..Default::default()
        });
        out.push(RouteEntry {
            precedence: Precedence {
                path_rank: Reverse(rank),
                path_len: Reverse(len),
                method: Reverse(false),
                headers: Reverse(m.headers.len()),
                queries: Reverse(0),
                route: route_name.to_owned(),
                rule: rule_index,
                matched: j,
            },
            route: prost::Message::encode_to_vec(&Route {
                name: format!("{route_name}/rule/{rule_index}/match/{j}"),
                r#match: Some(RouteMatch {
                    path_specifier: Some(path),
                    headers,
                    ..Default::default()
                }),
                action: Some(action.clone()),
                typed_per_filter_config: per_filter.clone().into_iter().collect(),
                ..Default::default()
            }),
        });
    }
    Ok(out)
}

fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_owned(),
        ..Default::default()
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn http_match(m: &HttpRouteMatch) -> Result<(RouteMatch, u8, usize), String> {
    let (kind, value) = match &m.path {
        None => ("PathPrefix", "/"),
        Some(p) => (
            p.match_type.as_deref().unwrap_or("PathPrefix"),
            p.value.as_deref().unwrap_or("/"),
        ),
    };
    if !value.starts_with('/') {
        return Err(format!("path `{value}` must start with `/`"));
    }
    let (path, rank) = match kind {
        "Exact" => (route_match::PathSpecifier::Path(value.to_owned()), 3),
        "RegularExpression" => (route_match::PathSpecifier::SafeRegex(regex(value)), 2),
        "PathPrefix" => {
            let trimmed = value.trim_end_matches('/');
            if trimmed.is_empty() {
                (route_match::PathSpecifier::Prefix("/".into()), 1)
            } else {
                // Gateway API prefixes match whole path elements: `/foo` matches `/foo` and
                // `/foo/bar`, not `/foobar`.
                (
                    route_match::PathSpecifier::PathSeparatedPrefix(trimmed.to_owned()),
                    1,
                )
            }
        }
        other => {
            return Err(format!(
                "path match type `{other}` is not one of Exact, PathPrefix, RegularExpression"
            ));
        }
    };
    let mut hs = headers(&m.headers)?;
    if let Some(method) = &m.method {
        hs.push(exact_header(":method", method));
    }
    let query_parameters = m
        .query_params
        .iter()
        .map(|q| {
            Ok(QueryParameterMatcher {
                name: q.name.clone(),
                query_parameter_match_specifier: Some(
                    query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(
                        string_match(q)?,
                    ),
                ),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((
        RouteMatch {
            path_specifier: Some(path),
            headers: hs,
            query_parameters,
            ..Default::default()
        },
        rank,
        value.len(),
    ))
}

fn string_match(h: &HttpHeaderMatch) -> Result<StringMatcher, String> {
    let pattern = match h.match_type.as_deref().unwrap_or("Exact") {
        "Exact" => string_matcher::MatchPattern::Exact(h.value.clone()),
        "RegularExpression" => string_matcher::MatchPattern::SafeRegex(regex(&h.value)),
        other => {
            return Err(format!(
                "match type `{other}` is not one of Exact, RegularExpression"
            ));
        }
    };
    Ok(StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: false,
    })
}

fn headers(hs: &[HttpHeaderMatch]) -> Result<Vec<HeaderMatcher>, String> {
    hs.iter()
        .map(|h| {
            Ok(HeaderMatcher {
                name: h.name.to_ascii_lowercase(),
                header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                    string_match(h)?,
                )),
                ..Default::default()
            })
        })
        .collect()
}

fn exact_header(name: &str, value: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_owned(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
            StringMatcher {
                match_pattern: Some(string_matcher::MatchPattern::Exact(value.to_owned())),
                ignore_case: false,
            },
        )),
        ..Default::default()
    }
}

/// Forwarding to the resolved backends; unresolved shares answer 500.
fn forward(
    backends: &ResolvedBackends,
    mirrors: &[Option<String>],
    timeout_ms: Option<u64>,
) -> route::Action {
    let resolved: Vec<(&String, u32)> = backends
        .iter()
        .filter_map(|(c, w)| c.as_ref().map(|c| (c, *w)))
        .collect();
    if backends.is_empty() || resolved.is_empty() || resolved.iter().all(|(_, w)| *w == 0) {
        return route::Action::DirectResponse(DirectResponseAction {
            status: 500,
            ..Default::default()
        });
    }
    let specifier = if backends.len() == 1 {
        route_action::ClusterSpecifier::Cluster(resolved[0].0.clone())
    } else {
        route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: backends
                .iter()
                .map(|(c, w)| weighted_cluster::ClusterWeight {
                    // An unresolved share goes to a cluster that does not exist, answered 500.
                    name: c
                        .clone()
                        .unwrap_or_else(|| "gatehouse-unresolved-backend".into()),
                    weight: Some(UInt32Value { value: *w }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    };
    route::Action::Route(RouteAction {
        cluster_specifier: Some(specifier),
        cluster_not_found_response_code:
            route_action::ClusterNotFoundResponseCode::InternalServerError as i32,
        timeout: millis(timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
        request_mirror_policies: mirrors
            .iter()
            .flatten()
            .map(|c| route_action::RequestMirrorPolicy {
                cluster: c.clone(),
                runtime_fraction: Some(RuntimeFractionalPercent {
                    default_value: Some(FractionalPercent {
                        numerator: 100,
                        denominator: fractional_percent::DenominatorType::Hundred as i32,
                    }),
                    runtime_key: String::new(),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

/// Parses a Gateway API duration (`10s`, `500ms`, `1h`, `1m30s`).
pub(crate) fn duration_ms(s: &str) -> Result<u64, String> {
    let d = humantime_like(s)
        .ok_or_else(|| format!("`{s}` is not a duration (e.g. `10s`, `500ms`)"))?;
    Ok(d)
}

fn humantime_like(s: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1
        } else {
            match c {
                'h' => 3_600_000,
                'm' => 60_000,
                's' => 1000,
                _ => return None,
            }
        };
        total = total.checked_add(num.parse::<u64>().ok()?.checked_mul(unit)?)?;
        num.clear();
        any = true;
    }
    (any && num.is_empty()).then_some(total)
}

fn http_action(
    rule: &HttpRouteRule,
    backends: &ResolvedBackends,
    mirrors: &[Option<String>],
    listener_port: u16,
) -> Result<route::Action, String> {
    let timeout = rule
        .timeouts
        .as_ref()
        .and_then(|t| t.request.as_deref())
        .map(duration_ms)
        .transpose()?;
    let mut redirect = None;
    let mut rewrite = None;
    for f in &rule.filters {
        match f.filter_type.as_str() {
            "RequestRedirect" => redirect = f.request_redirect.clone(),
            "URLRewrite" => rewrite = f.url_rewrite.clone(),
            "RequestHeaderModifier" | "ResponseHeaderModifier" | "RequestMirror" => {}
            other => return Err(format!("filter type `{other}` is not supported")),
        }
    }
    if let Some(r) = redirect {
        let mut a = RedirectAction {
            host_redirect: r.hostname.unwrap_or_default(),
            // Without a port and a scheme change, the redirect keeps the listener's port
            // (the Gateway API's rule); Envoy would otherwise drop it.
            port_redirect: match (r.port, &r.scheme) {
                (Some(p), _) => u32::from(p),
                (None, None) => u32::from(listener_port),
                (None, Some(_)) => 0,
            },
            response_code: match r.status_code.unwrap_or(302) {
                301 => redirect_action::RedirectResponseCode::MovedPermanently,
                302 => redirect_action::RedirectResponseCode::Found,
                other => return Err(format!("redirect status `{other}` is not 301 or 302")),
            } as i32,
            ..Default::default()
        };
        if let Some(s) = r.scheme {
            a.scheme_rewrite_specifier =
                Some(redirect_action::SchemeRewriteSpecifier::SchemeRedirect(s));
        }
        if let Some(p) = r.path {
            a.path_rewrite_specifier = Some(match p.modifier_type.as_str() {
                "ReplaceFullPath" => redirect_action::PathRewriteSpecifier::PathRedirect(
                    p.replace_full_path.unwrap_or_default(),
                ),
                "ReplacePrefixMatch" => redirect_action::PathRewriteSpecifier::PrefixRewrite(
                    p.replace_prefix_match.unwrap_or_default(),
                ),
                other => return Err(format!("path modifier `{other}` is not supported")),
            });
        }
        return Ok(route::Action::Redirect(a));
    }
    let mut action = forward(backends, mirrors, timeout);
    if let (Some(rw), route::Action::Route(ra)) = (rewrite, &mut action) {
        if let Some(h) = rw.hostname {
            ra.host_rewrite_specifier =
                Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(h));
        }
        if let Some(p) = rw.path {
            match p.modifier_type.as_str() {
                "ReplacePrefixMatch" => {
                    ra.prefix_rewrite = p.replace_prefix_match.unwrap_or_else(|| "/".into())
                }
                "ReplaceFullPath" => {
                    ra.regex_rewrite = Some(RegexMatchAndSubstitute {
                        pattern: Some(regex("^/.*$")),
                        substitution: p.replace_full_path.unwrap_or_else(|| "/".into()),
                    });
                }
                other => return Err(format!("path modifier `{other}` is not supported")),
            }
        }
    }
    Ok(action)
}

fn header_options(m: &HeaderModifier) -> Vec<HeaderValueOption> {
    let opt = |h: &crate::model::HeaderValue, action: header_value_option::HeaderAppendAction| {
        HeaderValueOption {
            header: Some(HeaderValue {
                key: h.name.clone(),
                value: h.value.clone(),
                ..Default::default()
            }),
            append_action: action as i32,
            ..Default::default()
        }
    };
    m.set
        .iter()
        .map(|h| {
            opt(
                h,
                header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd,
            )
        })
        .chain(m.add.iter().map(|h| {
            opt(
                h,
                header_value_option::HeaderAppendAction::AppendIfExistsOrAdd,
            )
        }))
        .collect()
}

fn apply_header_filters(r: &mut Route, filters: &[HttpRouteFilter]) {
    for f in filters {
        if let Some(m) = &f.request_header_modifier {
            r.request_headers_to_add.extend(header_options(m));
            r.request_headers_to_remove.extend(m.remove.iter().cloned());
        }
        if let Some(m) = &f.response_header_modifier {
            r.response_headers_to_add.extend(header_options(m));
            r.response_headers_to_remove
                .extend(m.remove.iter().cloned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("10s"), Ok(10_000));
        assert_eq!(duration_ms("500ms"), Ok(500));
        assert_eq!(duration_ms("1m30s"), Ok(90_000));
        assert!(duration_ms("ten").is_err());
        assert!(duration_ms("10").is_err());
    }

    #[test]
    fn precedence_follows_the_specification() {
        let m = |kind: &str, path: &str, headers: usize, method: bool| {
            let rule = HttpRouteRule {
                name: None,
                matches: vec![HttpRouteMatch {
                    path: Some(crate::model::HttpPathMatch {
                        match_type: Some(kind.into()),
                        value: Some(path.into()),
                    }),
                    headers: (0..headers)
                        .map(|i| HttpHeaderMatch {
                            match_type: None,
                            name: format!("h{i}"),
                            value: "v".into(),
                        })
                        .collect(),
                    query_params: vec![],
                    method: method.then(|| "GET".into()),
                }],
                filters: vec![],
                backend_refs: vec![],
                timeouts: None,
            };
            http_rule(
                8080,
                &format!("{kind}{path}{headers}{method}"),
                0,
                &rule,
                &vec![],
                &[],
                &BTreeMap::new(),
            )
            .unwrap()
            .remove(0)
        };
        let mut entries = [
            m("PathPrefix", "/", 0, false),
            m("PathPrefix", "/api", 0, false),
            m("PathPrefix", "/api", 1, false),
            m("PathPrefix", "/api", 0, true),
            m("Exact", "/api/v1", 0, false),
            m("PathPrefix", "/api/v1", 0, false),
        ];
        entries.sort_by(|a, b| a.precedence.cmp(&b.precedence));
        let names: Vec<_> = entries.iter().map(|e| e.precedence.route.clone()).collect();
        assert_eq!(
            names,
            [
                "Exact/api/v10false",
                "PathPrefix/api/v10false",
                "PathPrefix/api0true",
                "PathPrefix/api1false",
                "PathPrefix/api0false",
                "PathPrefix/0false"
            ]
        );
    }
}
