//! Incremental ADS against a real server over real mTLS on 127.0.0.1.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use gatehouse_controller::{ResourceType, Snapshot};
use support::*;

const GW: &str = "edge/public";

fn snapshot(clusters: &[(&str, i64)]) -> Snapshot {
    let mut b = Snapshot::builder();
    for (name, t) in clusters {
        b.cluster(&cluster(name, *t));
    }
    b.build()
}

fn wildcard_cds() -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: node(&spiffe(GW)),
        type_url: cds(),
        ..Default::default()
    }
}

#[tokio::test]
async fn wildcard_updates_removals_and_no_op_suppression() {
    let h = Harness::start().await;
    h.cache
        .set(&GW.parse().unwrap(), snapshot(&[("a", 1), ("b", 1)]));
    let mut client = h.client(&h.gateway_leaf(GW)).await.unwrap();
    let mut s = Delta::open(&mut client, wildcard_cds()).await.unwrap();

    let r = s.recv().await;
    assert_eq!(names(&r.resources), vec!["a", "b"]);
    assert!(r.removed_resources.is_empty());
    s.ack(&r).await;

    // One cluster changes: only it is sent.
    h.cache
        .set(&GW.parse().unwrap(), snapshot(&[("a", 1), ("b", 2)]));
    let r2 = s.recv().await;
    assert_eq!(names(&r2.resources), vec!["b"]);
    assert_ne!(r2.nonce, r.nonce);
    assert_ne!(r2.system_version_info, r.system_version_info);
    s.ack(&r2).await;

    // One is removed.
    h.cache.set(&GW.parse().unwrap(), snapshot(&[("b", 2)]));
    let r3 = s.recv().await;
    assert!(r3.resources.is_empty());
    assert_eq!(r3.removed_resources, vec!["a"]);
    s.ack(&r3).await;

    // A snapshot with the same content, and one with the same resources rebuilt: nothing.
    h.cache.set(&GW.parse().unwrap(), snapshot(&[("b", 2)]));
    let mut b = h.cache.get(&GW.parse().unwrap()).to_builder();
    b.cluster(&cluster("b", 2));
    h.cache.set(&GW.parse().unwrap(), b.build());
    s.silent(Duration::from_millis(300)).await;

    // The registry knows what the proxy ACKed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let proxies = h.registry.proxies();
    assert_eq!(proxies.len(), 1);
    assert_eq!(proxies[0].identity, spiffe(GW));
    assert_eq!(proxies[0].variant, "delta");
    assert_eq!(
        proxies[0].types["CDS"].acked_version,
        r3.system_version_info
    );
    assert_eq!(proxies[0].types["CDS"].responses, 3);
}

#[tokio::test]
async fn named_subscriptions_and_unsubscriptions() {
    let h = Harness::start().await;
    let mut b = Snapshot::builder();
    for name in ["a", "b"] {
        b.endpoints(&ClusterLoadAssignment {
            cluster_name: name.into(),
            ..Default::default()
        });
    }
    h.cache.set(&GW.parse().unwrap(), b.build());
    let eds = ResourceType::Endpoint.type_url().to_owned();
    let mut client = h.client(&h.gateway_leaf(GW)).await.unwrap();
    let mut s = Delta::open(
        &mut client,
        DeltaDiscoveryRequest {
            node: node(&spiffe(GW)),
            type_url: eds.clone(),
            resource_names_subscribe: vec!["a".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = s.recv().await;
    assert_eq!(names(&r.resources), vec!["a"], "only what was asked for");

    // Subscribe to b as part of the ACK: only b comes.
    s.send(DeltaDiscoveryRequest {
        type_url: eds.clone(),
        response_nonce: r.nonce.clone(),
        resource_names_subscribe: vec!["b".into()],
        ..Default::default()
    })
    .await;
    let r = s.recv().await;
    assert_eq!(names(&r.resources), vec!["b"]);
    s.ack(&r).await;

    // A name that does not exist is reported as removed, so the client does not wait for it.
    s.send(DeltaDiscoveryRequest {
        type_url: eds.clone(),
        resource_names_subscribe: vec!["ghost".into()],
        ..Default::default()
    })
    .await;
    let r = s.recv().await;
    assert!(r.resources.is_empty());
    assert_eq!(r.removed_resources, vec!["ghost"]);
    s.ack(&r).await;

    // Unsubscribe a; a change to a is then not sent, a change to b is.
    s.send(DeltaDiscoveryRequest {
        type_url: eds.clone(),
        resource_names_unsubscribe: vec!["a".into()],
        ..Default::default()
    })
    .await;
    // Let the server take the unsubscription before the change happens.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut b = h.cache.get(&GW.parse().unwrap()).to_builder();
    b.endpoints(&ClusterLoadAssignment {
        cluster_name: "a".into(),
        policy: Some(Default::default()),
        ..Default::default()
    });
    h.cache.set(&GW.parse().unwrap(), b.build());
    s.silent(Duration::from_millis(300)).await;
    let mut b = h.cache.get(&GW.parse().unwrap()).to_builder();
    b.endpoints(&ClusterLoadAssignment {
        cluster_name: "b".into(),
        policy: Some(Default::default()),
        ..Default::default()
    });
    h.cache.set(&GW.parse().unwrap(), b.build());
    assert_eq!(names(&s.recv().await.resources), vec!["b"]);
}

#[tokio::test]
async fn a_nack_is_recorded_and_the_acked_version_stays() {
    let h = Harness::start().await;
    let gw = GW.parse().unwrap();
    h.cache.set(&gw, snapshot(&[("a", 1)]));
    let mut client = h.client(&h.gateway_leaf(GW)).await.unwrap();
    let mut s = Delta::open(&mut client, wildcard_cds()).await.unwrap();
    let good = s.recv().await;
    s.ack(&good).await;

    h.cache.set(&gw, snapshot(&[("a", 99)]));
    let bad = s.recv().await;
    s.send(DeltaDiscoveryRequest {
        type_url: cds(),
        response_nonce: bad.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: 3,
            message: "cluster a: connect_timeout too large".into(),
            details: vec![],
        }),
        ..Default::default()
    })
    .await;
    // The rejected version is not pushed again while nothing changes.
    s.silent(Duration::from_millis(300)).await;
    let p = &h.registry.proxies()[0];
    let cds_status = &p.types["CDS"];
    assert_eq!(
        cds_status.acked_version, good.system_version_info,
        "the previous version stays in force"
    );
    let nack = cds_status.last_nack.as_ref().expect("NACK recorded");
    assert_eq!(nack.message, "cluster a: connect_timeout too large");
    assert_eq!(nack.rejected_version, bad.system_version_info);
    assert_eq!(h.registry.last_nacks()[GW].nonce, bad.nonce);

    // A fixed configuration is pushed and ACKed.
    h.cache.set(&gw, snapshot(&[("a", 2)]));
    let fixed = s.recv().await;
    s.ack(&fixed).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.registry.proxies()[0].types["CDS"].acked_version,
        fixed.system_version_info
    );
}

#[tokio::test]
async fn reconnect_with_known_versions_gets_only_what_changed() {
    let h = Harness::start().await;
    let gw = GW.parse().unwrap();
    h.cache.set(&gw, snapshot(&[("a", 1), ("b", 1), ("c", 1)]));
    let leaf = h.gateway_leaf(GW);
    let mut client = h.client(&leaf).await.unwrap();
    let mut s = Delta::open(&mut client, wildcard_cds()).await.unwrap();
    let r = s.recv().await;
    let versions: HashMap<String, String> = r
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect();
    drop(s);

    // While disconnected: b changes, c goes away, d appears.
    h.cache.set(&gw, snapshot(&[("a", 1), ("b", 2), ("d", 1)]));
    let mut client = h.client(&leaf).await.unwrap();
    let mut s = Delta::open(
        &mut client,
        DeltaDiscoveryRequest {
            initial_resource_versions: versions,
            ..wildcard_cds()
        },
    )
    .await
    .unwrap();
    let r = s.recv().await;
    assert_eq!(
        names(&r.resources),
        vec!["b", "d"],
        "a is unchanged and not resent"
    );
    assert_eq!(r.removed_resources, vec!["c"]);
}

#[tokio::test]
async fn a_burst_of_100_changes_makes_a_handful_of_pushes() {
    let h = Harness::start().await;
    let gw = GW.parse().unwrap();
    h.cache.set(&gw, snapshot(&[("a", 0)]));
    let mut client = h.client(&h.gateway_leaf(GW)).await.unwrap();
    let mut s = Delta::open(&mut client, wildcard_cds()).await.unwrap();
    let r = s.recv().await;
    s.ack(&r).await;

    for i in 1..=100 {
        h.cache.set(&gw, snapshot(&[("a", i)]));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut pushes = 0;
    let mut last = None;
    while let Ok(Some(Ok(r))) = tokio::time::timeout(Duration::from_millis(500), s.rx.message())
        .await
        .map(|m| m.transpose())
    {
        pushes += 1;
        s.ack(&r).await;
        last = Some(r);
    }
    let last = last.expect("at least one push");
    assert_eq!(
        last.resources[0].version,
        h.cache
            .get(&gw)
            .get(ResourceType::Cluster, "a")
            .unwrap()
            .version(),
        "the last push carries the final state"
    );
    println!("a burst of 100 changes made {pushes} pushes");
    assert!(
        (1..=20).contains(&pushes),
        "{pushes} pushes for 100 changes"
    );
}

#[tokio::test]
async fn make_before_break_ordering() {
    let h = Harness::start().await;
    let gw = GW.parse().unwrap();
    let with = |extra: bool| {
        let mut b = Snapshot::builder();
        b.cluster(&cluster("base", 1)).listener(&Listener {
            name: "base".into(),
            ..Default::default()
        });
        if extra {
            b.cluster(&cluster("new", 1)).listener(&Listener {
                name: "new".into(),
                ..Default::default()
            });
        }
        b.build()
    };
    h.cache.set(&gw, with(false));
    let mut client = h.client(&h.gateway_leaf(GW)).await.unwrap();
    let mut s = Delta::open(&mut client, wildcard_cds()).await.unwrap();
    let r = s.recv().await;
    s.ack(&r).await;
    let lds = ResourceType::Listener.type_url().to_owned();
    s.send(DeltaDiscoveryRequest {
        type_url: lds.clone(),
        ..Default::default()
    })
    .await;
    let r = s.recv().await;
    assert_eq!(r.type_url, lds);
    s.ack(&r).await;

    // Adding: the cluster before the listener that uses it.
    h.cache.set(&gw, with(true));
    let first = s.recv().await;
    let second = s.recv().await;
    assert_eq!(
        (first.type_url.as_str(), second.type_url.as_str()),
        (cds().as_str(), lds.as_str())
    );
    assert_eq!(names(&first.resources), vec!["new"]);
    s.ack(&first).await;
    s.ack(&second).await;

    // Removing: the listener before the cluster it used.
    h.cache.set(&gw, with(false));
    let first = s.recv().await;
    let second = s.recv().await;
    assert_eq!(
        (first.type_url.as_str(), second.type_url.as_str()),
        (lds.as_str(), cds().as_str())
    );
    assert_eq!(first.removed_resources, vec!["new"]);
    assert_eq!(second.removed_resources, vec!["new"]);
}
