//! `revertbot record`: write a last-known-good record to the ledger by hand
//! (source `manual`). The health loop writes the automatic kind.

use crate::domain::ImageRef;
use crate::domain::ledger::{LkgRecord, NoteDoc, RecordSource, RecordedImage};
use crate::report::{Action, AppReport, PinnedImage, Report, Verdict};

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
    let _span = tracing::info_span!("record", app = %args.app, revision = %args.revision).entered();
    // Fetch (deepening a shallow clone) until the revision is on the branch.
    let located = locate(
        &session,
        &Request {
            deployed: Some(args.revision.clone()),
            lkg: Some(args.revision.clone()),
            commits: Vec::new(),
        },
    )?;
    let revision = located.deployed;
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

fn same_images(a: &[RecordedImage], b: &[RecordedImage]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(|x, y| x.image.cmp(&y.image));
    b.sort_by(|x, y| x.image.cmp(&y.image));
    a == b
}
