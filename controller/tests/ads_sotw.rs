//! State-of-the-world ADS against a real server over real mTLS on 127.0.0.1.

mod support;

use std::time::Duration;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use gatehouse_controller::{ResourceType, Snapshot};
use support::*;

const GW: &str = "edge/public";

fn clusters(list: &[(&str, i64)]) -> Snapshot {
    let mut b = Snapshot::builder();
    for (n, t) in list {
        b.cluster(&cluster(n, *t));
    }
    b.build()
}

#[tokio::test]
async fn whole_sets_versions_and_no_op_suppression() {
    let h = Harness::start().await;
    let gw = GW.parse().unwrap();
    h.cache.set(&gw, clusters(&[("a", 1), ("b", 1)]));
    let mut client = h.client(&h.gateway_leaf(GW)).await.unwrap();
    let mut s = Sotw::open(
        &mut client,
        DiscoveryRequest {
            node: node(&spiffe(GW)),
            type_url: cds(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = s.recv().await;
    assert_eq!(r.resources.len(), 2);
    s.ack(&r, &[]).await;
    // An ACK is not answered.
    s.silent(Duration::from_millis(200)).await;

    h.cache.set(&gw, clusters(&[("a", 1), ("b", 2)]));
    let r2 = s.recv().await;
    assert_eq!(r2.resources.len(), 2, "state of the world: the whole set");
    assert_ne!(r2.version_info, r.version_info);
    s.ack(&r2, &[]).await;

    // Same content again: nothing.
    h.cache.set(&gw, clusters(&[("a", 1), ("b", 2)]));
    s.silent(Duration::from_millis(300)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let p = &h.registry.proxies()[0];
    assert_eq!(p.variant, "sotw");
    assert_eq!(p.types["CDS"].acked_version, r2.version_info);
}

#[tokio::test]
async fn named_resources_nack_and_stale_nonces() {
    let h = Harness::start().await;
    let gw = GW.parse().unwrap();
    let eds = ResourceType::Endpoint.type_url().to_owned();
    let cla = |name: &str, prio: u32| ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![
            envoy_types::pb::envoy::config::endpoint::v3::LocalityLbEndpoints {
                priority: prio,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let mut b = Snapshot::builder();
    b.endpoints(&cla("a", 0)).endpoints(&cla("b", 0));
    h.cache.set(&gw, b.build());
    let mut client = h.client(&h.gateway_leaf(GW)).await.unwrap();
    let mut s = Sotw::open(
        &mut client,
        DiscoveryRequest {
            node: node(&spiffe(GW)),
            type_url: eds.clone(),
            resource_names: vec!["a".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = s.recv().await;
    assert_eq!(r.resources.len(), 1, "only the named resource");

    // Asking for more names is answered with both.
    s.ack(&r, &["a", "b"]).await;
    let r2 = s.recv().await;
    assert_eq!(r2.resources.len(), 2);
    s.ack(&r2, &["a", "b"]).await;

    // A NACK: recorded, not answered.
    let mut b = h.cache.get(&gw).to_builder();
    b.endpoints(&cla("b", 7));
    h.cache.set(&gw, b.build());
    let bad = s.recv().await;
    s.send(DiscoveryRequest {
        version_info: r2.version_info.clone(),
        resource_names: vec!["a".into(), "b".into()],
        type_url: eds.clone(),
        response_nonce: bad.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: 3,
            message: "priority 7 without priority 1".into(),
            details: vec![],
        }),
        ..Default::default()
    })
    .await;
    s.silent(Duration::from_millis(200)).await;
    let st = &h.registry.proxies()[0].types["EDS"];
    assert_eq!(
        st.acked_version, r2.version_info,
        "the previous version stays in force"
    );
    assert_eq!(
        st.last_nack.as_ref().unwrap().message,
        "priority 7 without priority 1"
    );

    // A request carrying an old nonce is ignored.
    s.send(DiscoveryRequest {
        version_info: r.version_info.clone(),
        resource_names: vec!["a".into()],
        type_url: eds.clone(),
        response_nonce: r.nonce.clone(),
        ..Default::default()
    })
    .await;
    s.silent(Duration::from_millis(200)).await;
}
