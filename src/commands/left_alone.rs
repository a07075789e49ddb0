//! The files a path-limited revert leaves as they are: what the culprits
//! changed outside the app's paths, with the apps that own each file. The
//! commit message and the report name them, so nobody is surprised that a
//! monorepo commit was only partly undone.

use crate::domain::CommitSha;
use crate::git::app_glob;
pub use crate::report::LeftAlone;
use globset::{GlobSet, GlobSetBuilder};

use super::{Result, Session};

/// Most a message lists; the report has them all.
pub const MESSAGE_LIMIT: usize = 50;

/// What `culprits` changed outside the app's paths.
pub fn left_alone(session: &Session, culprits: &[CommitSha]) -> Result<Vec<LeftAlone>> {
    let own = session.paths()?;
    // Built only when some file lies outside the app: with thousands of
    // apps, compiling their globs costs more than the whole culprit search.
    let mut owners: Option<Owners> = None;
    let mut out = Vec::new();
    for sha in culprits {
        for file in session.repo.files_changed(sha)? {
            if own.is_match(&file) {
                continue;
            }
            let owners = owners.get_or_insert_with(|| Owners::compile(session));
            out.push(LeftAlone {
                culprit: sha.clone(),
                owners: owners.of(&file),
                file,
            });
        }
    }
    Ok(out)
}

/// Every other app's globs in one matcher, each glob mapped back to its app.
struct Owners<'a> {
    matcher: GlobSet,
    app_of_glob: Vec<&'a str>,
}

impl<'a> Owners<'a> {
    fn compile(session: &'a Session) -> Self {
        let mut builder = GlobSetBuilder::new();
        let mut app_of_glob = Vec::new();
        for app in session
            .config
            .apps
            .iter()
            .filter(|a| a.name != session.app.name)
        {
            for pattern in &app.paths {
                // The config loader already compiled every glob; one that
                // fails here cannot own a file, the same as before.
                if let Ok(glob) = app_glob(pattern) {
                    builder.add(glob);
                    app_of_glob.push(app.name.as_str());
                }
            }
        }
        let matcher = builder.build().unwrap_or_else(|_| GlobSet::empty());
        Self {
            matcher,
            app_of_glob,
        }
    }

    /// The apps owning `file`, each once, in config order.
    fn of(&self, file: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for index in self.matcher.matches(file) {
            let name = self.app_of_glob[index];
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        names
    }
}
