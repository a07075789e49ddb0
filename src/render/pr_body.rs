//! The revert pull request's body: the facts a reviewer needs, rendered
//! from `templates/pr_body.md.j2` (overridable like the commit message).

use serde::Serialize;

use super::{RenderError, Renderer};
use crate::domain::trailers::one_line;

pub const TEMPLATE: &str = "pr_body.md.j2";

/// Longest text quoted in one place of the body (a subject, a message).
const MAX_FIELD_CHARS: usize = 300;
/// Most culprits, files per culprit, and left-alone files listed.
const MAX_ITEMS: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    pub sha: String,
    pub short: String,
    /// The commit on GitHub, when the web address is known.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignalRow {
    pub signal: String,
    pub value: String,
    pub threshold: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CulpritRow {
    pub sha: String,
    pub short: String,
    pub subject: String,
    pub url: Option<String>,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeftAloneRow {
    pub file: String,
    pub owners: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PinRow {
    pub file: String,
    pub line: usize,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GuardRow {
    pub name: String,
    pub rule: String,
    pub overridden: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// RFC 3339, UTC, to the second.
    pub at: String,
    pub event: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrBody {
    pub app: String,
    pub incident: String,
    pub severity: Option<String>,
    pub reason: String,
    pub signals: Vec<SignalRow>,
    pub deployed: Revision,
    pub lkg: Option<Revision>,
    pub culprits: Vec<CulpritRow>,
    pub left_alone: Vec<LeftAloneRow>,
    pub left_alone_more: usize,
    pub pins: Vec<PinRow>,
    pub suspended_markers: Vec<String>,
    pub guards: Vec<GuardRow>,
    pub timeline: Vec<Event>,
    pub branch: String,
    pub base: String,
    pub automerge: bool,
    pub approved_by: Option<String>,
}

impl PrBody {
    /// The body, bounded: long lists and fields are cut before rendering.
    pub fn render(&self, renderer: &Renderer) -> Result<String, RenderError> {
        let mut clean = self.clone();
        let cut = |s: &str| super::shorten(&one_line(s), MAX_FIELD_CHARS);
        clean.reason = cut(&clean.reason);
        for s in &mut clean.signals {
            s.signal = cut(&s.signal);
            s.value = cut(&s.value);
            s.threshold = cut(&s.threshold);
        }
        clean.culprits.truncate(MAX_ITEMS);
        for c in &mut clean.culprits {
            c.subject = cut(&c.subject);
            c.files.truncate(MAX_ITEMS);
        }
        if clean.left_alone.len() > MAX_ITEMS {
            clean.left_alone_more += clean.left_alone.len() - MAX_ITEMS;
            clean.left_alone.truncate(MAX_ITEMS);
        }
        clean.approved_by = clean.approved_by.as_deref().map(cut);
        renderer.render(TEMPLATE, &clean)
    }
}

/// A Markdown code span holding `text` as it is: the fence is one backtick
/// longer than the longest run inside (CommonMark), line breaks become
/// spaces, and nothing inside renders (no HTML, links or @mentions).
pub fn code_span(text: &str) -> String {
    let text = one_line(text);
    if text.is_empty() {
        return "` `".to_owned();
    }
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space inside.
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(c: char, url: bool) -> Revision {
        let sha = c.to_string().repeat(40);
        Revision {
            short: sha[..12].to_owned(),
            url: url.then(|| format!("https://github.com/acme/infra/commit/{sha}")),
            sha,
        }
    }

    pub(crate) fn sample() -> PrBody {
        PrBody {
            app: "guestbook".into(),
            incident: "guestbook-bbbbbbbbbbbb".into(),
            severity: Some("critical".into()),
            reason: "critical breach: argocd:guestbook reports Degraded".into(),
            signals: vec![
                SignalRow {
                    signal: "argocd:guestbook".into(),
                    value: "Degraded (Deployment guestbook-ui exceeded its progress deadline)".into(),
                    threshold: "Healthy".into(),
                },
                SignalRow {
                    signal: "pod guestbook-ui-7d9c/ui".into(),
                    value: "CrashLoopBackOff, 5 restarts".into(),
                    threshold: "not crash-looping".into(),
                },
            ],
            deployed: rev('b', true),
            lkg: Some(rev('a', true)),
            culprits: vec![CulpritRow {
                sha: "c".repeat(40),
                short: "c".repeat(12),
                subject: "bump ui to `v2` <script>alert(1)</script> @here".into(),
                url: Some(format!("https://github.com/acme/infra/commit/{}", "c".repeat(40))),
                files: vec!["guestbook/deploy.yaml".into()],
            }],
            left_alone: vec![LeftAloneRow {
                file: "billing/deploy.yaml".into(),
                owners: vec!["billing".into()],
            }],
            left_alone_more: 0,
            pins: vec![PinRow {
                file: "guestbook/deploy.yaml".into(),
                line: 14,
                before: "ghcr.io/acme/ui:v2".into(),
                after: format!("ghcr.io/acme/ui:v1@sha256:{}", "1".repeat(64)),
            }],
            suspended_markers: vec![],
            guards: vec![
                GuardRow {
                    name: "loop".into(),
                    rule: "the deployed revision is not a revertbot revert, and no culprit was reverted before".into(),
                    overridden: false,
                },
                GuardRow {
                    name: "cooldown".into(),
                    rule: "no revert of this app in the last 30m".into(),
                    overridden: true,
                },
            ],
            timeline: vec![
                Event {
                    at: "2026-12-03T10:00:00Z".into(),
                    event: "breach confirmed".into(),
                },
                Event {
                    at: "2026-12-03T10:00:01Z".into(),
                    event: "revert branch pushed".into(),
                },
            ],
            branch: "revertbot/guestbook/bbbbbbbbbbbb".into(),
            base: "main".into(),
            automerge: true,
            approved_by: None,
        }
    }

    #[test]
    fn code_spans_hold_backticks_html_and_mentions() {
        assert_eq!(code_span("plain"), "`plain`");
        assert_eq!(code_span("a `b` c"), "``a `b` c``");
        assert_eq!(code_span("`x`"), "`` `x` ``");
        assert_eq!(code_span("two\nlines"), "`two lines`");
        assert_eq!(code_span(""), "` `");
    }

    #[test]
    fn the_built_in_body() {
        let renderer = Renderer::new(None).unwrap();
        insta::assert_snapshot!(sample().render(&renderer).unwrap());
    }

    #[test]
    fn a_body_without_lkg_links_or_extras() {
        let renderer = Renderer::new(None).unwrap();
        let mut body = sample();
        body.lkg = None;
        body.deployed.url = None;
        body.culprits[0].url = None;
        body.left_alone.clear();
        body.pins.clear();
        body.signals.clear();
        body.automerge = false;
        insta::assert_snapshot!(body.render(&renderer).unwrap());
    }

    #[test]
    fn long_lists_are_cut() {
        let renderer = Renderer::new(None).unwrap();
        let mut body = sample();
        body.left_alone = (0..500)
            .map(|i| LeftAloneRow {
                file: format!("other/{i}.yaml"),
                owners: vec![],
            })
            .collect();
        let text = body.render(&renderer).unwrap();
        assert!(text.contains("… and 450 more"), "{text}");
        assert!(!text.contains("other/50.yaml"));
    }
}
