//! OCI image references and digests. Written by the manifest helper.

/// Placeholder until the manifest work lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest;
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad image reference")]
pub struct ImageRefError;
