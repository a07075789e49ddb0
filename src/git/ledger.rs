//! The ledger: JSON notes in `refs/notes/revertbot` on the infra remote.
//!
//! The remote is the database. A write fetches the remote notes, merges the
//! new records into the note of the target commit (a union: nothing anyone
//! wrote is dropped), commits on top of the remote notes tip and pushes
//! fast-forward only. If another writer got there first the push is refused
//! and we start again from their tip, a bounded number of times.

use git2::Oid;

use super::remote::PushOutcome;
use super::{GitError, InfraRepo, Remote, Result, to_oid};
use crate::domain::ledger::{LkgRecord, NOTES_REF, NoteDoc};
use crate::domain::{AppName, CommitSha};

/// Work ref where a new notes commit is prepared before it is pushed; per
/// process, so two runs in one checkout do not fight over it.
fn work_ref() -> String {
    format!("refs/revertbot/notes-work/{}", std::process::id())
}

/// Which notes to read: the remote's (as last fetched) or only local ones.
#[derive(Debug, Clone, Copy)]
pub struct NotesView {
    tip: Option<Oid>,
}

impl NotesView {
    pub fn empty() -> Self {
        Self { tip: None }
    }
}

impl InfraRepo {
    /// The notes as last fetched from the remote.
    pub fn upstream_notes(&self) -> NotesView {
        NotesView {
            tip: self
                .raw()
                .find_reference(InfraRepo::upstream_notes_ref())
                .ok()
                .and_then(|r| r.target()),
        }
    }

    /// The note on `commit` in `view`, if any.
    pub fn read_note(&self, view: NotesView, commit: &CommitSha) -> Result<Option<NoteDoc>> {
        let Some(tip) = view.tip else {
            return Ok(None);
        };
        let Some(blob) = self.note_blob(tip, to_oid(commit))? else {
            return Ok(None);
        };
        parse_note(commit, &blob).map(Some)
    }

    /// Every note in `view`, keyed by the annotated commit.
    pub fn all_notes(&self, view: NotesView) -> Result<Vec<(CommitSha, NoteDoc)>> {
        let Some(tip) = view.tip else {
            return Ok(Vec::new());
        };
        let tree = self
            .raw()
            .find_commit(tip)
            .and_then(|c| c.tree())
            .map_err(GitError::git("reading the ledger notes"))?;
        let mut out = Vec::new();
        // Notes trees may use fan-out directories (`ab/cdef…`); walk them all.
        let mut failure = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() != Some(git2::ObjectType::Blob) {
                return git2::TreeWalkResult::Ok;
            }
            let name = format!(
                "{}{}",
                dir.replace('/', ""),
                String::from_utf8_lossy(entry.name_bytes())
            );
            let Ok(commit) = name.parse::<CommitSha>() else {
                return git2::TreeWalkResult::Ok;
            };
            match self.raw().find_blob(entry.id()) {
                Ok(blob) => match parse_note(&commit, blob.content()) {
                    Ok(doc) => out.push((commit, doc)),
                    Err(e) => {
                        // One bad note must not hide the others: warn, skip.
                        tracing::warn!(error = %e, "skipping an unreadable ledger note");
                    }
                },
                Err(e) => {
                    failure = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(GitError::git("reading the ledger notes"))?;
        if let Some(e) = failure {
            return Err(GitError::git("reading a ledger note")(e));
        }
        Ok(out)
    }

    /// LKG records for `app` anywhere in the ledger, newest first.
    pub fn lkg_candidates(&self, view: NotesView, app: &AppName) -> Result<Vec<LkgRecord>> {
        let mut records: Vec<LkgRecord> = self
            .all_notes(view)?
            .into_iter()
            .filter_map(|(_, doc)| doc.latest_lkg(app).cloned())
            .collect();
        records.sort_by_key(|r| std::cmp::Reverse(r.recorded_at));
        Ok(records)
    }

    /// The last-known-good for `app`: among records on commits that the
    /// deployed revision contains, the one nearest the deployed revision
    /// (a descendant of the others), newest record on ties. Candidates whose
    /// commit is not present (shallow clone) are not considered.
    pub fn find_lkg(
        &self,
        candidates: &[LkgRecord],
        deployed: &CommitSha,
    ) -> Result<Option<LkgRecord>> {
        let mut best: Option<&LkgRecord> = None;
        for record in candidates {
            if !self.has_commit(&record.revision)
                || !self.is_ancestor(&record.revision, deployed)?
            {
                continue;
            }
            best = match best {
                None => Some(record),
                Some(current) if current.revision == record.revision => {
                    Some(if record.recorded_at > current.recorded_at {
                        record
                    } else {
                        current
                    })
                }
                Some(current) if self.is_ancestor(&current.revision, &record.revision)? => {
                    Some(record)
                }
                Some(current) if self.is_ancestor(&record.revision, &current.revision)? => {
                    Some(current)
                }
                Some(current) => Some(if record.recorded_at > current.recorded_at {
                    record
                } else {
                    current
                }),
            };
        }
        Ok(best.cloned())
    }

    /// Merges `addition` into the note on `commit` on the remote and pushes,
    /// retrying when another writer raced us. Returns false when the note
    /// already held everything (nothing written).
    pub fn write_note(
        &self,
        remote: &Remote,
        commit: &CommitSha,
        addition: &NoteDoc,
    ) -> Result<bool> {
        let policy = crate::retry::CAS_PUSH;
        let mut delays = policy.delays();
        // The first attempt builds on the notes fetched with the branch (if
        // any); the compare-and-swap push catches a stale view, and later
        // attempts refetch.
        let mut upstream = match self.upstream_notes().tip {
            Some(tip) => Some(tip),
            None => self.fetch_notes(remote)?,
        };
        let _cleanup = super::remote::DeleteRefOnDrop {
            repo: self.raw(),
            name: work_ref(),
        };
        for attempt in 1..=policy.attempts {
            let existing = match upstream {
                Some(tip) => match self.note_blob(tip, to_oid(commit))? {
                    Some(blob) => parse_note(commit, &blob)?,
                    None => NoteDoc::new(),
                },
                None => NoteDoc::new(),
            };
            let merged = existing.clone().merge(addition.clone());
            if merged == existing && upstream.is_some() {
                self.advance_local_notes(upstream)?;
                return Ok(false);
            }
            let new_tip = self.commit_note(upstream, commit, &merged)?;
            match self.push_commit(remote, &new_tip.to_string(), NOTES_REF)? {
                PushOutcome::Pushed => {
                    self.advance_local_notes(Some(new_tip))?;
                    return Ok(true);
                }
                PushOutcome::Refused { message } => {
                    let now = self.fetch_notes(remote)?;
                    if now == upstream {
                        return Err(GitError::PushRejected {
                            refname: NOTES_REF.to_owned(),
                            reason: message,
                        });
                    }
                    tracing::info!(
                        attempt,
                        "ledger notes moved on the remote; merging and retrying"
                    );
                    upstream = now;
                    match delays.next() {
                        Some(delay) => std::thread::sleep(delay),
                        None => break,
                    }
                }
            }
        }
        Err(GitError::RemoteKeptMoving {
            refname: NOTES_REF.to_owned(),
            attempts: policy.attempts,
        })
    }

    /// A notes commit on top of `parent` (the remote tip) that sets the note
    /// on `commit` to `doc`.
    fn commit_note(&self, parent: Option<Oid>, commit: &CommitSha, doc: &NoteDoc) -> Result<Oid> {
        let doing = || format!("writing the ledger note on {commit}");
        match parent {
            Some(tip) => {
                self.raw()
                    .reference(&work_ref(), tip, true, "revertbot: prepare ledger note")
                    .map_err(GitError::git(doing()))?;
            }
            None => {
                if let Ok(mut stale) = self.raw().find_reference(&work_ref()) {
                    stale.delete().map_err(GitError::git(doing()))?;
                }
            }
        }
        let json = serde_json::to_string_pretty(doc).map_err(|e| GitError::BadNote {
            commit: commit.clone(),
            message: e.to_string(),
        })?;
        // Records quote controller and registry text; a note is pushed and
        // public to everyone who can read the repo.
        let json = crate::redact::scrub(&json);
        let signature = self.signature()?;
        self.raw()
            .note(
                &signature,
                &signature,
                Some(work_ref().as_str()),
                to_oid(commit),
                &json,
                true,
            )
            .map_err(GitError::git(doing()))?;
        self.raw()
            .refname_to_id(&work_ref())
            .map_err(GitError::git(doing()))
    }

    /// Moves the local `refs/notes/revertbot` forward so `git log
    /// --notes=revertbot` shows the ledger, but only fast-forward: local
    /// notes nobody pushed are never dropped.
    fn advance_local_notes(&self, tip: Option<Oid>) -> Result<()> {
        let Some(tip) = tip else { return Ok(()) };
        let doing = "updating the local ledger notes ref";
        match self.raw().refname_to_id(NOTES_REF) {
            Ok(local) if local == tip => Ok(()),
            Ok(local) => {
                let ff = self
                    .raw()
                    .graph_descendant_of(tip, local)
                    .map_err(GitError::git(doing))?;
                if ff {
                    self.raw()
                        .reference(NOTES_REF, tip, true, "revertbot: ledger")
                        .map_err(GitError::git(doing))?;
                }
                Ok(())
            }
            Err(_) => {
                self.raw()
                    .reference(NOTES_REF, tip, false, "revertbot: ledger")
                    .map_err(GitError::git(doing))?;
                Ok(())
            }
        }
    }

    fn note_blob(&self, notes_tip: Oid, target: Oid) -> Result<Option<Vec<u8>>> {
        // find_note wants a ref name; read the tree directly instead so any
        // notes commit (the fetched remote tip) can be read.
        let tree = self
            .raw()
            .find_commit(notes_tip)
            .and_then(|c| c.tree())
            .map_err(GitError::git("reading the ledger notes"))?;
        let hex = target.to_string();
        // git picks the fan-out (none, 2/38 or 2/2/36) by the number of notes.
        let candidates = [
            hex.clone(),
            format!("{}/{}", &hex[..2], &hex[2..]),
            format!("{}/{}/{}", &hex[..2], &hex[2..4], &hex[4..]),
        ];
        for path in candidates {
            if let Ok(entry) = tree.get_path(std::path::Path::new(&path)) {
                let blob = self
                    .raw()
                    .find_blob(entry.id())
                    .map_err(GitError::git(format!("reading the ledger note on {hex}")))?;
                return Ok(Some(blob.content().to_vec()));
            }
        }
        Ok(None)
    }
}

fn parse_note(commit: &CommitSha, bytes: &[u8]) -> Result<NoteDoc> {
    serde_json::from_slice(bytes).map_err(|e| GitError::BadNote {
        commit: commit.clone(),
        message: e.to_string(),
    })
}
