//! Shared first half of `plan` and `revert`: fetch what is needed, decide
//! which revision is deployed and which is last-known-good, and find the
//! culprits.

use crate::domain::CommitSha;
use crate::domain::ledger::LkgRecord;
use crate::git::culprits::{AlreadyReverted, CulpritSearch};
use crate::git::{FetchStats, GitError, InfraRepo};

use super::{CommandError, Result, Session};

/// In a shallow clone, history is deepened by this factor per step, from
/// `FIRST_DEPTH`, up to `MAX_DEPTH` commits; never a full unshallow.
const FIRST_DEPTH: u32 = 4;
const DEPTH_FACTOR: u32 = 4;
const MAX_DEPTH: u32 = 65_536;

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub deployed: Option<String>,
    pub lkg: Option<String>,
    /// Explicit culprits (`--commit`), instead of the search.
    pub commits: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum LkgChoice {
    /// From the ledger: the newest record on an ancestor of deployed.
    Ledger(LkgRecord),
    /// Given with `--lkg`; `record` is the ledger entry on it, if any.
    Flag {
        sha: CommitSha,
        record: Option<LkgRecord>,
    },
}

impl LkgChoice {
    pub fn sha(&self) -> &CommitSha {
        match self {
            LkgChoice::Ledger(r) => &r.revision,
            LkgChoice::Flag { sha, .. } => sha,
        }
    }

    pub fn record(&self) -> Option<&LkgRecord> {
        match self {
            LkgChoice::Ledger(r) => Some(r),
            LkgChoice::Flag { record, .. } => record.as_ref(),
        }
    }

    pub fn source(&self) -> &'static str {
        match self {
            LkgChoice::Ledger(_) => "ledger",
            LkgChoice::Flag { .. } => "flag",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Located {
    pub tip: CommitSha,
    pub deployed: CommitSha,
    pub lkg: Option<LkgChoice>,
    pub search: CulpritSearch,
    pub fetched: FetchStats,
}

/// Fetches the branch and the ledger, resolves the request and searches for
/// culprits. `lkg` is `None` only when none is known: the caller decides
/// what that means (plan shows it; revert refuses unless commits are given).
pub fn locate(session: &Session, request: &Request) -> Result<Located> {
    let repo = &session.repo;
    // A full clone gets the branch and the ledger in one fetch; a shallow one
    // fetches the ledger first, then deepens the branch as far as needed.
    let full_fetch = if repo.is_shallow() {
        repo.fetch_notes(&session.remote)?;
        None
    } else {
        Some(repo.fetch_branch_and_notes(&session.remote)?)
    };
    let candidates = repo.lkg_candidates(repo.upstream_notes(), &session.app_name)?;

    let (tip, fetched) = fetch_enough(session, full_fetch, |repo, tip| {
        let deployed = match lookup(repo, request.deployed.as_deref())? {
            Rev::NotGiven => tip.clone(),
            Rev::Found(sha) => sha,
            Rev::Missing => return Ok(Need::More("the deployed revision".to_owned())),
        };
        if !repo.is_ancestor(&deployed, tip)? {
            return Ok(Need::More(format!("deployed revision {deployed}")));
        }
        match lookup(repo, request.lkg.as_deref())? {
            Rev::Missing => return Ok(Need::More("the --lkg revision".to_owned())),
            Rev::Found(lkg) => {
                if !repo.is_ancestor(&lkg, &deployed)? {
                    return Ok(Need::More(format!("last-known-good {lkg}")));
                }
            }
            Rev::NotGiven => {
                if !candidates.is_empty() && repo.find_lkg(&candidates, &deployed)?.is_none() {
                    return Ok(Need::More("a recorded last-known-good".to_owned()));
                }
            }
        }
        for commit in &request.commits {
            match lookup(repo, Some(commit))? {
                Rev::Found(sha)
                    if repo.is_ancestor(&sha, &deployed)? && !repo.is_shallow_boundary(&sha)? => {}
                _ => return Ok(Need::More(format!("commit {commit}"))),
            }
        }
        Ok(Need::Enough)
    })?;

    let deployed = match &request.deployed {
        Some(rev) => repo.resolve(rev)?,
        None => tip.clone(),
    };
    if !repo.is_ancestor(&deployed, &tip)? {
        return Err(CommandError::Usage(format!(
            "deployed revision {deployed} is not on {}/{} — the controller deploys another branch, or the branch was rewritten; check repo.branch",
            session.remote.display(),
            session.remote.branch
        )));
    }
    let lkg = match &request.lkg {
        Some(rev) => {
            let sha = repo.resolve(rev)?;
            let record = candidates.iter().find(|r| r.revision == sha).cloned();
            Some(LkgChoice::Flag { sha, record })
        }
        None => repo
            .find_lkg(&candidates, &deployed)?
            .map(LkgChoice::Ledger),
    };

    let search = if request.commits.is_empty() {
        match &lkg {
            Some(lkg) => repo.find_culprits(&deployed, lkg.sha(), &tip, &session.scope()?)?,
            None => CulpritSearch::default(),
        }
    } else {
        explicit_culprits(session, &request.commits, &deployed, &tip)?
    };
    tracing::info!(
        tip = %tip.short(),
        deployed = %deployed.short(),
        last_known_good = lkg.as_ref().map(|l| l.sha().short().to_owned()).as_deref().unwrap_or("none"),
        culprits = search.culprits.len(),
        already_reverted = search.already_reverted.len(),
        forged_reverts = search.forged_reverts.len(),
        fetched_bytes = fetched.received_bytes,
        "located the culprits"
    );
    Ok(Located {
        tip,
        deployed,
        lkg,
        search,
        fetched,
    })
}

/// `--commit` culprits: each must be on the deployed first-parent history;
/// they are ordered newest first, and ones revertbot already reverted are
/// set aside.
fn explicit_culprits(
    session: &Session,
    commits: &[String],
    deployed: &CommitSha,
    tip: &CommitSha,
) -> Result<CulpritSearch> {
    let repo = &session.repo;
    let mut wanted = Vec::new();
    for rev in commits {
        let sha = repo.resolve(rev)?;
        if !wanted.contains(&sha) {
            wanted.push(sha);
        }
    }
    let order = repo.first_parent_order(deployed, &wanted)?;
    if let Some(missing) = wanted.iter().find(|sha| !order.contains(sha)) {
        return Err(CommandError::Usage(format!(
            "--commit {missing} is not on the first-parent history of the deployed revision {deployed} — revert only what is deployed; for a change merged from a branch, name the merge commit"
        )));
    }
    let oldest = order.last().cloned().unwrap_or_else(|| deployed.clone());
    let own = repo.own_reverts_between(&oldest, tip, &session.scope()?)?;
    let mut search = CulpritSearch {
        forged_reverts: own.forged,
        ..CulpritSearch::default()
    };
    for sha in order {
        match own.reverted_by.get(&sha) {
            Some(by) => search.already_reverted.push(AlreadyReverted {
                culprit: sha,
                by: by.clone(),
            }),
            None => search
                .culprits
                .push(repo.describe_culprit(&sha, session.paths()?)?),
        }
    }
    Ok(search)
}

enum Need {
    Enough,
    More(String),
}

/// Fetches the branch; in a shallow clone, deepens step by step until
/// `enough` says the history holds what the search needs.
fn fetch_enough(
    session: &Session,
    already_fetched: Option<(CommitSha, FetchStats)>,
    enough: impl Fn(&InfraRepo, &CommitSha) -> Result<Need, GitError>,
) -> Result<(CommitSha, FetchStats)> {
    let repo = &session.repo;
    if let Some((tip, stats)) = already_fetched {
        if let Need::More(what) = enough(repo, &tip)? {
            return Err(CommandError::Usage(format!(
                "{what} is not in the history of {}/{} — check the revision",
                session.remote.display(),
                session.remote.branch
            )));
        }
        return Ok((tip, stats));
    }
    let mut depth = FIRST_DEPTH;
    let mut total = FetchStats::default();
    loop {
        let (tip, stats) = repo.fetch_branch(&session.remote, Some(depth))?;
        total += stats;
        match enough(repo, &tip)? {
            Need::Enough => return Ok((tip, total)),
            Need::More(what) if depth >= MAX_DEPTH || !repo.is_shallow() => {
                return Err(CommandError::Usage(format!(
                    "{what} was not found within the newest {depth} commits of {}/{} — check the revision, or fetch more history first (git fetch --deepen=N)",
                    session.remote.display(),
                    session.remote.branch
                )));
            }
            Need::More(what) => {
                tracing::info!(depth, needed = %what, "deepening the shallow clone");
                depth = depth.saturating_mul(DEPTH_FACTOR).min(MAX_DEPTH);
            }
        }
    }
}

enum Rev {
    NotGiven,
    /// Given, but not in the history fetched so far.
    Missing,
    Found(CommitSha),
}

fn lookup(repo: &InfraRepo, rev: Option<&str>) -> Result<Rev, GitError> {
    let Some(rev) = rev else {
        return Ok(Rev::NotGiven);
    };
    match repo.resolve(rev) {
        Ok(sha) => Ok(Rev::Found(sha)),
        Err(GitError::RevisionNotFound { .. }) => Ok(Rev::Missing),
        Err(e) => Err(e),
    }
}
