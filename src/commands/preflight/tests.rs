#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashMap;

use proptest::prelude::*;

use super::assess::*;
use super::gather::Change;
use super::inspect::{self, FileScan, Problem, SiteFacts};
use super::resolve::Resolution;
use super::{ReportHead, report};
use crate::config::{FailOn, RevertScope};
use crate::domain::ledger::RecordedImage;
use crate::domain::{CommitSha, Digest};
use crate::manifest::PinRules;
use crate::policy::Quarantined;

fn digest(byte: &str) -> Digest {
    format!("sha256:{}", byte.repeat(32)).parse().unwrap()
}

fn site(reference: &str) -> SiteFacts {
    SiteFacts {
        line: 7,
        reference: reference.parse().unwrap(),
        unpinnable: None,
    }
}

fn recorded(image: &str, d: &Digest) -> RecordedImage {
    RecordedImage {
        image: image.to_owned(),
        digest: d.clone(),
    }
}

fn quarantined(app: &str, d: &Digest) -> (String, Quarantined) {
    (
        app.to_owned(),
        Quarantined {
            digest: d.clone(),
            image: format!("ghcr.io/acme/web:v3@{d}"),
            incident: format!("{app}-0123456789ab"),
        },
    )
}

fn sha(c: char) -> CommitSha {
    c.to_string().repeat(40).parse().unwrap()
}

#[test]
fn a_recorded_tag_at_its_recorded_digest_is_fine() {
    let d = digest("aa");
    let f = image_finding(
        &site("ghcr.io/acme/web:v1"),
        "web",
        Some(&Resolution::Resolved(d.clone())),
        &[recorded("ghcr.io/acme/web:v1", &d)],
        &[],
    );
    assert_eq!(f, None);
}

#[test]
fn an_unrecorded_tag_says_its_digest_and_the_pinned_form() {
    let d = digest("aa");
    let f = image_finding(
        &site("ghcr.io/acme/web:v1"),
        "web",
        Some(&Resolution::Resolved(d.clone())),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(
        (f.severity, f.check),
        (Severity::Warning, Check::MutableTag)
    );
    assert!(
        f.message.contains(&format!("`ghcr.io/acme/web:v1@{d}`")),
        "{}",
        f.message
    );
}

#[test]
fn a_re_pointed_tag_names_both_digests() {
    let (old, new) = (digest("aa"), digest("bb"));
    let f = image_finding(
        &site("ghcr.io/acme/web:v1"),
        "web",
        Some(&Resolution::Resolved(new.clone())),
        &[recorded("ghcr.io/acme/web:v1", &old)],
        &[],
    )
    .unwrap();
    assert_eq!(f.check, Check::TagMoved);
    assert!(f.message.contains(old.as_str()) && f.message.contains(new.as_str()));
}

#[test]
fn a_tag_resolving_to_a_quarantined_digest_is_a_re_promotion() {
    let (good, bad) = (digest("aa"), digest("bd"));
    let f = image_finding(
        &site("ghcr.io/acme/web:v1"),
        "web",
        Some(&Resolution::Resolved(bad.clone())),
        &[recorded("ghcr.io/acme/web:v1", &good)],
        &[quarantined("web", &bad)],
    )
    .unwrap();
    assert_eq!((f.severity, f.check), (Severity::Error, Check::Repromotion));
    assert!(
        f.message.contains("incident web-0123456789ab"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains(&format!("ghcr.io/acme/web:v1@{good}")),
        "{}",
        f.message
    );
}

#[test]
fn another_apps_quarantine_is_a_warning() {
    let bad = digest("bd");
    let f = image_finding(
        &site(&format!("ghcr.io/acme/web:v3@{bad}")),
        "web",
        None,
        &[],
        &[quarantined("billing", &bad)],
    )
    .unwrap();
    assert_eq!(
        (f.severity, f.check),
        (Severity::Warning, Check::Repromotion)
    );
    assert!(f.message.contains("app `billing`"), "{}", f.message);
}

#[test]
fn a_registry_that_cannot_answer_is_a_finding_never_a_pass() {
    let r = Resolution::Unavailable("127.0.0.1:1 is unreachable".to_owned());
    let f = image_finding(&site("ghcr.io/acme/web:v1"), "web", Some(&r), &[], &[]).unwrap();
    assert_eq!(
        (f.severity, f.check),
        (Severity::Error, Check::UnresolvedTag)
    );
    assert!(f.message.contains("cannot be resolved"), "{}", f.message);
    assert!(f.message.contains("127.0.0.1:1 is unreachable"));
    // With a recorded digest the pin can still be written: a warning.
    let d = digest("aa");
    let f = image_finding(
        &site("ghcr.io/acme/web:v1"),
        "web",
        Some(&r),
        &[recorded("ghcr.io/acme/web:v1", &d)],
        &[],
    )
    .unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains(&format!("ghcr.io/acme/web:v1@{d}")));
}

#[test]
fn a_missing_tag_is_an_error() {
    let r = Resolution::NotFound("no such tag".to_owned());
    let f = image_finding(&site("ghcr.io/acme/web:v9"), "web", Some(&r), &[], &[]).unwrap();
    assert_eq!((f.severity, f.check), (Severity::Error, Check::MissingTag));
}

#[test]
fn ownership_exempts_revertbots_own_files() {
    let file = |path: &str, owners: &[&str]| ChangedFile {
        path: path.to_owned(),
        change: Change::Modified,
        owners: owners.iter().map(|s| (*s).to_owned()).collect(),
    };
    let exempt = vec![".revertbot.yaml".to_owned(), ".github/".to_owned()];
    let found = ownership(
        &[
            file(".revertbot.yaml", &[]),
            file(".github/workflows/ci.yaml", &[]),
            file("shared/values.yaml", &[]),
            file("apps/web/a.yaml", &["web"]),
            file("apps/common.yaml", &["web", "api"]),
        ],
        &exempt,
    );
    let got: Vec<(Check, Option<&str>)> =
        found.iter().map(|f| (f.check, f.file.as_deref())).collect();
    assert_eq!(
        got,
        [
            (Check::UnownedFile, Some("shared/values.yaml")),
            (Check::SharedFile, Some("apps/common.yaml")),
        ]
    );
}

fn app(name: &str, scope: RevertScope) -> AppFacts {
    AppFacts {
        name: name.to_owned(),
        scope,
        allow_outside: false,
    }
}

fn commit(files: &[(&str, &[&str])]) -> CommitFacts {
    CommitFacts {
        sha: sha('c'),
        subject: "bump".to_owned(),
        files: files
            .iter()
            .map(|(p, o)| ((*p).to_owned(), o.iter().map(|s| (*s).to_owned()).collect()))
            .collect(),
    }
}

#[test]
fn a_commit_spanning_apps_warns_each_app_and_errs_for_scope_commits() {
    let apps = [
        app("web", RevertScope::App),
        app("api", RevertScope::Commits),
    ];
    let c = commit(&[("apps/web/d.yaml", &["web"]), ("apps/api/d.yaml", &["api"])]);
    let found = cross_app(&c, &apps, &[]);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!(found[0].file.as_deref(), Some("apps/web/d.yaml"));
    assert!(
        found[0].message.contains("apps/api/d.yaml"),
        "{}",
        found[0].message
    );
    assert_eq!(found[1].severity, Severity::Error);
    assert!(found[1].message.contains("would be refused"));
    assert_eq!(found[1].commit.as_deref(), Some(sha('c').as_str()));
}

#[test]
fn a_commit_within_one_app_or_with_exempt_files_is_fine() {
    let apps = [app("web", RevertScope::App)];
    let exempt = vec![".revertbot.yaml".to_owned()];
    assert!(
        cross_app(
            &commit(&[("apps/web/a.yaml", &["web"]), ("apps/web/b.yaml", &["web"])]),
            &apps,
            &exempt
        )
        .is_empty()
    );
    assert!(
        cross_app(
            &commit(&[("apps/web/a.yaml", &["web"]), (".revertbot.yaml", &[])]),
            &apps,
            &exempt
        )
        .is_empty()
    );
    let mixed = cross_app(
        &commit(&[("apps/web/a.yaml", &["web"]), ("README.md", &[])]),
        &apps,
        &exempt,
    );
    assert_eq!(mixed.len(), 1);
    assert!(mixed[0].message.contains("files no app owns"));
}

#[test]
fn a_bound_hit_is_an_error_finding() {
    let found = limits(&LimitFacts {
        changed_total: 2500,
        changed_checked: 2000,
        commits_total: 3,
        commits_checked: 3,
        over_budget: vec!["big.yaml".to_owned()],
        budget_bytes: 64 * 1024 * 1024,
    });
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|f| f.severity == Severity::Error));
    assert!(found[0].message.contains("2500 files"));
    assert_eq!(found[1].file.as_deref(), Some("big.yaml"));
}

#[test]
fn only_what_the_pr_introduces_is_inspected() {
    let base = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          image: ghcr.io/acme/a:v1\n";
    let head = format!(
        "{base}        - name: b\n          image: ghcr.io/acme/b:v2\n        - name: c\n          image: \"${{IMAGE}}\"\n"
    );
    let scan = inspect::inspect_change("d.yaml", "web", Some(base), &head, &PinRules::default());
    let refs: Vec<String> = scan.sites.iter().map(|s| s.reference.to_string()).collect();
    assert_eq!(refs, ["ghcr.io/acme/b:v2"]);
    assert_eq!(scan.sites[0].line, 10);
    assert_eq!(scan.templated.len(), 1);
    assert_eq!(scan.templated[0].line, 12);
    // A new file: everything is introduced.
    let scan = inspect::inspect_change("d.yaml", "web", None, &head, &PinRules::default());
    assert_eq!(scan.sites.len(), 2);
}

#[test]
fn a_reference_the_grammar_rejects_is_a_problem_with_its_line() {
    let head =
        "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: \"Ghcr.io/UPPER:v1:v2\"\n";
    let scan = inspect::inspect_change("p.yaml", "web", None, head, &PinRules::default());
    match scan.problem {
        Some(Problem::InvalidReference { line, .. }) => assert_eq!(line, 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn split_helm_values_without_a_rule_are_reported() {
    let head = "image:\n  repository: ghcr.io/acme/web\n  tag: \"1.2.3\"\n";
    let scan =
        inspect::inspect_change("chart/values.yaml", "web", None, head, &PinRules::default());
    assert_eq!(scan.split.len(), 1);
    let found = file_findings(&scan, &[], &[], &HashMap::new());
    assert_eq!(found[0].check, Check::SplitImage);
    assert_eq!(found[0].line, Some(2));
    assert!(
        found[0]
            .message
            .contains("repository: image.repository, tag: image.tag")
    );
}

fn head() -> ReportHead {
    ReportHead {
        base: sha('a'),
        head: sha('b'),
        merge_base: sha('a'),
        fail_on: FailOn::Error,
        apps: vec!["web".to_owned()],
        files_changed: 1,
        commits_checked: 1,
        warnings: Vec::new(),
    }
}

fn warning(message: &str) -> Finding {
    let scan = FileScan {
        path: "apps/web/d.yaml".to_owned(),
        app: "web".to_owned(),
        sites: Vec::new(),
        templated: vec![crate::manifest::TemplatedSite {
            line: 3,
            column: 1,
            text: message.to_owned(),
        }],
        split: Vec::new(),
        problem: None,
    };
    file_findings(&scan, &[], &[], &HashMap::new()).remove(0)
}

#[test]
fn render_neutralises_crafted_text() {
    let crafted = "x\n::error::owned | [link](http://x) <b>";
    let mut f = warning(crafted);
    f.file = Some("apps/web/ü\n::error file=a::b,c.yaml".to_owned());
    let r = report(head(), vec![f]);
    for line in r.annotations() {
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.starts_with(
                "::warning file=apps/web/ü%0A%3A%3Aerror file=a%3A%3Ab%2Cc.yaml,line=3,"
            ),
            "{line}"
        );
    }
    let text = r.to_text();
    assert!(!text.contains("\n::error"), "{text}");
    let md = r.summary_markdown();
    let row = md.lines().find(|l| l.starts_with("| warning")).unwrap();
    assert_eq!(row.matches(" | ").count(), 4, "{row}");
    assert!(
        row.contains("\\[link\\]") && row.contains("\\<b\\>"),
        "{row}"
    );
}

proptest! {
    /// Whatever the ledger and the registry say, a digest the app's own
    /// incident quarantined is an error, and a tag without a digest is
    /// never passed silently unless its current digest is recorded.
    #[test]
    fn repromotion_and_silence_rules(
        pinned in any::<bool>(),
        resolved in 0u8..4,
        recorded_same in any::<bool>(),
        quarantined_own in any::<bool>(),
        quarantined_other in any::<bool>(),
    ) {
        let d = digest("5e");
        let reference = if pinned { format!("ghcr.io/acme/web:v1@{d}") } else { "ghcr.io/acme/web:v1".to_owned() };
        let resolution = match resolved {
            0 => None,
            1 => Some(Resolution::Resolved(d.clone())),
            2 => Some(Resolution::NotFound("gone".into())),
            _ => Some(Resolution::Unavailable("down".into())),
        };
        let rec = if recorded_same { vec![recorded("ghcr.io/acme/web:v1", &d)] } else { Vec::new() };
        let mut q = Vec::new();
        if quarantined_own { q.push(quarantined("web", &d)); }
        if quarantined_other { q.push(quarantined("api", &d)); }
        let f = image_finding(&site(&reference), "web", resolution.as_ref(), &rec, &q);
        let digest_known = pinned || resolved == 1;
        if digest_known && quarantined_own {
            let f = f.clone().unwrap();
            prop_assert_eq!((f.severity, f.check), (Severity::Error, Check::Repromotion));
        }
        if !pinned && resolved != 1 {
            prop_assert!(f.is_some());
        }
        if f.is_none() {
            prop_assert!(pinned || (resolved == 1 && recorded_same));
            prop_assert!(!(digest_known && (quarantined_own || quarantined_other)));
        }
    }

    /// The check fails exactly when a finding is at or above fail-on.
    #[test]
    fn passes_is_the_threshold(severities in proptest::collection::vec(any::<bool>(), 0..6), on_warning in any::<bool>()) {
        let findings: Vec<Finding> = severities.iter().map(|e| {
            let mut f = warning("t");
            if *e { f.severity = Severity::Error; }
            f
        }).collect();
        let fail_on = if on_warning { FailOn::Warning } else { FailOn::Error };
        let any_error = severities.iter().any(|e| *e);
        let expected = if on_warning { findings.is_empty() } else { !any_error };
        prop_assert_eq!(passes(&findings, fail_on), expected);
        prop_assert_eq!(report(ReportHead { fail_on, ..head() }, findings).exit_code() == 0, expected);
    }
}
