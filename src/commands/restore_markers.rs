//! `revertbot restore-markers --app A`: give an app's image automation back
//! once its incident is over. A revert suspends the Flux `$imagepolicy`
//! markers on the lines it pins, so an image-update bot cannot push the bad
//! version back; this removes the suspension in one commit, pushed
//! fast-forward only (rebuilt when the branch moved). `--dry-run` lists what
//! would change.

use std::time::Instant;

use crate::domain::trailers;
use crate::git::remote::PushOutcome;
use crate::git::revert::FileChange;
use crate::git::{FetchStats, GitError};
use crate::manifest::restore_image_policy_markers;
use crate::report::{Action, AppReport, Report};

use super::{Outcome, Result, Session, exit};

#[derive(Debug, Clone)]
pub struct RestoreArgs {
    pub app: String,
    pub dry_run: bool,
}

pub fn run(session: &Session, args: &RestoreArgs) -> Result<Outcome> {
    let started = Instant::now();
    let mut report = AppReport::new(session.app_name.as_str());
    let policy = crate::retry::CAS_PUSH;
    let mut delays = policy.delays();
    for _ in 0..policy.attempts {
        let (tip, _): (_, FetchStats) = session.repo.fetch_branch(&session.remote, None)?;
        let mut files = Vec::new();
        let mut restored = Vec::new();
        for path in session.repo.app_files(&tip, session.paths()?)? {
            let Some(bytes) = session.repo.read_file(&tip, &path)? else {
                continue;
            };
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            if !text.contains(crate::manifest::SUSPENDED) {
                continue;
            }
            let (content, changes) =
                restore_image_policy_markers(&path, &text).map_err(GitError::from)?;
            if changes.is_empty() {
                continue;
            }
            restored.extend(
                changes
                    .iter()
                    .map(|c| format!("{path}:{} {}", c.line, c.marker)),
            );
            files.push((path, content.into_bytes()));
        }
        report.files_changed = files
            .iter()
            .map(|(path, _)| FileChange {
                path: path.clone(),
                status: 'M',
            })
            .collect();
        if restored.is_empty() {
            report.reason = format!(
                "no suspended image-automation marker in {}'s files at {}",
                session.app_name,
                tip.short()
            );
            return Ok(done(report, started));
        }
        if args.dry_run {
            report.action = Action::DryRun;
            report.reason = format!("would restore: {}", restored.join("; "));
            return Ok(done(report, started));
        }
        let tree = session.repo.tree_with_files(&tip, &files)?;
        let message = format!(
            "revertbot: restore image automation for {app}\n\nThe incident is over: image-update bots may move these images again.\n\n{}\n\n{}: {app}\n",
            restored
                .iter()
                .map(|r| format!("- {r}"))
                .collect::<Vec<_>>()
                .join("\n"),
            trailers::APP,
            app = session.app_name,
        );
        let commit = session.repo.commit_revert(&tip, tree, &message)?;
        let refname = format!("refs/heads/{}", session.remote.branch);
        match session
            .repo
            .push_commit(&session.remote, commit.as_str(), &refname)?
        {
            PushOutcome::Pushed => {
                report.action = Action::Pushed;
                report.revert_commit = Some(commit.to_string());
                report.reason = format!(
                    "restored {} image-automation marker(s): {}",
                    restored.len(),
                    restored.join("; ")
                );
                return Ok(done(report, started));
            }
            PushOutcome::Refused { message } => {
                let (now, _) = session.repo.fetch_branch(&session.remote, None)?;
                if now == tip {
                    return Err(GitError::PushRejected {
                        refname,
                        reason: message,
                    }
                    .into());
                }
                match delays.next() {
                    Some(delay) => std::thread::sleep(delay),
                    None => break,
                }
            }
        }
    }
    Err(GitError::RemoteKeptMoving {
        refname: format!("refs/heads/{}", session.remote.branch),
        attempts: policy.attempts,
    }
    .into())
}

fn done(mut report: AppReport, started: Instant) -> Outcome {
    report.timings_ms.insert(
        "total".to_owned(),
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    );
    Outcome {
        report: Report::single(report),
        exit_code: exit::OK,
    }
}
