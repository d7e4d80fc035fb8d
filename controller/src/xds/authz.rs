//! Who is on the other end of a stream: the identity in the client certificate, never the
//! node id the proxy claims.

use gatehouse_certs::{GatewayName, Identity, TrustDomain};
use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The tracing target of security events (refused connections and requests).
pub const SECURITY_TARGET: &str = "gatehouse::security";

/// The gateway named by the URI SAN of the client certificate.
pub(crate) fn gateway_of(
    certs: Option<&[CertificateDer<'static>]>,
    td: &TrustDomain,
) -> Result<GatewayName, String> {
    let leaf = certs
        .and_then(|c| c.first())
        .ok_or_else(|| "no client certificate".to_owned())?;
    let (_, x) = X509Certificate::from_der(leaf)
        .map_err(|e| format!("unparsable client certificate: {e}"))?;
    let san = x
        .subject_alternative_name()
        .map_err(|e| format!("bad subject alternative names: {e}"))?
        .ok_or_else(|| "client certificate has no subject alternative names".to_owned())?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        })
        .collect();
    let [uri] = uris.as_slice() else {
        return Err(format!(
            "client certificate must carry exactly one URI SAN, found {}",
            uris.len()
        ));
    };
    match Identity::from_spiffe_id(uri, td).map_err(|e| e.to_string())? {
        Identity::Gateway(gw) => Ok(gw),
        Identity::Controller => Err("the controller's identity is not a proxy".to_owned()),
    }
}
