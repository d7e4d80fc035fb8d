//! The standalone profile: the controller and one gateway's Envoy as systemd services on one
//! host, each under its own user and sandboxed (`systemd-analyze security` exposure ≤ 1.5).
//!
//! ```text
//!  gatehouse-controller.service (user gatehouse)     gatehouse-envoy.service (user gatehouse-envoy)
//!   gatehouse serve --listen 127.0.0.1:18000 ◀──mTLS── envoy -c /etc/gatehouse/envoy/envoy.yaml
//!   /var/lib/gatehouse/pki (0700, its state)           certificate: systemd credentials, copied
//!   renews the gateway's certificate at half-life      from the store at start (LoadCredential=)
//!                                     │
//!                                     └─ gatehouse-envoy-certs.path: the certificate changed
//!                                        → gatehouse-envoy-certs.service restarts Envoy
//! ```
//!
//! The gateway's key in the store is readable by the controller's user only (0600), so Envoy,
//! under another user, gets it as a systemd credential: systemd (root) copies it at start into
//! `/run/credentials/gatehouse-envoy.service/`, readable by Envoy alone, on memory that is
//! never swapped. A credential is a copy, so a renewed certificate reaches Envoy by a restart,
//! which the path unit triggers.

use std::path::PathBuf;

use gatehouse_certs::{BUNDLE_FILE, CHAIN_FILE, GatewayName, KEY_FILE, TrustDomain};

use crate::ProfileError;
use crate::bootstrap::{self, AdminEndpoint, BootstrapParams, XdsAddress};
use crate::output::{RenderedFile, Rendering};

/// The controller's unit.
pub const CONTROLLER_UNIT: &str = "gatehouse-controller.service";
/// Envoy's unit.
pub const ENVOY_UNIT: &str = "gatehouse-envoy.service";
/// The path unit that notices a renewed gateway certificate.
pub const CERTS_PATH_UNIT: &str = "gatehouse-envoy-certs.path";
/// The one-shot unit that restarts Envoy with the renewed certificate.
pub const CERTS_RESTART_UNIT: &str = "gatehouse-envoy-certs.service";
/// The controller's user.
pub const CONTROLLER_USER: &str = "gatehouse";
/// Envoy's user.
pub const ENVOY_USER: &str = "gatehouse-envoy";
/// The `gatehouse` binary.
pub const GATEHOUSE_BIN: &str = "/usr/local/bin/gatehouse";
/// The Envoy binary.
pub const ENVOY_BIN: &str = "/usr/local/bin/envoy";
/// The controller's state (`StateDirectory=gatehouse`), mode 0700.
pub const STATE_DIR: &str = "/var/lib/gatehouse";
/// The certificate store, in the state directory.
pub const PKI_DIR: &str = "/var/lib/gatehouse/pki";
/// Envoy's bootstrap and SDS files, owned by root, read-only to Envoy.
pub const ENVOY_CONFIG_DIR: &str = "/etc/gatehouse/envoy";
/// Where systemd puts Envoy's credentials (`$CREDENTIALS_DIRECTORY`).
pub const CREDENTIALS_DIR: &str = "/run/credentials/gatehouse-envoy.service";
/// Envoy's admin endpoint: a unix socket, mode 0600, in its 0700 runtime directory.
pub const ADMIN_SOCKET: &str = "/run/gatehouse-envoy/admin.sock";
/// Where the controller listens for xDS: loopback only.
pub const XDS_LISTEN: &str = "127.0.0.1:18000";

/// Everything the standalone profile depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StandaloneParams {
    /// The gateway Envoy serves (its certificate is `PKI_DIR/gateways/NAMESPACE/NAME`).
    pub gateway: GatewayName,
    /// The trust domain of the CA (`gatehouse certs init --trust-domain`).
    pub trust_domain: TrustDomain,
}

impl Default for StandaloneParams {
    #[allow(
        clippy::expect_used,
        reason = "DEFAULT_GATEWAY is a valid name (tested)"
    )]
    fn default() -> Self {
        Self {
            gateway: crate::kubernetes::DEFAULT_GATEWAY
                .parse()
                .expect("the default gateway is a valid name"),
            trust_domain: TrustDomain::default(),
        }
    }
}

/// The sandbox both services share, with why each line is there. `systemd-analyze security`
/// scores each; see docs/profiles.md.
const SANDBOX: &str = "\
# Sandbox (docs/profiles.md, \"Standalone\"). Each line removes something the service does not
# need; `systemd-analyze security UNIT` scores the result.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
PrivateUsers=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
KeyringMode=private
UMask=0077
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
";

fn header(what: &str) -> String {
    format!(
        "# {what}\n# Rendered by `gatehouse render --profile standalone`: re-render it, do not edit it.\n"
    )
}

fn controller_unit() -> String {
    format!(
        "{}
[Unit]
Description=Gatehouse control plane (xDS over mTLS)
Documentation=https://github.com/gatehouse-dev/gatehouse/blob/main/docs/profiles.md
After=network.target

[Service]
Type=exec
User={CONTROLLER_USER}
Group={CONTROLLER_USER}
ExecStart={GATEHOUSE_BIN} serve --certs {PKI_DIR} --listen {XDS_LISTEN}
Restart=on-failure
RestartSec=2s
# The only writable place: {STATE_DIR} (the certificate store), mode 0700.
StateDirectory=gatehouse
StateDirectoryMode=0700
# It listens on loopback and talks to nobody else.
IPAddressDeny=any
IPAddressAllow=localhost
RestrictAddressFamilies=AF_INET AF_INET6
{SANDBOX}# The certificate store keeps a file set's owner across rotations with chown(2). Without
# CAP_CHOWN that can only give a file to this user and its group: it grants nothing.
SystemCallFilter=@chown

[Install]
WantedBy=multi-user.target
",
        header("Gatehouse controller: `gatehouse serve` on loopback, under its own user.")
    )
}

fn gateway_certs(gateway: &GatewayName) -> String {
    format!(
        "{PKI_DIR}/gateways/{}/{}",
        gateway.namespace(),
        gateway.name()
    )
}

fn envoy_unit(params: &StandaloneParams) -> String {
    let certs = gateway_certs(&params.gateway);
    format!(
        "{}
[Unit]
Description=Gatehouse gateway {gw} (Envoy)
Documentation=https://github.com/gatehouse-dev/gatehouse/blob/main/docs/profiles.md
After=network.target {CONTROLLER_UNIT}
Wants={CONTROLLER_UNIT}

[Service]
Type=exec
User={ENVOY_USER}
Group={ENVOY_USER}
ExecStart={ENVOY_BIN} -c {ENVOY_CONFIG_DIR}/envoy.yaml --disable-hot-restart
Restart=on-failure
RestartSec=2s
# Many client connections: one descriptor each.
LimitNOFILE=65536
# Its certificate, copied by systemd at start into {CREDENTIALS_DIR},
# readable by this service only. The key in the store is the controller's (0600).
LoadCredential={CHAIN_FILE}:{certs}/{CHAIN_FILE}
LoadCredential={KEY_FILE}:{certs}/{KEY_FILE}
LoadCredential={BUNDLE_FILE}:{certs}/{BUNDLE_FILE}
# The admin socket ({ADMIN_SOCKET}, 0600) is the only file it writes.
RuntimeDirectory=gatehouse-envoy
RuntimeDirectoryMode=0700
ReadOnlyPaths={ENVOY_CONFIG_DIR}
# Clients connect from anywhere and backends are anywhere: no IP allow list. Envoy binds
# ports from 1024 up only (no CAP_NET_BIND_SERVICE); see docs/profiles.md for 80 and 443.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
{SANDBOX}
[Install]
WantedBy=multi-user.target
",
        header(
            "Gatehouse gateway: Envoy, under its own user, with no capability and no key but its own."
        ),
        gw = params.gateway,
    )
}

fn certs_path_unit(params: &StandaloneParams) -> String {
    format!(
        "{}
[Unit]
Description=Watch the certificate of Gatehouse gateway {gw}

[Path]
# The controller renews it at half-life by swapping the directory's `..data` link.
PathChanged={certs}
Unit={CERTS_RESTART_UNIT}

[Install]
WantedBy=paths.target
",
        header("Restarts Envoy when the controller renews its certificate."),
        gw = params.gateway,
        certs = gateway_certs(&params.gateway),
    )
}

fn certs_restart_unit() -> String {
    format!(
        "{}
[Unit]
Description=Restart Gatehouse's Envoy with its renewed certificate
After={CONTROLLER_UNIT}

[Service]
Type=oneshot
# Envoy gets its certificate as a credential, copied at start: a restart picks up the new one.
ExecStart=/usr/bin/systemctl try-restart {ENVOY_UNIT}
# It only talks to systemd over its unix socket.
PrivateNetwork=yes
IPAddressDeny=any
RestrictAddressFamilies=AF_UNIX
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
UMask=0077
",
        header("Restarts Envoy; started by gatehouse-envoy-certs.path."),
    )
}

fn install_md(params: &StandaloneParams) -> String {
    let gw = &params.gateway;
    let td = &params.trust_domain;
    let certs = gateway_certs(gw);
    format!(
        "<!-- Rendered by `gatehouse render --profile standalone`: re-render it, do not edit it. -->
# Installing Gatehouse standalone (gateway `{gw}`)

Two services on one host, each under its own user: the controller (`gatehouse serve`, user
`{CONTROLLER_USER}`, xDS on `{XDS_LISTEN}`) and Envoy (user `{ENVOY_USER}`), which holds no key but
its own gateway's. Every step below runs as root. Why each setting is what it is:
`docs/profiles.md`, \"Standalone\".

## 1. Binaries

```sh
install -m 0755 -o root -g root gatehouse {GATEHOUSE_BIN}
install -m 0755 -o root -g root envoy {ENVOY_BIN}      # Envoy 1.40
```

Both are owned by root and not writable by the service users.

## 2. Users

```sh
useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin {CONTROLLER_USER}
useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin {ENVOY_USER}
```

Neither is a member of the other's group: Envoy cannot read the controller's store.

## 3. Directories and files

| path | owner | mode | holds |
|---|---|---|---|
| `{STATE_DIR}` | {CONTROLLER_USER}:{CONTROLLER_USER} | 0700 | the controller's state (`StateDirectory=`) |
| `{PKI_DIR}` | {CONTROLLER_USER}:{CONTROLLER_USER} | 0700 | the CA and every certificate; keys 0600 |
| `/etc/gatehouse` | root:root | 0755 | |
| `{ENVOY_CONFIG_DIR}` | root:root | 0755 | Envoy's bootstrap and SDS files (no secret), 0644 |
| `{CREDENTIALS_DIR}` | made by systemd | 0500 | Envoy's certificate, key and trust bundle, at run time |
| `/run/gatehouse-envoy` | made by systemd ({ENVOY_USER}) | 0700 | the admin socket `admin.sock` (0600) |

```sh
install -d -m 0700 -o {CONTROLLER_USER} -g {CONTROLLER_USER} {STATE_DIR}
install -d -m 0755 -o root -g root /etc/gatehouse {ENVOY_CONFIG_DIR}
install -m 0644 -o root -g root envoy/envoy.yaml envoy/xds-client-certificate.sds.yaml \\
    envoy/xds-trust-bundle.sds.yaml {ENVOY_CONFIG_DIR}/
```

## 4. Certificates

As the controller's user, so that the store is its own:

```sh
runuser -u {CONTROLLER_USER} -- {GATEHOUSE_BIN} certs init --dir {PKI_DIR} --trust-domain {td}
runuser -u {CONTROLLER_USER} -- {GATEHOUSE_BIN} certs issue --dir {PKI_DIR} --controller --dns localhost --ip 127.0.0.1
runuser -u {CONTROLLER_USER} -- {GATEHOUSE_BIN} certs issue --dir {PKI_DIR} --gateway {gw}
```

The gateway's certificate lands in `{certs}`; `gatehouse-envoy.service` loads it from there as
credentials. The controller renews it at half-life (24 h certificates by default), and
`gatehouse-envoy-certs.path` then restarts Envoy so that it uses the new one.

## 5. Units

```sh
install -m 0644 -o root -g root gatehouse-controller.service gatehouse-envoy.service \\
    gatehouse-envoy-certs.path gatehouse-envoy-certs.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now gatehouse-controller.service
systemctl enable --now gatehouse-envoy.service gatehouse-envoy-certs.path
```

## 6. Check

```sh
systemd-analyze security gatehouse-controller.service gatehouse-envoy.service   # exposure ≤ 1.5
systemctl status gatehouse-controller.service gatehouse-envoy.service
curl --unix-socket /run/gatehouse-envoy/admin.sock http://localhost/ready        # LIVE
journalctl -u gatehouse-controller.service -g 'security'                         # refusals
```

Envoy binds only ports from 1024 up (it has no capability). To serve 80 and 443, redirect them
in the firewall (e.g. nftables `redirect to :8080`), or lower
`net.ipv4.ip_unprivileged_port_start`; do not give Envoy `CAP_NET_BIND_SERVICE` back.

## Upgrading and changing

Render again with the same flags, compare (`gatehouse render --profile standalone --check DIR`),
copy the changed files, `systemctl daemon-reload`, restart the changed services. To relax a
sandbox line, use a drop-in (`systemctl edit gatehouse-envoy.service`) with a comment saying
why, and check the exposure again.
"
    )
}

/// Renders the standalone profile: the units, Envoy's bootstrap and SDS files under
/// `envoy/`, and `INSTALL.md`.
pub fn render_standalone(params: &StandaloneParams) -> Result<Rendering, ProfileError> {
    let xds: XdsAddress = XDS_LISTEN.parse()?;
    let mut boot = BootstrapParams::new(
        params.gateway.clone(),
        xds,
        PathBuf::from(CREDENTIALS_DIR),
        PathBuf::from(ENVOY_CONFIG_DIR),
    );
    boot.trust_domain = params.trust_domain.clone();
    boot.admin = AdminEndpoint::UnixSocket {
        path: PathBuf::from(ADMIN_SOCKET),
    };
    let rendered = bootstrap::render(&boot)?;
    let mut files = vec![
        RenderedFile {
            name: CONTROLLER_UNIT.into(),
            contents: controller_unit(),
        },
        RenderedFile {
            name: ENVOY_UNIT.into(),
            contents: envoy_unit(params),
        },
        RenderedFile {
            name: CERTS_PATH_UNIT.into(),
            contents: certs_path_unit(params),
        },
        RenderedFile {
            name: CERTS_RESTART_UNIT.into(),
            contents: certs_restart_unit(),
        },
        RenderedFile {
            name: "envoy/envoy.yaml".into(),
            contents: rendered.bootstrap.clone(),
        },
    ];
    for (name, contents) in rendered.sds_files() {
        files.push(RenderedFile {
            name: format!("envoy/{name}"),
            contents: contents.to_owned(),
        });
    }
    files.push(RenderedFile {
        name: "INSTALL.md".into(),
        contents: install_md(params),
    });
    Ok(Rendering { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_gateway_parses() {
        assert_eq!(
            StandaloneParams::default().gateway.to_string(),
            crate::kubernetes::DEFAULT_GATEWAY
        );
    }

    #[test]
    fn units_run_the_commands_as_their_users() {
        let r = render_standalone(&StandaloneParams::default()).unwrap();
        let file = |name: &str| {
            r.files
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.contents.clone())
                .unwrap()
        };
        let c = file(CONTROLLER_UNIT);
        assert!(c.contains("\nExecStart=/usr/local/bin/gatehouse serve --certs /var/lib/gatehouse/pki --listen 127.0.0.1:18000\n"));
        assert!(c.contains("\nUser=gatehouse\n"));
        let e = file(ENVOY_UNIT);
        assert!(e.contains("\nExecStart=/usr/local/bin/envoy -c /etc/gatehouse/envoy/envoy.yaml --disable-hot-restart\n"));
        assert!(e.contains("\nUser=gatehouse-envoy\n"));
        assert!(e.contains("LoadCredential=key.pem:/var/lib/gatehouse/pki/gateways/gatehouse-gateways/edge/key.pem\n"));
        let b = file("envoy/envoy.yaml");
        assert!(b.contains("/run/gatehouse-envoy/admin.sock"), "{b}");
        let sds = file("envoy/xds-client-certificate.sds.yaml");
        assert!(
            sds.contains("/run/credentials/gatehouse-envoy.service/key.pem"),
            "{sds}"
        );
    }
}
