//! Certificate issuance rate (`cargo bench -p gatehouse-certs`): a gateway client certificate
//! (new P-256 key, signed by the CA), with and without writing it to an on-disk store.
//! Benchmarks, not tests: nothing here asserts a time.

use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_certs::{CaStore, CertificateAuthority, Identity, LeafRequest, TrustDomain};

fn issue(c: &mut Criterion) {
    let now = SystemTime::now();
    let ca = CertificateAuthority::generate(
        TrustDomain::default(),
        Duration::from_secs(365 * 86_400),
        now,
    )
    .expect("a CA");
    let mut g = c.benchmark_group("issue");
    let mut n = 0u64;
    g.bench_function("gateway_leaf", |b| {
        b.iter(|| {
            n += 1;
            let gw = format!("team-{}/gw-{n}", n % 10).parse().expect("a name");
            ca.issue(&LeafRequest::new(Identity::Gateway(gw)), now)
                .expect("issued")
        })
    });
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = CaStore::open(dir.path()).expect("a store");
    store.init(&ca, false).expect("init");
    g.bench_function("gateway_leaf_written_to_store", |b| {
        b.iter(|| {
            n += 1;
            let gw = format!("team-{}/gw-{}", n % 10, n % 100)
                .parse()
                .expect("a name");
            let leaf = ca
                .issue(&LeafRequest::new(Identity::Gateway(gw)), now)
                .expect("issued");
            store
                .write_leaf(&leaf, &ca.trust_anchors())
                .expect("written")
        })
    });
    g.finish();
}

criterion_group!(benches, issue);
criterion_main!(benches);
