//! Verifying revert claims: a commit counts as revertbot's revert only when
//! its content is the revert its trailers describe. Genuine reverts here are
//! made by revertbot's own builder and commit-message template; "forged"
//! ones carry the same trailers on other content.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use proptest::prelude::*;
use revertbot::domain::CommitSha;
use revertbot::git::revert::{BuiltRevert, RevertSpec, Scope};
use revertbot::git::{AppPaths, AppScope, GitError, InfraRepo, Verification};
use revertbot::manifest::PinRules;
use revertbot::render::{CommitMessage, CulpritLine, Renderer};
use support::WorkRepo;

const WEB: &str = "web";

fn web_paths() -> AppPaths {
    AppPaths::compile(&["apps/web/**"]).unwrap()
}

fn sha(s: &str) -> CommitSha {
    s.parse().unwrap()
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// The digest web:v1 ran at while healthy, as a ledger record would pin it.
fn web_v1_pin() -> String {
    format!("ghcr.io/acme/web:v1@{}", digest('a'))
}

/// An image the record names that no manifest of the app uses.
fn unused_pin() -> String {
    format!("ghcr.io/acme/sidecar:v4@{}", digest('b'))
}

fn deployment(tag: &str, replicas: u8) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/acme/{tag}\n"
    )
}

struct App {
    paths: AppPaths,
    rules: PinRules,
}

impl App {
    fn web() -> App {
        App {
            paths: web_paths(),
            rules: PinRules::default(),
        }
    }

    fn scope(&self) -> AppScope<'_> {
        AppScope {
            name: WEB,
            paths: &self.paths,
            pin_rules: &self.rules,
        }
    }
}

/// What `revertbot revert` does, without the push: builds the revert of
/// `culprits` on `tip`, pins `record` (the LKG images), and writes the
/// commit with the built-in message template. `Ok(None)` when the revert
/// would change nothing.
fn bot_revert(
    repo: &InfraRepo,
    app: &App,
    tip: &str,
    culprits: &[CommitSha],
    lkg: &str,
    scope: Scope,
    record: &[String],
) -> Result<Option<(String, BuiltRevert)>, GitError> {
    let targets: Vec<_> = record.iter().map(|p| p.parse().unwrap()).collect();
    let built = repo.build_revert(&RevertSpec {
        base: &sha(tip),
        culprits,
        last_known_good: Some(&sha(lkg)),
        scope,
        paths: &app.paths,
        pins: &targets,
        pin_rules: &app.rules,
        allow_outside_paths: false,
    })?;
    if built.is_empty() {
        return Ok(None);
    }
    let applied: Vec<String> = record
        .iter()
        .filter(|p| built.pins.covers(p.rsplit_once('@').unwrap().1))
        .cloned()
        .collect();
    let message = CommitMessage {
        app: WEB.to_owned(),
        incident: format!("{WEB}-{}", &culprits[0].as_str()[..12]),
        lkg: Some(lkg.to_owned()),
        lkg_short: Some(lkg[..12].to_owned()),
        culprits: culprits
            .iter()
            .map(|c| CulpritLine::new(c, "a culprit"))
            .collect(),
        pins: applied,
        suspended_markers: Vec::new(),
        reason: None,
        scope: match scope {
            Scope::App => "app".to_owned(),
            Scope::Commits => "commits".to_owned(),
            Scope::Paths => "paths".to_owned(),
        },
        approved_by: None,
        forced_guards: Vec::new(),
        left_alone: Vec::new(),
        left_alone_more: 0,
    }
    .render(&Renderer::new(None).unwrap())
    .unwrap();
    let commit = repo.commit_revert(&sha(tip), built.tree, &message)?;
    Ok(Some((commit.to_string(), built)))
}

/// Commits the tree of `like` plus whatever `edit` writes on top of the
/// current HEAD, with `like`'s message: same trailers, other content.
fn forge_from(work: &WorkRepo, like: &str, edit: impl FnOnce(&WorkRepo)) -> String {
    work.git(&["read-tree", "-u", "--reset", like]);
    edit(work);
    let message = work.git(&["log", "-1", "--format=%B", like]);
    work.commit_allow_empty(&message)
}

fn is_verified(v: &Verification) -> bool {
    matches!(v, Verification::Verified(_))
}

fn forged_reason(v: Verification) -> String {
    match v {
        Verification::Forged { reason } => reason,
        other => panic!("expected a forged claim, got {other:?}"),
    }
}

/// web at v1 (recorded healthy), a config file, and api.
fn base(work: &WorkRepo) -> String {
    work.write("apps/web/deploy.yaml", deployment("web:v1", 2));
    work.write("apps/web/config.yaml", "flag: off\n");
    work.write("apps/api/deploy.yaml", deployment("api:v1", 1));
    work.commit("initial")
}

#[test]
fn a_three_way_revert_that_keeps_later_edits_verifies_and_undoing_more_does_not() {
    let work = WorkRepo::init();
    let lkg = base(&work);
    work.write("apps/web/deploy.yaml", deployment("web:v2", 2));
    let bad = work.commit("web v2");
    // After the deploy, before the revert: an unrelated edit in the app.
    work.write("apps/web/config.yaml", "flag: on\n");
    let tip = work.commit("web: flag on (not deployed yet)");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let app = App::web();
    let (revert, _) = bot_revert(
        &repo,
        &app,
        &tip,
        &[sha(&bad)],
        &lkg,
        Scope::Commits,
        &[web_v1_pin(), unused_pin()],
    )
    .unwrap()
    .unwrap();
    // The app's files after the revert are not the pre-culprit ones: the
    // later edit stays. Still revertbot's revert.
    assert_eq!(
        work.show_file(&revert, "apps/web/config.yaml").unwrap(),
        b"flag: on\n"
    );
    let v = repo.verify_revert(&sha(&revert), &app.scope()).unwrap();
    match &v {
        Verification::Verified(r) => assert_eq!(r.culprits, vec![sha(&bad)]),
        other => panic!("a genuine revert did not verify: {other:?}"),
    }
    let search = repo
        .find_culprits(&sha(&bad), &sha(&lkg), &sha(&revert), &app.scope())
        .unwrap();
    assert!(search.culprits.is_empty(), "{search:?}");
    assert_eq!(search.already_reverted[0].by, sha(&revert));
    assert!(search.forged_reverts.is_empty());

    // The same trailers on a commit that also undoes the later edit (back
    // to the pre-culprit state, here the LKG): that is exactly what a
    // `scope: paths` revert to the recorded LKG builds, so it verifies...
    let to_lkg = forge_from(&work, &revert, |w| {
        w.write("apps/web/config.yaml", "flag: off\n");
    });
    assert!(is_verified(
        &repo.verify_revert(&sha(&to_lkg), &app.scope()).unwrap()
    ));
    // ...but without a Last-Known-Good to restore, it undoes more than the
    // culprit it names: not verified.
    let message = work
        .git(&["log", "-1", "--format=%B", &to_lkg])
        .lines()
        .filter(|l| !l.starts_with("Revertbot-Last-Known-Good:"))
        .collect::<Vec<_>>()
        .join("\n");
    let tree = work.rev_parse(&format!("{to_lkg}^{{tree}}"));
    let more = work.git(&["commit-tree", &tree, "-p", &tip, "-m", &message]);
    let repo = InfraRepo::open(&work.path()).unwrap();
    let reason = forged_reason(repo.verify_revert(&sha(&more), &app.scope()).unwrap());
    assert!(reason.contains("not what reverting"), "{reason}");
}

#[test]
fn a_revert_of_a_merge_verifies() {
    let work = WorkRepo::init();
    let lkg = base(&work);
    work.checkout_new("feature");
    work.write("apps/web/deploy.yaml", deployment("web:v2", 2));
    work.commit("feature: web v2");
    work.checkout("main");
    work.write("apps/api/deploy.yaml", deployment("api:v2", 1));
    work.commit("api v2 on main");
    let merge = work.merge_no_ff("feature", "Merge feature");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let app = App::web();
    let (revert, _) = bot_revert(
        &repo,
        &app,
        &merge,
        &[sha(&merge)],
        &lkg,
        Scope::Commits,
        &[web_v1_pin()],
    )
    .unwrap()
    .unwrap();
    assert!(is_verified(
        &repo.verify_revert(&sha(&revert), &app.scope()).unwrap()
    ));
}

#[test]
fn later_edits_after_a_genuine_revert_do_not_undo_its_verification() {
    let work = WorkRepo::init();
    let lkg = base(&work);
    work.write("apps/web/deploy.yaml", deployment("web:v2", 2));
    let bad = work.commit("web v2");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let app = App::web();
    let (revert, _) = bot_revert(&repo, &app, &bad, &[sha(&bad)], &lkg, Scope::Commits, &[])
        .unwrap()
        .unwrap();
    work.git(&["reset", "-q", "--hard", &revert]);
    work.write("apps/web/deploy.yaml", deployment("web:v3", 2));
    let v3 = work.commit("web v3");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let search = repo
        .find_culprits(&sha(&v3), &sha(&lkg), &sha(&v3), &app.scope())
        .unwrap();
    let culprits: Vec<&CommitSha> = search.culprits.iter().map(|c| &c.sha).collect();
    assert_eq!(culprits, vec![&sha(&v3)]);
    assert_eq!(search.own_reverts, vec![sha(&revert)]);
    assert_eq!(search.already_reverted[0].culprit, sha(&bad));
}

#[test]
fn a_paths_revert_with_pins_verifies_and_tampered_pins_do_not() {
    let work = WorkRepo::init();
    let lkg = base(&work);
    work.write("apps/web/deploy.yaml", deployment("web:v2", 3));
    let bad = work.commit("web v2");
    work.write("apps/web/extra.yaml", "added: true\n");
    let bad2 = work.commit("web extra");
    let repo = InfraRepo::open(&work.path()).unwrap();
    let app = App::web();
    let culprits = [sha(&bad2), sha(&bad)];
    let (revert, built) = bot_revert(
        &repo,
        &app,
        &bad2,
        &culprits,
        &lkg,
        Scope::Paths,
        &[web_v1_pin()],
    )
    .unwrap()
    .unwrap();
    assert_eq!(built.pins.applied.len(), 1, "the pin applies");
    assert!(is_verified(
        &repo.verify_revert(&sha(&revert), &app.scope()).unwrap()
    ));

    // The file pinned to another digest than the trailer records.
    let other_digest = forge_from(&work, &revert, |w| {
        w.write(
            "apps/web/deploy.yaml",
            deployment(&format!("web:v1@{}", digest('c')), 2),
        );
    });
    assert!(!is_verified(
        &repo
            .verify_revert(&sha(&other_digest), &app.scope())
            .unwrap()
    ));
    // The right content, but a pin trailer the content does not carry.
    let message = work.git(&["log", "-1", "--format=%B", &revert]).replace(
        &web_v1_pin(),
        &format!("ghcr.io/acme/web:v1@{}", digest('d')),
    );
    let tree = work.rev_parse(&format!("{revert}^{{tree}}"));
    let lying = work.git(&["commit-tree", &tree, "-p", &bad2, "-m", &message]);
    let repo = InfraRepo::open(&work.path()).unwrap();
    assert!(!is_verified(
        &repo.verify_revert(&sha(&lying), &app.scope()).unwrap()
    ));
}

#[test]
fn claims_naming_commits_that_cannot_be_the_culprits_are_forged() {
    let work = WorkRepo::init();
    let lkg = base(&work);
    work.checkout_new("side");
    work.write("apps/web/deploy.yaml", deployment("web:v9", 2));
    let side = work.commit("web v9 on a side branch");
    work.checkout("main");
    work.write("apps/web/deploy.yaml", deployment("web:v2", 2));
    let bad = work.commit("web v2");
    let claim =
        |culprit: &str| format!("revert\n\nRevertbot-App: web\nRevertbot-Reverts: {culprit}\n");
    work.write("apps/web/deploy.yaml", deployment("web:v1", 2));
    let not_ancestor = work.commit(&claim(&side));
    let missing = "e".repeat(40);
    work.write("apps/web/deploy.yaml", deployment("web:v2", 2));
    let unknown = work.commit(&claim(&missing));
    let repo = InfraRepo::open(&work.path()).unwrap();
    let app = App::web();
    let reason = forged_reason(
        repo.verify_revert(&sha(&not_ancestor), &app.scope())
            .unwrap(),
    );
    assert!(reason.contains("not an ancestor"), "{reason}");
    let reason = forged_reason(repo.verify_revert(&sha(&unknown), &app.scope()).unwrap());
    assert!(reason.contains("not in the fetched history"), "{reason}");
    // Commits without a claim for web are no claim at all.
    assert_eq!(
        repo.verify_revert(&sha(&bad), &app.scope()).unwrap(),
        Verification::NoClaim
    );
    let _ = lkg;
}

/// One commit of a random history.
#[derive(Debug, Clone)]
enum Edit {
    WebTag(u8),
    WebReplicas(u8),
    Extra(Option<u8>),
    Config(u8),
    Api(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (1u8..4).prop_map(Edit::WebTag),
        (1u8..5).prop_map(Edit::WebReplicas),
        proptest::option::of(0u8..3).prop_map(Edit::Extra),
        (0u8..3).prop_map(Edit::Config),
        (0u8..3).prop_map(Edit::Api),
    ]
}

/// The web Deployment is rewritten from these, so edits compose.
struct WebState {
    tag: u8,
    replicas: u8,
}

fn apply(work: &WorkRepo, state: &mut WebState, e: &Edit) {
    match e {
        Edit::WebTag(t) => state.tag = *t,
        Edit::WebReplicas(r) => state.replicas = *r,
        Edit::Extra(Some(n)) => work.write("apps/web/extra.yaml", format!("n: {n}\n")),
        Edit::Extra(None) => {
            let _ = std::fs::remove_file(work.path().join("apps/web/extra.yaml"));
        }
        Edit::Config(n) => work.write("apps/web/config.yaml", format!("flag: {n}\n")),
        Edit::Api(n) => work.write("apps/api/deploy.yaml", deployment(&format!("api:v{n}"), 1)),
    }
    if matches!(e, Edit::WebTag(_) | Edit::WebReplicas(_)) {
        work.write(
            "apps/web/deploy.yaml",
            deployment(&format!("web:v{}", state.tag), state.replicas),
        );
    }
}

fn scope_of(paths: bool) -> Scope {
    if paths { Scope::Paths } else { Scope::Commits }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A revert made by revertbot's builder always verifies; the same
    /// trailers on any other content (an edit in the app, or another app,
    /// on top of it) never do, unless that content is itself what the
    /// builder makes for those trailers.
    #[test]
    fn genuine_reverts_verify_and_other_changes_with_their_trailers_do_not(
        history in proptest::collection::vec(edit(), 1..6),
        after_deploy in proptest::collection::vec(edit(), 0..3),
        paths_scope in any::<bool>(),
        pin in any::<bool>(),
        tamper in edit(),
    ) {
        let work = WorkRepo::init();
        let lkg = base(&work);
        let mut state = WebState { tag: 1, replicas: 2 };
        for (i, e) in history.iter().enumerate() {
            apply(&work, &mut state, e);
            work.commit_allow_empty(&format!("change {i}: {e:?}"));
        }
        let deployed = work.rev_parse("HEAD");
        for (i, e) in after_deploy.iter().enumerate() {
            apply(&work, &mut state, e);
            work.commit_allow_empty(&format!("later {i}: {e:?}"));
        }
        let tip = work.rev_parse("HEAD");
        let repo = InfraRepo::open(&work.path()).unwrap();
        let app = App::web();
        let search = repo
            .find_culprits(&sha(&deployed), &sha(&lkg), &sha(&tip), &app.scope())
            .unwrap();
        let culprits: Vec<CommitSha> = search.culprits.iter().map(|c| c.sha.clone()).collect();
        prop_assume!(!culprits.is_empty());
        let record = if pin { vec![web_v1_pin(), unused_pin()] } else { Vec::new() };
        let built = bot_revert(&repo, &app, &tip, &culprits, &lkg, scope_of(paths_scope), &record);
        // A conflict or a no-op: revertbot pushes nothing, nothing to verify.
        let Ok(Some((revert, _))) = built else { return Err(TestCaseError::reject("no revert")) };

        match repo.verify_revert(&sha(&revert), &app.scope()).unwrap() {
            Verification::Verified(r) => prop_assert_eq!(&r.culprits, &culprits),
            other => prop_assert!(false, "a genuine revert did not verify: {:?}", other),
        }
        let after = repo
            .find_culprits(&sha(&deployed), &sha(&lkg), &sha(&revert), &app.scope())
            .unwrap();
        prop_assert!(after.culprits.is_empty(), "{:?}", after);
        prop_assert!(after.forged_reverts.is_empty(), "{:?}", after);

        // Every tree the builder makes for these trailers on this parent.
        let genuine_trees: Vec<String> = [Scope::Commits, Scope::Paths]
            .into_iter()
            .filter_map(|s| bot_revert(&repo, &app, &tip, &culprits, &lkg, s, &record).ok().flatten())
            .map(|(c, _)| work.rev_parse(&format!("{c}^{{tree}}")))
            .collect();
        work.git(&["reset", "-q", "--hard", &tip]);
        let fallback = WebState { tag: state.tag, replicas: state.replicas };
        let forger = forge_from(&work, &revert, |w| {
            // Start from the revert's own deploy.yaml so a web edit changes
            // the revert's content, not the tip's.
            let mut s = parse_web(&w.path().join("apps/web/deploy.yaml")).unwrap_or(fallback);
            apply(w, &mut s, &tamper);
        });
        let forged_tree = work.rev_parse(&format!("{forger}^{{tree}}"));
        prop_assume!(!genuine_trees.contains(&forged_tree));
        let repo = InfraRepo::open(&work.path()).unwrap();
        let v = repo.verify_revert(&sha(&forger), &app.scope()).unwrap();
        prop_assert!(matches!(v, Verification::Forged { .. }), "{:?}", v);
    }
}

/// Tag and replicas of a web Deployment written by [`deployment`], when it
/// is one (a pinned image has a digest after the tag).
fn parse_web(path: &std::path::Path) -> Option<WebState> {
    let text = std::fs::read_to_string(path).ok()?;
    let replicas = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("replicas: "))?
        .parse()
        .ok()?;
    let image = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: ghcr.io/acme/web:v"))?;
    let tag = image.split('@').next()?.parse().ok()?;
    Some(WebState { tag, replicas })
}
