//! Pure conversion of Flux objects (as JSON from the Kubernetes API) into
//! [`crate::domain::health`] terms: conditions → health, revision strings →
//! commits, history, sync status. No I/O here.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::CommitSha;
use crate::domain::health::{Deployed, Health, SyncStatus};

/// One entry of `status.conditions[]` (the `metav1.Condition` shape).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub last_transition_time: Option<String>,
}

/// `spec.sourceRef` of a Kustomization.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SourceRef {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// The parts of a Flux object's `metadata`, `spec` and `status` revertbot
/// reads. Both kinds share it; fields the kind lacks stay empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct FluxObject {
    pub name: String,
    pub namespace: String,
    pub generation: Option<i64>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub spec: Spec,
    pub status: Status,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Spec {
    pub suspend: bool,
    pub source_ref: Option<SourceRef>,
    pub target_namespace: Option<String>,
    pub release_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Status {
    pub conditions: Vec<Condition>,
    pub observed_generation: Option<i64>,
    pub last_applied_revision: Option<String>,
    pub last_attempted_revision: Option<String>,
    pub last_handled_reconcile_at: Option<String>,
    /// Kustomization: per manifest digest, newest first. HelmRelease: Helm
    /// release snapshots, newest first. Kept raw; read by kind.
    pub history: Vec<Value>,
    pub inventory: Option<Inventory>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Inventory {
    pub entries: Vec<InventoryEntry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InventoryEntry {
    /// `<namespace>_<name>_<group>_<kind>`.
    pub id: String,
}

/// An object id from a Kustomization inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InventoryId {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub kind: String,
}

impl InventoryEntry {
    /// Splits the id. Kubernetes names, namespaces, groups and kinds cannot
    /// contain `_`, so exactly four parts is the only valid shape.
    pub fn parse(&self) -> Option<InventoryId> {
        let mut parts = self.id.split('_');
        let id = InventoryId {
            namespace: parts.next()?.to_owned(),
            name: parts.next()?.to_owned(),
            group: parts.next()?.to_owned(),
            kind: parts.next()?.to_owned(),
        };
        (parts.next().is_none() && !id.name.is_empty()).then_some(id)
    }
}

/// The JSON of a Flux object did not have the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {source}")]
pub(crate) struct ShapeError {
    pub field: &'static str,
    #[source]
    pub source: serde_json::Error,
}

impl FluxObject {
    /// Reads the object from its JSON (`metadata`, `spec`, `status`).
    pub fn from_json(name: &str, namespace: &str, root: &Value) -> Result<Self, ShapeError> {
        let metadata = root.get("metadata");
        let field = |f: &'static str| metadata.and_then(|m| m.get(f)).cloned();
        let generation = decode("metadata.generation", field("generation"))?;
        let labels = decode("metadata.labels", field("labels"))?.unwrap_or_default();
        let spec = decode("spec", root.get("spec").cloned())?.unwrap_or_default();
        let status = decode("status", root.get("status").cloned())?.unwrap_or_default();
        Ok(Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            generation,
            labels,
            spec,
            status,
        })
    }

    /// The Ready condition, if it describes the current generation.
    fn fresh(&self, kind: &str) -> Freshness<'_> {
        match self.status.conditions.iter().find(|c| c.kind == kind) {
            None => Freshness::Absent,
            Some(c) => {
                let observed = c.observed_generation.or(self.status.observed_generation);
                match (observed, self.generation) {
                    (Some(seen), Some(current)) if seen != current => {
                        Freshness::Stale { seen, current }
                    }
                    // Equal, or a controller too old to record generations.
                    _ => Freshness::Fresh(c),
                }
            }
        }
    }

    /// The condition of this kind, when it describes the current generation.
    pub fn fresh_condition(&self, kind: &str) -> Option<&Condition> {
        match self.fresh(kind) {
            Freshness::Fresh(c) => Some(c),
            Freshness::Absent | Freshness::Stale { .. } => None,
        }
    }

    /// The Kustomization that applied this object (labels set by
    /// kustomize-controller), as `(namespace, name)`.
    pub fn parent(&self) -> Option<(String, String)> {
        let name = self.labels.get("kustomize.toolkit.fluxcd.io/name")?;
        let namespace = self.labels.get("kustomize.toolkit.fluxcd.io/namespace")?;
        Some((namespace.clone(), name.clone()))
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    field: &'static str,
    value: Option<Value>,
) -> Result<Option<T>, ShapeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|source| ShapeError { field, source }),
    }
}

enum Freshness<'a> {
    Absent,
    Stale { seen: i64, current: i64 },
    Fresh(&'a Condition),
}

/// `Ready=False` reasons that mean "waiting", not "broken". kustomize-controller
/// cancels running health checks when a new revision arrives
/// (`HealthCheckCanceled`) and starts over.
const WAITING_REASONS: &[&str] = &["DependencyNotReady", "Progressing", "HealthCheckCanceled"];

/// Health from the conditions, in this order: suspended; a stale `Ready`
/// (written for an older generation) is not trusted → Unknown; `Stalled`
/// → Degraded; `Ready=False` with a failure reason (HealthCheckFailed,
/// BuildFailed, UpgradeFailed, RollbackSucceeded, …) → Degraded even while
/// `Reconciling` retries; `Reconciling=True` or `Ready=Unknown` →
/// Progressing; `Ready=True` → Healthy.
pub(crate) fn health(object: &FluxObject) -> (Health, Option<String>) {
    if object.spec.suspend {
        return (
            Health::Suspended,
            Some("reconciliation is suspended (spec.suspend: true)".to_owned()),
        );
    }
    let ready = match object.fresh("Ready") {
        Freshness::Absent => {
            return (
                Health::Unknown,
                Some("Flux has not reported a Ready condition yet".to_owned()),
            );
        }
        Freshness::Stale { seen, current } => {
            return (
                Health::Unknown,
                Some(format!(
                    "Flux has not reported on generation {current} yet (its Ready condition is for generation {seen}); health unknown until it does"
                )),
            );
        }
        Freshness::Fresh(c) => c,
    };
    if let Freshness::Fresh(stalled) = object.fresh("Stalled")
        && stalled.status == "True"
    {
        return (Health::Degraded, message(stalled));
    }
    let reconciling = match object.fresh("Reconciling") {
        Freshness::Fresh(c) if c.status == "True" => Some(c),
        _ => None,
    };
    match ready.status.as_str() {
        "True" if reconciling.is_none() => (Health::Healthy, message(ready)),
        "False" if !WAITING_REASONS.contains(&ready.reason.as_deref().unwrap_or("")) => {
            (Health::Degraded, message(ready))
        }
        _ => (
            Health::Progressing,
            reconciling.and_then(message).or_else(|| message(ready)),
        ),
    }
}

fn message(c: &Condition) -> Option<String> {
    match (&c.reason, &c.message) {
        (Some(r), Some(m)) => Some(format!("{r}: {m}")),
        (None, Some(m)) => Some(m.clone()),
        (Some(r), None) => Some(r.clone()),
        (None, None) => None,
    }
}

/// The commit of a Flux revision string, when it names one:
/// `main@sha1:<sha>`, `refs/heads/main@sha1:<sha>`, `v1.0.1@sha1:<sha>`,
/// `sha1:<sha>`, legacy `main/<sha>` and `HEAD/<sha>`. OCI (`@sha256:`),
/// bucket and chart revisions name no commit → `None`.
pub fn parse_revision(raw: &str) -> Option<CommitSha> {
    let raw = raw.trim();
    let hash = if let Some((_, digest)) = raw.rsplit_once('@') {
        sha1(digest)?
    } else if raw.contains(':') {
        sha1(raw)?
    } else {
        raw.rsplit('/').next()?
    };
    hash.parse().ok()
}

fn sha1(digest: &str) -> Option<&str> {
    digest.strip_prefix("sha1:")
}

/// Attempted equal to applied → Synced; anything attempted but not applied
/// (a broken commit) → OutOfSync; nothing known → Unknown.
pub(crate) fn kustomization_sync(status: &Status) -> SyncStatus {
    match (
        status.last_attempted_revision.as_deref(),
        status.last_applied_revision.as_deref(),
    ) {
        (Some(attempted), Some(applied)) if attempted == applied => SyncStatus::Synced,
        (Some(_), _) => SyncStatus::OutOfSync,
        (None, Some(_)) => SyncStatus::Synced,
        (None, None) => SyncStatus::Unknown,
    }
}

/// A HelmRelease is in sync when the newest Helm release is `deployed` and
/// is the chart version last attempted.
pub(crate) fn helm_sync(status: &Status) -> SyncStatus {
    let Some(newest) = status.history.first() else {
        return SyncStatus::Unknown;
    };
    let chart = newest.get("chartVersion").and_then(Value::as_str);
    let deployed = newest.get("status").and_then(Value::as_str) == Some("deployed");
    match (status.last_attempted_revision.as_deref(), chart) {
        (Some(attempted), Some(chart)) if attempted == chart && deployed => SyncStatus::Synced,
        (None, Some(_)) if deployed => SyncStatus::Synced,
        _ => SyncStatus::OutOfSync,
    }
}

/// Both must be Synced; either OutOfSync wins.
pub(crate) fn combine_sync(a: SyncStatus, b: SyncStatus) -> SyncStatus {
    match (a, b) {
        (SyncStatus::OutOfSync, _) | (_, SyncStatus::OutOfSync) => SyncStatus::OutOfSync,
        (SyncStatus::Synced, SyncStatus::Synced) => SyncStatus::Synced,
        _ => SyncStatus::Unknown,
    }
}

/// Kustomization `status.history` (newest first, one entry per manifest
/// digest) → deploy history, oldest first. An entry's time is when that
/// revision was first reconciled. Entries naming no commit are skipped.
pub(crate) fn kustomization_history(status: &Status) -> Vec<Deployed> {
    let mut out: Vec<Deployed> = status
        .history
        .iter()
        .filter_map(|entry| {
            let revision = entry.pointer("/metadata/revision")?.as_str()?;
            Some(Deployed {
                revision: parse_revision(revision)?,
                deployed_at: timestamp(entry.get("firstReconciled")),
            })
        })
        .collect();
    out.reverse();
    out
}

/// When Flux last finished reconciling: the newest history entry's
/// `lastReconciled` (Kustomization) or `lastDeployed` (HelmRelease), else
/// the Ready condition's transition time.
pub(crate) fn reconciled_at(object: &FluxObject) -> Option<jiff::Timestamp> {
    let newest = object.status.history.first();
    newest
        .and_then(|h| {
            timestamp(h.get("lastReconciled")).or_else(|| timestamp(h.get("lastDeployed")))
        })
        .or_else(|| {
            let ready = object
                .status
                .conditions
                .iter()
                .find(|c| c.kind == "Ready")?;
            ready.last_transition_time.as_deref()?.parse().ok()
        })
}

fn timestamp(value: Option<&Value>) -> Option<jiff::Timestamp> {
    value?.as_str()?.parse().ok()
}

/// The Helm release name and namespace of a HelmRelease: from the newest
/// history entry when there is one, else Flux's defaults
/// (`spec.releaseName`, or `<targetNamespace>-<name>` / `<name>`).
pub(crate) fn helm_release(object: &FluxObject) -> (String, String) {
    let newest = object.status.history.first();
    let field = |f: &str| newest.and_then(|h| h.get(f)).and_then(Value::as_str);
    let namespace = field("namespace")
        .map(str::to_owned)
        .or_else(|| object.spec.target_namespace.clone())
        .unwrap_or_else(|| object.namespace.clone());
    let name = field("name")
        .map(str::to_owned)
        .or_else(|| object.spec.release_name.clone())
        .unwrap_or_else(|| match &object.spec.target_namespace {
            Some(target) => format!("{target}-{}", object.name),
            None => object.name.clone(),
        });
    (namespace, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "450796ddb2ab6724ee1cc32a4be56da032d1cca0";

    #[test]
    fn revision_forms() {
        for raw in [
            format!("main@sha1:{SHA}"),
            format!("refs/heads/main@sha1:{SHA}"),
            format!("v1.0.1@sha1:{SHA}"),
            format!("sha1:{SHA}"),
            format!("main/{SHA}"),
            format!("HEAD/{SHA}"),
            SHA.to_owned(),
        ] {
            assert_eq!(
                parse_revision(&raw).map(|s| s.to_string()),
                Some(SHA.to_owned()),
                "{raw}"
            );
        }
        for raw in [
            "6.6.1+0cc9a8446c95",
            "latest@sha256:0cc9a8446c95009ef382f5eade883a67c257f77d50f84e78ecef2aac9428d1e5",
            "sha256:0cc9a8446c95009ef382f5eade883a67c257f77d50f84e78ecef2aac9428d1e5",
            "main@sha1:abc",
            "",
        ] {
            assert_eq!(parse_revision(raw), None, "{raw}");
        }
    }

    #[test]
    fn inventory_ids() {
        let entry = |id: &str| InventoryEntry { id: id.to_owned() };
        assert_eq!(
            entry("default_podinfo_apps_Deployment").parse(),
            Some(InventoryId {
                namespace: "default".into(),
                name: "podinfo".into(),
                group: "apps".into(),
                kind: "Deployment".into(),
            })
        );
        let service = entry("default_podinfo__Service").parse();
        assert_eq!(service.map(|i| i.group), Some(String::new()));
        assert_eq!(
            entry("_flux-system__Namespace")
                .parse()
                .map(|i| i.namespace),
            Some(String::new())
        );
        assert_eq!(entry("a_b_c").parse(), None);
        assert_eq!(entry("a_b_c_d_e").parse(), None);
    }

    fn object(generation: i64, conditions: Value) -> FluxObject {
        let json = serde_json::json!({
            "metadata": {"generation": generation},
            "status": {"conditions": conditions},
        });
        FluxObject::from_json("x", "ns", &json).unwrap()
    }

    #[test]
    fn stale_ready_is_not_trusted() {
        let o = object(
            3,
            serde_json::json!([{"type":"Ready","status":"True","reason":"ReconciliationSucceeded","observedGeneration":2}]),
        );
        let (health, message) = health(&o);
        assert_eq!(health, Health::Unknown);
        assert!(message.unwrap().contains("generation 3"));
    }

    #[test]
    fn waiting_reasons_are_progressing() {
        let o = object(
            1,
            serde_json::json!([{"type":"Ready","status":"False","reason":"DependencyNotReady","observedGeneration":1}]),
        );
        assert_eq!(health(&o).0, Health::Progressing);
        // A new revision arrived mid-check; kustomize-controller starts over.
        let o = object(
            1,
            serde_json::json!([{"type":"Ready","status":"False","reason":"HealthCheckCanceled","observedGeneration":1}]),
        );
        assert_eq!(health(&o).0, Health::Progressing);
    }

    #[test]
    fn stalled_is_degraded() {
        let o = object(
            1,
            serde_json::json!([
                {"type":"Ready","status":"False","reason":"BuildFailed","observedGeneration":1},
                {"type":"Stalled","status":"True","reason":"BuildFailed","message":"kustomize build failed","observedGeneration":1},
            ]),
        );
        assert_eq!(
            health(&o),
            (
                Health::Degraded,
                Some("BuildFailed: kustomize build failed".into())
            )
        );
    }
}
