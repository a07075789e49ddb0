//! The pure decision core: `judge` an observation, then `decide` what to do
//! about the verdict. No I/O, no clock (`now` is an input), no config or
//! adapter types: the shell converts those into the small input structs in
//! [`types`]. This is where "never make things worse" lives:
//!
//! - no data is never a breach (Flagger's false rollbacks on low traffic);
//! - pods that fail fast are a breach before Argo CD's 600 s progress
//!   deadline turns the app Degraded;
//! - a digest an earlier incident quarantined is a breach the moment it is
//!   deployed again (image-update bots re-promote bad versions);
//! - guards hold reverts that would loop (upgrade→rollback loops produced
//!   thousands of revisions), come too fast, or have no known-good to go
//!   back to;
//! - only `decide` can build the [`Approved`] proof a revert needs.

mod bad_images;
mod decision;
mod evidence;
mod guards;
mod judge;
mod types;

pub use bad_images::bad_images;
pub use decision::{Approved, DecideInput, Decision, EXIT_HELD, EXIT_OK, RevertIntent, decide};
pub use evidence::{Evidence, EvidenceClass, Seen, UnknownReason};
pub use guards::{Facts, FreezeSource, Guard, GuardKind};
pub use judge::{JudgeInput, Verdict, judge};
pub use types::{
    Approval, CulpritFact, HealthRules, LastKnownGood, Mode, PastRevert, PolicyRules, Quarantined,
    RevertLimit, RevertMode, RevertedFact, Severity, SignalResult, SignalState, Unavailable,
    UnavailableKind, fmt_duration, quarantine_from_incidents,
};
