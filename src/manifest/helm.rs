//! Helm values files: an image split over a repository key, a tag key and
//! optionally a digest key, as configured by a [`HelmImageRule`].

use crate::yaml::Node;

use super::edit::{MapAt, ScalarAt};
use super::locate::{Located, Walk, Writable, is_template};
use super::{HelmImageRule, ImageSite, ManifestError, SiteKind};

pub(crate) fn sites(
    walk: &mut Walk,
    doc: &Node,
    rule: &HelmImageRule,
) -> Result<(), ManifestError> {
    let Some(repo_node) = doc.get_path(&rule.repository) else {
        return Ok(());
    };
    let Some(repository) = repo_node.as_str() else {
        return Ok(());
    };
    let tag_node = doc.get_path(&rule.tag);
    let tag = tag_node.and_then(Node::as_str).filter(|t| !t.is_empty());
    let digest_node = rule.digest.as_deref().and_then(|p| doc.get_path(p));
    let digest = digest_node.and_then(Node::as_str).filter(|d| !d.is_empty());
    let mut text = repository.to_owned();
    if let Some(tag) = tag {
        text = format!("{text}:{tag}");
    }
    if let Some(d) = digest {
        text = format!("{text}@{d}");
    }
    if is_template(&text) {
        walk.templated(repo_node, &text);
        return Ok(());
    }
    let reference = walk.parse_ref(repo_node, &text)?;
    let writable = match (&rule.digest, tag_node.and_then(ScalarAt::of)) {
        (Some(digest_path), _) => digest_key(walk, doc, digest_path, digest_node),
        (None, Some(tag)) if tag.text.is_empty() => refuse_tagless(rule),
        (None, Some(tag)) => Writable::TagWithDigest(tag),
        (None, None) => refuse_tagless(rule),
    };
    walk.found.sites.push(Located {
        site: ImageSite {
            line: repo_node.span.start.line,
            column: repo_node.span.start.column,
            reference,
            kind: SiteKind::HelmValues {
                repository_key: rule.repository.clone(),
                tag_key: rule.tag.clone(),
                tag_set: tag.is_some(),
            },
        },
        writable,
        tag_set: tag.is_some(),
    });
    Ok(())
}

fn refuse_tagless(rule: &HelmImageRule) -> Writable {
    Writable::Refuse {
        what: format!("`{}` has no tag to add the digest to", rule.tag),
        hint: "set the tag, or give the rule a `digest` key path".to_owned(),
    }
}

fn digest_key(walk: &Walk, doc: &Node, digest_path: &str, existing: Option<&Node>) -> Writable {
    let (parent, key) = match digest_path.rsplit_once('.') {
        Some((parent, key)) => (doc.get_path(parent), key),
        None => (Some(doc), digest_path),
    };
    if existing.is_some_and(|n| n.as_scalar().is_none()) {
        return Writable::Refuse {
            what: format!("`{digest_path}` is not a plain value"),
            hint: format!("make `{digest_path}` a string, or fix the rule's digest path"),
        };
    }
    match parent.and_then(|p| MapAt::of(walk.source, p)) {
        Some(map) => Writable::DigestKey {
            existing: existing.and_then(ScalarAt::of),
            map,
            key: key.to_owned(),
        },
        None => Writable::Refuse {
            what: format!("there is no mapping to hold `{digest_path}`"),
            hint: format!("add `{digest_path}` to the values file, or fix the rule's digest path"),
        },
    }
}
