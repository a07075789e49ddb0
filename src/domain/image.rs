//! TEMPORARY stub; replaced by the manifest branch.
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);
impl std::str::FromStr for Digest {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("sha256:") && s.len() == 71 {
            Ok(Self(s.into()))
        } else {
            Err(ImageRefError)
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
    fn from(d: Digest) -> String {
        d.0
    }
}
impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef(String);
impl std::str::FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.into()))
    }
}
impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad image reference")]
pub struct ImageRefError;
impl ImageRef {
    pub fn digest(&self) -> Option<&Digest> {
        None
    }
}
