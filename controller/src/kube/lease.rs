//! Leader election on a `coordination.k8s.io/v1` Lease: one controller replica at a time
//! writes to the API server; the others wait, ready to take over.
//!
//! The protocol is the one Kubernetes' own controllers use, so `kubectl get lease` reads the
//! same way:
//!
//! - **Acquire.** GET the Lease. If it does not exist, create it with us as the holder. If it
//!   is held by another replica, it is taken over (replaced with the observed
//!   `resourceVersion`, `leaseTransitions` + 1) only once it has expired: no change to the
//!   record for `leaseDurationSeconds`, measured on *our* clock from the moment we saw the
//!   record change, so clock skew between nodes does not matter. A released Lease (no holder)
//!   is taken at once. A `409 Conflict` means another replica won the race.
//! - **Renew.** Every retry period, replace the Lease with a new `renewTime`. If no renewal
//!   succeeds within the renew deadline, or the Lease turns out to be held by another
//!   replica, step down and go back to acquiring.
//! - **Release.** On shutdown, a leader stops leading first, then clears the holder and sets
//!   `leaseDurationSeconds` to 1, so the next replica takes over without waiting for expiry.
//!
//! Requests: `GET` and `PUT` of the named Lease, `POST` to the namespace's leases: what the
//! controller's leader-election Role grants (no list, watch, patch or delete).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_certs::{Clock, SystemClock};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a Lease is valid after its last renewal, for the other replicas.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long a leader keeps trying to renew before it steps down.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// The interval between attempts to acquire or renew.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// The field manager recorded for our writes.
const FIELD_MANAGER: &str = "gatehouse";

/// Where the Lease is, who we are, and the timings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// The namespace of the Lease (the controller's own).
    pub namespace: String,
    /// The name of the Lease.
    pub name: String,
    /// This replica's identity in `holderIdentity` (the pod name).
    pub identity: String,
    /// How long a Lease is valid after its last renewal (whole seconds, at least 1 s).
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down; shorter than
    /// `lease_duration`, so a leader steps down before another replica can take over.
    pub renew_deadline: Duration,
    /// The interval between attempts; shorter than `renew_deadline`.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// The Lease `namespace/name`, held as `identity`, with the default timings (15 s, 10 s,
    /// 2 s).
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }
}

/// A leader-election configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseConfigError {
    /// No identity to hold the Lease with.
    #[error("the leader-election identity is empty (hint: set it to the pod name)")]
    EmptyIdentity,
    /// The lease duration is not a whole number of seconds between 1 s and `i32::MAX` s.
    #[error(
        "the lease duration `{0:?}` must be a whole number of seconds, at least 1s (`leaseDurationSeconds` is an integer)"
    )]
    LeaseDuration(Duration),
    /// The timings are not ordered retry period < renew deadline < lease duration.
    #[error(
        "leader-election timings must satisfy retry period < renew deadline < lease duration, got `{retry_period:?}`, `{renew_deadline:?}`, `{lease_duration:?}`"
    )]
    Timings {
        /// The configured retry period.
        retry_period: Duration,
        /// The configured renew deadline.
        renew_deadline: Duration,
        /// The configured lease duration.
        lease_duration: Duration,
    },
}

/// Campaigns for, holds and releases one Lease. See the [module docs](self).
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    duration_secs: i32,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The last Lease record we saw held by someone, and when (on our clock) it last changed.
struct Observed {
    spec: LeaseSpec,
    changed_at: Instant,
}

/// The result of one attempt to acquire or renew.
enum Attempt {
    /// We hold the Lease; this is the API server's copy.
    Held(Box<Lease>),
    /// Another replica holds it and it has not expired, or another replica won a race.
    Taken { holder: Option<String> },
}

impl LeaderElector {
    /// An elector for `config`, writing `acquireTime`/`renewTime` from the system clock.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Result<Self, LeaseConfigError> {
        if config.identity.is_empty() {
            return Err(LeaseConfigError::EmptyIdentity);
        }
        let duration_secs = i32::try_from(config.lease_duration.as_secs())
            .ok()
            .filter(|s| *s >= 1 && config.lease_duration.subsec_nanos() == 0)
            .ok_or(LeaseConfigError::LeaseDuration(config.lease_duration))?;
        if config.retry_period.is_zero()
            || config.retry_period >= config.renew_deadline
            || config.renew_deadline >= config.lease_duration
        {
            return Err(LeaseConfigError::Timings {
                retry_period: config.retry_period,
                renew_deadline: config.renew_deadline,
                lease_duration: config.lease_duration,
            });
        }
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            duration_secs,
            clock: Arc::new(SystemClock),
        })
    }

    /// Reads `acquireTime` and `renewTime` from `clock` instead (for tests). Expiry is judged
    /// on tokio's clock either way.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Campaigns until `shutdown` turns `true` (or its sender is dropped), publishing on
    /// `leader` whether this replica leads. Never returns an error: API failures are logged
    /// and retried every retry period. On shutdown a leader sends `false`, then releases the
    /// Lease.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, leader: watch::Sender<bool>) {
        let lease = format!("{}/{}", self.config.namespace, self.config.name);
        let identity = self.config.identity.as_str();
        let mut observed: Option<Observed> = None;
        loop {
            // Acquire.
            let mut current = loop {
                let attempt = until_shutdown(
                    &mut shutdown,
                    tokio::time::timeout(
                        self.config.renew_deadline,
                        self.try_acquire(&mut observed),
                    ),
                )
                .await;
                match attempt {
                    None => {
                        set(&leader, false);
                        return;
                    }
                    Some(Ok(Ok(Attempt::Held(current)))) => break *current,
                    Some(Ok(Ok(Attempt::Taken { holder }))) => {
                        tracing::debug!(%lease, holder = holder.as_deref().unwrap_or(""), "lease held by another replica");
                    }
                    Some(Ok(Err(error))) => {
                        tracing::warn!(%lease, %error, "cannot acquire lease");
                    }
                    Some(Err(_)) => {
                        tracing::warn!(%lease, timeout = ?self.config.renew_deadline, "lease request timed out");
                    }
                }
                if until_shutdown(&mut shutdown, tokio::time::sleep(self.config.retry_period))
                    .await
                    .is_none()
                {
                    set(&leader, false);
                    return;
                }
            };
            tracing::info!(%lease, %identity, "became leader");
            set(&leader, true);

            // Renew until the deadline passes without a renewal, or someone else holds it.
            let mut renewed_at = Instant::now();
            loop {
                if until_shutdown(&mut shutdown, tokio::time::sleep(self.config.retry_period))
                    .await
                    .is_none()
                {
                    set(&leader, false);
                    self.release(current).await;
                    return;
                }
                let left = self
                    .config
                    .renew_deadline
                    .saturating_sub(renewed_at.elapsed());
                if left.is_zero() {
                    tracing::warn!(%lease, deadline = ?self.config.renew_deadline, "lease not renewed within the renew deadline, stepping down");
                    break;
                }
                let attempt = until_shutdown(
                    &mut shutdown,
                    tokio::time::timeout(left, self.renew(&current, &mut observed)),
                )
                .await;
                match attempt {
                    None => {
                        set(&leader, false);
                        self.release(current).await;
                        return;
                    }
                    Some(Ok(Ok(Attempt::Held(renewed)))) => {
                        current = *renewed;
                        renewed_at = Instant::now();
                    }
                    Some(Ok(Ok(Attempt::Taken { holder }))) => {
                        tracing::warn!(%lease, holder = holder.as_deref().unwrap_or(""), "lease taken by another replica, stepping down");
                        break;
                    }
                    Some(Ok(Err(error))) => {
                        tracing::warn!(%lease, %error, "cannot renew lease");
                    }
                    Some(Err(_)) => {
                        tracing::warn!(%lease, "lease renewal timed out");
                    }
                }
                if renewed_at.elapsed() >= self.config.renew_deadline {
                    tracing::warn!(%lease, deadline = ?self.config.renew_deadline, "lease not renewed within the renew deadline, stepping down");
                    break;
                }
            }
            set(&leader, false);
        }
    }

    /// One acquisition attempt: GET, then create, take over or renew as the record allows.
    async fn try_acquire(&self, observed: &mut Option<Observed>) -> kube::Result<Attempt> {
        let existing = match self.api.get(&self.config.name).await {
            Ok(lease) => lease,
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                return self.create().await;
            }
            Err(error) => return Err(error),
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let now = Instant::now();
        match observed {
            Some(seen) if seen.spec == spec => {}
            _ => {
                *observed = Some(Observed {
                    spec: spec.clone(),
                    changed_at: now,
                })
            }
        }
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let next = match holder.as_deref() {
            // Ours already (a restart with the same pod name, or a renewal after a conflict):
            // keep the acquire time and the transition count.
            Some(h) if h == self.config.identity => self.renewed(&existing),
            Some(_) => {
                let valid_for = spec
                    .lease_duration_seconds
                    .and_then(|s| u64::try_from(s).ok())
                    .map_or(self.config.lease_duration, Duration::from_secs);
                let changed_at = observed.as_ref().map_or(now, |o| o.changed_at);
                if changed_at + valid_for > now {
                    return Ok(Attempt::Taken { holder });
                }
                self.taken_over(&existing)
            }
            // Released: take it at once.
            None => self.taken_over(&existing),
        };
        self.replace(&next, holder).await
    }

    /// Renews the Lease we hold, from our last copy of it. On a conflict, someone else wrote
    /// the Lease: read it again and go by what it says.
    async fn renew(
        &self,
        current: &Lease,
        observed: &mut Option<Observed>,
    ) -> kube::Result<Attempt> {
        let pp = post_params();
        match self
            .api
            .replace(&self.config.name, &pp, &self.renewed(current))
            .await
        {
            Ok(lease) => Ok(Attempt::Held(Box::new(lease))),
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                self.try_acquire(observed).await
            }
            Err(error) => Err(error),
        }
    }

    /// Clears the holder so that the next replica need not wait for expiry. One attempt.
    async fn release(&self, current: Lease) {
        let lease = format!("{}/{}", self.config.namespace, self.config.name);
        let mut released = current;
        let spec = released.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(self.micro_now());
        let pp = post_params();
        let put = self.api.replace(&self.config.name, &pp, &released);
        match tokio::time::timeout(self.config.renew_deadline, put).await {
            Ok(Ok(_)) => tracing::info!(%lease, "lease released"),
            Ok(Err(error)) => tracing::warn!(%lease, %error, "cannot release lease"),
            Err(_) => tracing::warn!(%lease, "lease release timed out"),
        }
    }

    async fn create(&self) -> kube::Result<Attempt> {
        let now = self.micro_now();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_duration_seconds: Some(self.duration_secs),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&post_params(), &lease).await {
            Ok(lease) => Ok(Attempt::Held(Box::new(lease))),
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                Ok(Attempt::Taken { holder: None })
            }
            Err(error) => Err(error),
        }
    }

    /// PUTs `next` (carrying the observed `resourceVersion`); a conflict means we lost a race.
    async fn replace(&self, next: &Lease, holder: Option<String>) -> kube::Result<Attempt> {
        match self
            .api
            .replace(&self.config.name, &post_params(), next)
            .await
        {
            Ok(lease) => Ok(Attempt::Held(Box::new(lease))),
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(Attempt::Taken { holder }),
            Err(error) => Err(error),
        }
    }

    /// `lease` held by us, renewed now.
    fn renewed(&self, lease: &Lease) -> Lease {
        let mut next = lease.clone();
        let spec = next.spec.get_or_insert_with(LeaseSpec::default);
        let now = self.micro_now();
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(self.duration_secs);
        spec.renew_time = Some(now.clone());
        if spec.acquire_time.is_none() {
            spec.acquire_time = Some(now);
        }
        next
    }

    /// `lease` (held by another replica, expired, or released) taken over by us now.
    fn taken_over(&self, lease: &Lease) -> Lease {
        let mut next = lease.clone();
        let spec = next.spec.get_or_insert_with(LeaseSpec::default);
        let now = self.micro_now();
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(self.duration_secs);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        next
    }

    fn micro_now(&self) -> MicroTime {
        micro_time(self.clock.now())
    }
}

fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    }
}

/// A wall-clock time as a `MicroTime` (microsecond precision, as the API server stores it).
fn micro_time(t: SystemTime) -> MicroTime {
    let micros = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    };
    let ts = k8s_openapi::jiff::Timestamp::from_microsecond(micros)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    MicroTime(ts)
}

/// Publishes `value` on `leader`, waking receivers only on a change.
fn set(leader: &watch::Sender<bool>, value: bool) {
    leader.send_if_modified(|v| std::mem::replace(v, value) != value);
}

/// Runs `fut` unless shutdown is requested first (`None`): the value turns `true`, or the
/// sender is dropped.
async fn until_shutdown<F: std::future::Future>(
    shutdown: &mut watch::Receiver<bool>,
    fut: F,
) -> Option<F::Output> {
    tokio::select! {
        biased;
        _ = shutdown.wait_for(|v| *v) => None,
        out = fut => Some(out),
    }
}

#[cfg(test)]
mod tests {
    //! Against kube's `tower-test` mock, which plays the API server with the objects it
    //! returns (`resourceVersion`, `uid`, `managedFields`, `Status` errors). Time is tokio's,
    //! paused: waiting a lease duration takes no real time.

    use super::*;
    use crate::kube::mock::{query_pairs, respond as ok};
    use gatehouse_certs::TokioClock;
    use http::{Method, Request, Response};
    use http_body_util::BodyExt as _;
    use kube::client::Body;
    use serde_json::{Value, json};
    use tokio::task::JoinHandle;
    use tower_test::mock::SendResponse;

    fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
        crate::kube::mock::status(
            code,
            reason,
            message,
            json!({"name": NAME, "group": "coordination.k8s.io", "kind": "leases"}),
        )
    }

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    const NS: &str = "gatehouse-system";
    const NAME: &str = "gatehouse-controller";
    const ME: &str = "gatehouse-controller-7d9f-abcde";
    const OTHER: &str = "gatehouse-controller-7d9f-zzzzz";
    const LEASE_PATH: &str =
        "/apis/coordination.k8s.io/v1/namespaces/gatehouse-system/leases/gatehouse-controller";
    const LEASES_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/gatehouse-system/leases";

    struct Seen {
        method: Method,
        path: String,
        query: String,
        body: Value,
    }

    struct Harness {
        handle: Handle,
        shutdown: watch::Sender<bool>,
        leader: watch::Receiver<bool>,
        task: JoinHandle<()>,
        rv: u64,
    }

    fn start() -> Harness {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(svc, "default");
        let clock =
            TokioClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let elector = LeaderElector::new(client, LeaseConfig::new(NS, NAME, ME))
            .unwrap()
            .with_clock(Arc::new(clock));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (leader_tx, leader) = watch::channel(false);
        let task = tokio::spawn(elector.run(shutdown_rx, leader_tx));
        Harness {
            handle,
            shutdown,
            leader,
            task,
            rv: 1000,
        }
    }

    impl Harness {
        async fn next(&mut self) -> (Seen, SendResponse<Response<Body>>) {
            let (request, send) = self.handle.next_request().await.expect("a request");
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            let seen = Seen {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                query: query_pairs(parts.uri.query()),
                body,
            };
            (seen, send)
        }

        /// The API server's copy of a written Lease: the body plus server-set metadata.
        fn store(&mut self, body: &Value) -> Value {
            self.rv += 1;
            let mut object = body.clone();
            let meta = object["metadata"].as_object_mut().unwrap();
            meta.insert("uid".into(), json!("0b9a8c7d-1111-4222-8333-444455556666"));
            meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
            meta.insert("creationTimestamp".into(), json!("2027-01-15T08:00:00Z"));
            meta.insert(
                "managedFields".into(),
                json!([{
                    "manager": "gatehouse",
                    "operation": "Update",
                    "apiVersion": "coordination.k8s.io/v1",
                    "time": "2027-01-15T08:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:holderIdentity": {}, "f:renewTime": {}}},
                }]),
            );
            object
        }

        /// Answers the acquisition of a missing Lease (GET 404, POST 201); returns the
        /// stored Lease.
        async fn acquire_new(&mut self) -> Value {
            let (get, send) = self.next().await;
            assert_eq!((get.method, get.path.as_str()), (Method::GET, LEASE_PATH));
            send.send_response(status(
                404,
                "NotFound",
                "leases.coordination.k8s.io \"gatehouse-controller\" not found",
            ));
            let (post, send) = self.next().await;
            assert_eq!(
                (post.method, post.path.as_str()),
                (Method::POST, LEASES_PATH)
            );
            assert_eq!(post.query, "fieldManager=gatehouse");
            assert_eq!(post.body["metadata"]["name"], NAME);
            assert_eq!(post.body["spec"]["holderIdentity"], ME);
            assert_eq!(post.body["spec"]["leaseDurationSeconds"], 15);
            assert_eq!(post.body["spec"]["leaseTransitions"], 0);
            let stored = self.store(&post.body);
            send.send_response(ok(201, &stored));
            self.leader.wait_for(|l| *l).await.unwrap();
            stored
        }
    }

    /// A Lease as the API server returns it.
    fn lease(holder: &str, rv: &str, renew_time: &str, transitions: i32) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": NAME,
                "namespace": NS,
                "uid": "6f1e2d3c-aaaa-4bbb-8ccc-ddddeeeeffff",
                "resourceVersion": rv,
                "creationTimestamp": "2027-01-01T00:00:00Z",
            },
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": 15,
                "acquireTime": "2027-01-01T00:00:00.000000Z",
                "renewTime": renew_time,
                "leaseTransitions": transitions,
            },
        })
    }

    #[tokio::test(start_paused = true)]
    async fn creates_a_missing_lease() {
        let mut h = start();
        let (get, send) = h.next().await;
        assert_eq!(get.method, Method::GET);
        assert_eq!(get.path, LEASE_PATH);
        assert_eq!(get.query, "");
        send.send_response(status(
            404,
            "NotFound",
            "leases.coordination.k8s.io \"gatehouse-controller\" not found",
        ));

        let (post, send) = h.next().await;
        assert_eq!(post.method, Method::POST);
        assert_eq!(post.path, LEASES_PATH);
        assert_eq!(post.query, "fieldManager=gatehouse");
        assert_eq!(post.body["apiVersion"], "coordination.k8s.io/v1");
        assert_eq!(post.body["kind"], "Lease");
        assert_eq!(post.body["metadata"]["name"], NAME);
        assert_eq!(post.body["metadata"]["namespace"], NS);
        let spec = &post.body["spec"];
        assert_eq!(spec["holderIdentity"], ME);
        assert_eq!(spec["leaseDurationSeconds"], 15);
        assert_eq!(spec["leaseTransitions"], 0);
        assert!(spec["renewTime"].as_str().unwrap().ends_with('Z'));
        assert_eq!(spec["acquireTime"], spec["renewTime"]);
        assert!(!*h.leader.borrow());
        let stored = h.store(&post.body);
        send.send_response(ok(201, &stored));
        h.leader.wait_for(|l| *l).await.unwrap();
        h.task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn takes_over_an_expired_lease() {
        let mut h = start();
        let held = lease(OTHER, "500", "2027-01-15T07:59:00.000000Z", 3);
        let started = Instant::now();
        let mut gets = 0;
        let put = loop {
            let (req, send) = h.next().await;
            if req.method == Method::PUT {
                break (req, send);
            }
            assert_eq!((req.method, req.path.as_str()), (Method::GET, LEASE_PATH));
            gets += 1;
            // The holder stopped renewing: the same record every time.
            send.send_response(ok(200, &held));
            assert!(!*h.leader.borrow(), "not leader while the lease is valid");
        };
        // Expired only after a whole lease duration without a change, on our clock: GETs at
        // 0, 2, ..., 14 s see a valid lease; the one at 16 s takes it.
        assert_eq!(gets, 9);
        assert!(started.elapsed() >= Duration::from_secs(15));
        let (put, send) = put;
        assert_eq!(put.path, LEASE_PATH);
        assert_eq!(put.query, "fieldManager=gatehouse");
        assert_eq!(put.body["metadata"]["resourceVersion"], "500");
        assert_eq!(put.body["spec"]["holderIdentity"], ME);
        assert_eq!(put.body["spec"]["leaseTransitions"], 4);
        assert_eq!(put.body["spec"]["leaseDurationSeconds"], 15);
        assert_ne!(put.body["spec"]["acquireTime"], held["spec"]["acquireTime"]);
        assert!(
            put.body["spec"]["renewTime"].as_str().unwrap()
                > held["spec"]["renewTime"].as_str().unwrap()
        );
        let stored = h.store(&put.body);
        send.send_response(ok(200, &stored));
        h.leader.wait_for(|l| *l).await.unwrap();
        h.task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn takes_a_released_lease_at_once_and_loses_races() {
        let mut h = start();
        let released = lease("", "700", "2027-01-15T07:59:00.000000Z", 5);
        let (get, send) = h.next().await;
        assert_eq!((get.method, get.path.as_str()), (Method::GET, LEASE_PATH));
        send.send_response(ok(200, &released));
        let (put, send) = h.next().await;
        assert_eq!((put.method, put.path.as_str()), (Method::PUT, LEASE_PATH));
        assert_eq!(put.body["metadata"]["resourceVersion"], "700");
        assert_eq!(put.body["spec"]["holderIdentity"], ME);
        assert_eq!(put.body["spec"]["leaseTransitions"], 6);
        // Another replica wrote first.
        send.send_response(status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on leases.coordination.k8s.io \"gatehouse-controller\": the object has been modified; please apply your changes to the latest version and try again",
        ));
        let (get, send) = h.next().await;
        assert_eq!((get.method, get.path.as_str()), (Method::GET, LEASE_PATH));
        assert!(!*h.leader.borrow());
        send.send_response(ok(
            200,
            &lease(OTHER, "701", "2027-01-15T08:00:00.000000Z", 6),
        ));
        let (get, _send) = h.next().await;
        assert_eq!(get.method, Method::GET, "the winner's lease is not taken");
        assert!(!*h.leader.borrow());
        h.task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn leaves_a_lease_that_its_holder_renews() {
        let mut h = start();
        for i in 0..20u32 {
            let (req, send) = h.next().await;
            assert_eq!(req.method, Method::GET, "request {i}");
            assert_eq!(req.path, LEASE_PATH);
            // The holder renews every 2 s: a new renewTime and resourceVersion each time.
            let renew = format!("2027-01-15T08:00:{:02}.000000Z", 2 * i);
            send.send_response(ok(200, &lease(OTHER, &(900 + i).to_string(), &renew, 1)));
            assert!(!*h.leader.borrow());
        }
        h.task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn renews_every_retry_period() {
        let mut h = start();
        let mut last = h.acquire_new().await;
        for _ in 0..3 {
            let before = Instant::now();
            let (put, send) = h.next().await;
            assert_eq!(before.elapsed(), DEFAULT_RETRY_PERIOD);
            assert_eq!((put.method, put.path.as_str()), (Method::PUT, LEASE_PATH));
            assert_eq!(put.query, "fieldManager=gatehouse");
            assert_eq!(
                put.body["metadata"]["resourceVersion"],
                last["metadata"]["resourceVersion"]
            );
            assert_eq!(put.body["spec"]["holderIdentity"], ME);
            assert_eq!(put.body["spec"]["leaseTransitions"], 0);
            assert_eq!(put.body["spec"]["acquireTime"], last["spec"]["acquireTime"]);
            assert!(
                put.body["spec"]["renewTime"].as_str().unwrap()
                    > last["spec"]["renewTime"].as_str().unwrap(),
                "renewTime advances"
            );
            last = h.store(&put.body);
            send.send_response(ok(200, &last));
        }
        assert!(*h.leader.borrow());
        h.task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn steps_down_when_renewals_fail() {
        let mut h = start();
        h.acquire_new().await;
        let leading_since = Instant::now();
        let mut puts = 0;
        // Renewals at 2, 4, 6 and 8 s all fail; at 10 s the deadline has passed: it steps
        // down without another try and goes back to acquiring.
        loop {
            let (req, send) = h.next().await;
            if req.method == Method::GET {
                assert_eq!(req.path, LEASE_PATH);
                break;
            }
            assert_eq!((req.method, req.path.as_str()), (Method::PUT, LEASE_PATH));
            assert!(*h.leader.borrow(), "leader until the deadline");
            puts += 1;
            send.send_response(status(
                500,
                "InternalError",
                "etcdserver: request timed out",
            ));
        }
        assert!(!*h.leader.borrow());
        assert_eq!(puts, 4);
        assert!(leading_since.elapsed() >= DEFAULT_RENEW_DEADLINE);
        h.task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn steps_down_when_renewals_hang() {
        let mut h = start();
        h.acquire_new().await;
        let leading_since = Instant::now();
        let (put, _unanswered) = h.next().await;
        assert_eq!((put.method, put.path.as_str()), (Method::PUT, LEASE_PATH));
        h.leader.wait_for(|l| !*l).await.unwrap();
        assert!(leading_since.elapsed() >= DEFAULT_RENEW_DEADLINE);
        assert!(leading_since.elapsed() < DEFAULT_LEASE_DURATION);
        let (get, _send) = h.next().await;
        assert_eq!((get.method, get.path.as_str()), (Method::GET, LEASE_PATH));
        h.task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn steps_down_when_another_replica_holds_the_lease() {
        let mut h = start();
        h.acquire_new().await;
        let (put, send) = h.next().await;
        assert_eq!(put.method, Method::PUT);
        send.send_response(status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on leases.coordination.k8s.io \"gatehouse-controller\": the object has been modified; please apply your changes to the latest version and try again",
        ));
        let (get, send) = h.next().await;
        assert_eq!((get.method, get.path.as_str()), (Method::GET, LEASE_PATH));
        send.send_response(ok(
            200,
            &lease(OTHER, "2000", "2027-01-15T08:00:30.000000Z", 1),
        ));
        h.leader.wait_for(|l| !*l).await.unwrap();
        // Waits as a follower: the next request is a GET, not a PUT.
        let (get, _send) = h.next().await;
        assert_eq!(get.method, Method::GET);
        h.task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn releases_on_shutdown() {
        let mut h = start();
        let stored = h.acquire_new().await;
        h.shutdown.send(true).unwrap();
        let (put, send) = h.next().await;
        assert!(!*h.leader.borrow(), "stops leading before it releases");
        assert_eq!((put.method, put.path.as_str()), (Method::PUT, LEASE_PATH));
        assert_eq!(put.query, "fieldManager=gatehouse");
        assert_eq!(
            put.body["metadata"]["resourceVersion"],
            stored["metadata"]["resourceVersion"]
        );
        assert_eq!(put.body["spec"]["holderIdentity"], "");
        assert_eq!(put.body["spec"]["leaseDurationSeconds"], 1);
        assert_eq!(put.body["spec"]["leaseTransitions"], 0);
        let released = h.store(&put.body);
        send.send_response(ok(200, &released));
        h.task.await.unwrap();
        assert!(
            h.handle.next_request().await.is_none(),
            "no request after release"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn follower_shuts_down_without_writing() {
        let mut h = start();
        let (get, send) = h.next().await;
        assert_eq!(get.method, Method::GET);
        send.send_response(ok(
            200,
            &lease(OTHER, "42", "2027-01-15T08:00:00.000000Z", 0),
        ));
        h.shutdown.send(true).unwrap();
        h.task.await.unwrap();
        assert!(!*h.leader.borrow());
        assert!(h.handle.next_request().await.is_none());
    }

    #[test]
    fn refuses_unworkable_timings() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let (svc, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(svc, "default");
        let mut config = LeaseConfig::new(NS, NAME, ME);
        config.renew_deadline = Duration::from_secs(20);
        let e = LeaderElector::new(client.clone(), config).unwrap_err();
        assert!(
            e.to_string()
                .contains("retry period < renew deadline < lease duration"),
            "{e}"
        );
        let e = LeaderElector::new(client.clone(), LeaseConfig::new(NS, NAME, "")).unwrap_err();
        assert!(e.to_string().contains("pod name"), "{e}");
        let mut config = LeaseConfig::new(NS, NAME, ME);
        config.lease_duration = Duration::from_millis(15_500);
        assert!(LeaderElector::new(client, config).is_err());
    }
}
