//! What revertbot records in the `refs/notes/revertbot` notes: last-known-good
//! (LKG) records and incidents, as JSON, one document per annotated commit.

use serde::{Deserialize, Serialize};

use crate::domain::{AppName, CommitSha, Digest};

pub const NOTES_REF: &str = "refs/notes/revertbot";

/// The JSON note attached to one commit. Writers only ever add records, so
/// two notes for the same commit merge by union.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoteDoc {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lkg: Vec<LkgRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<IncidentRecord>,
}

/// An image as it ran while the app was healthy: the reference as written in
/// the manifest (`name:tag`) and the immutable digest it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordedImage {
    pub image: String,
    pub digest: Digest,
}

impl RecordedImage {
    /// `name:tag@sha256:…`, the form pinned into manifests and trailers.
    pub fn pinned(&self) -> String {
        let name = self.image.split('@').next().unwrap_or(&self.image);
        format!("{name}@{}", self.digest)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSource {
    /// Written by hand with `revertbot record --image`.
    Manual,
    /// Digests read from the running pods through the GitOps controller.
    Controller,
    /// Digests resolved from tags through the registry.
    Registry,
    /// Digests already pinned in the manifests.
    Manifest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LkgRecord {
    pub app: AppName,
    pub revision: CommitSha,
    pub images: Vec<RecordedImage>,
    pub source: RecordSource,
    pub recorded_at: jiff::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub id: String,
    pub app: AppName,
    pub deployed_revision: CommitSha,
    pub last_known_good: Option<CommitSha>,
    pub culprits: Vec<CommitSha>,
    pub revert_commit: CommitSha,
    /// Images the deployed revision referenced where the LKG ran another
    /// digest or tag: quarantined for later runs.
    #[serde(default)]
    pub bad_images: Vec<String>,
    #[serde(default)]
    pub pinned_images: Vec<RecordedImage>,
    pub reason: String,
    pub opened_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Guards a person overrode with `--force-guards`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced_guards: Vec<String>,
}

impl NoteDoc {
    pub const VERSION: u32 = 1;

    pub fn new() -> Self {
        Self {
            version: Self::VERSION,
            ..Self::default()
        }
    }

    /// Union of two notes for the same commit: nothing either writer added is
    /// lost, and records both had appear once.
    pub fn merge(mut self, other: NoteDoc) -> NoteDoc {
        for r in other.lkg {
            if !self.lkg.contains(&r) {
                self.lkg.push(r);
            }
        }
        for i in other.incidents {
            if !self.incidents.iter().any(|mine| mine.id == i.id) {
                self.incidents.push(i);
            }
        }
        self.lkg.sort_by_key(|r| r.recorded_at);
        self.incidents.sort_by_key(|i| i.opened_at);
        self.version = self.version.max(other.version).max(Self::VERSION);
        self
    }

    /// The newest LKG record for `app` in this note.
    pub fn latest_lkg(&self, app: &AppName) -> Option<&LkgRecord> {
        self.lkg
            .iter()
            .filter(|r| &r.app == app)
            .max_by_key(|r| r.recorded_at)
    }

    pub fn incident(&self, id: &str) -> Option<&IncidentRecord> {
        self.incidents.iter().find(|i| i.id == id)
    }
}

/// The incident id for reverting `app` away from `deployed`: deterministic,
/// so two racing runs name the same incident.
pub fn incident_id(app: &AppName, deployed: &CommitSha) -> String {
    format!("{app}-{}", deployed.short())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lkg(app: &str, secs: i64) -> LkgRecord {
        LkgRecord {
            app: AppName(app.into()),
            revision: "1111111111111111111111111111111111111111".parse().unwrap(),
            images: vec![RecordedImage {
                image: "nginx:1".into(),
                digest: format!("sha256:{}", "a".repeat(64)).parse().unwrap(),
            }],
            source: RecordSource::Manual,
            recorded_at: jiff::Timestamp::from_second(secs).unwrap(),
        }
    }

    #[test]
    fn merge_is_a_union_without_duplicates() {
        let mut a = NoteDoc::new();
        a.lkg.push(lkg("web", 10));
        let mut b = NoteDoc::new();
        b.lkg.push(lkg("web", 10));
        b.lkg.push(lkg("api", 5));
        let merged = a.clone().merge(b.clone());
        assert_eq!(merged.lkg.len(), 2);
        assert_eq!(merged, b.merge(a));
        assert_eq!(
            merged
                .latest_lkg(&AppName("web".into()))
                .unwrap()
                .recorded_at
                .as_second(),
            10
        );
    }

    #[test]
    fn pinned_form_replaces_an_old_digest() {
        let img = RecordedImage {
            image: "ghcr.io/a/b:1@sha256:old".into(),
            digest: format!("sha256:{}", "b".repeat(64)).parse().unwrap(),
        };
        assert_eq!(
            img.pinned(),
            format!("ghcr.io/a/b:1@sha256:{}", "b".repeat(64))
        );
    }
}
