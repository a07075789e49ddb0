//! `revertbot plan`: what a revert would do — culprits, diff, pins — without
//! changing anything (no commit, no push, no note).

use crate::report::{Action, Report};

use super::locate::{Request, locate};
use super::revert::{base_report, fill_plan, nothing_to_do, prepare};
use super::{Globals, Outcome, Result, Session, exit};

#[derive(Debug, Clone)]
pub struct PlanArgs {
    pub app: String,
    pub request: Request,
}

pub fn run(globals: &Globals, args: &PlanArgs) -> Result<Outcome> {
    let session = Session::open(globals, &args.app)?;
    Ok(plan(&session, args)?.warned(&session.config_warnings))
}

fn plan(session: &Session, args: &PlanArgs) -> Result<Outcome> {
    let _span = tracing::info_span!("plan", app = %args.app).entered();
    let located = locate(session, &args.request)?;
    let mut report = base_report(session, &located);
    report.action = Action::DryRun;
    if let Some(mut outcome) = nothing_to_do(session, &located, &mut report, false)? {
        for app in &mut outcome.report.apps {
            if app.action == Action::None {
                app.action = Action::DryRun;
            }
        }
        return Ok(outcome);
    }
    let prepared = prepare(session, &located, None, &[])?;
    fill_plan(&mut report, &prepared);
    report.diff = Some(session.repo.patch_text(&located.tip, prepared.built.tree)?);
    report.reason = format!(
        "would revert {} commit(s) on top of {}/{} ({}) and pin {} image(s); nothing was changed",
        located.search.culprits.len(),
        session.remote.display(),
        session.remote.branch,
        located.tip.short(),
        prepared.pinned.len()
    );
    Ok(Outcome {
        report: Report::single(report),
        exit_code: exit::OK,
    })
}
