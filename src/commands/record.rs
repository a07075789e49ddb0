//! `revertbot record`: write a last-known-good record to the ledger by hand
//! (source `manual`). The health loop writes the automatic kind.

use crate::domain::ledger::{LkgRecord, NoteDoc, RecordSource, RecordedImage};
use crate::domain::{Digest, ImageRef};
use crate::report::{Action, AppReport, PinnedImage, Report, Verdict};

use super::check::facts::{LedgerIndex, manifest_images};
use super::locate::{Request, locate};
use super::{CommandError, Globals, Outcome, Result, Session, exit};

#[derive(Debug, Clone)]
pub struct RecordArgs {
    pub app: String,
    pub revision: String,
    pub images: Vec<String>,
}

pub fn run(globals: &Globals, args: &RecordArgs) -> Result<Outcome> {
    let images = parse_images(&args.images)?;
    let session = Session::open(globals, &args.app)?;
    Ok(record(&session, args, images)?.warned(&session.config_warnings))
}

fn record(session: &Session, args: &RecordArgs, images: Vec<RecordedImage>) -> Result<Outcome> {
    let _span = tracing::info_span!("record", app = %args.app, revision = %args.revision).entered();
    // Fetch (deepening a shallow clone) until the revision is on the branch.
    let located = locate(
        session,
        &Request {
            deployed: Some(args.revision.clone()),
            lkg: Some(args.revision.clone()),
            commits: Vec::new(),
        },
    )?;
    let revision = located.deployed;
    let manifest = manifest_images(session, &revision)?;
    let (images, overridden) = prefer_manifest_pins(images, &manifest);
    for o in &overridden {
        tracing::warn!(
            image = %o.image,
            given = %o.given,
            pinned = %o.pinned,
            "the manifests pin another digest for this image at {}; recording the pinned one (it is what runs)",
            revision.short()
        );
    }
    refuse_quarantined(session, &images)?;
    let mut report = AppReport::new(session.app_name.as_str());
    report.verdict = Verdict::Healthy;
    report.deployed_revision = Some(revision.to_string());
    report.last_known_good = Some(revision.to_string());
    report.last_known_good_source = Some("manual".to_owned());
    report.pinned_images = images
        .iter()
        .map(|i| PinnedImage {
            image: i.image.clone(),
            digest: i.digest.to_string(),
        })
        .collect();

    let existing = session
        .repo
        .read_note(session.repo.upstream_notes(), &revision)?;
    let unchanged = existing
        .as_ref()
        .and_then(|doc| doc.latest_lkg(&session.app_name))
        .is_some_and(|r| same_images(&r.images, &images));
    if unchanged {
        report.reason = format!(
            "{} is already recorded as last-known-good with these images; nothing written",
            revision.short()
        );
        return Ok(Outcome {
            report: Report::single(report),
            exit_code: exit::OK,
        });
    }
    let mut doc = NoteDoc::new();
    doc.lkg.push(LkgRecord {
        app: session.app_name.clone(),
        revision: revision.clone(),
        images,
        source: RecordSource::Manual,
        recorded_at: jiff::Timestamp::now(),
    });
    session.repo.write_note(&session.remote, &revision, &doc)?;
    report.action = Action::Recorded;
    report.reason = format!(
        "recorded {} as last-known-good for {} in {}",
        revision.short(),
        session.app_name,
        crate::domain::ledger::NOTES_REF
    );
    for o in &overridden {
        report.reason.push_str(&format!(
            "; {} is pinned to {} in the manifests, so that digest was recorded instead of --image's {}",
            o.image, o.pinned, o.given
        ));
    }
    Ok(Outcome {
        report: Report::single(report),
        exit_code: exit::OK,
    })
}

/// `--image name:tag@sha256:…`: the digest is the point of a record.
fn parse_images(raw: &[String]) -> Result<Vec<RecordedImage>> {
    if raw.is_empty() {
        return Err(CommandError::Usage(
            "record needs at least one --image NAME:TAG@sha256:HEX — the digests the app ran while healthy".to_owned(),
        ));
    }
    let mut out = Vec::new();
    for text in raw {
        let reference: ImageRef = text
            .parse()
            .map_err(|e| CommandError::Usage(format!("--image {text}: {e}")))?;
        let Some(digest) = reference.digest().cloned() else {
            return Err(CommandError::Usage(format!(
                "--image {text} has no digest — give NAME:TAG@sha256:<64 hex> (a tag alone can be re-pointed, which is what revertbot protects against)"
            )));
        };
        let image = text.split('@').next().unwrap_or(text).to_owned();
        out.push(RecordedImage { image, digest });
    }
    out.sort_by(|a, b| a.image.cmp(&b.image));
    out.dedup();
    Ok(out)
}

/// A `--image` digest that the manifests contradict.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Overridden {
    image: String,
    given: Digest,
    pinned: Digest,
}

/// A digest pinned in the manifest is what the cluster runs, whatever the
/// command line says: keep the pin, and say so.
fn prefer_manifest_pins(
    images: Vec<RecordedImage>,
    manifest: &[ImageRef],
) -> (Vec<RecordedImage>, Vec<Overridden>) {
    let mut overridden = Vec::new();
    let images = images
        .into_iter()
        .map(|mut img| {
            let Ok(given) = img.image.parse::<ImageRef>() else {
                return img;
            };
            let pin = manifest
                .iter()
                .find_map(|m| m.digest().filter(|_| m.same_name_and_tag(&given)));
            if let Some(pinned) = pin
                && pinned != &img.digest
            {
                overridden.push(Overridden {
                    image: img.image.clone(),
                    given: img.digest.clone(),
                    pinned: pinned.clone(),
                });
                img.digest = pinned.clone();
            }
            img
        })
        .collect();
    (images, overridden)
}

/// A digest an incident quarantined is never last-known-good.
fn refuse_quarantined(session: &Session, images: &[RecordedImage]) -> Result<()> {
    let ledger = LedgerIndex::load(&session.repo)?;
    let quarantine = crate::policy::quarantine_from_incidents(ledger.incidents(&session.app_name));
    for img in images {
        if let Some(q) = quarantine.iter().find(|q| q.digest == img.digest) {
            return Err(CommandError::Usage(format!(
                "--image {}: digest {} was quarantined by incident {} (it ran in a breach) — record the digest the app ran while healthy",
                img.image, img.digest, q.incident
            )));
        }
    }
    Ok(())
}

fn same_images(a: &[RecordedImage], b: &[RecordedImage]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(|x, y| x.image.cmp(&y.image));
    b.sort_by(|x, y| x.image.cmp(&y.image));
    a == b
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
    fn a_manifest_pin_wins_over_the_command_line() {
        let manifest: Vec<ImageRef> = vec![
            format!("ghcr.io/acme/guestbook:v1@{}", d('a'))
                .parse()
                .unwrap(),
            "redis:7".parse().unwrap(),
        ];
        let given = vec![
            RecordedImage {
                image: "ghcr.io/acme/guestbook:v1".to_owned(),
                digest: d('b'),
            },
            RecordedImage {
                image: "redis:7".to_owned(),
                digest: d('c'),
            },
        ];
        let (kept, overridden) = prefer_manifest_pins(given, &manifest);
        assert_eq!(kept[0].digest, d('a'));
        assert_eq!(kept[1].digest, d('c'), "no pin, the given digest stays");
        assert_eq!(
            overridden,
            vec![Overridden {
                image: "ghcr.io/acme/guestbook:v1".to_owned(),
                given: d('b'),
                pinned: d('a')
            }]
        );
    }

    #[test]
    fn an_agreeing_pin_is_no_override() {
        let manifest: Vec<ImageRef> = vec![format!("app:v1@{}", d('a')).parse().unwrap()];
        let given = vec![RecordedImage {
            image: "app:v1".to_owned(),
            digest: d('a'),
        }];
        assert!(prefer_manifest_pins(given, &manifest).1.is_empty());
    }
}
