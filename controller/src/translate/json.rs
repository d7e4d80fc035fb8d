//! Resources as protobuf JSON (the canonical mapping Envoy itself reads), with every `Any`
//! expanded, from descriptors compiled at build time from the Envoy API's `.proto` files.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::snapshot::Resource;

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(
        include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptors.bin")).as_slice(),
    )
    .map_err(|e| e.to_string())
});

/// The resource as JSON, in the protobuf JSON mapping (field names in `lowerCamelCase`
/// become `snake_case` proto names, as Envoy's YAML uses them).
pub fn to_json(r: &Resource) -> Result<serde_json::Value, String> {
    let pool = POOL.as_ref().map_err(Clone::clone)?;
    let name = r.body().type_url.rsplit('/').next().unwrap_or_default();
    let desc = pool
        .get_message_by_name(name)
        .ok_or_else(|| format!("no descriptor for `{name}`"))?;
    let msg = DynamicMessage::decode(desc, r.body().value.as_slice())
        .map_err(|e| format!("`{}` does not decode: {e}", r.name()))?;
    let mut ser = serde_json::Serializer::new(Vec::new());
    msg.serialize_with_options(
        &mut ser,
        &SerializeOptions::new().use_proto_field_name(true),
    )
    .map_err(|e| format!("`{}`: {e}", r.name()))?;
    let mut v: serde_json::Value =
        serde_json::from_slice(&ser.into_inner()).map_err(|e| e.to_string())?;
    redact(&mut v);
    Ok(v)
}

/// Replaces every private key with a marker: output must never carry key material.
fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "private_key" {
                    *x = serde_json::json!({"inline_string": "[redacted]"});
                } else {
                    redact(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;

    #[test]
    fn a_cluster_as_json() {
        let r = crate::snapshot::Resource::new(
            "c",
            &Cluster {
                name: "c".into(),
                connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
                    seconds: 5,
                    nanos: 0,
                }),
                ..Default::default()
            },
        );
        let v = super::to_json(&r).unwrap();
        assert_eq!(v["name"], "c");
        assert_eq!(v["connect_timeout"], "5s");
    }

    #[test]
    fn private_keys_never_appear() {
        use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
            Secret, TlsCertificate, secret,
        };
        let inline = |b: &[u8]| DataSource {
            specifier: Some(data_source::Specifier::InlineBytes(b.to_vec())),
            ..Default::default()
        };
        let s = Secret {
            name: "tls/x/y".into(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: Some(inline(b"CERT")),
                private_key: Some(inline(b"-----BEGIN PRIVATE KEY-----secret")),
                ..Default::default()
            })),
        };
        let v = super::to_json(&crate::snapshot::Resource::new("tls/x/y", &s))
            .unwrap()
            .to_string();
        assert!(v.contains("[redacted]"), "{v}");
        assert!(
            !v.contains("LS0tLS1CRUdJTiBQUklWQVRF") && !v.contains("PRIVATE KEY"),
            "{v}"
        );
    }
}
