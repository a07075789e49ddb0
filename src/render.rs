//! User-facing text rendered from minijinja templates: the built-ins in
//! `templates/`, overridable per infra repo from `.revertbot/templates/`.

use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::domain::trailers::one_line;

const BUILTINS: &[(&str, &str)] = &[("commit.txt.j2", include_str!("../templates/commit.txt.j2"))];

/// Longest culprit subject quoted in a message; longer ones are cut.
const MAX_SUBJECT_CHARS: usize = 120;

#[derive(Debug, thiserror::Error)]
#[error("cannot render template {name}: {message} — fix {location}")]
pub struct RenderError {
    pub name: String,
    pub message: String,
    pub location: String,
}

pub struct Renderer {
    env: Environment<'static>,
    overridden: Vec<String>,
}

impl Renderer {
    /// Built-in templates, with any `.revertbot/templates/<name>` in the
    /// infra repo taking precedence.
    pub fn new(repo_root: Option<&Path>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Commit messages, PR bodies and chat text are not HTML: never
        // escape, whatever a template's file name ends with.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let mut overridden = Vec::new();
        for (name, builtin) in BUILTINS {
            let custom = repo_root
                .map(|root| root.join(".revertbot/templates").join(name))
                .filter(|p| p.is_file());
            let (source, location) = match &custom {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(text) => {
                        overridden.push((*name).to_owned());
                        (text, path.display().to_string())
                    }
                    Err(e) => {
                        return Err(RenderError {
                            name: (*name).to_owned(),
                            message: e.to_string(),
                            location: path.display().to_string(),
                        });
                    }
                },
                None => (
                    (*builtin).to_owned(),
                    format!("the built-in templates/{name}"),
                ),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| RenderError {
                    name: (*name).to_owned(),
                    message: e.to_string(),
                    location,
                })?;
        }
        Ok(Self { env, overridden })
    }

    pub fn render<S: Serialize>(&self, name: &str, context: &S) -> Result<String, RenderError> {
        let location = if self.overridden.iter().any(|n| n == name) {
            format!(".revertbot/templates/{name}")
        } else {
            format!("the built-in templates/{name}")
        };
        let template = self.env.get_template(name).map_err(|e| RenderError {
            name: name.to_owned(),
            message: e.to_string(),
            location: location.clone(),
        })?;
        template
            .render(minijinja::value::Serde(context))
            .map_err(|e| RenderError {
                name: name.to_owned(),
                message: e.to_string(),
                location,
            })
    }
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
        let text = renderer.render("commit.txt.j2", &clean)?;
        // git strips trailing blank lines; keep the message as git stores it.
        Ok(format!("{}\n", text.trim_end()))
    }
}

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
