//! Kustomize `images:` entries (`name`, `newName`, `newTag`, `digest`), in
//! kustomization files and in Flux `Kustomization.spec.images`.

use crate::yaml::Node;

use super::edit::{MapAt, ScalarAt};
use super::locate::{Located, Walk, Writable, is_template};
use super::{ImageSite, ManifestError, SiteKind};

/// The sites of an `images:` list. Kustomize builds the image as
/// `(newName or name)[:newTag][@digest]`; pinning sets `digest` and keeps
/// `newTag`.
pub(crate) fn entries(walk: &mut Walk, images: &Node) -> Result<(), ManifestError> {
    for entry in images.as_seq().unwrap_or(&[]) {
        let Some(name) = entry.get("name").and_then(Node::as_str) else {
            continue;
        };
        let new_name = entry.get("newName").filter(|n| n.as_str().is_some());
        let name_node = new_name.or_else(|| entry.get("name"));
        let Some(name_node) = name_node else { continue };
        let value = |key: &str| {
            entry
                .get(key)
                .and_then(Node::as_str)
                .filter(|s| !s.is_empty())
        };
        let new_tag = value("newTag");
        let digest = value("digest");
        let mut text = value("newName").unwrap_or(name).to_owned();
        if let Some(tag) = new_tag {
            text = format!("{text}:{tag}");
        }
        if let Some(d) = digest {
            text = format!("{text}@{d}");
        }
        if is_template(&text) {
            walk.templated(name_node, &text);
            continue;
        }
        let reference = walk.parse_ref(name_node, &text)?;
        let digest_node = entry.get("digest");
        let writable = match MapAt::of(walk.source, entry) {
            _ if digest_node.is_some_and(|n| n.as_scalar().is_none()) => Writable::Refuse {
                what: "this entry's `digest:` is not a plain value".to_owned(),
                hint: "write `digest: sha256:…` or remove the key".to_owned(),
            },
            Some(map) => Writable::DigestKey {
                existing: digest_node.and_then(ScalarAt::of),
                map,
                key: "digest".to_owned(),
            },
            None => Writable::Refuse {
                what: "this kustomize image entry is not a mapping".to_owned(),
                hint: "write it as `- name: …` with `newTag:` / `digest:` keys".to_owned(),
            },
        };
        walk.found.sites.push(Located {
            site: ImageSite {
                line: name_node.span.start.line,
                column: name_node.span.start.column,
                reference,
                kind: SiteKind::KustomizeImage {
                    name: name.to_owned(),
                    tag_set: new_tag.is_some(),
                },
            },
            writable,
            tag_set: new_tag.is_some(),
        });
    }
    Ok(())
}
