//! OCI image references and content digests.
//!
//! An [`ImageRef`] keeps the reference exactly as it was written
//! (`nginx:1.25`, `localhost:5000/team/app@sha256:…`). Comparison goes
//! through [`ImageRef::normalized_name`] (`docker.io/library/nginx`), but a
//! rewrite ([`ImageRef::pinned`]) always starts from the original spelling:
//! a pinned manifest must read like its author wrote it, plus a digest.
//!
//! The grammar is the one of distribution's `reference` package:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component ( "/" path-component )*
//! domain     := host [ ":" port ]          -- first component with `.` or `:`,
//!                                             or `localhost`, or upper case
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [\w][\w.-]{0,127}
//! digest     := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest name (domain and path) distribution accepts.
const MAX_NAME_LEN: usize = 255;
/// Longest tag distribution accepts.
const MAX_TAG_LEN: usize = 128;
const DOCKER_HUB: &str = "docker.io";
const LEGACY_DOCKER_HUB: &str = "index.docker.io";

/// An immutable content digest, `algorithm:hex`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The hexadecimal part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a digest does not parse.
fn digest_problem(s: &str) -> Option<String> {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return Some("it has no `algorithm:` prefix — write `sha256:<64 hex digits>`".to_owned());
    };
    let expected = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        other => {
            return Some(format!(
                "algorithm `{other}` is not supported — use `sha256` (or `sha512`)"
            ));
        }
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some("the hex part has characters other than 0-9 and a-f".to_owned());
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("the hex part must be lowercase — write it in lower case".to_owned());
    }
    if hex.len() != expected {
        return Some(format!(
            "a {algorithm} digest has {expected} hex digits, this one has {} — copy the whole digest",
            hex.len()
        ));
    }
    None
}

impl FromStr for Digest {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match digest_problem(s) {
            None => Ok(Self(s.to_owned())),
            Some(problem) => Err(ImageRefError::BadDigest {
                digest: s.to_owned(),
                problem,
            }),
        }
    }
}

impl TryFrom<String> for Digest {
    type Error = ImageRefError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> Self {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

/// What is wrong with an image reference or digest, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("image reference is empty — write a reference such as `nginx:1.25`")]
    Empty,
    #[error("`{reference}` is not a valid image reference: {problem}")]
    Invalid { reference: String, problem: String },
    #[error("`{digest}` is not a valid digest: {problem}")]
    BadDigest { digest: String, problem: String },
}

/// A parsed OCI / Docker image reference that remembers how it was written.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    original: String,
    /// Length of the name part (`registry/repository`) in `original`.
    name_len: usize,
    /// Length of the registry part in `original`, 0 when implicit.
    registry_len: usize,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// The reference exactly as written.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The name (registry and repository) as written: `nginx`,
    /// `localhost:5000/team/app`.
    pub fn name(&self) -> &str {
        &self.original[..self.name_len]
    }

    /// The registry as written (`ghcr.io`, `localhost:5000`), or `None` when
    /// the reference relies on the Docker Hub default.
    pub fn registry(&self) -> Option<&str> {
        (self.registry_len > 0).then(|| &self.original[..self.registry_len])
    }

    /// The repository path as written, without the registry
    /// (`nginx`, `org/team/app`).
    pub fn repository(&self) -> &str {
        let start = if self.registry_len > 0 {
            self.registry_len + 1
        } else {
            0
        };
        &self.original[start..self.name_len]
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag a runtime would pull: the tag, or `latest` when the reference
    /// has neither tag nor digest. `None` for a digest-only reference.
    pub fn effective_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// The fully-qualified name, for comparison only: `nginx` →
    /// `docker.io/library/nginx`, `index.docker.io/x/y` → `docker.io/x/y`.
    /// Never write this form back into a file.
    pub fn normalized_name(&self) -> String {
        let repository = self.repository();
        let registry = match self.registry() {
            None => DOCKER_HUB,
            Some(r) if r.eq_ignore_ascii_case(LEGACY_DOCKER_HUB) => DOCKER_HUB,
            Some(r) if r.eq_ignore_ascii_case(DOCKER_HUB) => DOCKER_HUB,
            Some(r) => r,
        };
        if registry == DOCKER_HUB && !repository.contains('/') {
            format!("{DOCKER_HUB}/library/{repository}")
        } else {
            format!("{registry}/{repository}")
        }
    }

    /// Whether both references name the same repository.
    pub fn same_name(&self, other: &ImageRef) -> bool {
        self.normalized_name() == other.normalized_name()
    }

    /// Whether both references would pull the same tag of the same
    /// repository (`nginx` and `docker.io/library/nginx:latest` do). Digests
    /// are ignored on purpose: callers use this to find which digest a tag
    /// was pinned to or ran as. Two digest-only references of one repository
    /// also match (no tag on either side).
    pub fn same_name_and_tag(&self, other: &ImageRef) -> bool {
        self.same_name(other) && self.effective_tag() == other.effective_tag()
    }

    /// The original name and tag spelling followed by `@digest`, replacing
    /// any digest already present. Pinning twice equals pinning once.
    pub fn pinned(&self, digest: &Digest) -> String {
        match &self.tag {
            Some(tag) => format!("{}:{tag}@{digest}", self.name()),
            None => format!("{}@{digest}", self.name()),
        }
    }

    /// [`ImageRef::pinned`] as a parsed reference.
    pub fn with_digest(&self, digest: &Digest) -> ImageRef {
        ImageRef {
            original: self.pinned(digest),
            name_len: self.name_len,
            registry_len: self.registry_len,
            tag: self.tag.clone(),
            digest: Some(digest.clone()),
        }
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map_err(|problem| match problem {
            Problem::Empty => ImageRefError::Empty,
            Problem::Digest(e) => e,
            Problem::Other(problem) => ImageRefError::Invalid {
                reference: s.to_owned(),
                problem,
            },
        })
    }
}

enum Problem {
    Empty,
    Digest(ImageRefError),
    Other(String),
}

fn bad(problem: impl Into<String>) -> Problem {
    Problem::Other(problem.into())
}

fn parse(s: &str) -> Result<ImageRef, Problem> {
    if s.is_empty() {
        return Err(Problem::Empty);
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!(
            "it contains {c:?} — remove whitespace and quotes around the reference"
        )));
    }
    if s.contains(['\'', '"']) {
        return Err(bad(
            "it contains a quote — remove the quotes around the reference",
        ));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => {
            let digest = d.parse::<Digest>().map_err(Problem::Digest)?;
            (rest, Some(digest))
        }
        None => (s, None),
    };
    // A tag follows the last `:` that comes after the last `/`; a `:` before
    // the last `/` is a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => {
            let colon = last_slash + i;
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if name.is_empty() {
        return Err(bad(
            "the repository name is missing — write e.g. `nginx:1.25`",
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad(format!(
            "the name is {} characters long, the limit is {MAX_NAME_LEN}",
            name.len()
        )));
    }
    let registry_len = match name.split_once('/') {
        Some((first, _)) if looks_like_domain(first) => {
            check_domain(first)?;
            first.len()
        }
        _ => 0,
    };
    let path = if registry_len > 0 {
        &name[registry_len + 1..]
    } else {
        name
    };
    for component in path.split('/') {
        check_path_component(component)?;
    }
    Ok(ImageRef {
        original: s.to_owned(),
        name_len: name.len(),
        registry_len,
        tag: tag.map(str::to_owned),
        digest,
    })
}

/// distribution's rule: the first component is a registry when it contains
/// `.` or `:`, is `localhost`, or has upper case (repositories cannot).
fn looks_like_domain(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn check_domain(domain: &str) -> Result<(), Problem> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        // IPv6 literal: `[::1]:5000`.
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(bad(format!(
                "registry `{domain}` opens `[` without `]` — write an IPv6 host as `[::1]:5000`"
            )));
        };
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad(format!(
                "registry `{domain}` has an invalid IPv6 address"
            )));
        }
        match after {
            "" => (None, None),
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => {
                    return Err(bad(format!(
                        "registry `{domain}`: expected `:port` after `]`"
                    )));
                }
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(bad(format!(
                    "registry `{domain}` is not a valid host name — use letters, digits, `-` and `.` (e.g. `registry.example.com:5000`)"
                )));
            }
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad(format!(
            "registry `{domain}` has port `{port}` — a port is digits only (e.g. `localhost:5000`)"
        )));
    }
    Ok(())
}

fn check_path_component(component: &str) -> Result<(), Problem> {
    if component.is_empty() {
        return Err(bad(
            "the repository path has an empty component (`//` or a trailing `/`) — remove the extra `/`",
        ));
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad(format!(
            "repository path component `{component}` has upper-case letters — repository names are lower case (`{}`)",
            component.to_ascii_lowercase()
        )));
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let sep_hint = "separate words with `.`, `_`, `__` or `-` between letters or digits";
    if !bytes.first().copied().is_some_and(alnum) || !bytes.last().copied().is_some_and(alnum) {
        return Err(bad(format!(
            "repository path component `{component}` must start and end with a letter or digit — {sep_hint}"
        )));
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let valid = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !valid {
            return Err(bad(format!(
                "repository path component `{component}` has `{sep}` — {sep_hint}"
            )));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), Problem> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if tag.is_empty() {
        return Err(bad(
            "the tag after `:` is empty — write a tag or drop the `:`",
        ));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(bad(format!(
            "the tag is {} characters long, the limit is {MAX_TAG_LEN}",
            tag.len()
        )));
    }
    let bytes = tag.as_bytes();
    if !word(bytes[0]) {
        return Err(bad(format!(
            "tag `{tag}` must start with a letter, digit or `_`"
        )));
    }
    if let Some(c) = tag.bytes().find(|&b| !(word(b) || b == b'.' || b == b'-')) {
        return Err(bad(format!(
            "tag `{tag}` has `{}` — tags use letters, digits, `_`, `.` and `-`",
            c as char
        )));
    }
    Ok(())
}

impl TryFrom<String> for ImageRef {
    type Error = ImageRefError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ImageRef> for String {
    fn from(r: ImageRef) -> Self {
        r.original
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({})", self.original)
    }
}

#[cfg(test)]
mod tests;
