//! Synthetic Gateway API configurations of the shapes in the performance reference (W1–W4),
//! as YAML files (what `gatehouse serve --source file:DIR` reads) and as a parsed [`Config`].
//!
//! Layout: one Gateway `bench/edge` of class `gatehouse` with `http_ports` plain HTTP listeners
//! (8080, 8081, …) and `tls_hostnames` HTTPS listeners on 8443, one per hostname, each with its
//! own certificate Secret. Routes are spread evenly over the route tables (one per HTTP port,
//! one per HTTPS listener), so no table holds more than `routes / tables` routes; route `i`
//! lives in namespace `team-{i % 10}`, matches `PathPrefix /r{i}` on one hostname and sends to
//! backend `b-{i % backends}` in its own namespace. One route in ten (`i % 10 == 1`, when
//! `jwt` is set) has a JWT SecurityPolicy, one in ten (`i % 10 == 2`, when `rbac` is set) an IP
//! allow-list (Envoy RBAC) that admits loopback.
//!
//! This file is shared by the criterion benches of `gatehouse-controller` (included with
//! `#[path]`) and the `gatehouse-load` harness, so it uses only `gatehouse-controller` and
//! `gatehouse-certs`.

use std::fmt::Write as _;
use std::path::Path;

use gatehouse_controller::model::{Config, load_text};

/// Namespaces the routes and backends are spread over.
pub const NAMESPACES: usize = 10;

/// A workload shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Short name (`w1`…`w4`, or `custom`).
    pub name: String,
    /// HTTPRoutes.
    pub routes: usize,
    /// Backends (a multiple of [`NAMESPACES`]).
    pub backends: usize,
    /// Endpoints per backend.
    pub endpoints: usize,
    /// Plain HTTP listeners (ports 8080, 8081, …), one route table each.
    pub http_ports: usize,
    /// Hostnames per HTTP port.
    pub hosts_per_port: usize,
    /// HTTPS listeners on 8443, one hostname and one route table each.
    pub tls_hostnames: usize,
    /// One route in ten requires a JWT.
    pub jwt: bool,
    /// One route in ten has an IP allow-list (RBAC).
    pub rbac: bool,
    /// The loopback ports the endpoints of every backend point at (one more than `endpoints`,
    /// for endpoint changes).
    pub upstream_ports: Vec<u16>,
}

impl Workload {
    /// W1: 100 routes, 100 backends × 3 endpoints, one HTTP table over one hostname.
    pub fn w1() -> Self {
        Self {
            name: "w1".into(),
            routes: 100,
            backends: 100,
            endpoints: 3,
            http_ports: 1,
            hosts_per_port: 1,
            tls_hostnames: 0,
            jwt: false,
            rbac: false,
            upstream_ports: vec![9081, 9082, 9083, 9084],
        }
    }

    /// W2: 1,000 routes over 5 hostnames, 1,000 backends × 3 endpoints, one HTTP table.
    pub fn w2() -> Self {
        Self {
            name: "w2".into(),
            routes: 1_000,
            backends: 1_000,
            hosts_per_port: 5,
            ..Self::w1()
        }
    }

    /// W3: 10,000 routes, 5,000 backends × 3 endpoints, 10 % JWT, 10 % RBAC, 500 TLS
    /// hostnames (SDS). Routes go to 10 HTTP ports (50 hostnames each) and the 500 HTTPS
    /// listeners: 510 route tables of about 20 routes.
    pub fn w3() -> Self {
        Self {
            name: "w3".into(),
            routes: 10_000,
            backends: 5_000,
            endpoints: 3,
            http_ports: 10,
            hosts_per_port: 50,
            tls_hostnames: 500,
            jwt: true,
            rbac: true,
            upstream_ports: vec![9081, 9082, 9083, 9084],
        }
    }

    /// W4: 50,000 routes over 2,500 hostnames, 5,000 backends × 3 endpoints: 50 HTTP ports
    /// of 50 hostnames, 1,000 routes per route table.
    pub fn w4() -> Self {
        Self {
            name: "w4".into(),
            routes: 50_000,
            backends: 5_000,
            endpoints: 3,
            http_ports: 50,
            hosts_per_port: 50,
            tls_hostnames: 0,
            jwt: false,
            rbac: false,
            upstream_ports: vec![9081, 9082, 9083, 9084],
        }
    }

    /// A workload by name: `w1`…`w4`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "w1" => Some(Self::w1()),
            "w2" => Some(Self::w2()),
            "w3" => Some(Self::w3()),
            "w4" => Some(Self::w4()),
            _ => None,
        }
    }

    /// Number of route tables.
    pub fn tables(&self) -> usize {
        self.http_ports + self.tls_hostnames
    }

    /// The table (listener section) and hostname of route `i`.
    pub fn placement(&self, i: usize) -> (String, String) {
        let t = i % self.tables();
        if t < self.http_ports {
            let h = (i / self.tables()) % self.hosts_per_port.max(1);
            (format!("http-{t}"), format!("h{h}.p{t}.bench.local"))
        } else {
            let k = t - self.http_ports;
            (format!("tls-{k}"), format!("t{k}.bench.local"))
        }
    }

    /// The port of HTTP listener `t`.
    pub fn http_port(t: usize) -> u16 {
        8080 + u16::try_from(t).unwrap_or(0)
    }

    /// The YAML files of the whole configuration: `(file name, text)`. `cert` is a PEM
    /// certificate chain and key for the HTTPS listeners.
    pub fn files(&self, cert: &TlsPair) -> Vec<(String, String)> {
        let mut out = vec![("00-gateway.yaml".to_owned(), self.gateway_yaml())];
        if self.tls_hostnames > 0 {
            let mut s = String::new();
            for k in 0..self.tls_hostnames {
                s.push_str(&secret_doc(k, cert));
            }
            out.push(("05-secrets.yaml".into(), s));
        }
        for (n, chunk) in chunks(self.backends, 500).enumerate() {
            let mut s = String::new();
            for j in chunk {
                s.push_str(&self.backend_doc(j, 0));
            }
            out.push((format!("10-backends-{n:04}.yaml"), s));
        }
        for (n, chunk) in chunks(self.routes, 100).enumerate() {
            out.push((
                format!("20-routes-{n:04}.yaml"),
                self.routes_file(chunk, None),
            ));
        }
        out
    }

    /// The text of the route file holding route `i`, with route `i` at `variant` (0 is the
    /// original; other values change its path to `/r{i}-v{variant}`).
    pub fn route_file_with(&self, i: usize, variant: u32) -> (String, String) {
        let n = i / 100;
        let start = n * 100;
        let end = (start + 100).min(self.routes);
        (
            format!("20-routes-{n:04}.yaml"),
            self.routes_file(start..end, Some((i, variant))),
        )
    }

    fn routes_file(&self, range: std::ops::Range<usize>, change: Option<(usize, u32)>) -> String {
        let mut s = String::new();
        for i in range {
            let v = match change {
                Some((c, v)) if c == i => v,
                _ => 0,
            };
            s.push_str(&self.route_doc(i, v));
            if self.jwt && i % 10 == 1 {
                s.push_str(&jwt_policy_doc(i));
            }
            if self.rbac && i % 10 == 2 {
                s.push_str(&rbac_policy_doc(i));
            }
        }
        s
    }

    /// The Gateway and its GatewayClass.
    pub fn gateway_yaml(&self) -> String {
        let mut s = String::from(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: gatehouse}\nspec: {controllerName: gatehouse.dev/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: bench}\nspec:\n  gatewayClassName: gatehouse\n  listeners:\n",
        );
        for t in 0..self.http_ports {
            let _ = writeln!(
                s,
                "  - {{name: http-{t}, port: {}, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}",
                Self::http_port(t)
            );
        }
        for k in 0..self.tls_hostnames {
            let _ = writeln!(
                s,
                "  - {{name: tls-{k}, port: 8443, protocol: HTTPS, hostname: t{k}.bench.local, tls: {{mode: Terminate, certificateRefs: [{{name: tls-{k}}}]}}, allowedRoutes: {{namespaces: {{from: All}}}}}}"
            );
        }
        s.push_str("---\n");
        s
    }

    /// Backend `j`. Endpoint `e` points at `upstream_ports[e]`; `variant` moves the last
    /// endpoint between the spare ports (`upstream_ports[endpoints - 1..]`): an endpoint change
    /// that always points at a listening upstream. Odd and even variants differ.
    pub fn backend_doc(&self, j: usize, variant: u16) -> String {
        let mut s = format!(
            "apiVersion: gatehouse.dev/v1alpha1\nkind: Backend\nmetadata: {{name: b-{j}, namespace: team-{}}}\nspec:\n  endpoints:\n",
            j % NAMESPACES
        );
        let ports = &self.upstream_ports;
        let spare = ports.len().saturating_sub(self.endpoints) + 1;
        for e in 0..self.endpoints {
            let idx = if e + 1 == self.endpoints {
                e + usize::from(variant) % spare
            } else {
                e
            };
            let port = ports.get(idx % ports.len().max(1)).copied().unwrap_or(9081);
            let _ = writeln!(s, "  - {{address: 127.0.0.1, port: {port}}}");
        }
        s.push_str("---\n");
        s
    }

    /// The file holding backend `j` with `variant` applied to it.
    pub fn backend_file_with(&self, j: usize, variant: u16) -> (String, String) {
        let n = j / 500;
        let start = n * 500;
        let end = (start + 500).min(self.backends);
        let mut s = String::new();
        for b in start..end {
            s.push_str(&self.backend_doc(b, if b == j { variant } else { 0 }));
        }
        (format!("10-backends-{n:04}.yaml"), s)
    }

    /// HTTPRoute `i` at `variant`.
    pub fn route_doc(&self, i: usize, variant: u32) -> String {
        let (section, host) = self.placement(i);
        let path = if variant == 0 {
            format!("/r{i}")
        } else {
            format!("/r{i}-v{variant}")
        };
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r-{i}, namespace: team-{ns}}}\nspec:\n  parentRefs: [{{name: edge, namespace: bench, sectionName: {section}}}]\n  hostnames: [{host}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n    backendRefs: [{{group: gatehouse.dev, kind: Backend, name: b-{b}}}]\n---\n",
            ns = i % NAMESPACES,
            b = i % self.backends.max(1),
        )
    }

    /// The whole configuration, parsed.
    pub fn config(&self, cert: &TlsPair) -> Config {
        let mut config = Config::default();
        for (name, text) in self.files(cert) {
            load_into(&mut config, &name, &text);
        }
        config
    }

    /// Writes the files into `dir`.
    pub fn write(&self, dir: &Path, cert: &TlsPair) -> std::io::Result<()> {
        for (name, text) in self.files(cert) {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }
}

/// Parses `text` (YAML documents) into `config`, replacing objects with the same key.
/// Returns the number of problems found (0 for the generated files).
pub fn load_into(config: &mut Config, file: &str, text: &str) -> usize {
    let (fragment, problems) = parse(file, text);
    replace_into(config, fragment);
    problems
}

/// The objects of `text`, and the number of problems found.
fn parse(file: &str, text: &str) -> (Config, usize) {
    let mut fragment = Config::default();
    let mut diags = Vec::new();
    load_text(&mut fragment, &mut diags, Path::new(file), text);
    (fragment, diags.len())
}

/// Adds (or replaces) every object of `fragment`.
fn replace_into(config: &mut Config, fragment: Config) {
    macro_rules! replace {
        ($($f:ident),*) => { $( for (k, v) in fragment.$f { config.$f.insert(k, v); } )* };
    }
    replace!(
        gateway_classes,
        gateways,
        http_routes,
        grpc_routes,
        reference_grants,
        secrets,
        backends,
        security_policies,
        gateway_policies
    );
}

/// [`load_into`], returning what changed the way a source reports it.
pub fn apply_doc(
    config: &mut Config,
    file: &str,
    text: &str,
) -> gatehouse_controller::model::Changes {
    let (fragment, _) = parse(file, text);
    let mut changes = gatehouse_controller::model::Changes::default();
    changes
        .http_routes
        .extend(fragment.http_routes.keys().cloned());
    changes
        .grpc_routes
        .extend(fragment.grpc_routes.keys().cloned());
    changes.backends.extend(fragment.backends.keys().cloned());
    let others = fragment.gateway_classes.len()
        + fragment.gateways.len()
        + fragment.reference_grants.len()
        + fragment.secrets.len()
        + fragment.security_policies.len()
        + fragment.gateway_policies.len();
    changes.everything = others > 0;
    replace_into(config, fragment);
    changes
}

/// A PEM certificate chain and private key for the HTTPS listeners.
#[derive(Clone, Debug)]
pub struct TlsPair {
    /// PEM certificate chain.
    pub chain_pem: String,
    /// PEM private key.
    pub key_pem: String,
}

impl TlsPair {
    /// A new certificate from a throwaway CA.
    pub fn generate() -> Result<Self, gatehouse_certs::CertsError> {
        use gatehouse_certs::{CertificateAuthority, Identity, LeafRequest, TrustDomain};
        let now = std::time::SystemTime::now();
        let ca = CertificateAuthority::generate(
            TrustDomain::default(),
            std::time::Duration::from_secs(30 * 86_400),
            now,
        )?;
        let mut req = LeafRequest::new(Identity::Controller);
        req.dns_names = vec!["bench.local".into()];
        let leaf = ca.issue(&req, now)?;
        Ok(Self {
            chain_pem: leaf.chain_pem(),
            key_pem: leaf.key().to_pem().to_string(),
        })
    }
}

fn secret_doc(k: usize, cert: &TlsPair) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: tls-{k}, namespace: bench}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n---\n",
        b64(&cert.chain_pem),
        b64(&cert.key_pem)
    )
}

const JWKS: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "bench", "x": "PduwpgCO4DDJ7sAadjHksPtVvoY2Y14zjPwS87D7OCg", "y": "D3zXZxIwH7wn5S-GE7YsaITnvoGaR7-WfRggCyIozYA"}]}"#;

fn jwt_policy_doc(i: usize) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: jwt-{i}, namespace: team-{ns}}}\nspec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r-{i}}}]\n  jwt:\n    providers:\n    - name: bench\n      issuer: https://issuer.bench.local\n      localJwks: '{JWKS}'\n---\n",
        ns = i % NAMESPACES
    )
}

fn rbac_policy_doc(i: usize) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: ip-{i}, namespace: team-{ns}}}\nspec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r-{i}}}]\n  ipAllow: [127.0.0.0/8]\n---\n",
        ns = i % NAMESPACES
    )
}

fn chunks(n: usize, size: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n.div_ceil(size)).map(move |c| c * size..((c + 1) * size).min(n))
}
