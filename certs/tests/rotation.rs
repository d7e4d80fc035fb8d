//! Certificate rotation on paused tokio time: a day of renewals in milliseconds, with a real TLS
//! server on 127.0.0.1 that never restarts.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_certs::{
    CaStore, CertificateAuthority, Clock, Identity, LeafRequest, ReloadableCert, RotationOutcome,
    Rotator, TokioClock, TrustDomain, client_config, rotate_store, server_config,
};
use support::{connect, echo_server};

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn rotation_swaps_the_certificate_for_new_handshakes_and_keeps_open_connections() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(SystemTime::now()));
    let ca = Arc::new(
        CertificateAuthority::generate(TrustDomain::default(), 365 * 24 * HOUR, clock.now())
            .unwrap(),
    );
    let mut server_req = LeafRequest::new(Identity::Controller);
    server_req.dns_names = vec!["xds.gatehouse.test".into()];
    let first = ca.issue(&server_req, clock.now()).unwrap();
    let slot = Arc::new(ReloadableCert::new(&first).unwrap());
    let cfg = server_config(&ca.trust_anchors(), slot.clone(), clock.clone()).unwrap();
    let (addr, _rx) = echo_server(cfg).await;

    let mut gw_req = LeafRequest::new(Identity::Gateway("edge/public".parse().unwrap()));
    gw_req.validity = 30 * 24 * HOUR;
    let gw = ca.issue(&gw_req, clock.now()).unwrap();
    let client_cfg = client_config(
        &ca.trust_anchors(),
        Arc::new(ReloadableCert::new(&gw).unwrap()),
        clock.clone(),
    )
    .unwrap();

    // A connection opened before any rotation.
    let mut early = connect(client_cfg.clone(), addr, "xds.gatehouse.test")
        .await
        .unwrap();
    assert_eq!(early.server_cert, first.certificate().to_vec());

    let mut seen = vec![first.certificate().to_vec()];
    // Three rotations: 39 hours, past the first certificate's 24 h lifetime.
    for round in 1..=3 {
        // The rotator runs only while time moves, so that real socket I/O below cannot make
        // paused time jump ahead to its next wake-up.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let ca2 = ca.clone();
        let req = server_req.clone();
        let rotator = Rotator::new(clock.clone(), slot.clone(), move |now| ca2.issue(&req, now));
        let task = tokio::spawn(rotator.run(async {
            let _ = stopped.await;
        }));
        let before = slot.validity();
        tokio::time::advance(13 * HOUR).await;
        // Let the woken rotator issue and swap.
        for _ in 0..100 {
            if slot.validity() != before {
                break;
            }
            tokio::task::yield_now().await;
        }
        let _ = stop.send(());
        task.await.unwrap();
        let (nb, na, der) = slot.validity();
        assert_ne!(
            (nb, na),
            (before.0, before.1),
            "round {round}: rotated after 13 h"
        );
        assert!(
            nb <= clock.now() && clock.now() < na,
            "round {round}: the new certificate is current"
        );

        // New handshakes get the new certificate ...
        let fresh = connect(client_cfg.clone(), addr, "xds.gatehouse.test")
            .await
            .unwrap();
        assert_eq!(fresh.server_cert, der, "round {round}");
        assert!(
            !seen.contains(&fresh.server_cert),
            "round {round}: a certificate not seen before"
        );
        seen.push(fresh.server_cert);

        // ... and the connection opened before the first rotation still works.
        assert_eq!(
            early.echo(&format!("round {round}")).await.unwrap(),
            format!("round {round}")
        );
    }
    assert_eq!(seen.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn rotator_waits_until_half_life() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(SystemTime::now()));
    let ca = Arc::new(
        CertificateAuthority::generate(TrustDomain::default(), 365 * 24 * HOUR, clock.now())
            .unwrap(),
    );
    let req = LeafRequest::new(Identity::Controller);
    let slot = Arc::new(ReloadableCert::new(&ca.issue(&req, clock.now()).unwrap()).unwrap());
    let ca2 = ca.clone();
    let rotator = Rotator::new(clock.clone(), slot.clone(), move |now| ca2.issue(&req, now));
    let task = tokio::spawn(rotator.run(std::future::pending()));
    let before = slot.validity();
    // Renewal is due between 40% and 50% of the lifetime (24 h + 5 min backdating).
    tokio::time::advance(9 * HOUR).await;
    tokio::task::yield_now().await;
    assert_eq!(
        slot.validity(),
        before,
        "not renewed before 40% of the lifetime"
    );
    tokio::time::advance(3 * HOUR + Duration::from_secs(300)).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_ne!(slot.validity(), before, "renewed by 50% of the lifetime");
    task.abort();
}

#[test]
fn rotate_store_renews_only_what_is_due() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CaStore::open(tmp.path()).unwrap();
    let t0 = SystemTime::now();
    let ca = CertificateAuthority::generate(TrustDomain::default(), 365 * 24 * HOUR, t0).unwrap();
    store.init(&ca, false).unwrap();
    let anchors = store.trust_anchors().unwrap();
    let mut ctl = LeafRequest::new(Identity::Controller);
    ctl.dns_names = vec!["xds.example".into()];
    ctl.ip_addresses = vec!["127.0.0.1".parse().unwrap()];
    store
        .write_leaf(&ca.issue(&ctl, t0).unwrap(), &anchors)
        .unwrap();
    let mut gw = LeafRequest::new(Identity::Gateway("edge/public".parse().unwrap()));
    gw.validity = 72 * HOUR;
    store
        .write_leaf(&ca.issue(&gw, t0).unwrap(), &anchors)
        .unwrap();

    // 13 h later: the 24 h controller certificate is due, the 72 h gateway certificate is not.
    let later = t0 + 13 * HOUR;
    let outcomes = rotate_store(&store, later).unwrap();
    assert_eq!(outcomes.len(), 2);
    match &outcomes[0] {
        RotationOutcome::Renewed {
            identity,
            new_not_after,
            shortened,
            ..
        } => {
            assert_eq!(*identity, Identity::Controller);
            assert!(!shortened);
            let lifetime = new_not_after.duration_since(later).unwrap();
            assert!(
                (24 * HOUR - Duration::from_secs(2)..=24 * HOUR).contains(&lifetime),
                "{lifetime:?}"
            );
        }
        other => panic!("controller: {other:?}"),
    }
    assert!(
        matches!(&outcomes[1], RotationOutcome::Kept { .. }),
        "{:?}",
        outcomes[1]
    );

    // The renewed certificate keeps its SANs.
    let leaves = store.leaves().unwrap();
    assert_eq!(leaves[0].dns_names, vec!["xds.example"]);
    assert_eq!(
        leaves[0].ip_addresses,
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );

    // Asking again at the same time renews nothing.
    let again = rotate_store(&store, later).unwrap();
    assert!(
        again
            .iter()
            .all(|o| matches!(o, RotationOutcome::Kept { .. })),
        "{again:?}"
    );
}
