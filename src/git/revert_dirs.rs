//! The fast revert: when every culprit changed files only under the app's
//! literal directories (`apps/web`), merge just those subtrees and splice the
//! results into the tip's tree. Same result as reverting whole trees, without
//! building and hashing an index of the entire repository (2,000 apps:
//! thousands of trees per culprit).

use std::collections::BTreeSet;
use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, Index, Oid, Tree};

use super::revert::{PinWork, RevertSpec};
use super::{GitError, InfraRepo, Result};

impl InfraRepo {
    /// The app's directories, when the fast path applies: known, neither
    /// nested nor repeated, and containing every change of every culprit.
    /// The app's directories when its paths are whole, non-nested
    /// directories (the fast per-directory revert applies).
    pub(super) fn app_dirs(&self, spec: &RevertSpec<'_>) -> Option<Vec<String>> {
        let dirs: BTreeSet<&String> = spec.paths.dirs()?.iter().collect();
        let nested = dirs.iter().any(|a| {
            dirs.iter()
                .any(|b| a != b && b.starts_with(&format!("{a}/")))
        });
        (!nested).then(|| dirs.into_iter().cloned().collect())
    }

    pub(super) fn disjoint_app_dirs(&self, spec: &RevertSpec<'_>) -> Result<Option<Vec<String>>> {
        let Some(dirs) = spec.paths.dirs() else {
            return Ok(None);
        };
        let dirs: BTreeSet<&String> = dirs.iter().collect();
        let nested = dirs.iter().any(|a| {
            dirs.iter()
                .any(|b| a != b && b.starts_with(&format!("{a}/")))
        });
        if nested {
            return Ok(None);
        }
        for sha in spec.culprits {
            let commit = self.find_commit(sha)?;
            let diff = self.first_parent_diff(&commit, None)?;
            let inside = diff.deltas().all(|delta| {
                [delta.old_file(), delta.new_file()].iter().all(|f| {
                    f.path_bytes().is_none_or(|p| {
                        let p = String::from_utf8_lossy(p);
                        dirs.iter().any(|d| p.starts_with(&format!("{d}/")))
                    })
                })
            });
            if !inside {
                // The whole-tree revert reports exactly which outside files
                // it would touch.
                return Ok(None);
            }
        }
        Ok(Some(dirs.into_iter().cloned().collect()))
    }

    pub(super) fn revert_within_dirs(
        &self,
        base_tree: &Tree<'_>,
        spec: &RevertSpec<'_>,
        dirs: &[String],
    ) -> Result<(Oid, PinWork)> {
        let empty = self.empty_tree()?;
        let mut updates = TreeUpdateBuilder::new();
        let mut work = PinWork::default();
        for dir in dirs {
            let doing = || format!("reverting {dir}");
            let original = subtree(base_tree, dir);
            let mut current = original;
            for sha in spec.culprits {
                let commit = self.find_commit(sha)?;
                let culprit_tree = commit.tree().map_err(GitError::git(doing()))?;
                let ancestor = subtree(&culprit_tree, dir);
                let mainline = match commit.parent(0) {
                    Ok(parent) => subtree(&parent.tree().map_err(GitError::git(doing()))?, dir),
                    Err(_) => None,
                };
                if ancestor == mainline {
                    continue; // this culprit did not touch this directory
                }
                let tree_or_empty = |id: Option<Oid>| -> Result<Tree<'_>> {
                    match id {
                        Some(id) => self.raw().find_tree(id).map_err(GitError::git(doing())),
                        None => Ok(empty.clone()),
                    }
                };
                let mut merged = self
                    .raw()
                    .merge_trees(
                        &tree_or_empty(ancestor)?,
                        &tree_or_empty(current)?,
                        &tree_or_empty(mainline)?,
                        None,
                    )
                    .map_err(GitError::git(doing()))?;
                if merged.has_conflicts() {
                    let mut files = BTreeSet::new();
                    let conflicts = merged.conflicts().map_err(GitError::git(doing()))?;
                    for conflict in conflicts.flatten() {
                        for entry in [conflict.ancestor, conflict.our, conflict.their]
                            .into_iter()
                            .flatten()
                        {
                            files.insert(format!("{dir}/{}", String::from_utf8_lossy(&entry.path)));
                        }
                    }
                    return Err(GitError::Conflict {
                        commit: sha.clone(),
                        files: files.into_iter().collect(),
                    });
                }
                current = Some(
                    merged
                        .write_tree_to(self.raw())
                        .map_err(GitError::git(doing()))?,
                );
            }
            // Pin within the directory.
            let mut index = Index::new().map_err(GitError::git(doing()))?;
            if let Some(id) = current {
                let tree = self.raw().find_tree(id).map_err(GitError::git(doing()))?;
                index.read_tree(&tree).map_err(GitError::git(doing()))?;
            }
            let pins = self.pin_images(&mut index, spec, dir)?;
            let pinned = if pins.applied.is_empty() && pins.suspended_markers.is_empty() {
                current
            } else {
                Some(
                    index
                        .write_tree_to(self.raw())
                        .map_err(GitError::git(doing()))?,
                )
            };
            merge_work(&mut work, pins);
            let empty_id = empty.id();
            match pinned {
                Some(id) if Some(id) == original => {}
                Some(id) if id != empty_id => {
                    updates.upsert(dir.as_str(), id, FileMode::Tree);
                }
                _ if original.is_some() => {
                    updates.remove(dir.as_str());
                }
                _ => {}
            }
        }
        let tree = updates
            .create_updated(self.raw(), base_tree)
            .map_err(GitError::git(
                "splicing the reverted directories into the tip",
            ))?;
        Ok((tree, work))
    }
}

fn subtree(tree: &Tree<'_>, dir: &str) -> Option<Oid> {
    tree.get_path(Path::new(dir))
        .ok()
        .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
        .map(|e| e.id())
}

fn merge_work(into: &mut PinWork, from: PinWork) {
    into.applied.extend(from.applied);
    into.already_pinned.extend(from.already_pinned);
    into.mismatches.extend(from.mismatches);
    into.suspended_markers.extend(from.suspended_markers);
    into.unscanned.extend(from.unscanned);
}
