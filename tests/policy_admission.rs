//! Admission in the control plane, without Envoy: the policy loader (last valid set, fail
//! closed at start), GatewayPolicy text with diagnostics located in its YAML file, and the
//! admitter dropping a denied route from the snapshot while keeping the others.

use std::path::Path;

use gatehouse_controller::ResourceType;
use gatehouse_controller::admission::{Admitter, Policies, PolicyLoader};
use gatehouse_controller::model::{Config, load_dir};
use gatehouse_controller::translate::TranslateOptions;
use gatehouse_policies::Decision;

const CONFIG: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse}
spec: {controllerName: gatehouse.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: apps}
spec:
  gatewayClassName: gatehouse
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {name: b, namespace: apps}
spec: {endpoints: [{address: 127.0.0.1, port: 9000}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: apps}
spec:
  parentRefs: [{name: edge}]
  rules:
  - matches: [{path: {value: /web}}]
    backendRefs: [{group: gatehouse.dev, kind: Backend, name: b}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: console, namespace: apps}
spec:
  parentRefs: [{name: edge}]
  rules:
  - matches: [{path: {value: /debug}}]
    backendRefs: [{group: gatehouse.dev, kind: Backend, name: b}]
";

const GUARD: &str = "@id(\"no-debug\")
@message(\"no debug paths\")
forbid (principal, action == Gatehouse::Action::\"exposePath\", resource)
when { context.path.lower like \"/debug*\" };
";

fn setup(policy: Option<&str>) -> (tempfile::TempDir, Config) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.yaml"), CONFIG).unwrap();
    if let Some(p) = policy {
        std::fs::write(tmp.path().join("guard.cedar"), p).unwrap();
    }
    let (config, diags) = load_dir(tmp.path()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    (tmp, config)
}

fn routes_json(a: &gatehouse_controller::admission::Admitted) -> String {
    let snap = a.translation.snapshots.values().next().unwrap();
    snap.resources(ResourceType::Route)
        .values()
        .map(|r| {
            gatehouse_controller::translate::to_json(r)
                .unwrap()
                .to_string()
        })
        .collect()
}

fn status_of(a: &gatehouse_controller::admission::Admitted, name: &str) -> String {
    a.translation
        .status
        .iter()
        .filter(|s| s.object.name == name)
        .flat_map(|s| s.conditions.iter())
        .map(|c| {
            format!(
                "{}={} {}: {}",
                c.condition_type, c.status, c.reason, c.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_denied_route_is_dropped_from_the_snapshot_and_the_others_stay() {
    let (tmp, config) = setup(Some(GUARD));
    let mut loader = PolicyLoader::default();
    let u = loader.reload(tmp.path(), &config);
    assert!(u.changed && !u.refused, "{:?}", u.diagnostics);
    let a = Admitter::new(TranslateOptions::default()).translate(&config, &loader.policies());
    let routes = routes_json(&a);
    assert!(
        routes.contains("/web") && !routes.contains("/debug"),
        "{routes}"
    );
    let st = status_of(&a, "console");
    assert!(
        st.contains("Accepted=False NotAllowedByPolicy: policy `no-debug` (deny): no debug paths (claim: exposePath `/debug` on listener apps/edge/http (public))"),
        "{st}"
    );
    assert_eq!(
        a.report.decision(
            &a.report
                .objects
                .keys()
                .find(|k| k.name == "console")
                .unwrap()
                .clone()
        ),
        Decision::Deny
    );

    // `warn`: programmed, with a warning condition.
    std::fs::write(
        tmp.path().join("guard.cedar"),
        GUARD.replace("@message(", "@enforcement(\"warn\")\n@message("),
    )
    .unwrap();
    let u = loader.reload(tmp.path(), &config);
    assert!(u.changed);
    let a = Admitter::new(TranslateOptions::default()).translate(&config, &loader.policies());
    assert!(routes_json(&a).contains("/debug"));
    assert!(
        status_of(&a, "console")
            .contains("PolicyWarning=True WarnedByPolicy: policy `no-debug` (warn)"),
        "{}",
        status_of(&a, "console")
    );

    // No policies: admission is off.
    let (tmp2, config2) = setup(None);
    let mut none = PolicyLoader::default();
    none.reload(tmp2.path(), &config2);
    assert!(matches!(none.policies(), Policies::Off));
}

#[test]
fn an_invalid_set_keeps_the_last_valid_one_and_fails_closed_at_start() {
    let (tmp, config) = setup(Some(GUARD));
    let mut loader = PolicyLoader::default();
    loader.reload(tmp.path(), &config);
    std::fs::write(
        tmp.path().join("guard.cedar"),
        GUARD.replace("context.path", "context.pth"),
    )
    .unwrap();
    let u = loader.reload(tmp.path(), &config);
    assert!(u.refused && !u.changed);
    let d = u.diagnostics[0].to_string();
    assert!(d.contains("guard.cedar:4:") && d.contains("pth"), "{d}");
    // The last valid set still denies.
    let mut admitter = Admitter::new(TranslateOptions::default());
    let a = admitter.translate(&config, &loader.policies());
    assert!(!routes_json(&a).contains("/debug"));
    assert!(routes_json(&a).contains("/web"));

    // A control plane that starts with an invalid set programs nothing.
    let mut fresh = PolicyLoader::default();
    assert!(fresh.reload(tmp.path(), &config).refused);
    assert!(matches!(fresh.policies(), Policies::RefuseAll(_)));
    let a = admitter.translate(&config, &fresh.policies());
    let routes = routes_json(&a);
    assert!(
        !routes.contains("/web") && !routes.contains("/debug"),
        "{routes}"
    );
    assert!(
        status_of(&a, "web").contains("NotAllowedByPolicy"),
        "{}",
        status_of(&a, "web")
    );
}

#[test]
fn gateway_policy_objects_carry_policies_and_exemptions() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.yaml"), CONFIG).unwrap();
    let gp = |body: &str, exempt: &str| {
        format!(
            "apiVersion: gatehouse.dev/v1alpha1
kind: GatewayPolicy
metadata: {{name: platform}}
spec:
  enforcement: deny
  exemptions: [{{policy: no-debug, namespaces: [{exempt}]}}]
  policies: |
{}",
            body.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        )
    };
    let with_exemption = GUARD.replace(
        "when {",
        "unless { principal in Gatehouse::Exemption::\"no-debug\" }\nwhen {",
    );
    std::fs::write(tmp.path().join("policy.yaml"), gp(&with_exemption, "other")).unwrap();
    let (config, diags) = load_dir(tmp.path()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let mut loader = PolicyLoader::default();
    let u = loader.reload(tmp.path(), &config);
    assert!(!u.refused, "{:?}", u.diagnostics);
    let a = Admitter::new(TranslateOptions::default()).translate(&config, &loader.policies());
    assert!(!routes_json(&a).contains("/debug"));

    // Exempting the namespace (data, not a policy edit) lets the route through.
    std::fs::write(tmp.path().join("policy.yaml"), gp(&with_exemption, "apps")).unwrap();
    let (config, _) = load_dir(tmp.path()).unwrap();
    assert!(loader.reload(tmp.path(), &config).changed);
    let a = Admitter::new(TranslateOptions::default()).translate(&config, &loader.policies());
    assert!(routes_json(&a).contains("/debug"));

    // An error in the embedded text points at its line in the YAML file.
    std::fs::write(
        tmp.path().join("policy.yaml"),
        gp(&GUARD.replace("context.path", "context.pth"), "apps"),
    )
    .unwrap();
    let (config, _) = load_dir(tmp.path()).unwrap();
    let u = loader.reload(tmp.path(), &config);
    assert!(u.refused);
    let d = u.diagnostics[0].to_string();
    let file = tmp.path().join("policy.yaml");
    assert!(
        d.starts_with(&format!("{}:11:", Path::new(&file).display())),
        "{d}"
    );
}
