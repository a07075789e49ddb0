//! What the infra repo and its ledger say about an app, as `policy` inputs.
//! Cheap facts (ledger index, freeze) are read for every app; the culprit
//! search (`locate`) and the manifest scan only for the apps that need them.

use std::collections::HashMap;

use crate::domain::ledger::{IncidentRecord, LkgRecord, RecordedImage};
use crate::domain::{AppName, CommitSha, ImageRef};
use crate::git::InfraRepo;
use crate::manifest;
use crate::policy::{
    CulpritFact, Facts, LastKnownGood, PastRevert, Quarantined, RevertedFact,
    quarantine_from_incidents,
};

use super::super::{LkgChoice, Located, Result, Session};

/// The whole ledger, read once per run.
#[derive(Debug, Default)]
pub struct LedgerIndex {
    lkg: HashMap<AppName, Vec<LkgRecord>>,
    incidents: HashMap<AppName, Vec<IncidentRecord>>,
}

impl LedgerIndex {
    pub fn load(repo: &InfraRepo) -> Result<Self> {
        let mut index = Self::default();
        for (_, doc) in repo.all_notes(repo.upstream_notes())? {
            for record in doc.lkg {
                index
                    .lkg
                    .entry(record.app.clone())
                    .or_default()
                    .push(record);
            }
            for incident in doc.incidents {
                index
                    .incidents
                    .entry(incident.app.clone())
                    .or_default()
                    .push(incident);
            }
        }
        for records in index.lkg.values_mut() {
            records.sort_by_key(|r| std::cmp::Reverse(r.recorded_at));
        }
        Ok(index)
    }

    pub fn lkg_records(&self, app: &AppName) -> &[LkgRecord] {
        self.lkg.get(app).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn incidents(&self, app: &AppName) -> &[IncidentRecord] {
        self.incidents
            .get(app)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Facts every app gets: its revert history, what is recorded on the
/// deployed revision, quarantined digests and the freeze file.
pub fn cheap_facts(
    session: &Session,
    ledger: &LedgerIndex,
    deployed: Option<&CommitSha>,
    freeze_file: Option<&str>,
) -> (Facts, Vec<Quarantined>) {
    let incidents = ledger.incidents(&session.app_name);
    let facts = Facts {
        past_reverts: incidents.iter().map(PastRevert::from).collect(),
        freeze_file: freeze_file.map(str::to_owned),
        recorded: ledger
            .lkg_records(&session.app_name)
            .iter()
            .filter(|r| Some(&r.revision) == deployed)
            .cloned()
            .collect(),
        ..Facts::default()
    };
    (facts, quarantine_from_incidents(incidents))
}

/// Every image reference in the app's manifests at `revision`.
pub fn manifest_images(session: &Session, revision: &CommitSha) -> Result<Vec<ImageRef>> {
    let mut images = Vec::new();
    for path in session.repo.app_files(revision, session.paths()?)? {
        let lower = path.to_ascii_lowercase();
        if !(lower.ends_with(".yaml") || lower.ends_with(".yml")) {
            continue;
        }
        let Some(bytes) = session.repo.read_file(revision, &path)? else {
            continue;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let scan = manifest::scan(&path, &text, session.pin_rules()?)
            .map_err(crate::git::GitError::from)?;
        images.extend(scan.sites.into_iter().map(|s| s.reference));
    }
    Ok(images)
}

/// The digests pinned in the app's manifests at `revision`, for the
/// re-promotion check: a quarantined digest pinned there is a breach before
/// any pod pulls it. Unreadable manifests give none (the pods are still
/// checked), with a warning.
pub fn pinned_digests(session: &Session, revision: &CommitSha) -> Vec<RecordedImage> {
    match manifest_images(session, revision) {
        Ok(images) => images
            .into_iter()
            .filter_map(|r| {
                r.digest().map(|d| RecordedImage {
                    image: r.original().to_owned(),
                    digest: d.clone(),
                })
            })
            .collect(),
        Err(e) => {
            tracing::warn!(revision = %revision.short(), error = %e, "cannot read the app's manifests for the re-promotion check; checking the pods only");
            Vec::new()
        }
    }
}

/// What the culprit search adds to the facts `decide` judges: the
/// last-known-good (`lkg` chooses how a located one becomes a fact), the
/// culprits, those already reverted, and whether the deployed revision is
/// itself a verified revert of this app (the loop guard trusts the same rule
/// as the search: trailers alone are only a claim).
pub fn add_located(
    facts: &mut Facts,
    session: &Session,
    located: &Located,
    lkg: impl Fn(&LkgChoice) -> Option<LastKnownGood>,
) -> Result<()> {
    if let crate::git::Verification::Verified(revert) = session
        .repo
        .verify_revert(&located.deployed, &session.scope()?)?
    {
        facts.deployed_is_revert = Some(
            revert
                .trailers
                .incident
                .unwrap_or_else(|| located.deployed.short().to_owned()),
        );
    }
    facts.last_known_good = located.lkg.as_ref().and_then(lkg);
    facts.culprits = located
        .search
        .culprits
        .iter()
        .map(|c| CulpritFact {
            sha: c.sha.clone(),
            revertbot_revert: None,
        })
        .collect();
    facts.already_reverted = located
        .search
        .already_reverted
        .iter()
        .map(|a| RevertedFact {
            culprit: a.culprit.clone(),
            by: a.by.clone(),
        })
        .collect();
    Ok(())
}
