//! Admission of 10,000 routes with the whole guardrail library (`cargo bench -p
//! gatehouse-policies`). Each route makes the claims the controller would make for a route
//! with a hostname, two paths, a backend, a JWT provider and CORS on a public listener: nine
//! claims, 90,000 Cedar requests per run. Prints the best and median of a few runs; asserts
//! nothing about time.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_policies::*;

const ROUTES: usize = 10_000;
const RUNS: usize = 5;

fn library() -> Vec<PolicySource> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the library")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            PolicySource::file(
                f.display().to_string(),
                std::fs::read_to_string(f).expect("a policy file"),
            )
        })
        .collect()
}

fn claims() -> Vec<Claim> {
    let mut out = Vec::with_capacity(ROUTES * 9);
    for i in 0..ROUTES {
        let ns = format!("team-{}", i % 100);
        let host = format!("r{i}.team-{}.example.com", i % 100);
        let a = Arc::new(Attachment {
            route: RouteFacts {
                kind: "HTTPRoute".into(),
                namespace: ns.clone(),
                name: format!("route-{i}"),
                hostnames: vec![host.clone()],
                authn: AuthnFacts {
                    jwt: true,
                    jwt_issuers: ["https://idp.example.com".to_owned()].into(),
                    ..AuthnFacts::default()
                },
            },
            listener: ListenerFacts {
                gateway_namespace: "infra".into(),
                gateway_name: "edge".into(),
                name: "https".into(),
                port: 443,
                protocol: "HTTPS".into(),
                public: true,
                ..ListenerFacts::default()
            },
        });
        let mut push = |kind| {
            out.push(Claim {
                attachment: a.clone(),
                kind,
            })
        };
        push(ClaimKind::AttachRoute);
        push(ClaimKind::ClaimHostname { hostname: host });
        // One route in ten also exposes an admin path: denied by `no-sensitive-paths-public`.
        let admin = if i % 10 == 0 { "admin" } else { "static" };
        for p in [format!("/api/{i}"), format!("/{admin}/{i}")] {
            push(ClaimKind::ExposePath {
                path: PathFacts {
                    match_type: "PathPrefix".into(),
                    value: p,
                },
                method: None,
                header_matches: 0,
            });
        }
        push(ClaimKind::ReferenceBackend {
            backend: BackendFacts {
                group: "gatehouse.dev".into(),
                kind: "Backend".into(),
                namespace: ns.clone(),
                name: format!("svc-{i}"),
                port: Some(8080),
            },
            reference_grant: false,
            mirror: false,
        });
        push(ClaimKind::UseJwtProvider {
            source: SourceFacts {
                namespace: ns.clone(),
                name: format!("jwt-{i}"),
                from_gateway: false,
            },
            provider: JwtProviderFacts {
                name: "idp".into(),
                issuer: Some("https://idp.example.com".into()),
                audiences: vec![ns.clone()],
                jwks_uri: Some("https://idp.example.com/jwks.json".into()),
            },
        });
        push(ClaimKind::ConfigureCors {
            allow_origins: vec!["https://app.example.com".into()],
            allow_credentials: true,
            allow_methods: vec!["GET".into()],
            allow_headers: vec![],
        });
        push(ClaimKind::SetIpRules {
            allow: vec!["10.0.0.0/8".into()],
            deny: vec![],
        });
        push(ClaimKind::UseBasicAuth {
            source: SourceFacts::default(),
        });
    }
    out
}

fn main() {
    let t = Instant::now();
    let engine = Engine::compile(&library())
        .expect("the library compiles")
        .engine;
    let compile = t.elapsed();
    let claims = claims();
    let data = AdmissionData::default();
    let mut times: Vec<Duration> = Vec::new();
    let mut denied = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let d = engine.evaluate(&claims, &data);
        times.push(t.elapsed());
        denied = d.iter().filter(|d| d.decision == Decision::Deny).count();
        assert_eq!(d.len(), claims.len());
    }
    times.sort();
    let empty = Engine::empty();
    let t = Instant::now();
    let _ = empty.evaluate(&claims, &data);
    let baseline_only = t.elapsed();
    let best = times[0];
    let median = times[times.len() / 2];
    println!(
        "admission: {} policies compiled in {compile:?}; {ROUTES} routes, {} claims ({denied} denied): best {best:?}, median {median:?} over {RUNS} runs; {:.1} µs per claim, {:.1} µs per route",
        engine.policies().len(),
        claims.len(),
        median.as_secs_f64() * 1e6 / claims.len() as f64,
        median.as_secs_f64() * 1e6 / ROUTES as f64,
    );
    println!(
        "admission: the same claims with no guardrail (entities, contexts, requests, the baseline permit): {baseline_only:?}"
    );
}
