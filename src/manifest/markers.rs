//! Flux image-automation markers (`# {"$imagepolicy": "ns:policy"}`) on
//! pinned lines. Left alone, the automation rewrites a pinned image back to
//! the tag its policy selects. Suspending a marker puts a word in front of
//! its JSON, so Flux no longer reads it (it parses the whole comment as
//! JSON) while a human still sees what it was; restoring removes the word.
//! Only comment bytes change, and the YAML tree is checked to be identical.

use crate::yaml;

use super::ManifestError;
use super::edit::{Plan, verify};

/// Written between `#` and the marker's `{` to suspend it.
pub const SUSPENDED: &str = "revertbot-suspended ";
const MARKER: &str = "{\"$imagepolicy\"";

/// A marker that was suspended or restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerChange {
    /// 1-based line.
    pub line: usize,
    /// The marker as Flux reads it (`{"$imagepolicy": "flux-system:app"}`).
    pub marker: String,
}

/// Suspends the `$imagepolicy` markers on `lines` (e.g. the lines of
/// [`super::PinOutcome::pinned`]). Other lines are not touched.
pub fn suspend_image_policy_markers(
    path: &str,
    content: &str,
    lines: &[usize],
) -> Result<(String, Vec<MarkerChange>), ManifestError> {
    rewrite(path, content, |number, line| {
        if !lines.contains(&number) {
            return None;
        }
        let at = active_marker(line)?;
        Some((
            at..at,
            SUSPENDED.to_owned(),
            line[at..].trim_end().to_owned(),
        ))
    })
}

/// Restores every marker suspended by [`suspend_image_policy_markers`].
pub fn restore_image_policy_markers(
    path: &str,
    content: &str,
) -> Result<(String, Vec<MarkerChange>), ManifestError> {
    rewrite(path, content, |_, line| {
        let at = comment_marker(line, SUSPENDED)?;
        let marker = line[at + SUSPENDED.len()..].trim_end().to_owned();
        Some((at..at + SUSPENDED.len(), String::new(), marker))
    })
}

/// Byte offset of an active marker's `{` in a line's comment.
fn active_marker(line: &str) -> Option<usize> {
    comment_marker(line, "")
}

/// Byte offset of `prefix` + marker where it starts a `#` comment.
fn comment_marker(line: &str, prefix: &str) -> Option<usize> {
    let needle = format!("{prefix}{MARKER}");
    let at = line.find(&needle)?;
    let before = line[..at].trim_end_matches([' ', '\t']);
    let hash = before.strip_suffix('#')?;
    // A comment starts the line or follows whitespace.
    (hash.is_empty() || hash.ends_with([' ', '\t'])).then_some(at)
}

type LineEdit = (std::ops::Range<usize>, String, String);

fn rewrite(
    path: &str,
    content: &str,
    mut edit: impl FnMut(usize, &str) -> Option<LineEdit>,
) -> Result<(String, Vec<MarkerChange>), ManifestError> {
    let mut out = String::with_capacity(content.len() + 64);
    let mut changes = Vec::new();
    for (i, line) in content.split_inclusive('\n').enumerate() {
        match edit(i + 1, line) {
            Some((range, text, marker)) => {
                out.push_str(&line[..range.start]);
                out.push_str(&text);
                out.push_str(&line[range.end..]);
                changes.push(MarkerChange {
                    line: i + 1,
                    marker,
                });
            }
            None => out.push_str(line),
        }
    }
    if !changes.is_empty() {
        // Only comments may have changed.
        if let Ok(old) = yaml::parse_documents(content) {
            verify(path, &old, &out, &Plan::default())?;
        }
    }
    Ok((out, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspend_and_restore_round_trip() {
        let src = "spec:\r\n  image: app:1@sha256:x # {\"$imagepolicy\": \"flux-system:app\"}\r\n  other: app:1 # {\"$imagepolicy\": \"flux-system:other\"}\r\n  note: '# {\"$imagepolicy\": \"not-a-comment\"}'\r\n";
        let (suspended, changes) = suspend_image_policy_markers("f.yaml", src, &[2, 4]).unwrap();
        assert_eq!(
            suspended,
            src.replacen(
                "# {\"$imagepolicy\": \"flux-system:app\"}",
                "# revertbot-suspended {\"$imagepolicy\": \"flux-system:app\"}",
                1
            )
        );
        assert_eq!(
            changes,
            vec![MarkerChange {
                line: 2,
                marker: "{\"$imagepolicy\": \"flux-system:app\"}".to_owned()
            }]
        );
        let (restored, back) = restore_image_policy_markers("f.yaml", &suspended).unwrap();
        assert_eq!(restored, src);
        assert_eq!(back, changes);
        // Nothing to do: unchanged.
        assert_eq!(restore_image_policy_markers("f.yaml", src).unwrap().0, src);
    }
}
