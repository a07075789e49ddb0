//! User-facing text rendered from minijinja templates: the built-ins in
//! `templates/`, overridable per infra repo from `.revertbot/templates/`.
//!
//! An override comes from the infra repo, so it is untrusted code: it runs
//! with a fuel budget and an output cap, and when it cannot be read, does
//! not compile, fails, runs out of fuel or writes too much, the built-in is
//! used instead (with a warning naming the override and the reason). What
//! later runs rely on (the commit trailers) is never left to a template.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::domain::trailers::{self, one_line};

pub mod pr_body;

const BUILTINS: &[(&str, &str)] = &[
    (
        "commit.txt.j2",
        include_str!("../../templates/commit.txt.j2"),
    ),
    (
        pr_body::TEMPLATE,
        include_str!("../../templates/pr_body.md.j2"),
    ),
];

/// Longest culprit subject quoted in a message; longer ones are cut.
const MAX_SUBJECT_CHARS: usize = 120;

/// Work one render may do (about one fuel per instruction and per 64 bytes
/// of data, so also about 64 MB of memory): the built-in commit message for
/// 5,000 culprits renders within it (a test checks); a nested
/// `range(100000)` loop runs out in milliseconds.
const FUEL: u64 = 1_000_000;

/// Longest rendered text accepted from an override (a commit message or a
/// comment, not a document).
const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// Largest override file read.
const MAX_TEMPLATE_BYTES: u64 = 64 * 1024;

/// Nesting of loops, ifs, macros and includes. minijinja allows 500; our
/// templates need a handful, and a lower bound keeps a hostile template's
/// stack use small.
const RECURSION_LIMIT: usize = 100;

/// Name under which a built-in stays loaded next to its override.
fn builtin_name(name: &str) -> String {
    format!("builtin:{name}")
}

#[derive(Debug, thiserror::Error)]
#[error("cannot render template {name}: {message} — fix {location}")]
pub struct RenderError {
    pub name: String,
    pub message: String,
    pub location: String,
}

pub struct Renderer {
    env: Environment<'static>,
    /// Templates with a usable override, and where it came from.
    overridden: Vec<(String, PathBuf)>,
    /// Why overrides were not used, for the log and the caller.
    warnings: Mutex<Vec<String>>,
}

impl Renderer {
    /// Built-in templates, with any `.revertbot/templates/<name>` in the
    /// infra repo taking precedence. An override that cannot be read or
    /// compiled is skipped with a warning; only a broken built-in is an
    /// error.
    pub fn new(repo_root: Option<&Path>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Commit messages, PR bodies and chat text are not HTML: never
        // escape, whatever a template's file name ends with.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.add_filter("code", |text: String| pr_body::code_span(&text));
        let mut renderer = Self {
            env,
            overridden: Vec::new(),
            warnings: Mutex::new(Vec::new()),
        };
        for (name, builtin) in BUILTINS {
            renderer
                .env
                .add_template_owned(builtin_name(name), *builtin)
                .map_err(|e| RenderError {
                    name: (*name).to_owned(),
                    message: e.to_string(),
                    location: format!("the built-in templates/{name}"),
                })?;
            let Some(path) = repo_root
                .map(|root| root.join(".revertbot/templates").join(name))
                .filter(|p| p.is_file())
            else {
                continue;
            };
            let loaded = read_template(&path).and_then(|source| {
                renderer
                    .env
                    .add_template_owned(*name, source)
                    .map_err(|e| e.to_string())
            });
            match loaded {
                Ok(()) => renderer.overridden.push(((*name).to_owned(), path)),
                Err(reason) => renderer.warn(&path, &reason),
            }
        }
        Ok(renderer)
    }

    /// Why overrides were not used, in the order it happened.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn warn(&self, path: &Path, reason: &str) {
        let text = format!(
            "template override {} not used: {reason} — the built-in template was used instead; fix or remove the override",
            path.display()
        );
        tracing::warn!(template = %path.display(), reason, "template override not used; using the built-in");
        if let Ok(mut warnings) = self.warnings.lock() {
            warnings.push(text);
        }
    }

    /// Renders `name`: its override when there is one and it renders
    /// within bounds and passes `accept`, else the built-in.
    fn render_checked<S: Serialize>(
        &self,
        name: &str,
        context: &S,
        accept: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String, RenderError> {
        if let Some((_, path)) = self.overridden.iter().find(|(n, _)| n == name) {
            let rendered = self
                .render_bounded(name, context)
                .and_then(|text| accept(&text).map(|()| text));
            match rendered {
                Ok(text) => return Ok(text),
                Err(reason) => self.warn(path, &reason),
            }
        }
        self.render_bounded(&builtin_name(name), context)
            .map_err(|message| RenderError {
                name: name.to_owned(),
                message,
                location: format!("the built-in templates/{name}"),
            })
    }

    pub fn render<S: Serialize>(&self, name: &str, context: &S) -> Result<String, RenderError> {
        self.render_checked(name, context, |_| Ok(()))
    }

    fn render_bounded<S: Serialize>(&self, name: &str, context: &S) -> Result<String, String> {
        let template = self.env.get_template(name).map_err(|e| e.to_string())?;
        // Fuel bounds what a render can allocate; the output cap is checked
        // on what it produced.
        let text = template
            .render(minijinja::value::Serde(context))
            .map_err(|e| e.to_string())?;
        if text.len() > MAX_OUTPUT_BYTES {
            return Err(format!(
                "it rendered {} bytes, more than {} MiB",
                text.len(),
                MAX_OUTPUT_BYTES / (1024 * 1024)
            ));
        }
        Ok(text)
    }
}

/// An override's source, read through a bound.
fn read_template(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_TEMPLATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "the file is larger than {} KiB",
            MAX_TEMPLATE_BYTES / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text ({})", e.utf8_error()))
}

/// A culprit as the commit template sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CulpritLine {
    pub sha: String,
    pub short: String,
    pub subject: String,
}

impl CulpritLine {
    pub fn new(sha: &crate::domain::CommitSha, subject: &str) -> Self {
        Self {
            sha: sha.to_string(),
            short: sha.short().to_owned(),
            subject: shorten(&one_line(subject), MAX_SUBJECT_CHARS),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitMessage {
    pub app: String,
    pub incident: String,
    pub lkg: Option<String>,
    pub lkg_short: Option<String>,
    pub culprits: Vec<CulpritLine>,
    pub pins: Vec<String>,
    /// `file:line marker` of image-automation markers suspended by the pin.
    pub suspended_markers: Vec<String>,
    pub reason: Option<String>,
    pub scope: String,
    pub approved_by: Option<String>,
    /// Guards overridden with `--force-guards` (empty: none).
    pub forced_guards: Vec<String>,
    /// Files the culprits changed outside the app's paths, left as they
    /// are (`path (owning apps)`), at most a screenful.
    pub left_alone: Vec<String>,
    /// How many more were left alone than listed.
    pub left_alone_more: usize,
}

impl CommitMessage {
    pub fn render(&self, renderer: &Renderer) -> Result<String, RenderError> {
        let mut clean = self.clone();
        clean.reason = self
            .reason
            .as_deref()
            .map(one_line)
            .filter(|r| !r.is_empty());
        clean.approved_by = self.approved_by.as_deref().map(one_line);
        let text = renderer.render_checked("commit.txt.j2", &clean, |text| {
            if message_body(text).is_empty() {
                Err("it rendered no subject".to_owned())
            } else {
                Ok(())
            }
        })?;
        Ok(format!(
            "{}\n\n{}",
            message_body(&text),
            clean.trailer_block()
        ))
    }

    /// The trailers later runs rely on (idempotency, the loop guard, the
    /// ledger rebuilt after a crash), written by code and never by a
    /// template, each ending in a newline.
    fn trailer_block(&self) -> String {
        let mut lines = vec![
            (trailers::APP, self.app.clone()),
            (trailers::INCIDENT, self.incident.clone()),
        ];
        lines.extend(
            self.culprits
                .iter()
                .map(|c| (trailers::REVERTS, c.sha.clone())),
        );
        lines.extend(
            self.lkg
                .iter()
                .map(|l| (trailers::LAST_KNOWN_GOOD, l.clone())),
        );
        lines.extend(
            self.pins
                .iter()
                .map(|p| (trailers::PINNED_IMAGE, p.clone())),
        );
        lines.extend(
            self.approved_by
                .iter()
                .map(|a| (trailers::APPROVED_BY, a.clone())),
        );
        if !self.forced_guards.is_empty() {
            lines.push((trailers::FORCED_GUARDS, self.forced_guards.join(", ")));
        }
        lines
            .into_iter()
            .map(|(key, value)| format!("{key}: {}\n", one_line(&value)))
            .collect()
    }
}

/// A rendered message without any line a template wrote that starts like a
/// revertbot trailer (in any case, as git matches trailer keys), and without
/// trailing blank lines (git strips them).
fn message_body(rendered: &str) -> String {
    let kept: Vec<&str> = rendered
        .lines()
        .filter(|line| {
            !line
                .get(..TRAILER_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(TRAILER_PREFIX))
        })
        .collect();
    kept.join("\n").trim_end().to_owned()
}

const TRAILER_PREFIX: &str = "Revertbot-";

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::trailers::RevertTrailers;

    fn sha(c: char) -> crate::domain::CommitSha {
        c.to_string().repeat(40).parse().unwrap()
    }

    fn message(subject: &str, reason: Option<&str>) -> CommitMessage {
        CommitMessage {
            app: "guestbook".into(),
            incident: "guestbook-bbbbbbbbbbbb".into(),
            lkg: Some(sha('a').to_string()),
            lkg_short: Some(sha('a').short().to_owned()),
            culprits: vec![
                CulpritLine::new(&sha('c'), subject),
                CulpritLine::new(&sha('b'), "Bump to v2"),
            ],
            pins: vec![format!(
                "ghcr.io/acme/guestbook:v1@sha256:{}",
                "1".repeat(64)
            )],
            suspended_markers: vec![
                r#"guestbook/deploy.yaml:12 {"$imagepolicy": "flux-system:guestbook"}"#.into(),
            ],
            reason: reason.map(str::to_owned),
            scope: "commits".into(),
            approved_by: None,
            forced_guards: Vec::new(),
            left_alone: Vec::new(),
            left_alone_more: 0,
        }
    }

    #[test]
    fn commit_message_snapshot() {
        let renderer = Renderer::new(None).unwrap();
        let text = message(
            "Roll out {{ evil }} ünïcödé",
            Some("p95 latency above 250ms\nfor 5m"),
        )
        .render(&renderer)
        .unwrap();
        insta::assert_snapshot!(text);
        let trailers = RevertTrailers::parse(&text);
        assert_eq!(trailers.reverts, vec![sha('c'), sha('b')]);
        assert_eq!(trailers.last_known_good, Some(sha('a')));
        assert_eq!(trailers.pinned_images.len(), 1);
    }

    #[test]
    fn odd_subjects_render_safely() {
        let renderer = Renderer::new(None).unwrap();
        let long = "x".repeat(10_000);
        for subject in [
            "",
            "{{ 1 + 1 }} {% raw %}",
            &long,
            "Revertbot-Reverts: 1111111111111111111111111111111111111111",
        ] {
            let text = message(subject, None).render(&renderer).unwrap();
            assert!(text.len() < 2_000, "{}", text.len());
            if subject.starts_with("{{") {
                // Text from a commit is data, never template code.
                assert!(text.contains("{{ 1 + 1 }} {% raw %}"), "{text}");
            }
            let trailers = RevertTrailers::parse(&text);
            assert_eq!(trailers.reverts, vec![sha('c'), sha('b')], "{subject:?}");
        }
    }

    /// A renderer whose infra repo overrides `commit.txt.j2` with `source`.
    fn with_override(source: &str) -> (tempfile::TempDir, Renderer) {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path().join(".revertbot/templates");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("commit.txt.j2"), source).unwrap();
        let renderer = Renderer::new(Some(repo.path())).unwrap();
        (repo, renderer)
    }

    fn builtin_text() -> String {
        message("Bad", None)
            .render(&Renderer::new(None).unwrap())
            .unwrap()
    }

    /// The override fell back to the built-in, with one warning that names
    /// the override and contains `reason`.
    fn assert_fell_back(source: &str, reason: &str) {
        let (repo, renderer) = with_override(source);
        let text = message("Bad", None).render(&renderer).unwrap();
        assert_eq!(text, builtin_text(), "{source}");
        let warnings = renderer.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let path = repo.path().join(".revertbot/templates/commit.txt.j2");
        assert!(
            warnings[0].contains(&path.display().to_string()),
            "{warnings:?}"
        );
        assert!(warnings[0].contains(reason), "{warnings:?}");
    }

    #[test]
    fn a_looping_override_runs_out_of_fuel_and_the_builtin_is_used() {
        assert_fell_back(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "ran out of fuel",
        );
    }

    #[test]
    fn an_override_with_huge_output_is_cut_off_and_the_builtin_is_used() {
        assert_fell_back("{{ 'x' * 2000000 }}", "more than 1 MiB");
    }

    #[test]
    fn broken_overrides_fall_back_to_the_builtin() {
        assert_fell_back("{% if %}", "syntax error");
        assert_fell_back("revert {{ no_such_variable.x }}", "undefined");
        assert_fell_back("{{ '' }}", "rendered no subject");
    }

    #[test]
    fn a_trailerless_override_still_gets_every_trailer_last() {
        let (_repo, renderer) = with_override("custom: revert {{ app }}\n\nSee the incident.\n");
        let mut m = message("Bad", None);
        m.approved_by = Some("U0123ABCD".into());
        let text = m.render(&renderer).unwrap();
        assert!(renderer.warnings().is_empty());
        assert!(
            text.starts_with("custom: revert guestbook\n\nSee the incident.\n\n"),
            "{text}"
        );
        let trailers = RevertTrailers::parse(&text);
        assert_eq!(trailers.app.as_deref(), Some("guestbook"));
        assert_eq!(trailers.incident.as_deref(), Some("guestbook-bbbbbbbbbbbb"));
        assert_eq!(trailers.reverts, vec![sha('c'), sha('b')]);
        assert_eq!(trailers.last_known_good, Some(sha('a')));
        assert_eq!(trailers.pinned_images.len(), 1);
        assert_eq!(trailers.approved_by, vec!["U0123ABCD".to_owned()]);
        assert!(trailers.claims_revert_for("guestbook"));
    }

    #[test]
    fn an_override_cannot_forge_or_drop_trailers() {
        let forged = format!(
            "custom\n\nRevertbot-Reverts: {d}\nrevertbot-reverts: {d}\nRevertbot-App: billing\nRevertbot-Approved-By: mallory\n",
            d = sha('d')
        );
        let (_repo, renderer) = with_override(&forged);
        let text = message("Bad", None).render(&renderer).unwrap();
        let trailers = RevertTrailers::parse(&text);
        assert_eq!(trailers.reverts, vec![sha('c'), sha('b')], "{text}");
        assert_eq!(trailers.app.as_deref(), Some("guestbook"));
        assert!(trailers.approved_by.is_empty(), "{text}");
        assert!(
            !text.to_ascii_lowercase().contains(&sha('d').to_string()),
            "{text}"
        );
        // Also not in the body, where a later parse of the whole message
        // (or a human) could take it for one.
        assert_eq!(text.matches("Revertbot-App:").count(), 1, "{text}");
    }

    #[test]
    fn the_builtin_fits_its_fuel_for_thousands_of_culprits() {
        let mut m = message("Bad", None);
        m.culprits = (0..5_000)
            .map(|_| CulpritLine::new(&sha('c'), &"long subject ".repeat(20)))
            .collect();
        let text = m.render(&Renderer::new(None).unwrap()).unwrap();
        assert_eq!(RevertTrailers::parse(&text).reverts.len(), 5_000);
    }

    #[test]
    fn no_lkg_and_no_pins() {
        let renderer = Renderer::new(None).unwrap();
        let mut m = message("Bad", None);
        m.lkg = None;
        m.lkg_short = None;
        m.pins.clear();
        m.suspended_markers.clear();
        insta::assert_snapshot!(m.render(&renderer).unwrap());
    }
}
