//! The readiness verdict as text for people.

use super::{Level, Readiness, Status, short};

/// The verdict for people: the checks, then what to change.
pub fn to_text(app: &str, r: &Readiness) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "readiness of `{app}` (at {}): {}",
        short(&r.source_revision),
        if r.ready { "READY" } else { "NOT READY" }
    );
    for c in &r.checks {
        let mark = match c.status {
            Status::Pass => "ok  ",
            Status::Fail => "FAIL",
            Status::Skipped => "skip",
        };
        let _ = writeln!(out, "  {mark}  {:<18} {}", c.name, c.detail);
    }
    if !r.images.is_empty() {
        let _ = writeln!(out, "images located:");
        for i in &r.images {
            let _ = writeln!(out, "  {}  {}", i.at, i.image);
        }
    }
    if !r.findings.is_empty() {
        let _ = writeln!(out, "what to know and change:");
        for f in &r.findings {
            let level = match f.level {
                Level::Blocker => "blocker",
                Level::Warning => "warning",
                Level::Note => "note",
            };
            let _ = writeln!(out, "  {level}: {}: {}", f.at, f.problem);
            if !f.fix.is_empty() {
                let _ = writeln!(out, "    fix: {}", f.fix);
            }
        }
    }
    out
}
