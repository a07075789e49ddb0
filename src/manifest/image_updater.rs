//! Argo CD Image Updater's git write-back file, `.argocd-source-<app>.yaml`
//! next to the app's sources: `kustomize.images` is a list of kustomize
//! image strings (`[old=]new[:tag][@digest]`, as in `kustomize edit set
//! image`) that Argo CD applies over the manifests. Pinned like any
//! manifest, so the updater cannot write the bad tag back over a revert
//! unnoticed: the pin is what runs. (`helm.parameters` name/value pairs are
//! not pinned yet: the digest key depends on the chart.)

use std::path::Path;

use crate::yaml::Node;

use super::edit::ScalarAt;
use super::locate::{Located, Walk, Writable, is_template};
use super::{ImageSite, ManifestError, SiteKind};

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
pub(crate) fn sites(walk: &mut Walk, doc: &Node) -> Result<(), ManifestError> {
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
