//! `revertbot watch`: `check` every interval until SIGTERM or Ctrl-C.
//!
//! A pushed revert's wait for Healthy (minutes) runs beside the cycles, not
//! inside one: the next cycles keep observing and reverting the other apps
//! meanwhile, and the app itself is reported as `confirming` until its wait
//! ends, when its final report (Healthy confirmed, or not) is emitted on its
//! own. At most [`MAX_WAITS`] waits run at once; a revert pushed beyond that
//! is confirmed when a slot frees.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::report::{AppReport, Report};

use super::check::{self, CheckArgs, PendingConfirm};
use super::controllers::Controllers;
use super::{CommandError, Globals, Result, Workspace, exit};

/// Waits for Healthy in flight at once.
const MAX_WAITS: usize = 8;

#[derive(Debug, Clone)]
pub struct WatchArgs {
    pub check: CheckArgs,
    pub interval: Duration,
}

type Wait<'a> = Pin<Box<dyn Future<Output = (String, AppReport, u8)> + 'a>>;

/// Runs until a signal. A signal lets the running cycle finish (a revert
/// half-pushed is never abandoned); waits in flight are dropped — their
/// reverts and incidents are already recorded, and the next run judges the
/// apps afresh. Every report (one per cycle, one per finished wait) goes to
/// `emit`.
pub async fn run(
    globals: &Globals,
    ws: Workspace,
    controllers: &Controllers,
    args: &WatchArgs,
    emit: &mut dyn FnMut(&Report),
) -> Result<u8> {
    // Register the handlers now: a signal that arrives during a cycle waits
    // for the cycle to finish instead of killing the process mid-push.
    let mut stop = Shutdown::register()?;
    // One workspace across cycles (config parsed and globs compiled once),
    // opened again only when the config file changes.
    let mut opened_at = config_mtime(globals);
    let mut ws = ws;
    let mut waits: FuturesUnordered<Wait<'_>> = FuturesUnordered::new();
    let mut queued: Vec<PendingConfirm> = Vec::new();
    // App → the report of its revert while the wait runs (or is queued).
    let mut confirming: HashMap<String, AppReport> = HashMap::new();
    loop {
        let started = tokio::time::Instant::now();
        let modified = config_mtime(globals);
        if opened_at != modified {
            match Workspace::open(globals) {
                Ok(reopened) => {
                    ws = reopened;
                    opened_at = modified;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the changed config; keeping the previous one")
                }
            }
        }
        // The cycle and the waits make progress together: a wait that ends
        // during the cycle is reported at once.
        let result = {
            let cycle = check::cycle(&ws, &args.check, controllers, confirming.clone());
            let mut cycle = std::pin::pin!(cycle);
            loop {
                tokio::select! {
                    result = &mut cycle => break result,
                    Some(done) = waits.next(), if !waits.is_empty() => {
                        finish(done, &mut confirming, &ws, emit);
                    }
                }
            }
        };
        match result {
            Ok((outcome, pushed)) => {
                emit(&outcome.report);
                for pending in pushed {
                    confirming.insert(pending.app().to_owned(), pending.pushed().clone());
                    queued.push(pending);
                }
            }
            Err(e) => tracing::error!(error = %e, "check cycle failed; trying again next cycle"),
        }
        start_waits(&mut queued, &mut waits, controllers);
        let next_cycle = tokio::time::sleep_until(started + args.interval);
        let mut next_cycle = std::pin::pin!(next_cycle);
        loop {
            tokio::select! {
                () = stop.recv() => {
                    if !waits.is_empty() || !queued.is_empty() {
                        tracing::warn!(
                            apps = ?confirming.keys().collect::<Vec<_>>(),
                            "stopping with reverts not yet confirmed Healthy; the next run judges these apps again"
                        );
                    }
                    tracing::info!("stopping: signal received");
                    return Ok(exit::OK);
                }
                () = &mut next_cycle => break,
                Some(done) = waits.next(), if !waits.is_empty() => {
                    finish(done, &mut confirming, &ws, emit);
                    start_waits(&mut queued, &mut waits, controllers);
                }
            }
        }
    }
}

/// Starts queued waits while there is room.
fn start_waits<'a>(
    queued: &mut Vec<PendingConfirm>,
    waits: &mut FuturesUnordered<Wait<'a>>,
    controllers: &'a Controllers,
) {
    while waits.len() < MAX_WAITS && !queued.is_empty() {
        let pending = queued.remove(0);
        waits.push(Box::pin(async move {
            let app = pending.app().to_owned();
            let (report, code) = pending.confirm(controllers).await;
            (app, report, code)
        }));
    }
}

/// A wait ended: its report goes out on its own, and the app is judged
/// again from the next cycle.
fn finish(
    (app, report, code): (String, AppReport, u8),
    confirming: &mut HashMap<String, AppReport>,
    ws: &Workspace,
    emit: &mut dyn FnMut(&Report),
) {
    confirming.remove(&app);
    tracing::info!(app = %app, healthy = report.healthy_confirmed, exit = code, "revert wait ended");
    let mut done = Report::single(report);
    done.warnings = ws.config_warnings.to_vec();
    emit(&done);
}

fn config_mtime(globals: &Globals) -> Option<SystemTime> {
    std::fs::metadata(&globals.config)
        .and_then(|m| m.modified())
        .ok()
}

struct Shutdown {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn register() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let register = |kind| signal(kind).map_err(CommandError::io("cannot handle signals"));
        Ok(Self {
            term: register(SignalKind::terminate())?,
            interrupt: register(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
