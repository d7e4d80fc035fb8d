//! Kubernetes mode: the same model, admission, translation and xDS pipeline as file mode, fed by
//! kube-runtime watches instead of a directory.
//!
//! - [`Watched`]: the kinds watched — Gateway API objects, Services, EndpointSlices, Namespaces
//!   and our CRDs cluster-wide; Secrets only in the namespaces the controller may read (one
//!   namespaced watch each, never a cluster-wide Secret watch).
//! - [`KubeControlPlane`]: applies watch events to the configuration, publishes snapshots
//!   (every replica serves xDS), and on the leader writes status the Gateway API way and keeps
//!   each gateway's xDS client certificate fresh in a Secret.
//! - [`lease`]: leader election on a `coordination.k8s.io/v1` Lease, so that one controller
//!   replica at a time writes.
//! - [`gateway_certs`]: each gateway's xDS client certificate, issued by our CA and kept in a
//!   Secret in the gateway's namespace.
//!
//! Failure behaviour: a failed watch backs off and re-lists; a re-list replaces a kind's objects
//! at once; nothing is withdrawn from Envoy while the API is unreachable; an object that stops
//! parsing keeps its last valid version in force.

mod control;
pub mod gateway_certs;
pub mod lease;
#[cfg(test)]
mod mock;
mod state;
mod status;
mod watch;

pub use control::KubeControlPlane;
pub use status::FIELD_MANAGER;
pub use watch::Watched;
