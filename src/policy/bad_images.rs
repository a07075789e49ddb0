//! What an incident quarantines: exactly the images the culprits brought in
//! and the failing pods ran, by digest. Later runs treat every quarantined
//! digest as a re-promotion breach, so a good image in this list would make
//! the healed app look broken again: the last-known-good's digests never
//! enter it, and neither does a bare tag (a tag names no content).

use crate::domain::ledger::RecordedImage;
use crate::domain::{Digest, ImageRef};

/// The images to quarantine for one incident.
///
/// - `before`: the app's image references at the revision before the
///   culprits (the last-known-good, or the oldest culprit's parent);
/// - `deployed`: the app's image references at the deployed revision;
/// - `live`: what the current pods run (`image as written`, digest);
/// - `good`: the last-known-good digests.
///
/// A reference counts as introduced when the deployed revision has it and
/// the revision before did not (same spelling). Its digest is bad when it
/// carries one; the pods' digest is bad when they run an introduced
/// reference. Nothing in `good` is ever returned.
pub fn bad_images(
    before: &[ImageRef],
    deployed: &[ImageRef],
    live: &[(String, Digest)],
    good: &[Digest],
) -> Vec<RecordedImage> {
    let introduced: Vec<&ImageRef> = deployed
        .iter()
        .filter(|r| !before.iter().any(|b| b.original() == r.original()))
        .collect();
    let mut out: Vec<RecordedImage> = Vec::new();
    let mut add = |reference: &ImageRef, digest: &Digest| {
        if good.contains(digest) || out.iter().any(|b| &b.digest == digest) {
            return;
        }
        out.push(RecordedImage {
            image: reference.pinned(digest),
            digest: digest.clone(),
        });
    };
    for reference in &introduced {
        if let Some(digest) = reference.digest() {
            add(reference, digest);
        }
    }
    for (image, digest) in live {
        let Ok(running) = image.parse::<ImageRef>() else {
            continue;
        };
        if let Some(reference) = introduced.iter().find(|r| same_image(r, &running)) {
            add(reference, digest);
        }
    }
    out
}

/// The pod runs what the manifest says: same repository, and the same tag
/// (or digest) when the manifest names one.
///
/// Stricter than [`ImageRef::same_name_and_tag`] on purpose: when both carry
/// a digest it decides, as the same tag at another digest is other content.
fn same_image(manifest: &ImageRef, running: &ImageRef) -> bool {
    match (manifest.digest(), running.digest()) {
        (Some(a), Some(b)) => manifest.same_name(running) && a == b,
        _ => manifest.same_name_and_tag(running),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }
    fn r(s: &str) -> ImageRef {
        s.parse().unwrap()
    }

    #[test]
    fn the_lkg_tag_and_untouched_images_are_never_bad() {
        let before = [r("ghcr.io/acme/guestbook:v1"), r("redis:7")];
        let deployed = [r("ghcr.io/acme/guestbook:v2"), r("redis:7")];
        let live = vec![
            ("ghcr.io/acme/guestbook:v2".to_owned(), d('b')),
            // The sidecar's tag moved on its own: no culprit touched it.
            ("redis:7".to_owned(), d('c')),
        ];
        let bad = bad_images(&before, &deployed, &live, &[d('a')]);
        assert_eq!(
            bad,
            vec![RecordedImage {
                image: format!("ghcr.io/acme/guestbook:v2@{}", d('b')),
                digest: d('b'),
            }]
        );
    }

    #[test]
    fn a_pinned_digest_the_culprit_wrote_is_bad_even_before_pods_run_it() {
        let before = [r(&format!("app:v1@{}", d('a')))];
        let deployed = [r(&format!("app:v2@{}", d('b')))];
        let bad = bad_images(&before, &deployed, &[], &[d('a')]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].digest, d('b'));
    }

    #[test]
    fn good_digests_never_enter_the_list() {
        // A tag re-pointed back at the good build is running the LKG bits.
        let before = [r("app:v1")];
        let deployed = [r("app:v2")];
        let live = vec![("app:v2".to_owned(), d('a'))];
        assert!(bad_images(&before, &deployed, &live, &[d('a')]).is_empty());
    }

    #[test]
    fn a_config_only_culprit_quarantines_nothing() {
        let refs = [r("app:v1")];
        let live = vec![("app:v1".to_owned(), d('b'))];
        assert!(bad_images(&refs, &refs, &live, &[d('a')]).is_empty());
    }

    #[test]
    fn docker_hub_spellings_match() {
        let before = [r("nginx:1.25")];
        let deployed = [r("nginx:1.27")];
        let live = vec![("docker.io/library/nginx:1.27".to_owned(), d('e'))];
        let bad = bad_images(&before, &deployed, &live, &[]);
        assert_eq!(bad[0].image, format!("nginx:1.27@{}", d('e')));
    }
}
