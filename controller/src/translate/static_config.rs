//! A snapshot as one static Envoy bootstrap: routes inlined into their connection managers,
//! endpoints into their clusters, secrets as static secrets. Used to have `envoy --mode
//! validate` judge what the translator produces, and by `gatehouse translate --static`.

use envoy_types::pb::envoy::config::bootstrap::v3::{Bootstrap, bootstrap};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{TransportSocket, transport_socket};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, Secret, UpstreamTlsContext,
    common_tls_context::ValidationContextType,
};
use prost::{Message, Name};

use super::envoy::any;
use crate::snapshot::{ResourceType, Snapshot};

/// Why a snapshot could not be made static.
#[derive(Debug, thiserror::Error)]
#[error("resource `{name}` does not decode: {source}")]
pub struct StaticConfigError {
    name: String,
    #[source]
    source: prost::DecodeError,
}

fn decode<M: Message + Default>(name: &str, bytes: &[u8]) -> Result<M, StaticConfigError> {
    M::decode(bytes).map_err(|source| StaticConfigError {
        name: name.to_owned(),
        source,
    })
}

/// SDS references served over ADS become references to static secrets.
fn static_sds(ctx: &mut CommonTlsContext) {
    for s in &mut ctx.tls_certificate_sds_secret_configs {
        s.sds_config = None;
    }
    match &mut ctx.validation_context_type {
        Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => s.sds_config = None,
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            if let Some(s) = &mut c.validation_context_sds_secret_config {
                s.sds_config = None;
            }
        }
        _ => {}
    }
}

fn rewrite_tls<M: Message + Name + Default>(
    ts: &mut TransportSocket,
    f: impl FnOnce(&mut M),
) -> Result<(), StaticConfigError> {
    if let Some(transport_socket::ConfigType::TypedConfig(a)) = &mut ts.config_type
        && a.type_url == M::type_url()
    {
        let mut ctx: M = decode(&ts.name, &a.value)?;
        f(&mut ctx);
        *a = any(&ctx);
    }
    Ok(())
}

/// The snapshot as a static bootstrap.
pub fn static_bootstrap(snap: &Snapshot) -> Result<Bootstrap, StaticConfigError> {
    let mut listeners = Vec::new();
    for r in snap.resources(ResourceType::Listener).values() {
        let mut l: Listener = decode(r.name(), &r.body().value)?;
        for chain in l
            .filter_chains
            .iter_mut()
            .chain(l.default_filter_chain.iter_mut())
        {
            for f in &mut chain.filters {
                if let Some(filter::ConfigType::TypedConfig(a)) = &mut f.config_type
                    && a.type_url == HttpConnectionManager::type_url()
                {
                    let mut hcm: HttpConnectionManager = decode(&f.name, &a.value)?;
                    if let Some(http_connection_manager::RouteSpecifier::Rds(rds)) =
                        &hcm.route_specifier
                    {
                        let rc = match snap.get(ResourceType::Route, &rds.route_config_name) {
                            Some(rc) => decode(rc.name(), &rc.body().value)?,
                            None => RouteConfiguration {
                                name: rds.route_config_name.clone(),
                                ..Default::default()
                            },
                        };
                        hcm.route_specifier =
                            Some(http_connection_manager::RouteSpecifier::RouteConfig(rc));
                    }
                    *a = any(&hcm);
                }
            }
            if let Some(ts) = &mut chain.transport_socket {
                rewrite_tls::<DownstreamTlsContext>(ts, |ctx| {
                    if let Some(c) = &mut ctx.common_tls_context {
                        static_sds(c);
                    }
                })?;
            }
        }
        listeners.push(l);
    }
    let mut clusters = Vec::new();
    for r in snap.resources(ResourceType::Cluster).values() {
        let mut c: Cluster = decode(r.name(), &r.body().value)?;
        if c.eds_cluster_config.take().is_some() {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32,
            ));
            c.load_assignment = Some(match snap.get(ResourceType::Endpoint, &c.name) {
                Some(e) => decode::<ClusterLoadAssignment>(e.name(), &e.body().value)?,
                None => ClusterLoadAssignment {
                    cluster_name: c.name.clone(),
                    ..Default::default()
                },
            });
        }
        if let Some(ts) = &mut c.transport_socket {
            rewrite_tls::<UpstreamTlsContext>(ts, |ctx| {
                if let Some(cc) = &mut ctx.common_tls_context {
                    static_sds(cc);
                }
            })?;
        }
        clusters.push(c);
    }
    let secrets = snap
        .resources(ResourceType::Secret)
        .values()
        .map(|r| decode::<Secret>(r.name(), &r.body().value))
        .collect::<Result<_, _>>()?;
    Ok(Bootstrap {
        static_resources: Some(bootstrap::StaticResources {
            listeners,
            clusters,
            secrets,
        }),
        ..Default::default()
    })
}
