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
}

pub const APP_DIR: &str = "apps/guestbook";

impl Sandbox {
    /// Creates the three repositories under `root` (which must be empty or
    /// absent).
    pub fn create(root: &Path) -> Result<Self, SandboxError> {
        let err = |doing: &str| {
            let doing = doing.to_owned();
            let dir = root.display().to_string();
            move |e: git2::Error| SandboxError {
                doing,
                message: e.message().to_owned(),
                dir,
            }
        };
        std::fs::create_dir_all(root).map_err(|e| SandboxError {
            doing: "creating the sandbox".into(),
            message: e.to_string(),
            dir: root.display().to_string(),
        })?;
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
        })
    }

    /// Writes `files` in the developer checkout, commits them as one release
    /// and pushes it to the remote, like a developer or a CI job would.
    pub fn release(
        &self,
        message: &str,
        files: &[(&str, String)],
    ) -> Result<CommitSha, SandboxError> {
        let err = |doing: &str| {
            let doing = doing.to_owned();
            let dir = self.dev.display().to_string();
            move |e: git2::Error| SandboxError {
                doing,
                message: e.message().to_owned(),
                dir,
            }
        };
        for (path, content) in files {
            let full = self.dev.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(|e| SandboxError {
                    doing: format!("writing {path}"),
                    message: e.to_string(),
                    dir: self.dev.display().to_string(),
                })?;
            }
            std::fs::write(&full, content).map_err(|e| SandboxError {
                doing: format!("writing {path}"),
                message: e.to_string(),
                dir: self.dev.display().to_string(),
            })?;
        }
        let repo = Repository::open(&self.dev).map_err(err("opening the developer checkout"))?;
        let mut index = repo.index().map_err(err("reading the index"))?;
        index
            .add_all(["*"], IndexAddOption::DEFAULT, None)
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
                &["refs/heads/main:refs/heads/main"],
                Some(&mut PushOptions::new()),
            )
            .map_err(err("pushing the release"))?;
        Ok(super::to_sha(oid))
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
