//! The drill's sandbox: a bare "remote" infra repo, a developer checkout
//! that pushes releases to it, and revertbot's own checkout. All git2, all
//! local: a drill needs no network, no cluster and no accounts.

use std::path::{Path, PathBuf};

use git2::{IndexAddOption, PushOptions, Repository, Signature};

use crate::domain::CommitSha;

#[derive(Debug, thiserror::Error)]
#[error("drill sandbox: {doing}: {message} — check that {dir} is writable")]
pub struct SandboxError {
    pub doing: String,
    pub message: String,
    pub dir: String,
}

pub struct Sandbox {
    pub root: PathBuf,
    pub remote: PathBuf,
    pub dev: PathBuf,
    pub checkout: PathBuf,
    /// The branch releases are pushed to and revertbot follows.
    pub branch: String,
}

/// A git2 failure while `doing` something in `dir`.
fn git_error(doing: &str, dir: &Path) -> impl FnOnce(git2::Error) -> SandboxError + use<> {
    let doing = doing.to_owned();
    let dir = dir.display().to_string();
    move |e| SandboxError {
        doing,
        message: e.message().to_owned(),
        dir,
    }
}

fn io_error(doing: &str, dir: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + use<> {
    let doing = doing.to_owned();
    let dir = dir.display().to_string();
    move |e| SandboxError {
        doing,
        message: e.to_string(),
        dir,
    }
}

pub const APP_DIR: &str = "apps/guestbook";

impl Sandbox {
    /// Creates the three repositories under `root` (which must be empty or
    /// absent).
    pub fn create(root: &Path) -> Result<Self, SandboxError> {
        let err = |doing: &str| git_error(doing, root);
        std::fs::create_dir_all(root).map_err(io_error("creating the sandbox", root))?;
        let remote = root.join("remote.git");
        let dev = root.join("dev");
        let checkout = root.join("infra");
        let mut init = git2::RepositoryInitOptions::new();
        init.bare(true).initial_head("main");
        Repository::init_opts(&remote, &init).map_err(err("creating the remote"))?;
        let mut init = git2::RepositoryInitOptions::new();
        init.initial_head("main");
        let dev_repo =
            Repository::init_opts(&dev, &init).map_err(err("creating the developer checkout"))?;
        dev_repo
            .remote("origin", &remote.display().to_string())
            .map_err(err("adding the remote"))?;
        Ok(Self {
            root: root.to_owned(),
            remote,
            dev,
            checkout,
            branch: "main".to_owned(),
        })
    }

    /// A sandbox holding a copy of `source`'s history: the remote gets
    /// `source`'s `branch` (or its `HEAD` when it has no such local branch)
    /// as `branch`, the developer checkout is a clone of it. Nothing else is
    /// copied (no notes, no other branches) and `source` is only read.
    pub fn import(root: &Path, source: &Path, branch: &str) -> Result<Self, SandboxError> {
        std::fs::create_dir_all(root).map_err(io_error("creating the sandbox", root))?;
        let source_repo =
            Repository::open(source).map_err(git_error("opening the infra repo", source))?;
        let local_branch = format!("refs/heads/{branch}");
        let source_ref = if source_repo.find_reference(&local_branch).is_ok() {
            local_branch
        } else {
            "HEAD".to_owned()
        };
        let remote = root.join("remote.git");
        let dev = root.join("dev");
        let checkout = root.join("infra");
        let mut init = git2::RepositoryInitOptions::new();
        init.bare(true).initial_head(branch);
        let remote_repo = Repository::init_opts(&remote, &init)
            .map_err(git_error("creating the remote", &remote))?;
        let source_url = source.display().to_string();
        remote_repo
            .remote_anonymous(&source_url)
            .and_then(|mut from| {
                from.fetch(
                    &[format!("+{source_ref}:refs/heads/{branch}")],
                    Some(git2::FetchOptions::new().download_tags(git2::AutotagOption::None)),
                    None,
                )
            })
            .map_err(git_error(
                &format!("copying {source_ref} of the infra repo (a shallow clone cannot be copied: fetch its full history first)"),
                source,
            ))?;
        Repository::clone(&remote.display().to_string(), &dev)
            .map_err(git_error("cloning the developer checkout", &dev))?;
        Ok(Self {
            root: root.to_owned(),
            remote,
            dev,
            checkout,
            branch: branch.to_owned(),
        })
    }

    /// Writes `files` in the developer checkout, commits them as one release
    /// and pushes it to the remote, like a developer or a CI job would.
    pub fn release(
        &self,
        message: &str,
        files: &[(&str, String)],
    ) -> Result<CommitSha, SandboxError> {
        self.commit_changes(message, files, &[])
    }

    /// [`Sandbox::release`] that also deletes `remove` (repo-relative paths).
    pub fn commit_changes(
        &self,
        message: &str,
        files: &[(&str, String)],
        remove: &[&str],
    ) -> Result<CommitSha, SandboxError> {
        let err = |doing: &str| git_error(doing, &self.dev);
        for (path, content) in files {
            let full = self.dev.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io_error(&format!("writing {path}"), &self.dev))?;
            }
            std::fs::write(&full, content)
                .map_err(io_error(&format!("writing {path}"), &self.dev))?;
        }
        for path in remove {
            std::fs::remove_file(self.dev.join(path))
                .map_err(io_error(&format!("removing {path}"), &self.dev))?;
        }
        let repo = Repository::open(&self.dev).map_err(err("opening the developer checkout"))?;
        let mut index = repo.index().map_err(err("reading the index"))?;
        index
            .add_all(["*"], IndexAddOption::DEFAULT, None)
            .map_err(err("staging the release"))?;
        // `add_all` stages new and changed files; removals need `update_all`.
        index
            .update_all(["*"], None)
            .map_err(err("staging the release"))?;
        index.write().map_err(err("writing the index"))?;
        let tree_id = index.write_tree().map_err(err("writing the tree"))?;
        let tree = repo.find_tree(tree_id).map_err(err("reading the tree"))?;
        let author =
            Signature::now("Drill Deployer", "deployer@drill.invalid").map_err(err("signing"))?;
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = repo
            .commit(Some("HEAD"), &author, &author, message, &tree, &parents)
            .map_err(err("committing the release"))?;
        let mut origin = repo
            .find_remote("origin")
            .map_err(err("finding the remote"))?;
        origin
            .push(
                &[format!("refs/heads/{0}:refs/heads/{0}", self.branch)],
                Some(&mut PushOptions::new()),
            )
            .map_err(err("pushing the release"))?;
        Ok(super::to_sha(oid))
    }

    /// The remote's branch tip, and every file in it with its size.
    pub fn tree(&self) -> Result<(CommitSha, Vec<(String, u64)>), SandboxError> {
        let err = |doing: &str| git_error(doing, &self.remote);
        let repo = Repository::open(&self.remote).map_err(err("opening the remote"))?;
        let commit = repo
            .find_reference(&format!("refs/heads/{}", self.branch))
            .and_then(|r| r.peel_to_commit())
            .map_err(err("reading the branch"))?;
        let tree = commit.tree().map_err(err("reading the tree"))?;
        let odb = repo.odb().map_err(err("opening the object database"))?;
        let mut files = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob)
                && let Ok(name) = std::str::from_utf8(entry.name_bytes())
            {
                let size = odb
                    .read_header(entry.id())
                    .map_or(u64::MAX, |(size, _)| size as u64);
                files.push((format!("{dir}{name}"), size));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(err("listing the files"))?;
        Ok((super::to_sha(commit.id()), files))
    }

    /// A file of the remote's branch at `rev`.
    pub fn read(&self, rev: &CommitSha, path: &str) -> Result<Option<Vec<u8>>, SandboxError> {
        let repo = super::InfraRepo::open(&self.remote).map_err(|e| SandboxError {
            doing: "opening the remote".into(),
            message: e.to_string(),
            dir: self.remote.display().to_string(),
        })?;
        repo.read_file(rev, path).map_err(|e| SandboxError {
            doing: format!("reading {path}"),
            message: e.to_string(),
            dir: self.remote.display().to_string(),
        })
    }

    /// revertbot's checkout of the remote (what actions/checkout would give).
    pub fn clone_checkout(&self) -> Result<(), SandboxError> {
        Repository::clone(&self.remote.display().to_string(), &self.checkout).map_err(|e| {
            SandboxError {
                doing: "cloning revertbot's checkout".into(),
                message: e.message().to_owned(),
                dir: self.checkout.display().to_string(),
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::InfraRepo;

    #[test]
    fn releases_reach_the_remote_and_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::create(&dir.path().join("drill")).unwrap();
        let first = sandbox
            .release(
                "first",
                &[("apps/guestbook/deploy.yaml", "image: a:1\n".into())],
            )
            .unwrap();
        let second = sandbox
            .release(
                "second",
                &[("apps/guestbook/deploy.yaml", "image: a:2\n".into())],
            )
            .unwrap();
        sandbox.clone_checkout().unwrap();
        let repo = InfraRepo::open(&sandbox.checkout).unwrap();
        assert_eq!(repo.resolve("origin/main").unwrap(), second);
        assert!(repo.is_ancestor(&first, &second).unwrap());
        assert_eq!(
            repo.read_file(&first, "apps/guestbook/deploy.yaml")
                .unwrap()
                .unwrap(),
            b"image: a:1\n"
        );
    }
}
