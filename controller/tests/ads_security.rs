//! Who may talk to the xDS server and what each proxy may get. Every refusal is also recorded
//! as a security event (and logged under the `gatehouse::security` target).

mod support;

use std::time::SystemTime;

use envoy_types::pb::envoy::config::core::v3::TransportSocket;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, Secret,
};
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use envoy_types::pb::google::protobuf::Any;
use gatehouse_certs::{CertificateAuthority, Identity, LeafRequest};
use gatehouse_controller::{ResourceType, Snapshot};
use prost::{Message, Name};
use support::*;

/// A gateway whose one HTTPS listener uses the secret `secret`.
fn gateway_with_secret(listener: &str, secret: &str, cluster_name: &str) -> Snapshot {
    let tls = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: secret.into(),
                sds_config: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let l = Listener {
        name: listener.into(),
        filter_chains: vec![FilterChain {
            transport_socket: Some(TransportSocket {
                name: "envoy.transport_sockets.tls".into(),
                config_type: Some(ConfigType::TypedConfig(Any {
                    type_url: DownstreamTlsContext::type_url(),
                    value: tls.encode_to_vec(),
                })),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut b = Snapshot::builder();
    b.listener(&l)
        .cluster(&cluster(cluster_name, 1))
        .secret(&Secret {
            name: secret.into(),
            ..Default::default()
        });
    b.build()
}

async fn rpc_fails(h: &Harness, leaf: &gatehouse_certs::IssuedLeaf, ca_pem: &str) -> bool {
    let Ok(mut client) = client_for(h.addr, ca_pem, leaf).await else {
        return true;
    };
    Delta::open(
        &mut client,
        DeltaDiscoveryRequest {
            node: node(&spiffe("edge/public")),
            type_url: cds(),
            ..Default::default()
        },
    )
    .await
    .is_err()
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_and_logged() {
    let h = Harness::start().await;
    let other = CertificateAuthority::generate(
        "other.example".parse().unwrap(),
        365 * DAY,
        SystemTime::now(),
    )
    .unwrap();
    let leaf = other
        .issue(
            &LeafRequest::new(Identity::Gateway("edge/public".parse().unwrap())),
            SystemTime::now(),
        )
        .unwrap();
    assert!(rpc_fails(&h, &leaf, &h.ca.chain_pem()).await);
    h.wait_security("tls_handshake_rejected").await;
    let ev = h.registry.security_events();
    assert!(
        ev.iter().any(|e| e.detail.contains("UnknownIssuer")),
        "{ev:?}"
    );
    assert!(h.registry.proxies().is_empty());
}

#[tokio::test]
async fn an_expired_certificate_is_refused_and_logged() {
    let h = Harness::start().await;
    let leaf =
        h.ca.issue(
            &LeafRequest::new(Identity::Gateway("edge/public".parse().unwrap())),
            SystemTime::now() - 2 * DAY,
        )
        .unwrap();
    assert!(rpc_fails(&h, &leaf, &h.ca.chain_pem()).await);
    h.wait_security("tls_handshake_rejected").await;
    assert!(
        h.registry
            .security_events()
            .iter()
            .any(|e| e.detail.to_lowercase().contains("expired"))
    );
}

#[tokio::test]
async fn no_client_certificate_is_refused_and_logged() {
    let h = Harness::start().await;
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(h.ca.chain_pem()))
        .domain_name("localhost");
    let channel =
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", h.addr.port()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await;
    if let Ok(channel) = channel {
        let mut client =
            envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient::new(channel);
        assert!(
            Delta::open(
                &mut client,
                DeltaDiscoveryRequest {
                    node: node(&spiffe("edge/public")),
                    type_url: cds(),
                    ..Default::default()
                }
            )
            .await
            .is_err()
        );
    }
    h.wait_security("tls_handshake_rejected").await;
    assert!(h.registry.security_events().iter().any(
        |e| e.detail.contains("NoCertificatesPresented") || e.detail.contains("no certificate")
    ));
}

#[tokio::test]
async fn a_node_id_that_does_not_match_the_certificate_is_refused() {
    let h = Harness::start().await;
    h.cache.set(
        &"edge/private".parse().unwrap(),
        gateway_with_secret("private", "edge/private-cert", "private-backend"),
    );
    let mut client = h.client(&h.gateway_leaf("edge/public")).await.unwrap();
    // Holding edge/public's certificate, claiming to be edge/private.
    let err = Delta::open(
        &mut client,
        DeltaDiscoveryRequest {
            node: node(&spiffe("edge/private")),
            type_url: cds(),
            ..Default::default()
        },
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(
        err.message()
            .contains("does not match the certificate identity"),
        "{}",
        err.message()
    );
    h.wait_security("node_id_mismatch").await;
    let ev = h
        .registry
        .security_events()
        .into_iter()
        .find(|e| e.kind == "node_id_mismatch")
        .unwrap();
    assert_eq!(ev.identity.as_deref(), Some(spiffe("edge/public").as_str()));
    assert!(h.registry.proxies().is_empty());
}

#[tokio::test]
async fn a_proxy_gets_only_its_own_gateway_and_never_another_gateways_secret() {
    let h = Harness::start().await;
    h.cache.set(
        &"edge/public".parse().unwrap(),
        gateway_with_secret("public", "edge/public-cert", "public-backend"),
    );
    h.cache.set(
        &"edge/private".parse().unwrap(),
        gateway_with_secret("private", "edge/private-cert", "private-backend"),
    );
    let mut client = h.client(&h.gateway_leaf("edge/public")).await.unwrap();
    let mut s = Delta::open(
        &mut client,
        DeltaDiscoveryRequest {
            node: node(&spiffe("edge/public")),
            type_url: cds(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = s.recv().await;
    assert_eq!(
        names(&r.resources),
        vec!["public-backend"],
        "only its own clusters"
    );
    s.ack(&r).await;

    // It asks, by name, for edge/private's listener secret (and its own).
    s.send(DeltaDiscoveryRequest {
        type_url: ResourceType::Secret.type_url().to_owned(),
        resource_names_subscribe: vec!["edge/private-cert".into(), "edge/public-cert".into()],
        ..Default::default()
    })
    .await;
    let r = s.recv().await;
    assert_eq!(
        names(&r.resources),
        vec!["edge/public-cert"],
        "its own secret only"
    );
    assert_eq!(
        r.removed_resources,
        vec!["edge/private-cert"],
        "the other is reported as not existing"
    );
    h.wait_security("secret_not_granted").await;
    let ev = h
        .registry
        .security_events()
        .into_iter()
        .find(|e| e.kind == "secret_not_granted")
        .unwrap();
    assert!(ev.detail.contains("edge/private-cert"));
    assert_eq!(ev.identity.as_deref(), Some(spiffe("edge/public").as_str()));

    // A wildcard LDS gets only its own listener.
    s.send(DeltaDiscoveryRequest {
        type_url: ResourceType::Listener.type_url().to_owned(),
        ..Default::default()
    })
    .await;
    let r = s.recv().await;
    assert_eq!(names(&r.resources), vec!["public"]);
}

/// With every handshake slot taken (here: one, by a connection that never sends a
/// ClientHello), a proxy's connection waits in the accept queue and is served once the slot
/// frees, instead of being closed; the stalled connection is cut at the handshake timeout.
#[tokio::test]
async fn connections_beyond_the_handshake_limit_wait_instead_of_being_refused() {
    let h = Harness::start_with(gatehouse_controller::xds::XdsServerConfig {
        max_concurrent_handshakes: 1,
        handshake_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let _stalled = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    // Let the accept loop give the only slot to the stalled connection.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let leaf = h.gateway_leaf("default/gw");
    let clients = (0..4).map(|_| h.client(&leaf));
    for c in futures_util::future::join_all(clients).await {
        assert!(c.is_ok(), "a waiting connection was refused: {c:?}");
    }
    h.wait_security("tls_handshake_rejected").await;
    // Waiting for a free slot is itself a security event.
    h.wait_security("handshake_capacity").await;
    let events = h.registry.security_events();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "tls_handshake_rejected" && e.detail.contains("no handshake within")),
        "{events:?}"
    );
}
