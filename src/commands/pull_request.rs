//! Publishing a revert as a pull request (`revert --mode pr`, policy `pr`).
//!
//! The revert commit goes to its own branch, `revertbot/<app>/<deployed
//! short sha>` (one per incident), created only when the remote does not
//! have it: a plain push, never forced, so a racing run's branch is never
//! overwritten. A branch that already exists is used only when it
//! verifiably is this incident's revert, built on the deployed branch's
//! history; anything else stops with the branch named. Then one pull
//! request per branch: the forge looks it up by head first, so a rerun, a
//! repeated alert or two racing runs update the same pull request.
//!
//! Crash safety: the branch is the record. A run that stopped after the
//! push finds the branch on the next run ([`resume`]) and opens or updates
//! its pull request, before any guard is asked again (the incident's own
//! cooldown must not hold its pull request back).

use std::time::Instant;

use secrecy::SecretString;

use crate::config::Config;
use crate::domain::{AppName, CommitSha};
use crate::forge::{Endpoints, ForgeError, GitHub, NewPullRequest, Published, PullRequest};
use crate::git::Verification;
use crate::git::remote::PushOutcome;
use crate::policy::{Approved, RevertIntent};
use crate::report::{Action, AppReport, Report};

use super::locate::{Located, locate};
use super::revert::{
    Built, Judged, RevertArgs, Step, base_report, build_on_tip, finish_incident, judge,
    note_incident,
};
use super::{CommandError, Outcome, Result, Session, exit};

/// The environment variable holding the token (what GitHub Actions sets).
pub const TOKEN_ENV: &str = "GITHUB_TOKEN";

/// The head branch of an incident's revert pull request.
pub fn branch_name(app: &AppName, deployed: &CommitSha) -> String {
    format!("revertbot/{app}/{}", deployed.short())
}

/// The GitHub repository and what every revert pull request gets.
pub struct Forge {
    client: GitHub,
    labels: Vec<String>,
    reviewers: Vec<String>,
    assignees: Vec<String>,
}

impl Forge {
    /// From the config and the environment GitHub Actions sets: the token
    /// from `GITHUB_TOKEN`, the repository from `github.repository` or
    /// `GITHUB_REPOSITORY`, the API from `github.api_url` /
    /// `github.graphql_url` or `GITHUB_API_URL` / `GITHUB_GRAPHQL_URL`.
    pub fn from_env(config: &Config) -> Result<Self, ForgeError> {
        let github = config.github.clone().unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let token = env(TOKEN_ENV).ok_or_else(|| ForgeError::Setup {
            message: format!(
                "a revert pull request needs a GitHub token in {TOKEN_ENV} (in Actions: `env: {TOKEN_ENV}: ${{{{ secrets.GITHUB_TOKEN }}}}`)"
            ),
        })?;
        let repository = github
            .repository
            .clone()
            .or_else(|| env("GITHUB_REPOSITORY"))
            .ok_or_else(|| ForgeError::Setup {
                message: "which GitHub repository? set github.repository (`owner/name`) in the config, or GITHUB_REPOSITORY".to_owned(),
            })?;
        let rest = github.api_url.clone().or_else(|| env("GITHUB_API_URL"));
        let graphql = github
            .graphql_url
            .clone()
            .or_else(|| env("GITHUB_GRAPHQL_URL"));
        let endpoints = Endpoints::resolve(rest.as_deref(), graphql.as_deref())?;
        let client = GitHub::new(endpoints, &repository, SecretString::from(token))?;
        Ok(Self {
            client,
            labels: github.labels,
            reviewers: github.reviewers,
            assignees: github.assignees,
        })
    }

    /// A client with a shorter retry policy (tests).
    pub fn with_policy(mut self, policy: crate::retry::Policy) -> Self {
        self.client = self.client.with_policy(policy);
        self
    }

    /// Opens the pull request for `branch`, or updates the one already open
    /// (body and labels; reviewers and assignees are asked once, when it is
    /// opened, so a person who stepped aside is not asked again).
    async fn publish(
        &self,
        branch: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<(Action, PullRequest)> {
        let failed = |doing: &str| {
            let doing = format!("{doing} for branch {branch}");
            move |source| CommandError::Forge {
                doing,
                source: Box::new(source),
            }
        };
        let published = self
            .client
            .open_pr(&NewPullRequest {
                title,
                body,
                head: branch,
                base,
            })
            .await
            .map_err(failed("opening the revert pull request"))?;
        let (action, pr) = match published {
            Published::Opened(pr) => {
                self.client
                    .request_reviewers(pr.number, &self.reviewers)
                    .await
                    .map_err(failed("asking the reviewers"))?;
                self.client
                    .add_assignees(pr.number, &self.assignees)
                    .await
                    .map_err(failed("assigning the pull request"))?;
                (Action::PrOpened, pr)
            }
            Published::Existing(pr) => {
                self.client
                    .update_body(pr.number, body)
                    .await
                    .map_err(failed("updating the revert pull request"))?;
                (Action::PrUpdated, pr)
            }
        };
        self.client
            .add_labels(pr.number, &self.labels)
            .await
            .map_err(failed("labelling the revert pull request"))?;
        Ok((action, pr))
    }
}

/// `revert --mode pr`: the manual revert, published as a pull request.
pub fn run(globals: &super::Globals, args: &RevertArgs) -> Result<Outcome> {
    let started = Instant::now();
    let session = Session::open(globals, &args.app)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::io("starting the async runtime"))?;
    // octocrab's client spawns onto the runtime it is built in.
    let outcome = runtime.block_on(async {
        let forge =
            Forge::from_env(&session.config).map_err(|e| CommandError::ForgeSetup(Box::new(e)))?;
        manual(&session, &forge, args, started).await
    })?;
    Ok(outcome.warned(&session.config_warnings))
}

/// A manual revert by pull request: an earlier run's branch is finished
/// first; otherwise the request goes through `decide` like any revert.
pub async fn manual(
    session: &Session,
    forge: &Forge,
    args: &RevertArgs,
    started: Instant,
) -> Result<Outcome> {
    let located = locate(session, &args.request)?;
    if let Some(outcome) = resume_manual(session, forge, &located).await? {
        return Ok(outcome);
    }
    match judge(session, args, located)? {
        Judged::Done(outcome) => Ok(outcome),
        Judged::Revert(approved, located) => {
            execute(session, forge, &approved, args, Some(*located), started).await
        }
    }
}

/// Builds the approved revert and publishes it as a pull request.
pub async fn execute(
    session: &Session,
    forge: &Forge,
    approved: &Approved<RevertIntent>,
    args: &RevertArgs,
    already_located: Option<Located>,
    started: Instant,
) -> Result<Outcome> {
    let intent = approved.get();
    let forced: Vec<String> = intent.overridden.iter().map(ToString::to_string).collect();
    let Built {
        located,
        prepared,
        commit,
        mut report,
    } = match build_on_tip(session, approved, args, already_located, &forced)? {
        Step::Done(outcome) => return Ok(outcome),
        Step::Built(built) => *built,
    };
    let branch = branch_name(&session.app_name, &intent.deployed);
    let head = match push_branch(session, &branch, &commit, &intent.incident, &located.tip)? {
        BranchState::Created => {
            note_incident(session, &located, &prepared, &commit, args, &forced)?;
            commit
        }
        BranchState::Reused(tip) => {
            // The run that pushed it may have stopped before its note.
            finish_incident(session, &tip)?;
            tip
        }
    };
    report.forced_guards = forced;
    let message = session.repo.message(&head)?;
    let (title, body) = pr_text(&message, &intent.incident);
    let (action, pr) = forge
        .publish(&branch, &session.remote.branch, &title, &body)
        .await?;
    finish_report(&mut report, action, &pr, &head, &session.remote.branch);
    report
        .timings_ms
        .insert("total".to_owned(), super::check::elapsed_ms(started));
    Ok(Outcome {
        report: Report::single(report),
        exit_code: exit::OK,
    })
}

/// Before any guard is asked: when this incident's revert branch exists
/// (an earlier run pushed it), open or update its pull request and stop
/// there. `None` when there is no such branch.
pub async fn resume(
    session: &Session,
    forge: &Forge,
    located: &Located,
    mut report: AppReport,
) -> Result<Option<(AppReport, u8)>> {
    if located.search.culprits.is_empty() {
        return Ok(None);
    }
    let branch = branch_name(&session.app_name, &located.deployed);
    let Some(tip) = session.repo.fetch_other_branch(&session.remote, &branch)? else {
        return Ok(None);
    };
    let incident = crate::domain::ledger::incident_id(&session.app_name, &located.deployed);
    verify_branch(session, &branch, &tip, &incident, &located.tip)?;
    finish_incident(session, &tip)?;
    let message = session.repo.message(&tip)?;
    let (title, body) = pr_text(&message, &incident);
    let (action, pr) = forge
        .publish(&branch, &session.remote.branch, &title, &body)
        .await?;
    finish_report(&mut report, action, &pr, &tip, &session.remote.branch);
    report.incident = Some(incident);
    Ok(Some((report, exit::OK)))
}

/// [`resume`] for a manual revert: the report from its located search.
pub async fn resume_manual(
    session: &Session,
    forge: &Forge,
    located: &Located,
) -> Result<Option<Outcome>> {
    let report = base_report(session, located);
    Ok(resume(session, forge, located, report)
        .await?
        .map(|(report, exit_code)| Outcome {
            report: Report::single(report),
            exit_code,
        }))
}

fn finish_report(
    report: &mut AppReport,
    action: Action,
    pr: &PullRequest,
    head: &CommitSha,
    base: &str,
) {
    report.action = action;
    report.pr_url = Some(pr.html_url.clone());
    report.revert_commit = Some(head.to_string());
    report.healthy_confirmed = false;
    report.reason = format!(
        "{} revert pull request #{} ({}); merge it into {base} to deploy the revert",
        if action == Action::PrOpened {
            "opened"
        } else {
            "updated the open"
        },
        pr.number,
        pr.html_url
    );
}

enum BranchState {
    /// We pushed it now.
    Created,
    /// It was there already, verified: this is its tip.
    Reused(CommitSha),
}

/// Puts `commit` on `branch`, created only if absent. An existing branch
/// (an earlier run, a racing run) is used when it verifiably holds this
/// incident's revert.
fn push_branch(
    session: &Session,
    branch: &str,
    commit: &CommitSha,
    incident: &str,
    base_tip: &CommitSha,
) -> Result<BranchState> {
    if let Some(tip) = session.repo.fetch_other_branch(&session.remote, branch)? {
        verify_branch(session, branch, &tip, incident, base_tip)?;
        return Ok(BranchState::Reused(tip));
    }
    let refname = format!("refs/heads/{branch}");
    match session
        .repo
        .push_commit(&session.remote, commit.as_str(), &refname)?
    {
        PushOutcome::Pushed => {
            tracing::info!(commit = %commit, %branch, "revert branch pushed");
            Ok(BranchState::Created)
        }
        // A racing run created it between our look and our push.
        PushOutcome::Refused { message } => {
            match session.repo.fetch_other_branch(&session.remote, branch)? {
                Some(tip) => {
                    verify_branch(session, branch, &tip, incident, base_tip)?;
                    Ok(BranchState::Reused(tip))
                }
                None => Err(crate::git::GitError::PushRejected {
                    refname,
                    reason: message,
                }
                .into()),
            }
        }
    }
}

/// A branch named like ours is used only when its tip is revertbot's
/// revert of this incident, proven by content, and sits on the deployed
/// branch's history (merging it brings in nothing else).
fn verify_branch(
    session: &Session,
    branch: &str,
    tip: &CommitSha,
    incident: &str,
    base_tip: &CommitSha,
) -> Result<()> {
    let taken = |reason: String| CommandError::BranchTaken {
        branch: branch.to_owned(),
        reason,
    };
    match session.repo.verify_revert(tip, &session.scope()?)? {
        Verification::Verified(verified) => {
            if verified.trailers.incident.as_deref() != Some(incident) {
                return Err(taken(format!(
                    "its tip {} reverts incident {}, not {incident}",
                    tip.short(),
                    verified.trailers.incident.as_deref().unwrap_or("(none)")
                )));
            }
        }
        Verification::Forged { reason } => {
            return Err(taken(format!(
                "its tip {} claims to be the revert and is not: {reason}",
                tip.short()
            )));
        }
        Verification::NoClaim => {
            return Err(taken(format!(
                "its tip {} is not a revertbot revert",
                tip.short()
            )));
        }
    }
    let parent = session.repo.first_parent(tip)?;
    let on_history = match &parent {
        Some(parent) => parent == base_tip || session.repo.is_ancestor(parent, base_tip)?,
        None => false,
    };
    if !on_history {
        return Err(taken(format!(
            "its revert is built on {}, which is not on the history of {}",
            parent.as_ref().map_or("nothing", |p| p.short()),
            session.remote.branch
        )));
    }
    Ok(())
}

/// The pull request's title and body from the revert commit's message: the
/// subject is the title; the body is the rest, with the trailers, and a
/// line saying what merging does.
fn pr_text(message: &str, incident: &str) -> (String, String) {
    let mut parts = message.splitn(2, '\n');
    let title = parts.next().unwrap_or_default().trim().to_owned();
    let rest = parts.next().unwrap_or_default().trim();
    let body = format!(
        "{rest}\n\n---\nOpened by revertbot for incident `{incident}`. Merging deploys the revert; the controller then syncs it. A rerun updates this pull request instead of opening another.\n"
    );
    (title, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_branch_per_incident() {
        let app = AppName("guestbook".to_owned());
        let deployed: CommitSha = "0123456789abcdef0123456789abcdef01234567".parse().unwrap();
        assert_eq!(
            branch_name(&app, &deployed),
            "revertbot/guestbook/0123456789ab"
        );
    }

    #[test]
    fn the_title_is_the_subject_and_the_body_keeps_the_trailers() {
        let (title, body) = pr_text(
            "revert(guestbook): back to abc\n\nReverts:\n- 123 bump\n\nRevertbot-App: guestbook\n",
            "guestbook-0123",
        );
        assert_eq!(title, "revert(guestbook): back to abc");
        assert!(body.starts_with("Reverts:\n- 123 bump\n\nRevertbot-App: guestbook"));
        assert!(body.contains("incident `guestbook-0123`"));
    }
}
