//! The culprit search and the revert tree, on real git histories: a scenario
//! table asserting the exact culprits and the exact resulting files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::collections::BTreeMap;

use revertbot::domain::CommitSha;
use revertbot::git::revert::{RevertSpec, Scope};
use revertbot::git::{AppPaths, GitError, InfraRepo};
use revertbot::manifest::PinRules;
use support::WorkRepo;
use support::culprits::{base_repo, culprit_shas, globs, scope, sha};

/// Every file of a tree (path → bytes), read with the git CLI.
fn files_at(work: &WorkRepo, rev: &str) -> BTreeMap<String, Vec<u8>> {
    let listing = work.git_bytes(&["ls-tree", "-r", "-z", "--name-only", rev]);
    listing
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let path = String::from_utf8(p.to_vec()).unwrap();
            let content = work.show_file(rev, &path).unwrap();
            (path, content)
        })
        .collect()
}

/// Builds the revert on `tip` and returns the resulting files.
fn revert_files(
    work: &WorkRepo,
    repo: &InfraRepo,
    tip: &str,
    culprits: &[CommitSha],
    lkg: &str,
    paths: &AppPaths,
    scope: Scope,
) -> Result<BTreeMap<String, Vec<u8>>, GitError> {
    let built = repo.build_revert(&RevertSpec {
        base: &sha(tip),
        culprits,
        last_known_good: Some(&sha(lkg)),
        scope,
        paths,
        pins: &[],
        pin_rules: &PinRules::default(),
        allow_outside_paths: false,
    })?;
    let commit = repo.commit_revert(&sha(tip), built.tree, "test revert\n")?;
    Ok(files_at(work, commit.as_str()))
}

/// Files under `prefix` at `rev`, and the other files at `other_rev`: what a
/// correct revert of one app must produce.
fn expected(
    work: &WorkRepo,
    app_rev: &str,
    other_rev: &str,
    prefix: &str,
) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<_, _> = files_at(work, other_rev)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(prefix))
        .collect();
    out.extend(
        files_at(work, app_rev)
            .into_iter()
            .filter(|(p, _)| p.starts_with(prefix)),
    );
    out
}

#[test]
fn linear_history_with_interleaved_apps() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let a1 = work.commit("web v2");
    work.write("apps/api/deploy.yaml", "image: api:v2\n");
    work.commit("api v2");
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 5\n");
    let a2 = work.commit("web scale");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);

    assert_eq!(
        culprit_shas(&repo, &a2, &lkg, &a2, &scope("web", &web)),
        vec![a2.clone(), a1.clone()]
    );
    let search = repo
        .find_culprits(&sha(&a2), &sha(&lkg), &sha(&a2), &scope("web", &web))
        .unwrap();
    assert_eq!(
        search.culprits[0].files,
        vec!["apps/web/deploy.yaml".to_owned()]
    );
    assert_eq!(search.culprits[0].subject, "web scale");

    let shas: Vec<CommitSha> = search.culprits.iter().map(|c| c.sha.clone()).collect();
    let files = revert_files(&work, &repo, &a2, &shas, &lkg, &web, Scope::Commits).unwrap();
    // web is back at v1; api keeps its unrelated v2.
    assert_eq!(files, expected(&work, &lkg, &a2, "apps/web/"));
    let by_paths = revert_files(&work, &repo, &a2, &[], &lkg, &web, Scope::Paths).unwrap();
    assert_eq!(by_paths, files);
}

#[test]
fn unrelated_commits_after_the_deploy_are_kept() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let bad = work.commit("web v2");
    work.write("apps/api/deploy.yaml", "image: api:v3\n");
    work.write("README.md", "infra, later\n");
    let tip = work.commit("api v3 after the deploy");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    assert_eq!(
        culprit_shas(&repo, &bad, &lkg, &tip, &scope("web", &web)),
        vec![bad.clone()]
    );
    let files = revert_files(&work, &repo, &tip, &[sha(&bad)], &lkg, &web, Scope::Commits).unwrap();
    assert_eq!(files, expected(&work, &lkg, &tip, "apps/web/"));
}

#[test]
fn merges_count_by_their_first_parent_diff() {
    let (work, lkg) = base_repo();
    work.checkout_new("feature");
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    work.commit("feature: web v2");
    work.write("apps/web/config.yaml", "flag: on\n");
    work.commit("feature: web config");
    work.checkout("main");
    work.write("apps/api/deploy.yaml", "image: api:v2\n");
    work.commit("api v2 on main");
    let merge = work.merge_no_ff("feature", "Merge feature");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    let search = repo
        .find_culprits(&sha(&merge), &sha(&lkg), &sha(&merge), &scope("web", &web))
        .unwrap();
    assert_eq!(search.culprits.len(), 1, "{search:?}");
    assert_eq!(search.culprits[0].sha.as_str(), merge);
    assert!(search.culprits[0].is_merge);
    assert_eq!(
        search.culprits[0].files,
        vec![
            "apps/web/config.yaml".to_owned(),
            "apps/web/deploy.yaml".to_owned()
        ]
    );
    let files = revert_files(
        &work,
        &repo,
        &merge,
        &[sha(&merge)],
        &lkg,
        &web,
        Scope::Commits,
    )
    .unwrap();
    assert_eq!(files, expected(&work, &lkg, &merge, "apps/web/"));
}

#[test]
fn renames_into_and_out_of_the_app_count_on_both_sides() {
    let (work, lkg) = base_repo();
    work.write("shared/limits.yaml", "cpu: 1\n");
    let with_shared = work.commit("shared limits");
    work.rename("shared/limits.yaml", "apps/web/limits.yaml");
    let into = work.commit("move limits into web");
    work.rename("apps/web/deploy.yaml", "archive/web-deploy.yaml");
    let out_of = work.commit("move web deploy out");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    let search = repo
        .find_culprits(
            &sha(&out_of),
            &sha(&lkg),
            &sha(&out_of),
            &scope("web", &web),
        )
        .unwrap();
    let shas: Vec<&str> = search.culprits.iter().map(|c| c.sha.as_str()).collect();
    assert_eq!(shas, vec![out_of.as_str(), into.as_str()]);
    assert!(!shas.contains(&with_shared.as_str()));

    // Reverting whole commits would touch files outside the app: refused.
    let culprits: Vec<CommitSha> = search.culprits.iter().map(|c| c.sha.clone()).collect();
    let err =
        revert_files(&work, &repo, &out_of, &culprits, &lkg, &web, Scope::Commits).unwrap_err();
    match &err {
        GitError::OutsidePaths { files } => {
            assert!(
                files.contains(&"archive/web-deploy.yaml".to_owned()),
                "{files:?}"
            );
            assert!(
                files.contains(&"shared/limits.yaml".to_owned()),
                "{files:?}"
            );
        }
        other => panic!("expected OutsidePaths, got {other}"),
    }
    assert!(err.to_string().contains("scope: paths"), "{err}");
    // Restoring the app's paths instead leaves the rest alone.
    let files = revert_files(&work, &repo, &out_of, &[], &lkg, &web, Scope::Paths).unwrap();
    assert_eq!(files, expected(&work, &lkg, &out_of, "apps/web/"));
}

#[test]
fn revertbot_reverts_are_recognised_and_a_revert_of_a_revert_is_a_culprit() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let bad = work.commit("web v2");
    work.write("apps/web/deploy.yaml", "image: web:v1\nreplicas: 2\n");
    let bot = work.commit(&format!(
        "revertbot: revert web\n\nRevertbot-App: web\nRevertbot-Incident: web-x\nRevertbot-Reverts: {bad}\n"
    ));
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let human = work.commit(&format!(
        "Revert \"revertbot: revert web\"\n\nThis reverts commit {bot}.\n"
    ));
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    let search = repo
        .find_culprits(&sha(&human), &sha(&lkg), &sha(&human), &scope("web", &web))
        .unwrap();
    assert_eq!(
        search
            .culprits
            .iter()
            .map(|c| c.sha.as_str())
            .collect::<Vec<_>>(),
        vec![human.as_str()]
    );
    assert_eq!(search.own_reverts, vec![sha(&bot)]);
    assert_eq!(search.already_reverted.len(), 1);
    assert_eq!(search.already_reverted[0].culprit, sha(&bad));
    let files = revert_files(
        &work,
        &repo,
        &human,
        &[sha(&human)],
        &lkg,
        &web,
        Scope::Commits,
    )
    .unwrap();
    assert_eq!(files, expected(&work, &lkg, &human, "apps/web/"));
}

#[test]
fn a_revert_after_the_deploy_means_nothing_is_left_to_revert() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let bad = work.commit("web v2");
    work.write("apps/web/deploy.yaml", "image: web:v1\nreplicas: 2\n");
    let bot = work.commit(&format!(
        "revertbot: revert web\n\nRevertbot-App: web\nRevertbot-Reverts: {bad}\n"
    ));
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    let search = repo
        .find_culprits(&sha(&bad), &sha(&lkg), &sha(&bot), &scope("web", &web))
        .unwrap();
    assert!(search.culprits.is_empty());
    assert_eq!(search.already_reverted[0].by, sha(&bot));
}

#[test]
fn only_other_apps_changed_means_no_culprits() {
    let (work, lkg) = base_repo();
    work.write("apps/api/deploy.yaml", "image: api:v2\n");
    let deployed = work.commit("api v2");
    let repo = InfraRepo::open(&work.path()).unwrap();
    assert!(
        culprit_shas(
            &repo,
            &deployed,
            &lkg,
            &deployed,
            &scope("web", &globs(&["apps/web/**"]))
        )
        .is_empty()
    );
    assert!(
        culprit_shas(
            &repo,
            &lkg,
            &lkg,
            &lkg,
            &scope("web", &globs(&["apps/web/**"]))
        )
        .is_empty()
    );
}

#[test]
fn lkg_not_an_ancestor_and_missing_revisions_are_clear_errors() {
    let (work, lkg) = base_repo();
    work.checkout_new("other");
    work.write("apps/web/deploy.yaml", "image: web:v9\n");
    let side = work.commit("side branch");
    work.checkout("main");
    work.write("apps/web/deploy.yaml", "image: web:v2\n");
    let deployed = work.commit("web v2");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    let err = repo
        .find_culprits(
            &sha(&deployed),
            &sha(&side),
            &sha(&deployed),
            &scope("web", &web),
        )
        .unwrap_err();
    assert!(matches!(err, GitError::NotAncestor { .. }), "{err}");
    assert!(err.to_string().contains("not an ancestor"), "{err}");
    let missing = sha(&"e".repeat(40));
    let err = repo
        .find_culprits(&missing, &sha(&lkg), &sha(&deployed), &scope("web", &web))
        .unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
}

#[test]
fn unicode_and_space_paths() {
    let work = WorkRepo::init();
    work.write("apps/gäst book/déploy ment.yaml", "image: gäst:v1\n");
    work.write("apps/other app/x.yaml", "a: 1\n");
    let lkg = work.commit("initial");
    work.write("apps/gäst book/déploy ment.yaml", "image: gäst:v2\n");
    let bad = work.commit("gäst v2 ✨");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let app = globs(&["apps/gäst book/**"]);
    let search = repo
        .find_culprits(
            &sha(&bad),
            &sha(&lkg),
            &sha(&bad),
            &scope("gäst book", &app),
        )
        .unwrap();
    assert_eq!(
        search.culprits[0].files,
        vec!["apps/gäst book/déploy ment.yaml".to_owned()]
    );
    assert_eq!(search.culprits[0].subject, "gäst v2 ✨");
    let files = revert_files(&work, &repo, &bad, &[sha(&bad)], &lkg, &app, Scope::Commits).unwrap();
    assert_eq!(files, files_at(&work, &lkg));
}

#[test]
fn binary_files_revert_byte_for_byte() {
    let work = WorkRepo::init();
    let v1: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    work.write("apps/web/model.bin", &v1);
    let lkg = work.commit("model v1");
    let v2: Vec<u8> = v1.iter().map(|b| b.wrapping_mul(7)).collect();
    work.write("apps/web/model.bin", &v2);
    let bad = work.commit("model v2");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    assert_eq!(
        culprit_shas(&repo, &bad, &lkg, &bad, &scope("web", &web)),
        vec![bad.clone()]
    );
    let files = revert_files(&work, &repo, &bad, &[sha(&bad)], &lkg, &web, Scope::Commits).unwrap();
    assert_eq!(files["apps/web/model.bin"], v1);
}

#[test]
fn a_five_thousand_file_commit() {
    let work = WorkRepo::init();
    work.write("apps/web/keep.yaml", "k: 1\n");
    let lkg = work.commit("initial");
    for i in 0..5000 {
        work.write(
            format!("apps/web/gen/{:02}/f{i}.yaml", i % 50),
            format!("n: {i}\n"),
        );
    }
    let bad = work.commit("generate 5000 files");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    let search = repo
        .find_culprits(&sha(&bad), &sha(&lkg), &sha(&bad), &scope("web", &web))
        .unwrap();
    assert_eq!(search.culprits.len(), 1);
    assert_eq!(search.culprits[0].files.len(), 5000);
    let files = revert_files(&work, &repo, &bad, &[sha(&bad)], &lkg, &web, Scope::Commits).unwrap();
    assert_eq!(files, files_at(&work, &lkg));
}

#[test]
fn a_conflict_names_files_and_commit_and_writes_nothing() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let bad = work.commit("web v2");
    // After the deploy someone edits the same line again.
    work.write("apps/web/deploy.yaml", "image: web:v3\nreplicas: 2\n");
    let tip = work.commit("web v3 (not deployed yet)");
    let refs_before = work.git(&["for-each-ref"]);
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    let err = repo
        .build_revert(&RevertSpec {
            base: &sha(&tip),
            culprits: &[sha(&bad)],
            last_known_good: Some(&sha(&lkg)),
            scope: Scope::Commits,
            paths: &web,
            pins: &[],
            pin_rules: &PinRules::default(),
            allow_outside_paths: false,
        })
        .unwrap_err();
    match &err {
        GitError::Conflict { commit, files } => {
            assert_eq!(commit, &sha(&bad));
            assert_eq!(files, &vec!["apps/web/deploy.yaml".to_owned()]);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(work.git(&["for-each-ref"]), refs_before);
    assert_eq!(work.git(&["status", "--porcelain"]), "");
}

#[test]
fn globs_without_a_literal_directory_still_find_every_culprit() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let a1 = work.commit("web v2");
    work.write("apps/api/deploy.yaml", "image: api:v2\n");
    let a2 = work.commit("api v2");
    let repo = InfraRepo::open(&work.path()).unwrap();
    // `**/deploy.yaml` has no literal directory: no pruning, same answer.
    assert_eq!(
        culprit_shas(
            &repo,
            &a2,
            &lkg,
            &a2,
            &scope("web", &globs(&["**/deploy.yaml"]))
        ),
        vec![a2.clone(), a1.clone()]
    );
    // Two directories: both are checked.
    assert_eq!(
        culprit_shas(
            &repo,
            &a2,
            &lkg,
            &a2,
            &scope("web", &globs(&["apps/web/**", "apps/api/*.yaml"]))
        ),
        vec![a2, a1]
    );
}

#[test]
fn the_directory_fast_path_builds_the_same_tree_as_the_whole_tree_revert() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    work.write("apps/web/new.yaml", "added: true\n");
    let a1 = work.commit("web v2 + new file");
    work.write("apps/api/deploy.yaml", "image: api:v2\n");
    work.commit("api v2");
    work.remove("apps/web/new.yaml");
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 7\n");
    let a2 = work.commit("web scale, drop the new file");
    work.write("README.md", "later\n");
    let tip = work.commit("after the deploy");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let fast = globs(&["apps/web/**"]);
    // A glob without a literal directory (matching nothing here) turns the
    // fast path off without changing what matches.
    let full = globs(&["apps/web/**", "**/no-such-file.yaml"]);
    assert!(fast.dirs().is_some() && full.dirs().is_none());
    let culprits = [sha(&a2), sha(&a1)];
    let a = revert_files(&work, &repo, &tip, &culprits, &lkg, &fast, Scope::Commits).unwrap();
    let b = revert_files(&work, &repo, &tip, &culprits, &lkg, &full, Scope::Commits).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, expected(&work, &lkg, &tip, "apps/web/"));
    // Reverting the whole app away (its directory did not exist at LKG).
    let work2 = WorkRepo::init();
    work2.write("README.md", "x\n");
    let lkg2 = work2.commit("no web yet");
    work2.write("apps/web/deploy.yaml", "image: web:v1\n");
    let add = work2.commit("add web");
    let repo2 = InfraRepo::open(&work2.path()).unwrap();
    let a = revert_files(
        &work2,
        &repo2,
        &add,
        &[sha(&add)],
        &lkg2,
        &fast,
        Scope::Commits,
    )
    .unwrap();
    let b = revert_files(
        &work2,
        &repo2,
        &add,
        &[sha(&add)],
        &lkg2,
        &full,
        Scope::Commits,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a, files_at(&work2, &lkg2));
}
