//! Repo-relative globs: the rules for `paths` and `files`, how they are
//! compiled, and when two of them may match the same file.

use std::borrow::Cow;

use globset::{Glob, GlobBuilder};

use super::values::Problem;

/// Compiles a glob the way revertbot matches repo paths: `*` and `?` stay
/// within one directory, `**` crosses directories.
pub(crate) fn compile_glob(glob: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(glob).literal_separator(true).build()
}

const GLOB_HINT: &str = "globs are relative to the repo root and use `*` (within a directory), `**` (any depth), `?`, `[abc]` and `{a,b}`, e.g. `guestbook/**`";

/// Checks a repo-relative glob: not empty, not absolute, not escaping the
/// repo, `/` as separator, and valid glob syntax.
pub(crate) fn check_glob(glob: &str) -> Result<(), Problem> {
    if glob.trim().is_empty() {
        return Err(Problem::new("the glob is empty", GLOB_HINT));
    }
    let bytes = glob.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if drive || glob.starts_with("\\\\") {
        return Err(Problem::new(
            format!("`{glob}` is a Windows path, outside the repository"),
            "write it relative to the repo root with `/`, e.g. `guestbook/**`",
        ));
    }
    if let Some(rest) = glob.strip_prefix('/') {
        let fixed = rest.trim_start_matches('/');
        return Err(Problem::new(
            format!("`{glob}` is an absolute path"),
            format!("paths are relative to the repo root: write `{fixed}`"),
        ));
    }
    if backslash_separator(glob) {
        let fixed = glob.replace('\\', "/");
        return Err(Problem::new(
            format!("`{glob}` uses `\\`, which escapes the next character in a glob"),
            format!("use `/` as the separator: `{fixed}`"),
        ));
    }
    let parts: Vec<&str> = glob.split('/').collect();
    if parts.contains(&"..") {
        return Err(Problem::new(
            format!("`{glob}` leaves the repository with `..`"),
            "paths must stay inside the repo; write them from the repo root",
        ));
    }
    if parts.contains(&".") {
        let fixed: Vec<&str> = parts.iter().copied().filter(|p| *p != ".").collect();
        return Err(Problem::new(
            format!("`{glob}` contains a `.` segment, so it matches no repo path"),
            format!(
                "paths are matched without `./`: write `{}`",
                fixed.join("/")
            ),
        ));
    }
    if glob.ends_with('/') {
        return Err(Problem::new(
            format!("`{glob}` ends with `/`, so it matches no file"),
            format!("to match everything below it write `{glob}**`"),
        ));
    }
    if let Some(empty) = parts.iter().position(|p| p.is_empty()) {
        return Err(Problem::new(
            format!(
                "`{glob}` has an empty segment (`//`) at segment {}",
                empty + 1
            ),
            format!("write `{}`", glob.replace("//", "/")),
        ));
    }
    compile_glob(glob).map(|_| ()).map_err(|e| {
        Problem::new(
            format!("`{glob}` is not a valid glob: {}", e.kind()),
            GLOB_HINT,
        )
    })
}

/// Whether a `\` is used other than to escape a glob metacharacter (so
/// probably as a Windows path separator).
fn backslash_separator(glob: &str) -> bool {
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && !chars.next().is_some_and(|next| "*?[]{}\\,".contains(next)) {
            return true;
        }
    }
    false
}

/// Whether two valid globs may match the same repo path.
///
/// Compares the globs segment by segment: two literal segments must be
/// equal, a literal segment must match the other glob's wildcard segment,
/// and the paths must have the same depth. `**`, or a wildcard segment on
/// both sides, may match anything from there on, so the globs are taken to
/// overlap (a warning, so erring towards "overlap" is the safe side).
pub(crate) fn globs_may_overlap(a: &str, b: &str) -> bool {
    let (sa, sb) = (segments(a), segments(b));
    let (Some(sa), Some(sb)) = (sa, sb) else {
        // `{…/…}` alternatives span segments: cannot compare, assume overlap.
        return true;
    };
    for i in 0.. {
        match (sa.get(i), sb.get(i)) {
            (None, None) => return true,
            (Some(&"**"), _) | (_, Some(&"**")) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(x), Some(y)) => match (is_literal(x), is_literal(y)) {
                (true, true) => {
                    if unescape(x) != unescape(y) {
                        return false;
                    }
                }
                (true, false) => {
                    if !segment_matches(y, &unescape(x)) {
                        return false;
                    }
                }
                (false, true) => {
                    if !segment_matches(x, &unescape(y)) {
                        return false;
                    }
                }
                (false, false) => return true,
            },
        }
    }
    true
}

/// The glob's leading literal segments, each followed by `/` (`apps/web/`
/// for `apps/web/**`). Two globs can only overlap when one's key is a prefix
/// of the other's: a literal segment that differs rules out every match. A
/// glob that cannot be split has the empty key (compared with everything).
pub(crate) fn literal_prefix_key(glob: &str) -> String {
    let Some(segments) = segments(glob) else {
        return String::new();
    };
    let mut key = String::new();
    // The last segment names files, not a directory: keep it out so that
    // `apps/web/x.yaml` and `apps/web/*.yaml` share the key `apps/web/`.
    let dirs = segments.len().saturating_sub(1);
    for segment in segments.iter().take(dirs) {
        if !is_literal(segment) {
            break;
        }
        key.push_str(&unescape(segment));
        key.push('/');
    }
    key
}

/// Splits a glob into `/`-separated segments, or `None` when a `{…}` or
/// `[…]` group contains a `/`.
fn segments(glob: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut escaped) = (0usize, 0usize, false);
    for (i, c) in glob.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            '/' if depth > 0 => return None,
            '/' => {
                out.push(&glob[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&glob[start..]);
    Some(out)
}

fn is_literal(segment: &str) -> bool {
    let mut escaped = false;
    for c in segment.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if "*?[{".contains(c) {
            return false;
        }
    }
    true
}

fn unescape(segment: &str) -> Cow<'_, str> {
    if !segment.contains('\\') {
        return Cow::Borrowed(segment);
    }
    let mut out = String::with_capacity(segment.len());
    let mut escaped = false;
    for c in segment.chars() {
        if c == '\\' && !escaped {
            escaped = true;
        } else {
            out.push(c);
            escaped = false;
        }
    }
    Cow::Owned(out)
}

fn segment_matches(pattern: &str, literal: &str) -> bool {
    compile_glob(pattern)
        .map(|g| g.compile_matcher().is_match(literal))
        // An invalid segment cannot be ruled out: assume it matches.
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The literal-prefix pruning in `validate` never hides an overlap:
        /// whenever two globs may overlap, one key is a prefix of the other.
        #[test]
        fn prefix_keys_never_hide_an_overlap(
            a in "(apps|lib|x\\*)(/(web|api|\\*|\\*\\*|w\\?b|[a-c]+)){0,3}(/(\\*\\.yaml|x\\.yaml|\\*\\*))?",
            b in "(apps|lib|x\\*)(/(web|api|\\*|\\*\\*|w\\?b|[a-c]+)){0,3}(/(\\*\\.yaml|x\\.yaml|\\*\\*))?",
        ) {
            if globs_may_overlap(&a, &b) {
                let (ka, kb) = (literal_prefix_key(&a), literal_prefix_key(&b));
                proptest::prop_assert!(ka.starts_with(&kb) || kb.starts_with(&ka), "{a} {b} {ka} {kb}");
            }
        }
    }

    #[test]
    fn prefix_keys() {
        assert_eq!(literal_prefix_key("apps/web/**"), "apps/web/");
        assert_eq!(literal_prefix_key("apps/web/x.yaml"), "apps/web/");
        assert_eq!(literal_prefix_key("apps/*/x.yaml"), "apps/");
        assert_eq!(literal_prefix_key("**/x.yaml"), "");
        assert_eq!(literal_prefix_key("apps"), "");
    }

    #[test]
    fn globs_must_stay_inside_the_repo() {
        for good in [
            "guestbook/**",
            "apps/*/values.yaml",
            "a/{b,c}/**",
            "x\\*y",
            "**",
            "k8s/app.yaml",
        ] {
            assert_eq!(check_glob(good), Ok(()), "{good}");
        }
        let cases = [
            ("../x", "leaves the repository"),
            ("a/../../x", "leaves the repository"),
            ("/abs/**", "absolute path"),
            ("C:\\repo\\x", "Windows path"),
            ("c:/repo", "Windows path"),
            ("\\\\server\\share", "Windows path"),
            ("guestbook\\deploy.yaml", "uses `\\`"),
            ("./guestbook/**", "`.` segment"),
            ("guestbook/", "matches no file"),
            ("a//b", "empty segment"),
            ("", "empty"),
            ("a/[b", "not a valid glob"),
            ("a/{b,c", "not a valid glob"),
        ];
        for (bad, expect) in cases {
            let err = check_glob(bad).expect_err(bad);
            assert!(err.message.contains(expect), "{bad}: {err:?}");
        }
        assert_eq!(
            check_glob("/abs/**").unwrap_err().hint.as_deref(),
            Some("paths are relative to the repo root: write `abs/**`")
        );
    }

    #[test]
    fn overlap_by_segments() {
        let overlap = [
            ("guestbook/**", "guestbook/**"),
            ("guestbook/**", "guestbook/base/**"),
            ("**", "anything/at/all"),
            ("apps/*/values.yaml", "apps/guestbook/values.yaml"),
            ("apps/*/x", "apps/g*/x"),
            ("apps/guestbook/**", "apps/*book/**"),
            ("{a,b}/x", "a/x"),
            ("{a/b,c}/x", "zzz"),
        ];
        for (a, b) in overlap {
            assert!(globs_may_overlap(a, b), "{a} vs {b}");
            assert!(globs_may_overlap(b, a), "{b} vs {a}");
        }
        let disjoint = [
            ("guestbook/**", "guestbook-v2/**"),
            ("guest*", "guestbook/deploy.yaml"),
            ("apps/*-prod/**", "apps/guestbook/**"),
            ("a/b.yaml", "a/c.yaml"),
            ("a/*.yaml", "a/b/c.yaml"),
            ("a/\\*", "a/b"),
        ];
        for (a, b) in disjoint {
            assert!(!globs_may_overlap(a, b), "{a} vs {b}");
            assert!(!globs_may_overlap(b, a), "{b} vs {a}");
        }
    }
}
