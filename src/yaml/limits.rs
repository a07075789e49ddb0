//! The bounds on what a YAML stream may expand to, and charging against
//! them as the tree is built.

use super::{ErrorKind, Pos, SyntaxError};

/// Bounds on what one YAML stream may expand to, counted over all its
/// documents. The defaults follow serde-saphyr's `Budget` (the maintained
/// serde YAML crate kube uses), except the depth: Kubernetes CRD schemas nest
/// `properties` deeper than serde-saphyr's 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Alias (`*name`) uses.
    pub max_aliases: usize,
    /// Nodes of the expanded tree: every scalar, list and mapping, with each
    /// alias counted as the full copy of its anchor.
    pub max_nodes: usize,
    /// Bytes of scalar text in the expanded tree (a long scalar behind many
    /// aliases is as much of a bomb as many nodes).
    pub max_scalar_bytes: usize,
    /// Lists and mappings nested inside one another. Consumers of the tree
    /// (clone, drop, comparisons, the manifest walkers) recurse over it.
    pub max_depth: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_aliases: 50_000,
        max_nodes: 250_000,
        max_scalar_bytes: 64 * 1024 * 1024,
        max_depth: 128,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

pub(super) const BOMB_HINT: &str =
    "YAML alias bombs are refused; remove the aliases or split the file";

/// What a subtree costs: its nodes and scalar bytes, aliases expanded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Weight {
    pub(super) nodes: usize,
    pub(super) bytes: usize,
}

impl Weight {
    pub(super) fn since(self, earlier: Weight) -> Weight {
        Weight {
            nodes: self.nodes - earlier.nodes,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

/// Adds `weight` to what the stream has `spent`, refusing it (at `at`) when
/// that would pass a limit. `alias`: the weight is an anchor's copy.
pub(super) fn charge(
    spent: &mut Weight,
    limits: &Limits,
    weight: Weight,
    at: Pos,
    alias: bool,
) -> Result<(), SyntaxError> {
    let nodes = spent.nodes.saturating_add(weight.nodes);
    let bytes = spent.bytes.saturating_add(weight.bytes);
    let exceeded = if nodes > limits.max_nodes {
        Some((limits.max_nodes, "nodes"))
    } else if bytes > limits.max_scalar_bytes {
        Some((limits.max_scalar_bytes, "bytes of text"))
    } else {
        None
    };
    if let Some((limit, unit)) = exceeded {
        let message = if alias {
            format!("alias expansion exceeds {limit} {unit} — {BOMB_HINT}")
        } else {
            format!("the YAML stream has more than {limit} {unit} — split the file")
        };
        return Err(limit_error(at, message));
    }
    *spent = Weight { nodes, bytes };
    Ok(())
}

pub(super) fn limit_error(at: Pos, message: String) -> SyntaxError {
    SyntaxError {
        line: at.line,
        column: at.column,
        message,
        kind: ErrorKind::Limit,
    }
}
