//! Argo CD Image Updater's git write-back file, `.argocd-source-<app>.yaml`
//! next to the app's sources: `kustomize.images` is a list of kustomize
//! image strings (`[old=]new[:tag][@digest]`, as in `kustomize edit set
//! image`) that Argo CD applies over the manifests. Pinned like any
//! manifest, so the updater cannot write the bad tag back over a revert
//! unnoticed: the pin is what runs.
//!
//! For Helm apps the updater writes `helm.parameters` instead: name/value
//! pairs that Argo CD passes as `--set`, by default `image.name` and
//! `image.tag` (argocd-image-updater `pkg/argocd/update.go`: the
//! `helm.image-name` / `helm.image-tag` annotations, defaulting to those
//! two). A pair whose names are the defaults or the key paths of one of the
//! app's `images.helm` rules is an image: its tag is pinned as `tag@digest`
//! (what a values rule without a `digest` key writes too). Other parameters
//! (`replicaCount`, …) are left alone.

use std::path::Path;

use crate::yaml::Node;

use super::edit::ScalarAt;
use super::locate::{Located, Walk, Writable, is_template};
use super::{ImageSite, ManifestError, PinRules, SiteKind};

/// The parameter names Image Updater writes unless told otherwise.
const DEFAULT_NAME_PARAM: &str = "image.name";
const DEFAULT_TAG_PARAM: &str = "image.tag";

/// Whether `path` is an Image Updater write-back file.
pub(crate) fn is_write_back_file(path: &str) -> bool {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| {
            n.starts_with(".argocd-source") && (n.ends_with(".yaml") || n.ends_with(".yml"))
        })
}

/// The sites of one document of a write-back file.
pub(crate) fn sites(walk: &mut Walk, doc: &Node, rules: &PinRules) -> Result<(), ManifestError> {
    kustomize_images(walk, doc)?;
    helm_parameters(walk, doc, rules)
}

fn kustomize_images(walk: &mut Walk, doc: &Node) -> Result<(), ManifestError> {
    let Some(images) = doc.get_path("kustomize.images").and_then(Node::as_seq) else {
        return Ok(());
    };
    for entry in images {
        let Some(scalar) = ScalarAt::of(entry) else {
            continue;
        };
        if scalar.text.is_empty() {
            continue;
        }
        if is_template(&scalar.text) {
            walk.templated(entry, &scalar.text);
            continue;
        }
        // `old=new:tag` renames the image the manifests use; the reference
        // that runs is the part after `=`.
        let (prefix, text) = match scalar.text.split_once('=') {
            Some((old, new)) => (format!("{old}="), new.to_owned()),
            None => (String::new(), scalar.text.clone()),
        };
        let reference = walk.parse_ref(entry, &text)?;
        let name = prefix
            .strip_suffix('=')
            .map_or_else(|| reference.name().to_owned(), str::to_owned);
        let tag_set = reference.tag().is_some() || reference.digest().is_some();
        walk.found.sites.push(Located {
            site: ImageSite {
                line: entry.span.start.line,
                column: entry.span.start.column,
                reference,
                kind: SiteKind::KustomizeImage { name, tag_set },
            },
            writable: Writable::PrefixedReference { scalar, prefix },
            tag_set,
        });
    }
    Ok(())
}

/// `helm.parameters` entries that name an image, pinned through their tag.
fn helm_parameters(walk: &mut Walk, doc: &Node, rules: &PinRules) -> Result<(), ManifestError> {
    let Some(params) = doc.get_path("helm.parameters").and_then(Node::as_seq) else {
        return Ok(());
    };
    // name → value node; a later entry wins, as with repeated `--set`.
    let mut values: Vec<(&str, &Node)> = Vec::new();
    for entry in params {
        if let (Some(name), Some(value)) =
            (entry.get("name").and_then(Node::as_str), entry.get("value"))
        {
            values.retain(|(n, _)| *n != name);
            values.push((name, value));
        }
    }
    let value_of = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let mut pairs: Vec<(&str, &str)> = vec![(DEFAULT_NAME_PARAM, DEFAULT_TAG_PARAM)];
    for rule in &rules.helm {
        let pair = (rule.repository.as_str(), rule.tag.as_str());
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    for (name_param, tag_param) in pairs {
        match (value_of(name_param), value_of(tag_param)) {
            (None, None) => {}
            (Some(name_node), tag_node) => {
                image_parameter(walk, name_node, tag_node, name_param, tag_param)?;
            }
            // A tag alone names no image; Image Updater writes both
            // unless the app was set up by hand, and the tag then
            // overrides the values' tag, which a values rule pins.
            (None, Some(_)) => {}
        }
    }
    Ok(())
}

fn image_parameter(
    walk: &mut Walk,
    name_node: &Node,
    tag_node: Option<&Node>,
    name_param: &str,
    tag_param: &str,
) -> Result<(), ManifestError> {
    let Some(name) = name_node.as_str().filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    let tag = tag_node
        .and_then(ScalarAt::of)
        .filter(|t| !t.text.is_empty());
    let text = match &tag {
        Some(tag) => format!("{name}:{}", tag.text),
        None => name.to_owned(),
    };
    if is_template(&text) {
        walk.templated(name_node, &text);
        return Ok(());
    }
    let reference = walk.parse_ref(name_node, &text)?;
    let tag_set = tag.is_some();
    let writable = match tag {
        Some(tag) => Writable::TagWithDigest(tag),
        None => Writable::Refuse {
            what: format!(
                "`{name_param}` is set without `{tag_param}`, so there is no tag to add the digest to"
            ),
            hint: format!("add the `{tag_param}` parameter to the write-back file"),
        },
    };
    walk.found.sites.push(Located {
        site: ImageSite {
            line: name_node.span.start.line,
            column: name_node.span.start.column,
            reference,
            kind: SiteKind::HelmParameter {
                name_param: name_param.to_owned(),
                tag_param: tag_param.to_owned(),
                tag_set,
            },
        },
        writable,
        tag_set,
    });
    Ok(())
}
