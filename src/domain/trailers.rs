//! The git trailers revertbot writes on its revert commits, and reading them
//! back. Runs are stateless: these trailers are how a later run (or a racing
//! one) learns that a culprit is already reverted — once `git::verify` has
//! checked that the commit's content is the revert they describe.

use crate::domain::CommitSha;

pub const APP: &str = "Revertbot-App";
pub const INCIDENT: &str = "Revertbot-Incident";
pub const REVERTS: &str = "Revertbot-Reverts";
pub const LAST_KNOWN_GOOD: &str = "Revertbot-Last-Known-Good";
pub const PINNED_IMAGE: &str = "Revertbot-Pinned-Image";
pub const APPROVED_BY: &str = "Revertbot-Approved-By";
/// Guards a person overrode with `--force-guards`, comma-separated.
pub const FORCED_GUARDS: &str = "Revertbot-Forced-Guards";

/// The revertbot trailers of one commit message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevertTrailers {
    pub app: Option<String>,
    pub incident: Option<String>,
    pub reverts: Vec<CommitSha>,
    pub last_known_good: Option<CommitSha>,
    pub pinned_images: Vec<String>,
    pub approved_by: Vec<String>,
    pub forced_guards: Vec<String>,
}

impl RevertTrailers {
    /// Reads trailers from the last paragraph of `message`, as git does.
    /// Lines must start at column 0 (`Key: value`), so text quoted in the
    /// body (a culprit's subject, indented) is never taken for a trailer.
    pub fn parse(message: &str) -> Self {
        let mut out = Self::default();
        let normalized = message.replace("\r\n", "\n");
        let Some(last) = normalized
            .trim_end()
            .rsplit("\n\n")
            .next()
            .filter(|p| !p.is_empty())
        else {
            return out;
        };
        for line in last.lines() {
            let Some((key, value)) = line.split_once(": ") else {
                continue;
            };
            let value = value.trim();
            match key {
                APP => out.app = Some(value.to_owned()),
                INCIDENT => out.incident = Some(value.to_owned()),
                REVERTS => out.reverts.extend(value.parse().ok()),
                LAST_KNOWN_GOOD => out.last_known_good = value.parse().ok(),
                PINNED_IMAGE => out.pinned_images.push(value.to_owned()),
                APPROVED_BY => out.approved_by.push(value.to_owned()),
                FORCED_GUARDS => out.forced_guards.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned),
                ),
                _ => {}
            }
        }
        out
    }

    /// Whether the message claims to be revertbot's revert of `app`: it
    /// names the app and at least one reverted commit. Only a claim: anyone
    /// can write these lines, so `git::verify` decides whether the commit
    /// really is that revert.
    pub fn claims_revert_for(&self, app: &str) -> bool {
        self.app.as_deref() == Some(app) && !self.reverts.is_empty()
    }
}

/// Removes characters that would break a trailer or a subject line (line
/// breaks, control characters) from text that came from outside.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn reads_trailers_from_the_last_paragraph_only() {
        let msg = format!(
            "Revert guestbook\n\n    Revertbot-Reverts: {B}\n\nRevertbot-App: guestbook\nRevertbot-Reverts: {A}\nRevertbot-Pinned-Image: nginx:1@sha256:ab\n"
        );
        let t = RevertTrailers::parse(&msg);
        assert_eq!(t.app.as_deref(), Some("guestbook"));
        assert_eq!(t.reverts, vec![A.parse().unwrap()]);
        assert_eq!(t.pinned_images, vec!["nginx:1@sha256:ab".to_owned()]);
        assert!(t.claims_revert_for("guestbook"));
        assert!(!t.claims_revert_for("other"));
    }

    #[test]
    fn odd_messages_have_no_trailers() {
        for msg in ["", "\n\n\n", "subject only", "Revertbot-Reverts: nonsense"] {
            assert!(
                !RevertTrailers::parse(msg).claims_revert_for("a"),
                "{msg:?}"
            );
        }
        let crlf = format!("s\r\n\r\nRevertbot-App: a\r\nRevertbot-Reverts: {A}\r\n");
        assert!(RevertTrailers::parse(&crlf).claims_revert_for("a"));
    }

    #[test]
    fn one_line_strips_breaks() {
        assert_eq!(one_line(" a\nb\tc\u{7} "), "a b c");
    }
}
