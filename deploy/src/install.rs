//! `gatehouse install`: applies rendered objects to a cluster with server-side apply, stage by
//! stage, then waits (bounded) for the Deployments to roll out.
//!
//! Order: CRDs (if any), namespaces, RBAC, configuration (ConfigMaps and NetworkPolicies, so
//! that a pod never starts without its configuration or outside its network policy),
//! workloads. Every object is applied with `PATCH …?fieldManager=gatehouse&force=true&
//! fieldValidation=Strict` (`Content-Type: application/apply-patch+yaml`): the API server
//! merges it, takes ownership of the fields we set, and refuses fields it does not know.
//! With `dry_run`, the same requests carry `dryRun=All` (the API server validates and runs
//! admission, and stores nothing) and nothing is waited for.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, ValidationDirective};
use kube::{Api, Client};

use crate::kubernetes::{FIELD_MANAGER, Object, Stage};

/// How `install` behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstallOptions {
    /// Server-side dry run: every request with `dryRun=All`, no waiting.
    pub dry_run: bool,
    /// How long to wait for all Deployments to roll out, all together.
    pub rollout_timeout: Duration,
    /// How often to look at the Deployments while waiting.
    pub poll_interval: Duration,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            rollout_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// What `install` reports as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A stage starts.
    Stage(Stage),
    /// An object was applied (or accepted by a dry run).
    Applied {
        /// `Kind/namespace/name`.
        id: String,
    },
    /// A Deployment is not rolled out yet.
    Waiting {
        /// `Deployment/namespace/name`.
        id: String,
        /// What is missing, e.g. `1 of 2 updated replicas available`.
        status: String,
    },
    /// A Deployment is rolled out.
    RolledOut {
        /// `Deployment/namespace/name`.
        id: String,
    },
}

/// What can go wrong while installing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// No kubeconfig and no in-cluster configuration, or the client could not be built.
    #[error(
        "cannot reach Kubernetes: {0} (set KUBECONFIG or run inside a cluster; `gatehouse render` needs no cluster)"
    )]
    Connect(#[source] kube::Error),
    /// The API server refused an object.
    #[error("cannot apply {id}: {source}")]
    Apply {
        /// `Kind/namespace/name`.
        id: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// A Deployment could not be read while waiting for it.
    #[error("cannot read {id} while waiting for its rollout: {source}")]
    Read {
        /// `Deployment/namespace/name`.
        id: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// A Deployment reported that its rollout cannot progress.
    #[error("{id} does not roll out: {reason}")]
    Rollout {
        /// `Deployment/namespace/name`.
        id: String,
        /// The Deployment's condition message.
        reason: String,
    },
    /// Deployments were not rolled out in time.
    #[error("timed out after {}s waiting for {}: {}", timeout.as_secs(), pending.join(", "), last.join("; "))]
    Timeout {
        /// How long we waited.
        timeout: Duration,
        /// `Deployment/namespace/name` of each one not rolled out.
        pending: Vec<String>,
        /// Their last status.
        last: Vec<String>,
    },
}

/// A client from the local kubeconfig (`KUBECONFIG`, `~/.kube/config`) or the in-cluster
/// service account.
pub async fn connect() -> Result<Client, InstallError> {
    Client::try_default().await.map_err(InstallError::Connect)
}

fn api_for(client: &Client, object: &Object) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: object.group.clone(),
        version: object.version.clone(),
        api_version: object.api_version.clone(),
        kind: object.kind.clone(),
        plural: object.plural.clone(),
    };
    match &object.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Applies `objects` in stage order (their order within a stage is kept), then waits for the
/// Deployments among them to roll out, unless `options.dry_run`.
pub async fn install(
    client: &Client,
    objects: &[Object],
    options: &InstallOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), InstallError> {
    let mut params = PatchParams::apply(FIELD_MANAGER)
        .force()
        .validation(ValidationDirective::Strict);
    if options.dry_run {
        params = params.dry_run();
    }
    let mut ordered: Vec<&Object> = objects.iter().collect();
    ordered.sort_by_key(|o| o.stage);
    let mut stage = None;
    for object in ordered {
        if stage != Some(object.stage) {
            stage = Some(object.stage);
            progress(Progress::Stage(object.stage));
        }
        api_for(client, object)
            .patch(&object.name, &params, &Patch::Apply(&object.value))
            .await
            .map_err(|source| InstallError::Apply {
                id: object.id(),
                source,
            })?;
        progress(Progress::Applied { id: object.id() });
    }
    if options.dry_run {
        return Ok(());
    }
    let deployments: Vec<(String, String, String)> = objects
        .iter()
        .filter(|o| o.kind == "Deployment")
        .filter_map(|o| Some((o.namespace.clone()?, o.name.clone(), o.id())))
        .collect();
    wait_for_rollouts(client, &deployments, options, progress).await
}

/// Polls each Deployment until it is rolled out, all within `options.rollout_timeout`.
async fn wait_for_rollouts(
    client: &Client,
    deployments: &[(String, String, String)],
    options: &InstallOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), InstallError> {
    let deadline = tokio::time::Instant::now() + options.rollout_timeout;
    let mut pending: Vec<&(String, String, String)> = deployments.iter().collect();
    let mut last_status: Vec<String> = Vec::new();
    loop {
        let mut still = Vec::new();
        last_status.clear();
        for entry in pending {
            let (ns, name, id) = entry;
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            let deployment = api.get(name).await.map_err(|source| InstallError::Read {
                id: id.clone(),
                source,
            })?;
            match rollout_status(&deployment) {
                Rollout::Done => progress(Progress::RolledOut { id: id.clone() }),
                Rollout::Failed(reason) => {
                    return Err(InstallError::Rollout {
                        id: id.clone(),
                        reason,
                    });
                }
                Rollout::Waiting(status) => {
                    progress(Progress::Waiting {
                        id: id.clone(),
                        status: status.clone(),
                    });
                    last_status.push(format!("{id}: {status}"));
                    still.push(entry);
                }
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() + options.poll_interval > deadline {
            return Err(InstallError::Timeout {
                timeout: options.rollout_timeout,
                pending: still.iter().map(|(_, _, id)| id.clone()).collect(),
                last: last_status,
            });
        }
        tokio::time::sleep(options.poll_interval).await;
        pending = still;
    }
}

/// Where a Deployment's rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rollout {
    Done,
    Waiting(String),
    Failed(String),
}

/// The rule `kubectl rollout status` applies: the controller has seen the latest spec, every
/// replica is updated and available, and no old replica is left.
pub(crate) fn rollout_status(deployment: &Deployment) -> Rollout {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(status) = &deployment.status else {
        return Rollout::Waiting("no status yet".into());
    };
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Rollout::Failed(
            c.message
                .clone()
                .unwrap_or_else(|| "progress deadline exceeded".into()),
        );
    }
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("the Deployment controller has not seen the new spec yet".into());
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < wanted {
        return Rollout::Waiting(format!("{updated} of {wanted} replicas updated"));
    }
    if total > updated {
        return Rollout::Waiting(format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    if available < updated {
        return Rollout::Waiting(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Rollout::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    fn deployment(generation: i64, status: Option<DeploymentStatus>) -> Deployment {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                ..DeploymentSpec::default()
            }),
            status,
            ..Deployment::default()
        };
        d.metadata.generation = Some(generation);
        d
    }

    fn status(observed: i64, total: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(total),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ..DeploymentStatus::default()
        }
    }

    #[test]
    fn rollout_rules_follow_kubectl() {
        assert!(matches!(
            rollout_status(&deployment(1, None)),
            Rollout::Waiting(_)
        ));
        assert_eq!(
            rollout_status(&deployment(2, Some(status(1, 2, 2, 2)))),
            Rollout::Waiting("the Deployment controller has not seen the new spec yet".into())
        );
        assert_eq!(
            rollout_status(&deployment(2, Some(status(2, 3, 1, 1)))),
            Rollout::Waiting("1 of 2 replicas updated".into())
        );
        assert_eq!(
            rollout_status(&deployment(2, Some(status(2, 3, 2, 2)))),
            Rollout::Waiting("1 old replicas pending termination".into())
        );
        assert_eq!(
            rollout_status(&deployment(2, Some(status(2, 2, 2, 1)))),
            Rollout::Waiting("1 of 2 updated replicas available".into())
        );
        assert_eq!(
            rollout_status(&deployment(2, Some(status(2, 2, 2, 2)))),
            Rollout::Done
        );
        let mut failed = status(2, 2, 1, 1);
        failed.conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            message: Some("ReplicaSet \"x\" has timed out progressing.".into()),
            ..DeploymentCondition::default()
        }]);
        assert_eq!(
            rollout_status(&deployment(2, Some(failed))),
            Rollout::Failed("ReplicaSet \"x\" has timed out progressing.".into())
        );
    }
}
