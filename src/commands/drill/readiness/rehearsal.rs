//! The checks only the rehearsal can answer: were the digests recorded, was
//! the revert clean, did the controller confirm Healthy.

use crate::manifest::SiteKind;

use super::{CheckResult, FileFacts, Finding, Level, fail, pass, plural, short, skipped};

/// How the rehearsal went, as the readiness verdict needs it.
#[derive(Debug, Default)]
pub struct LoopFacts {
    /// The loop did not run (the drill could not build a bad release).
    pub not_run: Option<String>,
    pub failure: Option<String>,
    /// Images the last-known-good recorded with a digest.
    pub recorded_images: Vec<String>,
    pub revert_commit: Option<String>,
    pub healthy: bool,
    /// The revert pinned at least one digest.
    pub pinned: bool,
}

/// Checks from the rehearsal.
pub fn assess_loop(lp: &LoopFacts, files: &[FileFacts]) -> (Vec<CheckResult>, Vec<Finding>) {
    let mut findings = Vec::new();
    if let Some(why) = &lp.not_run {
        let checks = ["digests_recorded", "revert_clean", "healthy_confirmed"]
            .into_iter()
            .map(|n| skipped(n, why))
            .collect();
        return (checks, findings);
    }
    let located: Vec<String> = {
        let mut names: Vec<String> = files
            .iter()
            .flat_map(|f| &f.sites)
            .filter(|s| !matches!(s.kind, SiteKind::KustomizeImage { tag_set: false, .. }))
            .map(|s| s.reference.normalized_name())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let missing: Vec<&String> = located
        .iter()
        .filter(|n| !lp.recorded_images.iter().any(|r| r == *n))
        .collect();
    let mut checks = Vec::new();
    checks.push(if lp.recorded_images.is_empty() {
        fail("digests_recorded", "the last-known-good carries no image digest")
    } else if missing.is_empty() {
        pass(
            "digests_recorded",
            format!(
                "{} recorded with digests",
                plural(lp.recorded_images.len(), "image", "images")
            ),
        )
    } else {
        for m in &missing {
            findings.push(Finding {
                level: Level::Warning,
                at: (*m).clone(),
                problem: "located in the manifests but no running pod reported its digest: it is not pinned on revert".to_owned(),
                fix: "check the image name matches what the pods run (registry host, path)".to_owned(),
            });
        }
        pass(
            "digests_recorded",
            format!("{} images recorded; {} located but not running", lp.recorded_images.len(), missing.len()),
        )
    });
    checks.push(match (&lp.revert_commit, &lp.failure) {
        (Some(c), _) if lp.pinned => pass(
            "revert_clean",
            format!("revert {} pushed with digests pinned", short(c)),
        ),
        (Some(c), _) => fail(
            "revert_clean",
            format!("revert {} pushed, but no digest was pinned", short(c)),
        ),
        (None, Some(why)) => fail("revert_clean", why.clone()),
        (None, None) => fail("revert_clean", "no revert was pushed"),
    });
    checks.push(if lp.healthy {
        pass(
            "healthy_confirmed",
            "the controller reported Synced + Healthy at the revert",
        )
    } else if lp.revert_commit.is_some() {
        fail(
            "healthy_confirmed",
            "the revert did not reach Healthy within the wait",
        )
    } else {
        skipped("healthy_confirmed", "no revert to confirm")
    });
    (checks, findings)
}
