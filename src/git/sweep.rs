//! Cleaning up after a run that was killed (SIGKILL, OOM, a lost runner)
//! before it could tidy its own work: the per-process staging refs
//! (`refs/revertbot/push/<pid>/…`, `refs/revertbot/notes-work/<pid>`) and
//! ref lock files that libgit2 leaves when it dies mid-update. The next run
//! sweeps them before it fetches, so a stale lock cannot block every later
//! fetch or push.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{GitError, InfraRepo, Result};

/// Work refs are namespaced by the process that made them.
const PER_PROCESS_PREFIXES: &[&str] = &["refs/revertbot/push/", "refs/revertbot/notes-work/"];

/// A ref update holds its lock for milliseconds; one this old belongs to a
/// process that died holding it. Long enough that a live run on a slow disk
/// is never robbed of its lock.
pub const STALE_LOCK_AGE: Duration = Duration::from_secs(120);

/// What a sweep removed, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub refs: Vec<String>,
    pub locks: Vec<PathBuf>,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty() && self.locks.is_empty()
    }
}

impl InfraRepo {
    /// Removes the work refs of processes that no longer run and ref locks
    /// older than [`STALE_LOCK_AGE`] in the refs revertbot writes. Refs of
    /// live processes (a concurrent run in the same checkout) are kept.
    pub fn sweep_abandoned_work(&self) -> Result<Swept> {
        let mut swept = Swept::default();
        self.sweep_locks(&mut swept);
        let mine = std::process::id();
        let names: Vec<String> = self
            .raw()
            .references_glob("refs/revertbot/*")
            .map_err(GitError::git("listing revertbot's work refs"))?
            .names()
            .filter_map(|n| n.ok().map(str::to_owned))
            .collect();
        for name in names {
            let Some(pid) = owner_pid(&name) else {
                continue;
            };
            if pid == mine || process_alive(pid) != Some(false) {
                continue;
            }
            match self
                .raw()
                .find_reference(&name)
                .and_then(|mut r| r.delete())
            {
                Ok(()) => swept.refs.push(name),
                Err(e) => {
                    tracing::warn!(reference = %name, error = %e.message(), "cannot remove an abandoned work ref; it is harmless, remove it with `git update-ref -d`")
                }
            }
        }
        if !swept.is_empty() {
            tracing::info!(refs = ?swept.refs, locks = ?swept.locks, "removed what a killed run left behind");
        }
        Ok(swept)
    }

    fn sweep_locks(&self, swept: &mut Swept) {
        let git_dir = self.raw().path().to_owned();
        // Only what revertbot itself updates: its own namespace, its notes
        // and the remote-tracking refs it fetches into. A user's own locks
        // (index.lock, HEAD.lock) are theirs to judge.
        let mut dirs = vec![git_dir.join("refs/revertbot"), git_dir.join("refs/remotes")];
        let mut files = vec![git_dir.join("refs/notes/revertbot.lock")];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(path),
                    Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "lock") => {
                        files.push(path);
                    }
                    _ => {}
                }
            }
        }
        let now = SystemTime::now();
        for lock in files {
            if is_stale(&lock, now) {
                match std::fs::remove_file(&lock) {
                    Ok(()) => swept.locks.push(lock),
                    Err(e) => {
                        tracing::warn!(lock = %lock.display(), error = %e, "cannot remove a stale ref lock; remove it by hand")
                    }
                }
            }
        }
    }
}

fn is_stale(lock: &Path, now: SystemTime) -> bool {
    std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| now.duration_since(modified).ok())
        .is_some_and(|age| age >= STALE_LOCK_AGE)
}

/// The pid a per-process work ref belongs to.
pub(crate) fn owner_pid(refname: &str) -> Option<u32> {
    let rest = PER_PROCESS_PREFIXES
        .iter()
        .find_map(|p| refname.strip_prefix(p))?;
    rest.split('/').next()?.parse().ok()
}

/// Whether a process runs, where the OS can tell (`/proc`); `None` when it
/// cannot, and then nothing is removed.
fn process_alive(pid: u32) -> Option<bool> {
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return None;
    }
    Some(proc_root.join(pid.to_string()).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_refs_name_their_process() {
        assert_eq!(owner_pid("refs/revertbot/push/4242/heads/main"), Some(4242));
        assert_eq!(owner_pid("refs/revertbot/notes-work/17"), Some(17));
        assert_eq!(owner_pid("refs/revertbot/upstream/notes"), None);
        assert_eq!(owner_pid("refs/revertbot/upstream/heads/main"), None);
        assert_eq!(owner_pid("refs/revertbot/push/x/heads/main"), None);
    }

    #[test]
    fn this_process_is_alive() {
        assert_eq!(process_alive(std::process::id()), Some(true));
    }
}
