//! Which digests a last-known-good record gets, in order of trust: already
//! pinned in the manifest; what the healthy pods actually run (`imageID`);
//! what the registry says the tag points at now. A record is written only
//! when every image of the app has a digest: a partial record would pin some
//! images and leave the others on mutable tags.

use crate::domain::ledger::{RecordSource, RecordedImage};
use crate::domain::{Digest, ImageRef};

/// The digests found without asking the registry, and the images that still
/// need it.
#[derive(Debug, Default, PartialEq)]
pub struct DigestPick {
    pub resolved: Vec<(RecordedImage, RecordSource)>,
    pub unresolved: Vec<ImageRef>,
}

/// `manifest_images`: every image reference in the app's manifests at the
/// healthy revision. `live`: (image string of the pod spec, digest) of the
/// current pods.
pub fn pick_digests(manifest_images: &[ImageRef], live: &[(String, Digest)]) -> DigestPick {
    let mut pick = DigestPick::default();
    for image in manifest_images {
        let name = without_digest(image.original());
        if pick.resolved.iter().any(|(r, _)| r.image == name)
            || pick
                .unresolved
                .iter()
                .any(|u| u.original() == image.original())
        {
            continue;
        }
        if let Some(digest) = image.digest() {
            pick.resolved.push((
                RecordedImage {
                    image: name,
                    digest: digest.clone(),
                },
                RecordSource::Manifest,
            ));
            continue;
        }
        let running = live.iter().find(|(spec, _)| {
            spec.parse::<ImageRef>()
                .is_ok_and(|r| r.same_name_and_tag(image))
        });
        match running {
            Some((_, digest)) => pick.resolved.push((
                RecordedImage {
                    image: name,
                    digest: digest.clone(),
                },
                RecordSource::Controller,
            )),
            None => pick.unresolved.push(image.clone()),
        }
    }
    pick
}

/// The record's source: the least direct one any image needed.
pub fn record_source(sources: impl IntoIterator<Item = RecordSource>) -> RecordSource {
    let rank = |s: &RecordSource| match s {
        RecordSource::Manifest => 0,
        RecordSource::Controller => 1,
        RecordSource::Registry => 2,
        RecordSource::Manual => 3,
    };
    sources
        .into_iter()
        .max_by_key(rank)
        .unwrap_or(RecordSource::Manifest)
}

fn without_digest(reference: &str) -> String {
    reference.split('@').next().unwrap_or(reference).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[test]
    fn manifest_pins_win_then_live_pods_then_the_registry() {
        let images: Vec<ImageRef> = [
            format!("ghcr.io/acme/api:v1@{}", d('a')),
            "nginx:1.25".to_owned(),
            "ghcr.io/acme/worker:v3".to_owned(),
            "nginx:1.25".to_owned(),
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let live = vec![
            ("docker.io/library/nginx:1.25".to_owned(), d('b')),
            (format!("ghcr.io/acme/api:v1@{}", d('a')), d('c')),
            ("ghcr.io/acme/worker:v2".to_owned(), d('e')),
        ];
        let pick = pick_digests(&images, &live);
        assert_eq!(
            pick.resolved,
            vec![
                (
                    RecordedImage {
                        image: "ghcr.io/acme/api:v1".into(),
                        digest: d('a')
                    },
                    RecordSource::Manifest
                ),
                (
                    RecordedImage {
                        image: "nginx:1.25".into(),
                        digest: d('b')
                    },
                    RecordSource::Controller
                ),
            ]
        );
        // worker runs v2 in the pods, v3 in git: only the registry can say.
        assert_eq!(pick.unresolved.len(), 1);
        assert_eq!(pick.unresolved[0].original(), "ghcr.io/acme/worker:v3");
        assert_eq!(
            record_source(pick.resolved.iter().map(|(_, s)| *s)),
            RecordSource::Controller
        );
    }
}
