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
use crate::forge::app_token::AppCredentials;
use crate::forge::{
    Endpoints, ForgeError, GitHub, NewPullRequest, PrState, Published, PullRequest,
};
use crate::policy::Evidence;
use crate::policy::{Approved, RevertIntent};
use crate::render::Renderer;
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

mod body;
mod branch;

use branch::{BranchState, push_branch, verify_branch};

/// The GitHub repository and what every revert pull request gets.
pub struct Forge {
    client: GitHub,
    /// The repository's web address, for commit links in the body.
    web: Option<String>,
    labels: Vec<String>,
    reviewers: Vec<String>,
    assignees: Vec<String>,
}

impl Forge {
    /// From the config and the environment GitHub Actions sets: the token
    /// from `GITHUB_TOKEN`, the repository from `github.repository` or
    /// `GITHUB_REPOSITORY`, the API from `github.api_url` /
    /// `github.graphql_url` or `GITHUB_API_URL` / `GITHUB_GRAPHQL_URL`.
    /// With `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY` set, revertbot
    /// acts as that GitHub App's installation (its events start workflows;
    /// `GITHUB_TOKEN`'s do not); otherwise with `GITHUB_TOKEN`.
    pub async fn from_env(config: &Config) -> Result<Self, ForgeError> {
        let github = config.github.clone().unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let app = AppCredentials::from_env()?;
        let token = match &app {
            Some(_) => None,
            None => Some(env(TOKEN_ENV).ok_or_else(|| ForgeError::Setup {
                message: format!(
                    "a revert pull request needs a GitHub token in {TOKEN_ENV} (in Actions: `env: {TOKEN_ENV}: ${{{{ secrets.GITHUB_TOKEN }}}}`), or a GitHub App in GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY"
                ),
            })?),
        };
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
        let web = endpoints
            .web(env("GITHUB_SERVER_URL").as_deref())
            .map(|server| format!("{server}/{repository}"));
        let client = match (app, token) {
            (Some(app), _) => GitHub::with_app(endpoints, &repository, app).await?,
            (None, Some(token)) => GitHub::new(endpoints, &repository, SecretString::from(token))?,
            (None, None) => {
                return Err(ForgeError::Setup {
                    message: format!("no {TOKEN_ENV} and no GitHub App"),
                });
            }
        };
        Ok(Self {
            client,
            web,
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

    /// The GitHub client (to follow a pull request after it is opened).
    pub fn github(&self) -> &GitHub {
        &self.client
    }

    /// The infra repo's remote as this forge pushes to it: with a GitHub
    /// App, authenticated by its installation token (so the push, too, is
    /// the App's); otherwise as configured.
    async fn remote(
        &self,
        remote: &crate::git::remote::Remote,
    ) -> Result<crate::git::remote::Remote> {
        let token = self
            .client
            .app_token()
            .await
            .map_err(|source| CommandError::Forge {
                doing: "refreshing the GitHub App's installation token".to_owned(),
                source: Box::new(source),
            })?;
        let mut remote = remote.clone();
        if let Some(token) = token {
            remote.credentials =
                crate::git::Credentials::with_token(secrecy::ExposeSecret::expose_secret(&token));
        }
        Ok(remote)
    }

    /// Opens the pull request for `branch`, or finds the one there is:
    /// an open one gets the fresh body (when `body.refresh`) and labels; a
    /// merged or rejected one is left as it is. Reviewers and assignees are
    /// asked once, when it is opened, so a person who stepped aside is not
    /// asked again. With `automerge`, auto-merge is turned on for exactly
    /// `head`.
    async fn publish(
        &self,
        branch: &str,
        base: &str,
        text: &PrText,
        head: &CommitSha,
        automerge: bool,
    ) -> Result<Publication> {
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
                title: &text.title,
                body: &text.body,
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
            Published::Existing(pr) if pr.state() != PrState::Open => {
                return Ok(Publication {
                    action: Action::None,
                    state: pr.state(),
                    pr,
                    automerge: None,
                });
            }
            Published::Existing(pr) => {
                if text.refresh {
                    self.client
                        .update_body(pr.number, &text.body)
                        .await
                        .map_err(failed("updating the revert pull request"))?;
                }
                (Action::PrUpdated, pr)
            }
        };
        self.client
            .add_labels(pr.number, &self.labels)
            .await
            .map_err(failed("labelling the revert pull request"))?;
        let automerge = if !automerge {
            None
        } else if pr.head.sha != head.as_str() {
            // Someone pushed to the branch: never auto-merge what we did not build.
            Some(Err(ForgeError::AutoMergeRefused {
                number: pr.number,
                refusal: crate::forge::auto_merge::Refusal::HeadMoved,
                message: format!(
                    "its head is {}, not revertbot's revert {}",
                    pr.head.sha.get(..12).unwrap_or(&pr.head.sha),
                    head.short()
                ),
                fix: crate::forge::auto_merge::Refusal::HeadMoved.fix(),
            }))
        } else {
            Some(self.client.enable_auto_merge(&pr, head.as_str()).await)
        };
        Ok(Publication {
            action,
            state: PrState::Open,
            pr,
            automerge,
        })
    }
}

/// A pull request's title and body, and whether an open one's body is
/// replaced (a run that built the revert knows everything; one that only
/// found an earlier run's branch knows less and keeps the body there).
struct PrText {
    title: String,
    body: String,
    refresh: bool,
}

/// What publishing found or did.
struct Publication {
    action: Action,
    pr: PullRequest,
    state: PrState,
    /// `Some` when auto-merge was asked for: whether GitHub turned it on.
    automerge: Option<Result<(), ForgeError>>,
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
        let forge = Forge::from_env(&session.config)
            .await
            .map_err(|e| CommandError::ForgeSetup(Box::new(e)))?;
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

/// Builds the approved revert and publishes it as a pull request
/// (auto-merged when the intent's mode says so).
pub async fn execute(
    session: &Session,
    forge: &Forge,
    approved: &Approved<RevertIntent>,
    args: &RevertArgs,
    already_located: Option<Located>,
    started: Instant,
) -> Result<Outcome> {
    let confirmed_at = jiff::Timestamp::now();
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
    let built_at = jiff::Timestamp::now();
    let branch = branch_name(&session.app_name, &intent.deployed);
    let remote = forge.remote(&session.remote).await?;
    let (head, pushed) = match push_branch(
        session,
        &remote,
        &branch,
        &commit,
        &intent.incident,
        &located.tip,
    )? {
        BranchState::Created => {
            note_incident(session, &located, &prepared, &commit, args, &forced)?;
            (commit.clone(), "revert branch pushed")
        }
        BranchState::Reused(tip) => {
            // The run that pushed it may have stopped before its note.
            finish_incident(session, &tip)?;
            (
                tip,
                "revert branch found (a racing or earlier run pushed it)",
            )
        }
    };
    report.forced_guards = forced.clone();
    let automerge = intent.mode == crate::policy::RevertMode::PrAutomerge;
    let facts = body::Facts {
        incident: &intent.incident,
        deployed: &intent.deployed,
        lkg: Some(&intent.last_known_good),
        evidence: &intent.evidence,
        severity: Some(intent.severity.to_string()),
        reason: intent.reason(),
        culprits: &report.culprit_details,
        left_alone: &report.left_alone,
        pins: body::Pins::Applied(&report.pins),
        suspended_markers: &report.suspended_markers,
        overridden: &forced,
        approved_by: intent.approved_by.clone(),
        timeline: vec![
            (confirmed_at, "breach confirmed, revert approved".to_owned()),
            (built_at, format!("revert commit {} built", commit.short())),
            (jiff::Timestamp::now(), pushed.to_owned()),
        ],
        branch: &branch,
        automerge,
    };
    let (text, warnings) = pr_text(session, forge, &head, &facts, true)?;
    report.warnings.extend(warnings);
    let publication = forge
        .publish(&branch, &session.remote.branch, &text, &head, automerge)
        .await?;
    let exit_code = finish_report(&mut report, &publication, &head, &branch, session);
    report
        .timings_ms
        .insert("total".to_owned(), super::check::elapsed_ms(started));
    Ok(Outcome {
        report: Report::single(report),
        exit_code,
    })
}

/// Before any guard is asked: when this incident's revert branch exists
/// (an earlier run pushed it), open or update its pull request and stop
/// there. `None` when there is no such branch.
pub async fn resume(
    session: &Session,
    forge: &Forge,
    located: &Located,
    evidence: &[Evidence],
    automerge: bool,
    mut report: AppReport,
) -> Result<Option<(AppReport, u8)>> {
    if located.search.culprits.is_empty() {
        return Ok(None);
    }
    let branch = branch_name(&session.app_name, &located.deployed);
    let remote = forge.remote(&session.remote).await?;
    let Some(tip) = session.repo.fetch_other_branch(&remote, &branch)? else {
        return Ok(None);
    };
    let incident = crate::domain::ledger::incident_id(&session.app_name, &located.deployed);
    let trailers = verify_branch(session, &branch, &tip, &incident, &located.tip)?;
    finish_incident(session, &tip)?;
    let facts = body::Facts {
        incident: &incident,
        deployed: &located.deployed,
        lkg: trailers.last_known_good.as_ref(),
        evidence,
        severity: None,
        reason: report.reason.clone(),
        culprits: &located.search.culprits,
        left_alone: &[],
        pins: body::Pins::Trailers(&trailers.pinned_images),
        suspended_markers: &[],
        overridden: &trailers.forced_guards,
        approved_by: trailers.approved_by.first().cloned(),
        timeline: vec![(
            jiff::Timestamp::now(),
            "revert branch found (an earlier run pushed it)".to_owned(),
        )],
        branch: &branch,
        automerge,
    };
    let (text, warnings) = pr_text(session, forge, &tip, &facts, false)?;
    report.warnings.extend(warnings);
    let publication = forge
        .publish(&branch, &session.remote.branch, &text, &tip, automerge)
        .await?;
    let exit_code = finish_report(&mut report, &publication, &tip, &branch, session);
    report.incident = Some(incident);
    Ok(Some((report, exit_code)))
}

/// [`resume`] for a manual revert: the report from its located search.
pub async fn resume_manual(
    session: &Session,
    forge: &Forge,
    located: &Located,
) -> Result<Option<Outcome>> {
    let report = base_report(session, located);
    let evidence = [Evidence::Manual {
        reason: "revert requested by hand".to_owned(),
    }];
    Ok(resume(session, forge, located, &evidence, false, report)
        .await?
        .map(|(report, exit_code)| Outcome {
            report: Report::single(report),
            exit_code,
        }))
}

/// The report and exit code for what publishing found or did.
fn finish_report(
    report: &mut AppReport,
    publication: &Publication,
    head: &CommitSha,
    branch: &str,
    session: &Session,
) -> u8 {
    let pr = &publication.pr;
    let base = &session.remote.branch;
    report.action = publication.action;
    report.pr_url = Some(pr.html_url.clone());
    report.revert_commit = Some(head.to_string());
    report.healthy_confirmed = false;
    match publication.state {
        PrState::Merged => {
            report.reason = format!(
                "the revert pull request #{} ({}) was merged; the controller has not deployed it yet — the next run confirms",
                pr.number, pr.html_url
            );
            return exit::OK;
        }
        PrState::Rejected => {
            report.action = Action::Blocked;
            report.reason = format!(
                "held: the revert pull request #{} ({}) was closed without merging — a person rejected this revert, and revertbot does not open another for this incident; revert by hand, or delete the branch {branch} to let revertbot try again",
                pr.number, pr.html_url
            );
            return exit::BLOCKED;
        }
        PrState::Open => {}
    }
    let verb = if publication.action == Action::PrOpened {
        "opened"
    } else {
        "updated the open"
    };
    match &publication.automerge {
        None => {
            report.reason = format!(
                "{verb} revert pull request #{} ({}); merge it into {base} to deploy the revert",
                pr.number, pr.html_url
            );
            exit::OK
        }
        Some(Ok(())) => {
            report.reason = format!(
                "{verb} revert pull request #{} ({}) with auto-merge on: GitHub merges it into {base} once its required checks pass",
                pr.number, pr.html_url
            );
            exit::OK
        }
        Some(Err(e)) => {
            let why = crate::redact::scrub(&e.to_string()).into_owned();
            report.reason = format!(
                "{verb} revert pull request #{} ({}), but auto-merge is off: {why}",
                pr.number, pr.html_url
            );
            report.warnings.push(why);
            // The revert waits for a person: the run must not look green.
            exit::ERROR
        }
    }
}

/// The pull request's title (the revert commit's subject) and body (the
/// template, over what this run knows), and why a template override was
/// not used.
fn pr_text(
    session: &Session,
    forge: &Forge,
    head: &CommitSha,
    facts: &body::Facts<'_>,
    refresh: bool,
) -> Result<(PrText, Vec<String>)> {
    let message = session.repo.message(head)?;
    let title = message.lines().next().unwrap_or_default().trim().to_owned();
    let renderer = Renderer::new(Some(session.repo_root()))?;
    let body = body::build(session, forge.web.as_deref(), facts).render(&renderer)?;
    Ok((
        PrText {
            title,
            body,
            refresh,
        },
        renderer.warnings(),
    ))
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
}
