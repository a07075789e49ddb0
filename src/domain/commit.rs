use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A full, lowercase, 40-hex git commit id. Converted from git2's `Oid` at
/// the edge so git2 types never leak into the core.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitSha(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a full commit id — give all 40 hexadecimal characters")]
pub struct ParseShaError(pub String);

impl CommitSha {
    /// The 12-character abbreviation used in branch names and messages.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// From the hex form git itself produced (an `Oid`), which is always
    /// valid.
    pub(crate) fn from_git(hex: String) -> Self {
        Self(hex)
    }
}

impl FromStr for CommitSha {
    type Err = ParseShaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(ParseShaError(s.to_owned()))
        }
    }
}

impl TryFrom<String> for CommitSha {
    type Error = ParseShaError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CommitSha> for String {
    fn from(sha: CommitSha) -> Self {
        sha.0
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitSha({})", self.short())
    }
}

/// The name of an app as configured (`apps[].name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppName(pub String);

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AppName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_parsing() {
        let sha: CommitSha = "ABCDEF0123456789abcdef0123456789abcdef01".parse().unwrap();
        assert_eq!(sha.as_str(), "abcdef0123456789abcdef0123456789abcdef01");
        assert_eq!(sha.short(), "abcdef012345");
        assert!("abc".parse::<CommitSha>().is_err());
        assert!("g".repeat(40).parse::<CommitSha>().is_err());
    }
}
