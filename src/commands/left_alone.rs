//! The files a path-limited revert leaves as they are: what the culprits
//! changed outside the app's paths, with the apps that own each file. The
//! commit message and the report name them, so nobody is surprised that a
//! monorepo commit was only partly undone.

use crate::domain::CommitSha;
use crate::git::AppPaths;
pub use crate::report::LeftAlone;

use super::{Result, Session};

/// Most a message lists; the report has them all.
pub const MESSAGE_LIMIT: usize = 50;

/// What `culprits` changed outside the app's paths.
pub fn left_alone(session: &Session, culprits: &[CommitSha]) -> Result<Vec<LeftAlone>> {
    let own = session.paths()?;
    let others: Vec<(String, AppPaths)> = session
        .config
        .apps
        .iter()
        .filter(|a| a.name != session.app.name)
        .filter_map(|a| {
            AppPaths::compile(&a.paths)
                .ok()
                .map(|p| (a.name.clone(), p))
        })
        .collect();
    let mut out = Vec::new();
    for sha in culprits {
        for file in session.repo.files_changed(sha)? {
            if own.is_match(&file) {
                continue;
            }
            let owners = others
                .iter()
                .filter(|(_, p)| p.is_match(&file))
                .map(|(n, _)| n.clone())
                .collect();
            out.push(LeftAlone {
                culprit: sha.clone(),
                file,
                owners,
            });
        }
    }
    Ok(out)
}
