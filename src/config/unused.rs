//! Keys that are parsed and validated but not acted on in this version.
//! Nothing is silent: a setting the user wrote and revertbot ignores gets a
//! warning with its position, from `config validate` and in every run's
//! report. Each feature removes its entry here when it lands.

use super::decode::{Decoder, Path};
use crate::yaml::Node;

/// Top-level sections with no effect yet, and why.
const SECTIONS: &[(&str, &str)] = &[
    (
        "prometheus",
        "SLO rules are not evaluated in this version, so Prometheus is never queried",
    ),
    (
        "alertmanager",
        "alerts are not read in this version, so Alertmanager is never asked",
    ),
    (
        "slack",
        "Slack messages and approval buttons are not in this version",
    ),
    (
        "approvals",
        "approvals (Slack, PR comments) are not in this version; a breach whose policy is `approve` is held",
    ),
];

/// Per-app keys with no effect yet.
const APP_KEYS: &[(&str, &str)] = &[
    (
        "health.slos",
        "SLO rules are not evaluated in this version: only controller and pod health trigger a revert",
    ),
    (
        "health.alerts",
        "Alertmanager alerts are not read in this version: only controller and pod health trigger a revert",
    ),
];

const HINT: &str = "nothing reads it yet; keep it for when the feature lands, or remove it";

pub(crate) fn not_acted_on(d: &mut Decoder<'_>, root: &Node) {
    for (key, why) in SECTIONS {
        if let Some(node) = root.get(key).filter(|n| !n.is_null()) {
            d.warning(
                node.span,
                &Path::root().key(key),
                format!("`{key}` is not acted on yet: {why}"),
                HINT,
            );
        }
    }
    let Some(apps) = root.get("apps").and_then(Node::as_seq) else {
        return;
    };
    for (i, app) in apps.iter().enumerate() {
        let at = Path::root().key("apps").index(i);
        for (dotted, why) in APP_KEYS {
            let Some(node) = app.get_path(dotted).filter(|n| !is_empty(n)) else {
                continue;
            };
            let mut path = at.clone();
            for part in dotted.split('.') {
                path = path.key(part);
            }
            d.warning(
                node.span,
                &path,
                format!("{path} is not acted on yet: {why}"),
                HINT,
            );
        }
        for severity in ["critical", "warning"] {
            let Some(node) = app.get("policy").and_then(|p| p.get(severity)) else {
                continue;
            };
            let Some(mode) = node.as_str() else {
                continue;
            };
            let why = match mode {
                "approve" => {
                    "approvals are not in this version: such a breach is held (exit 4) and the report says how to revert by hand"
                }
                _ => continue,
            };
            let path = at.key("policy").key(severity);
            d.warning(
                node.span,
                &path,
                format!("{path}: `{mode}` is not acted on yet: {why}"),
                "use `push` to revert automatically now, or `pr` to open a revert pull request",
            );
        }
    }
}

fn is_empty(node: &Node) -> bool {
    node.is_null() || node.as_seq().is_some_and(<[Node]>::is_empty)
}
