//! The shipped guardrail library compiles against the schema without warnings, and the engine
//! judges claims as documented: ids from `@id`, enforcement modes, exemptions and tenants as
//! data, zones, and evaluation errors counted as denies.

use std::path::Path;
use std::sync::Arc;

use gatehouse_policies::*;

fn library() -> Vec<PolicySource> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| PolicySource::file(f.display().to_string(), std::fs::read_to_string(f).unwrap()))
        .collect()
}

#[test]
fn the_library_validates_strictly_without_warnings() {
    let c = match Engine::compile(&library()) {
        Ok(c) => c,
        Err(e) => panic!("{:#?}", e.diagnostics),
    };
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    assert!(
        c.engine.policies().len() >= 13,
        "{:?}",
        c.engine.policies().keys()
    );
    for p in c.engine.policies().values() {
        assert!(p.forbid, "{}", p.id);
        assert!(
            !p.message.starts_with("forbidden by"),
            "{} has no @message",
            p.id
        );
    }
}

fn attachment(ns: &str, public: bool) -> Arc<Attachment> {
    Arc::new(Attachment {
        route: RouteFacts {
            kind: "HTTPRoute".into(),
            namespace: ns.into(),
            name: "web".into(),
            hostnames: vec!["*".into()],
            authn: AuthnFacts::default(),
        },
        listener: ListenerFacts {
            gateway_namespace: "infra".into(),
            gateway_name: if public { "edge" } else { "internal" }.into(),
            public,
            ..ListenerFacts::default()
        },
    })
}

fn claim(ns: &str, public: bool, kind: ClaimKind) -> Claim {
    Claim {
        attachment: attachment(ns, public),
        kind,
    }
}

fn engine(text: &str) -> Engine {
    match Engine::compile(&[PolicySource::file("test.cedar", text)]) {
        Ok(c) => c.engine,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_typo_is_refused_with_file_line_and_a_hint() {
    let text = "@id(\"ok\")\n@message(\"m\")\nforbid (principal, action, resource);\n\n@id(\"typo\")\n@message(\"m\")\nforbid (principal, action == Gatehouse::Action::\"attachRoute\", resource)\nwhen { resource.publc };\n";
    let err = Engine::compile(&[PolicySource::file("guard.cedar", text)]).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!((d.file.as_str(), d.line), ("guard.cedar", 8), "{d}");
    assert_eq!(d.policy.as_deref(), Some("typo"));
    assert!(d.to_string().contains("publc"), "{d}");
    assert!(
        d.help.as_deref().unwrap_or_default().contains("public"),
        "{d}"
    );
}

#[test]
fn decisions_name_policies_by_id_and_follow_enforcement() {
    let text = |mode: &str| {
        format!(
            "@id(\"public-requires-authn\")\n@message(\"needs authn\")\n{mode}forbid (principal, action == Gatehouse::Action::\"attachRoute\", resource)\nwhen {{ resource.public }}\nunless {{ context.route.authn.jwt || principal in Gatehouse::Exemption::\"public-requires-authn\" }};\n"
        )
    };
    let claims = [
        claim("shop", true, ClaimKind::AttachRoute),
        claim("shop", false, ClaimKind::AttachRoute),
        claim("status", true, ClaimKind::AttachRoute),
    ];
    let mut data = AdmissionData::default();
    data.exemptions
        .entry("public-requires-authn".into())
        .or_default()
        .insert("status".into());
    let d = engine(&text("")).evaluate(&claims, &data);
    assert_eq!(d[0].decision, Decision::Deny);
    assert_eq!(
        d[0].policies().into_iter().collect::<Vec<_>>(),
        ["public-requires-authn"]
    );
    assert_eq!(d[0].findings[0].message, "needs authn");
    assert_eq!(d[1].decision, Decision::Allow, "internal listener");
    assert_eq!(d[2].decision, Decision::Allow, "exempted namespace");
    let d = engine(&text("@enforcement(\"warn\")\n")).evaluate(&claims, &data);
    assert_eq!(d[0].decision, Decision::Warn);
    let d = engine(&text("@enforcement(\"dryrun\")\n")).evaluate(&claims, &data);
    assert_eq!(d[0].decision, Decision::Allow);
    assert_eq!(d[0].findings[0].enforcement, Enforcement::Dryrun);
}

#[test]
fn a_policy_that_errors_at_evaluation_denies_and_says_so() {
    // Valid under strict validation, but `port * 10^18` overflows a Cedar Long. Cedar skips
    // an erroring policy (the baseline permit alone would allow): Gatehouse denies. It does so
    // even when the policy is only `dryrun`.
    for mode in ["", "@enforcement(\"dryrun\")\n"] {
        let e = engine(&format!(
            "@id(\"port-check\")\n@message(\"m\")\n{mode}forbid (principal, action == Gatehouse::Action::\"attachRoute\", resource)\nwhen {{ resource.port * 1000000000000000000 < 0 }};\n"
        ));
        let d = e.evaluate(
            &[claim("shop", true, ClaimKind::AttachRoute)],
            &AdmissionData::default(),
        );
        assert_eq!(d[0].decision, Decision::Deny, "{mode}");
        let f = &d[0].findings[0];
        assert!(f.error);
        assert_eq!(f.policy, "port-check");
        assert!(
            f.message
                .contains("failed to evaluate, which counts as a deny")
                && f.message.contains("overflow"),
            "{}",
            f.message
        );
    }
}

#[test]
fn a_configuration_value_cedar_cannot_read_denies_and_says_so() {
    // The translator accepts `::ffff:10.0.0.0/104` (an IPv4-mapped IPv6 range) and
    // `10.0.0.0/08`; Cedar's `ip()` refuses both. The claim cannot be judged: it is denied.
    let e = engine(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("library/no-open-ip-allow-without-authn.cedar"),
        )
        .unwrap(),
    );
    for bad in ["::ffff:10.0.0.0/104", "10.0.0.0/08"] {
        let d = e.evaluate(
            &[claim(
                "shop",
                true,
                ClaimKind::SetIpRules {
                    allow: vec![bad.into()],
                    deny: vec![],
                },
            )],
            &AdmissionData::default(),
        );
        assert_eq!(d[0].decision, Decision::Deny, "{bad}");
        assert!(d[0].findings[0].error);
        assert_eq!(d[0].findings[0].policy, ADMISSION_ID);
        assert!(
            d[0].findings[0]
                .message
                .contains("could not be evaluated, which counts as a deny"),
            "{}",
            d[0].findings[0].message
        );
    }
    let ok = e.evaluate(
        &[claim(
            "shop",
            true,
            ClaimKind::SetIpRules {
                allow: vec!["10.0.0.0/8".into()],
                deny: vec![],
            },
        )],
        &AdmissionData::default(),
    );
    assert_eq!(ok[0].decision, Decision::Allow);
}

#[test]
fn reserved_zones_cover_names_inside_and_wildcards_above() {
    let e = engine(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("library/reserved-zone-payments.cedar"),
        )
        .unwrap(),
    );
    let mut data = AdmissionData::default();
    data.tenants
        .insert("payments-api".into(), "payments".into());
    let host = |ns: &str, h: &str| claim(ns, true, ClaimKind::ClaimHostname { hostname: h.into() });
    let cases = [
        ("shop", "checkout.pay.example.com", Decision::Deny),
        ("shop", "pay.example.com", Decision::Deny),
        ("shop", "*.pay.example.com", Decision::Deny),
        ("shop", "*.example.com", Decision::Deny),
        ("shop", "*", Decision::Allow),
        ("shop", "shop.example.com", Decision::Allow),
        ("shop", "pay.example.org", Decision::Allow),
        ("payments-api", "checkout.pay.example.com", Decision::Allow),
        ("payments-api", "*.example.com", Decision::Allow),
    ];
    let claims: Vec<Claim> = cases.iter().map(|(ns, h, _)| host(ns, h)).collect();
    let d = e.evaluate(&claims, &data);
    for ((ns, h, want), got) in cases.iter().zip(&d) {
        assert_eq!(got.decision, *want, "{ns} claiming {h}: {got:?}");
    }
}
