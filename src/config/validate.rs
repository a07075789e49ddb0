//! Checks across apps and sections: unique app names, overlapping paths, and
//! features that need a section configured elsewhere.
//!
//! These run on the YAML tree rather than the typed config, so they still
//! report when some unrelated value is invalid (every problem in one run).
//! Values that are malformed are skipped here: the decoder reports them.

use super::decode::{Decoder, Path};
use super::globs::{check_glob, globs_may_overlap, literal_prefix_key};
use crate::yaml::{Node, Span};

pub(crate) fn cross_check(d: &mut Decoder<'_>, root: &Node) {
    urls_without_credentials(d, root);
    let Some(apps) = root.get("apps").and_then(Node::as_seq) else {
        return;
    };
    unique_names(d, apps);
    overlapping_paths(d, apps);
    slos_need_prometheus(d, root, apps);
    slack_approvals_need_channel(d, root);
    super::unused::not_acted_on(d, root);
}

/// URL-valued keys and what to do instead of credentials in the URL.
const URL_KEYS: &[(&str, &str)] = &[
    ("repo.remote", "put the token in GITHUB_TOKEN instead"),
    (
        "argocd.server",
        "put the token in ARGOCD_AUTH_TOKEN instead",
    ),
    (
        "prometheus.url",
        "revertbot sends no credentials to Prometheus",
    ),
    (
        "alertmanager.url",
        "revertbot sends no credentials to Alertmanager",
    ),
];

/// A secret in `user:password@` is readable by everyone who can read the
/// infra repo, and ends up in messages: warn, showing the URL redacted.
/// A plain-http Argo CD server that is not loopback is refused at run time
/// (the token would travel in clear): say so here first.
fn urls_without_credentials(d: &mut Decoder<'_>, root: &Node) {
    for (dotted, instead) in URL_KEYS {
        let Some(node) = root.get_path(dotted) else {
            continue;
        };
        let Some(value) = node.as_str() else { continue };
        let mut at = Path::root();
        for key in dotted.split('.') {
            at = at.key(key);
        }
        if crate::redact::has_userinfo(value) {
            d.warning(
                node.span,
                &at,
                format!(
                    "{at} carries credentials in its URL (`{}`)",
                    crate::redact::url_str(value)
                ),
                format!(
                    "remove `user:password@` from the URL ({instead}); the config is readable by everyone who can read the repo"
                ),
            );
        }
        if *dotted == "argocd.server"
            && let Ok(url) = url::Url::parse(value.trim())
            && url.scheme() == "http"
            && !crate::redact::is_loopback(&url)
        {
            d.warning(
                node.span,
                &at,
                format!("{at} is plain http to a host that is not loopback"),
                "revertbot refuses to send ARGOCD_AUTH_TOKEN over plain http; use the https:// address",
            );
        }
    }
}

fn app_path(i: usize) -> Path {
    Path::root().key("apps").index(i)
}

fn unique_names(d: &mut Decoder<'_>, apps: &[Node]) {
    // A map, not a scan: fleets list thousands of apps.
    let mut seen: std::collections::HashMap<&str, (usize, usize)> =
        std::collections::HashMap::with_capacity(apps.len());
    for (i, app) in apps.iter().enumerate() {
        let Some(node) = app.get("name") else {
            continue;
        };
        let Some(name) = node.as_str() else { continue };
        match seen.get(name) {
            Some((first, line)) => d.error(
                node.span,
                &app_path(i).key("name"),
                format!("duplicate app name `{name}`: apps[{first}] on line {line} has it too"),
                "app names must be unique (they name branches, ledger entries and reports); rename one",
            ),
            None => {
                seen.insert(name, (i, node.span.start.line));
            }
        }
    }
}

struct AppGlobs<'n> {
    index: usize,
    name: String,
    globs: Vec<(usize, &'n str, Span)>,
}

/// Pairs of apps (earlier index, later index), in order, whose globs share a
/// literal prefix and so may overlap. Comparing every pair is quadratic: at
/// 2,000 apps it took 200 ms on every run.
fn candidate_pairs(apps: &[AppGlobs<'_>]) -> Vec<(usize, usize)> {
    let mut keyed: Vec<(String, usize)> = apps
        .iter()
        .enumerate()
        .flat_map(|(i, app)| {
            app.globs
                .iter()
                .map(move |(_, g, _)| (literal_prefix_key(g), i))
        })
        .collect();
    keyed.sort();
    let mut pairs = std::collections::BTreeSet::new();
    for (n, (key, app)) in keyed.iter().enumerate() {
        for (other_key, other) in &keyed[n + 1..] {
            if !other_key.starts_with(key.as_str()) {
                break;
            }
            if app != other {
                pairs.insert((*app.min(other), *app.max(other)));
            }
        }
    }
    pairs.into_iter().collect()
}

fn overlapping_paths(d: &mut Decoder<'_>, apps: &[Node]) {
    let collected: Vec<AppGlobs<'_>> = apps
        .iter()
        .enumerate()
        .map(|(index, app)| AppGlobs {
            index,
            name: app
                .get("name")
                .and_then(Node::as_str)
                .map_or_else(|| format!("apps[{index}]"), str::to_owned),
            globs: app
                .get("paths")
                .and_then(Node::as_seq)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .filter_map(|(k, n)| Some((k, n.as_str()?, n.span)))
                .filter(|(_, g, _)| check_glob(g).is_ok())
                .collect(),
        })
        .collect();
    for (earlier, later) in candidate_pairs(&collected) {
        let (earlier, later) = (&collected[earlier], &collected[later]);
        if earlier.name == later.name {
            continue; // a duplicate name, reported on its own
        }
        let clash = later.globs.iter().find_map(|b| {
            earlier
                .globs
                .iter()
                .find(|a| globs_may_overlap(a.1, b.1))
                .map(|a| (a, b))
        });
        if let Some(((_, glob_a, span_a), (k, glob_b, span_b))) = clash {
            d.warning(
                *span_b,
                &app_path(later.index).key("paths").index(*k),
                format!(
                    "apps `{}` and `{}` overlap: `{glob_b}` here and `{glob_a}` on line {} can match the same file",
                    earlier.name, later.name, span_a.start.line
                ),
                "a commit touching such a file is blamed on both apps; narrow one of the globs",
            );
        }
    }
}

fn slos_need_prometheus(d: &mut Decoder<'_>, root: &Node, apps: &[Node]) {
    if root.get("prometheus").is_some_and(|p| !p.is_null()) {
        return;
    }
    for (i, app) in apps.iter().enumerate() {
        let Some(slos) = app.get("health").and_then(|h| h.get("slos")) else {
            continue;
        };
        if slos.as_seq().is_some_and(|s| !s.is_empty()) {
            let at = app_path(i).key("health").key("slos");
            d.error(
                slos.span,
                &at,
                format!("{at} needs Prometheus to query, but `prometheus` is not set"),
                "add `prometheus: { url: http://prometheus.monitoring:9090 }` at the top level",
            );
        }
    }
}

fn slack_approvals_need_channel(d: &mut Decoder<'_>, root: &Node) {
    let Some(users) = root.get("approvals").and_then(|a| a.get("slack_users")) else {
        return;
    };
    let has_channel = root.get_path("slack.channel").is_some_and(|c| !c.is_null());
    if users.as_seq().is_some_and(|u| !u.is_empty()) && !has_channel {
        let at = Path::root().key("approvals").key("slack_users");
        d.error(
            users.span,
            &at,
            format!("{at} needs `slack.channel` to post approval requests to"),
            "add `slack: { channel: \"#deploys\" }` at the top level",
        );
    }
}
