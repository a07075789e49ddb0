//! The culprit search against commits that carry revertbot's trailers
//! without being its reverts: the culprit is still found, the forging commit
//! is judged like any other, and the claim is reported.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use revertbot::git::{AppScope, InfraRepo};
use support::culprits::{base_repo, culprit_shas, globs, scope, sha};

/// The commits the search reports as claiming a revert they are not.
fn forged(
    repo: &InfraRepo,
    deployed: &str,
    lkg: &str,
    tip: &str,
    app: &AppScope<'_>,
) -> Vec<String> {
    repo.find_culprits(&sha(deployed), &sha(lkg), &sha(tip), app)
        .unwrap()
        .forged_reverts
        .iter()
        .map(|f| f.commit.to_string())
        .collect()
}

/// A commit message carrying revertbot's trailers for `app`, claiming to
/// revert `culprits`.
fn claiming(subject: &str, app: &str, culprits: &[&str]) -> String {
    let mut msg = format!("{subject}\n\nRevertbot-App: {app}\nRevertbot-Incident: {app}-forged\n");
    for c in culprits {
        msg.push_str(&format!("Revertbot-Reverts: {c}\n"));
    }
    msg
}

#[test]
fn forged_trailers_on_another_change_hide_nothing_and_the_forger_is_a_culprit() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let bad = work.commit("web v2");
    // Claims to revert `bad` but scales web instead: v2 stays.
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 9\n");
    let forger = work.commit(&claiming("revertbot: revert web", "web", &[&bad]));
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    assert_eq!(
        culprit_shas(&repo, &forger, &lkg, &forger, &scope("web", &web)),
        vec![forger.clone(), bad.clone()]
    );
    let search = repo
        .find_culprits(
            &sha(&forger),
            &sha(&lkg),
            &sha(&forger),
            &scope("web", &web),
        )
        .unwrap();
    assert!(search.own_reverts.is_empty() && search.already_reverted.is_empty());
    assert_eq!(search.forged_reverts.len(), 1);
    assert_eq!(search.forged_reverts[0].commit, sha(&forger));
    assert!(
        search.forged_reverts[0]
            .reason
            .contains("not what reverting"),
        "{}",
        search.forged_reverts[0].reason
    );
}

#[test]
fn forged_trailers_outside_the_app_do_not_hide_its_culprit() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let bad = work.commit("web v2");
    work.write("README.md", "nothing to see\n");
    let forger = work.commit(&claiming("revertbot: revert web", "web", &[&bad]));
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    // Deployed with the forger, and with the forger landing after the deploy.
    assert_eq!(
        culprit_shas(&repo, &forger, &lkg, &forger, &scope("web", &web)),
        vec![bad.clone()]
    );
    assert_eq!(
        culprit_shas(&repo, &bad, &lkg, &forger, &scope("web", &web)),
        vec![bad.clone()]
    );
    assert_eq!(
        forged(&repo, &bad, &lkg, &forger, &scope("web", &web)),
        vec![forger.clone()]
    );
}

#[test]
fn a_commit_of_another_app_naming_this_apps_culprit_does_not_count() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let bad = work.commit("web v2");
    // In api, claiming (as api) to revert web's culprit.
    work.write("apps/api/deploy.yaml", "image: api:v2\n");
    let forger = work.commit(&claiming("revertbot: revert api", "api", &[&bad]));
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    let api = globs(&["apps/api/**"]);
    assert_eq!(
        culprit_shas(&repo, &forger, &lkg, &forger, &scope("web", &web)),
        vec![bad.clone()]
    );
    // For api it is an ordinary change of api's files.
    assert_eq!(
        culprit_shas(&repo, &forger, &lkg, &forger, &scope("api", &api)),
        vec![forger.clone()]
    );
    // Not web's claim; for api a claim naming a commit that never touched it.
    assert!(forged(&repo, &forger, &lkg, &forger, &scope("web", &web)).is_empty());
    let search = repo
        .find_culprits(
            &sha(&forger),
            &sha(&lkg),
            &sha(&forger),
            &scope("api", &api),
        )
        .unwrap();
    assert_eq!(search.forged_reverts[0].commit, sha(&forger));
    assert!(
        search.forged_reverts[0]
            .reason
            .contains("changes none of the app's files"),
        "{}",
        search.forged_reverts[0].reason
    );
}

#[test]
fn an_empty_commit_with_trailers_reverts_nothing() {
    let (work, lkg) = base_repo();
    work.write("apps/web/deploy.yaml", "image: web:v2\nreplicas: 2\n");
    let bad = work.commit("web v2");
    let forger = work.commit_allow_empty(&claiming("revertbot: revert web", "web", &[&bad]));
    let repo = InfraRepo::open(&work.path()).unwrap();
    let web = globs(&["apps/web/**"]);
    assert_eq!(
        culprit_shas(&repo, &bad, &lkg, &forger, &scope("web", &web)),
        vec![bad.clone()]
    );
    let search = repo
        .find_culprits(&sha(&bad), &sha(&lkg), &sha(&forger), &scope("web", &web))
        .unwrap();
    assert_eq!(search.forged_reverts[0].reason, "it changes no file");
}
