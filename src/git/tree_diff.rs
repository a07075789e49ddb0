//! The files that differ between two trees, skipping every subtree whose id
//! is the same on both sides. libgit2's tree-to-tree diff opens each subtree
//! of both trees even when their ids match; on a monorepo with thousands of
//! app directories that read was the largest single cost of a revert
//! (docs/PERFORMANCE.md), while a revert changes one app's directory.

use git2::{ObjectType, Oid, Repository, Tree};

use super::revert::FileChange;
use super::{GitError, Result};

/// Files added (`A`), deleted (`D`) or modified (`M`, content or mode)
/// between `from` and `to`, sorted by path. A path that changes between a
/// file and a directory is the file's deletion (or addition) plus every file
/// beneath the directory.
pub fn changed_files(repo: &Repository, from: &Tree<'_>, to: &Tree<'_>) -> Result<Vec<FileChange>> {
    let mut out = Vec::new();
    diff_level(repo, from, to, "", &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn diff_level(
    repo: &Repository,
    from: &Tree<'_>,
    to: &Tree<'_>,
    prefix: &str,
    out: &mut Vec<FileChange>,
) -> Result<()> {
    if from.id() == to.id() {
        return Ok(());
    }
    let mut old: std::collections::BTreeMap<Vec<u8>, (Oid, i32, Option<ObjectType>)> = from
        .iter()
        .map(|e| (e.name_bytes().to_vec(), (e.id(), e.filemode(), e.kind())))
        .collect();
    for entry in to.iter() {
        let name = entry.name_bytes();
        let path = join(prefix, name);
        let new = (entry.id(), entry.filemode(), entry.kind());
        match old.remove(name) {
            None => all_files(repo, new, &path, 'A', out)?,
            Some(before) if before == new => {}
            Some(before) => match (is_tree(before.2), is_tree(new.2)) {
                (true, true) => {
                    let a = find_tree(repo, before.0)?;
                    let b = find_tree(repo, new.0)?;
                    diff_level(repo, &a, &b, &path, out)?;
                }
                (false, false) => out.push(FileChange { path, status: 'M' }),
                _ => {
                    all_files(repo, before, &path, 'D', out)?;
                    all_files(repo, new, &path, 'A', out)?;
                }
            },
        }
    }
    for (name, before) in old {
        all_files(repo, before, &join(prefix, &name), 'D', out)?;
    }
    Ok(())
}

/// The entry itself when it is a file, else every file beneath it.
fn all_files(
    repo: &Repository,
    entry: (Oid, i32, Option<ObjectType>),
    path: &str,
    status: char,
    out: &mut Vec<FileChange>,
) -> Result<()> {
    if !is_tree(entry.2) {
        out.push(FileChange {
            path: path.to_owned(),
            status,
        });
        return Ok(());
    }
    let tree = find_tree(repo, entry.0)?;
    for child in tree.iter() {
        let child_path = join(path, child.name_bytes());
        all_files(
            repo,
            (child.id(), child.filemode(), child.kind()),
            &child_path,
            status,
            out,
        )?;
    }
    Ok(())
}

fn is_tree(kind: Option<ObjectType>) -> bool {
    kind == Some(ObjectType::Tree)
}

fn find_tree(repo: &Repository, id: Oid) -> Result<Tree<'_>> {
    repo.find_tree(id)
        .map_err(GitError::git(format!("reading tree {id}")))
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree from `(path, content, executable)` triples.
    fn tree<'r>(repo: &'r Repository, files: &[(&str, &str, bool)]) -> Tree<'r> {
        let mut index = git2::Index::new().unwrap();
        for (path, content, exec) in files {
            let blob = repo.blob(content.as_bytes()).unwrap();
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: if *exec { 0o100755 } else { 0o100644 },
                uid: 0,
                gid: 0,
                file_size: 0,
                id: blob,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).unwrap();
        }
        let id = index.write_tree_to(repo).unwrap();
        repo.find_tree(id).unwrap()
    }

    /// What libgit2's own diff says, as (path, status) pairs in path order.
    fn libgit2_changes(repo: &Repository, a: &Tree<'_>, b: &Tree<'_>) -> Vec<(String, char)> {
        let diff = repo.diff_tree_to_tree(Some(a), Some(b), None).unwrap();
        let mut out: Vec<(String, char)> = diff
            .deltas()
            .map(|d| {
                let (file, status) = match d.status() {
                    git2::Delta::Added => (d.new_file(), 'A'),
                    git2::Delta::Deleted => (d.old_file(), 'D'),
                    _ => (d.new_file(), 'M'),
                };
                (file.path().unwrap().to_str().unwrap().to_owned(), status)
            })
            .collect();
        out.sort();
        out
    }

    fn ours(repo: &Repository, a: &Tree<'_>, b: &Tree<'_>) -> Vec<(String, char)> {
        let mut out: Vec<(String, char)> = changed_files(repo, a, b)
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.status))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn agrees_with_libgit2_on_adds_deletes_edits_modes_and_unicode() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let before = tree(
            &repo,
            &[
                ("apps/web/deploy.yaml", "image: web:1", false),
                ("apps/web/svc.yaml", "port: 80", false),
                ("apps/api/deploy.yaml", "image: api:1", false),
                ("apps/gäst book/deploy.yaml", "image: g:1", false),
                ("tools/run.sh", "echo", false),
                ("gone/a.yaml", "a", false),
                ("gone/deep/b.yaml", "b", false),
            ],
        );
        let after = tree(
            &repo,
            &[
                ("apps/web/deploy.yaml", "image: web:2", false),
                ("apps/web/svc.yaml", "port: 80", false),
                ("apps/api/deploy.yaml", "image: api:1", false),
                ("apps/gäst book/deploy.yaml", "image: g:2", false),
                ("apps/new/deploy.yaml", "image: n:1", false),
                ("tools/run.sh", "echo", true),
            ],
        );
        let expected = libgit2_changes(&repo, &before, &after);
        assert_eq!(ours(&repo, &before, &after), expected);
        assert_eq!(
            ours(&repo, &after, &before),
            libgit2_changes(&repo, &after, &before)
        );
        assert!(expected.contains(&("apps/gäst book/deploy.yaml".to_owned(), 'M')));
        assert!(expected.contains(&("gone/deep/b.yaml".to_owned(), 'D')));
        assert!(ours(&repo, &before, &before).is_empty());
    }

    #[test]
    fn a_file_replaced_by_a_directory_is_a_deletion_and_additions() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let before = tree(&repo, &[("apps/web", "a file", false), ("x", "x", false)]);
        let after = tree(
            &repo,
            &[
                ("apps/web/deploy.yaml", "image: web:1", false),
                ("apps/web/svc.yaml", "port: 80", false),
                ("x", "x", false),
            ],
        );
        let changes = ours(&repo, &before, &after);
        assert_eq!(
            changes,
            vec![
                ("apps/web".to_owned(), 'D'),
                ("apps/web/deploy.yaml".to_owned(), 'A'),
                ("apps/web/svc.yaml".to_owned(), 'A'),
            ]
        );
        assert_eq!(changes, libgit2_changes(&repo, &before, &after));
    }
}
