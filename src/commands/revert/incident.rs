//! The incident's ledger note: written with the revert, or finished from
//! the revert commit's verified trailers by a later run.

use crate::domain::CommitSha;
use crate::domain::ledger::{IncidentRecord, NoteDoc, RecordedImage};
use crate::git::Verification;

use super::super::check::facts::manifest_images;
use super::super::locate::Located;
use super::super::{Result, Session};
use super::{Prepared, RevertArgs};

/// Writes the incident's ledger note on its revert commit.
pub(in crate::commands) fn note_incident(
    session: &Session,
    located: &Located,
    prepared: &Prepared,
    commit: &CommitSha,
    args: &RevertArgs,
    forced: &[String],
) -> Result<()> {
    let mut incident = incident_record(session, located, prepared, commit, args.reason.as_deref());
    incident.bad_images = quarantined_images(session, located, &args.observed_images)?;
    incident.forced_guards = forced.to_vec();
    record_incident(session, commit, incident)
}

fn incident_record(
    session: &Session,
    located: &Located,
    prepared: &Prepared,
    commit: &CommitSha,
    reason: Option<&str>,
) -> IncidentRecord {
    IncidentRecord {
        id: prepared.incident.clone(),
        app: session.app_name.clone(),
        deployed_revision: located.deployed.clone(),
        last_known_good: located.lkg.as_ref().map(|l| l.sha().clone()),
        culprits: located
            .search
            .culprits
            .iter()
            .map(|c| c.sha.clone())
            .collect(),
        revert_commit: commit.clone(),
        bad_images: Vec::new(),
        pinned_images: prepared.pinned.clone(),
        reason: reason.unwrap_or("manual revert").to_owned(),
        opened_at: jiff::Timestamp::now(),
        approved_by: None,
        forced_guards: Vec::new(),
    }
}

/// What the incident quarantines: the images the culprits introduced
/// (between the revision before them and the deployed one) that carry a
/// digest or that the failing pods ran, never a last-known-good digest.
fn quarantined_images(
    session: &Session,
    located: &Located,
    observed: &[RecordedImage],
) -> Result<Vec<String>> {
    let before = match (&located.lkg, located.search.culprits.last()) {
        (Some(lkg), _) => Some(lkg.sha().clone()),
        (None, Some(oldest)) => session.repo.first_parent(&oldest.sha)?,
        (None, None) => None,
    };
    let before_images = match &before {
        Some(rev) => manifest_images(session, rev)?,
        None => Vec::new(),
    };
    let deployed_images = manifest_images(session, &located.deployed)?;
    let live: Vec<(String, crate::domain::Digest)> = observed
        .iter()
        .map(|i| (i.image.clone(), i.digest.clone()))
        .collect();
    let good: Vec<crate::domain::Digest> = located
        .lkg
        .as_ref()
        .and_then(|l| l.record())
        .map(|r| r.images.iter().map(|i| i.digest.clone()).collect())
        .unwrap_or_default();
    Ok(
        crate::policy::bad_images(&before_images, &deployed_images, &live, &good)
            .into_iter()
            .map(|b| b.image)
            .collect(),
    )
}

fn record_incident(session: &Session, commit: &CommitSha, incident: IncidentRecord) -> Result<()> {
    let mut doc = NoteDoc::new();
    doc.incidents.push(incident);
    session.repo.write_note(&session.remote, commit, &doc)?;
    Ok(())
}

/// An earlier run pushed `revert` but may have died before writing its
/// ledger note: rebuild the incident from the commit's trailers and write it
/// — only when the commit verifiably is that revert, never on the word of
/// its trailers.
pub(in crate::commands) fn finish_incident(session: &Session, revert: &CommitSha) -> Result<()> {
    let trailers = match session.repo.verify_revert(revert, &session.scope()?)? {
        Verification::Verified(verified) => verified.trailers,
        Verification::Forged { reason } => {
            tracing::warn!(commit = %revert, %reason, "not writing an incident note: the commit is not revertbot's revert");
            return Ok(());
        }
        Verification::NoClaim => return Ok(()),
    };
    let Some(id) = trailers.incident.clone() else {
        return Ok(());
    };
    let existing = session
        .repo
        .read_note(session.repo.upstream_notes(), revert)?;
    if existing
        .as_ref()
        .is_some_and(|doc| doc.incident(&id).is_some())
    {
        return Ok(());
    }
    tracing::info!(commit = %revert, incident = %id, "finishing the ledger record of an earlier revert");
    // The trailers do not name the deployed revision; its newest culprit is
    // the last app change it contained, which is what matters later.
    let deployed = trailers
        .reverts
        .first()
        .cloned()
        .unwrap_or_else(|| revert.clone());
    let pinned_images = trailers
        .pinned_images
        .iter()
        .filter_map(|p| {
            let (image, digest) = p.rsplit_once('@')?;
            Some(RecordedImage {
                image: image.to_owned(),
                digest: digest.parse().ok()?,
            })
        })
        .collect();
    let incident = IncidentRecord {
        id,
        app: session.app_name.clone(),
        deployed_revision: deployed,
        last_known_good: trailers.last_known_good.clone(),
        culprits: trailers.reverts.clone(),
        revert_commit: revert.clone(),
        bad_images: Vec::new(),
        pinned_images,
        reason: "recorded from the revert commit's trailers (the run that pushed it stopped before writing the ledger)".to_owned(),
        opened_at: jiff::Timestamp::now(),
        approved_by: trailers.approved_by.first().cloned(),
        forced_guards: trailers.forced_guards.clone(),
    };
    record_incident(session, revert, incident)
}
