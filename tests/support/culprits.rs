//! The culprit search on real git histories: the sample two-app repo and
//! short ways to call [`InfraRepo::find_culprits`].

use revertbot::domain::CommitSha;
use revertbot::git::{AppPaths, AppScope, InfraRepo};
use revertbot::manifest::PinRules;

use super::WorkRepo;

pub fn globs(patterns: &[&str]) -> AppPaths {
    AppPaths::compile(patterns).unwrap()
}

/// The app as the search sees it (no Helm pin rules).
pub fn scope<'a>(name: &'a str, paths: &'a AppPaths) -> AppScope<'a> {
    static NO_RULES: std::sync::LazyLock<PinRules> = std::sync::LazyLock::new(PinRules::default);
    AppScope {
        name,
        paths,
        pin_rules: &NO_RULES,
    }
}

pub fn sha(s: &str) -> CommitSha {
    s.parse().unwrap()
}

/// The culprits' shas, newest first, as the search reports them.
pub fn culprit_shas(
    repo: &InfraRepo,
    deployed: &str,
    lkg: &str,
    tip: &str,
    app: &AppScope<'_>,
) -> Vec<String> {
    repo.find_culprits(&sha(deployed), &sha(lkg), &sha(tip), app)
        .unwrap()
        .culprits
        .iter()
        .map(|c| c.sha.to_string())
        .collect()
}

/// Two apps (web, api) and a README in one commit, returned as the
/// last-known-good.
pub fn base_repo() -> (WorkRepo, String) {
    let work = WorkRepo::init();
    work.write("apps/web/deploy.yaml", "image: web:v1\nreplicas: 2\n");
    work.write("apps/api/deploy.yaml", "image: api:v1\n");
    work.write("README.md", "infra\n");
    let lkg = work.commit("initial: web v1, api v1");
    (work, lkg)
}
