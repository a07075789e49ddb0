//! The image decisions: what one image reference the pull request brings
//! in means, given the registry's answer, the ledger's records and the
//! quarantine. Pure, like the rest of `assess`.

use crate::domain::ledger::RecordedImage;
use crate::domain::{Digest, ImageRef};
use crate::policy::Quarantined;

use super::assess::{Check, Finding, Severity};
use super::inspect::SiteFacts;
use super::resolve::Resolution;

/// The finding, if any, for one introduced image reference of `app`:
///
/// - a digest (pinned, or resolved from the tag) that an incident
///   quarantined: an error for the incident's own app, a warning for
///   another app's incident (the same bits crashed elsewhere);
/// - a pinned reference otherwise: nothing;
/// - a tag whose current digest the ledger recorded for that tag: nothing;
/// - a tag the ledger recorded at other digests: `tag_moved`, a warning;
/// - a tag the ledger never recorded: `mutable_tag`, a warning, with the
///   digest it resolves to and the pinned form;
/// - a tag the registry says does not exist: `missing_tag`, an error (the
///   pods could not pull it);
/// - a tag the registry could not be asked about: `unresolved_tag`, a
///   warning (an error when the ledger has no record of the tag either).
pub fn image_finding(
    site: &SiteFacts,
    app: &str,
    resolution: Option<&Resolution>,
    recorded: &[RecordedImage],
    quarantine: &[(String, Quarantined)],
) -> Option<Finding> {
    let reference = &site.reference;
    let same_tag: Vec<&Digest> = recorded_digests(recorded, reference);
    let lkg_hint = || match last_known_good(recorded, reference) {
        Some(r) => format!("pin the last-known-good `{}`, or a new build", r.pinned()),
        None => "pin a build that is not quarantined".to_owned(),
    };
    let digest = match reference.digest() {
        Some(d) => Some(d.clone()),
        None => match resolution {
            Some(Resolution::Resolved(d)) => Some(d.clone()),
            _ => None,
        },
    };
    if let Some(d) = &digest
        && let Some(finding) = repromotion(reference, d, app, quarantine, &lkg_hint)
    {
        return Some(finding);
    }
    if reference.digest().is_some() {
        return None;
    }
    let tag = reference.effective_tag().unwrap_or("latest");
    match resolution {
        Some(Resolution::Resolved(d)) if same_tag.contains(&d) => None,
        Some(Resolution::Resolved(d)) if !same_tag.is_empty() => Some(Finding::new(
            Severity::Warning,
            Check::TagMoved,
            format!(
                "`{reference}` now resolves to {d}, but revertbot recorded the tag `{tag}` as last-known-good at {}: it was re-pointed since — pin the build you mean: `{}` (recorded) or `{}` (current)",
                same_tag[0],
                reference.pinned(same_tag[0]),
                reference.pinned(d)
            ),
        )),
        Some(Resolution::Resolved(d)) => Some(Finding::new(
            Severity::Warning,
            Check::MutableTag,
            format!(
                "`{reference}` is a mutable tag with no digest, and revertbot's ledger has no record of it: the registry resolves it to {d} now, and the tag can be re-pointed later — pin it as `{}` so a revert can restore exactly this build",
                reference.pinned(d)
            ),
        )),
        Some(Resolution::NotFound(why)) => Some(Finding::new(
            Severity::Error,
            Check::MissingTag,
            format!(
                "`{reference}` cannot be resolved: the registry does not have it ({why}) — the pods could not pull it; push the image or fix the tag"
            ),
        )),
        Some(Resolution::Unavailable(why)) => Some(unresolved(reference, why, &same_tag)),
        None => Some(unresolved(
            reference,
            "the registry was not asked",
            &same_tag,
        )),
    }
}

fn unresolved(reference: &ImageRef, why: &str, same_tag: &[&Digest]) -> Finding {
    match same_tag.first() {
        Some(d) => Finding::new(
            Severity::Warning,
            Check::UnresolvedTag,
            format!(
                "`{reference}` cannot be resolved in the registry ({why}); revertbot's ledger recorded it at {d} — pin it as `{}`",
                reference.pinned(d)
            ),
        ),
        None => Finding::new(
            Severity::Error,
            Check::UnresolvedTag,
            format!(
                "`{reference}` cannot be resolved in the registry ({why}), and revertbot's ledger has no record of it: nobody can tell which build this tag deploys — check the registry address and credentials, or pin the reference as `{}@sha256:…`",
                reference.original()
            ),
        ),
    }
}

fn repromotion(
    reference: &ImageRef,
    digest: &Digest,
    app: &str,
    quarantine: &[(String, Quarantined)],
    lkg_hint: &dyn Fn() -> String,
) -> Option<Finding> {
    let own = quarantine
        .iter()
        .find(|(a, q)| a == app && &q.digest == digest);
    let other = quarantine.iter().find(|(_, q)| &q.digest == digest);
    let how = if reference.digest().is_some() {
        format!("`{reference}` is")
    } else {
        format!("`{reference}` resolves to {digest}, which is")
    };
    match (own, other) {
        (Some((_, q)), _) => Some(Finding::new(
            Severity::Error,
            Check::Repromotion,
            format!(
                "{how} quarantined: incident {} recorded it as bad (it ran in a breach of `{app}`) — re-promoting it ships the bad build again; {}",
                q.incident,
                lkg_hint()
            ),
        )),
        (None, Some((other_app, q))) => Some(Finding::new(
            Severity::Warning,
            Check::Repromotion,
            format!(
                "{how} quarantined by incident {} of app `{other_app}` (it ran in a breach there) — make sure it is good for `{app}`; {}",
                q.incident,
                lkg_hint()
            ),
        )),
        (None, None) => None,
    }
}

/// Digests the ledger recorded for the reference's image and tag, newest
/// record first, each once.
fn recorded_digests<'a>(recorded: &'a [RecordedImage], reference: &ImageRef) -> Vec<&'a Digest> {
    let mut out: Vec<&Digest> = Vec::new();
    for r in recorded {
        let Ok(image) = r.image.parse::<ImageRef>() else {
            continue;
        };
        if image.same_name_and_tag(reference) && !out.contains(&&r.digest) {
            out.push(&r.digest);
        }
    }
    out
}

/// The newest last-known-good record of the reference's image (any tag).
fn last_known_good<'a>(
    recorded: &'a [RecordedImage],
    reference: &ImageRef,
) -> Option<&'a RecordedImage> {
    recorded.iter().find(|r| {
        r.image
            .parse::<ImageRef>()
            .is_ok_and(|image| image.same_name(reference))
    })
}
