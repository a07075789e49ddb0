//! After a revert lands: make the controller pick it up now (refresh), get a
//! sync stuck retrying the bad revision out of the way, and poll until the
//! app is Synced and Healthy at the revert revision or a descendant. A
//! timeout is reported once; nothing here ever reverts again.

use std::time::Duration;

use crate::controller::{AppRef, Controller, ControllerError, Detail};
use crate::domain::CommitSha;
use crate::domain::health::{Health, Observation, OperationPhase, SyncStatus};

use super::progress::Progress;

#[derive(Debug, Clone)]
pub struct WaitTarget {
    /// The revert commit that must be deployed (or a descendant of it).
    pub revert: CommitSha,
    pub timeout: Duration,
    pub poll: Duration,
}

#[derive(Debug)]
pub enum WaitOutcome {
    Healthy {
        observation: Observation,
        waited: Duration,
    },
    TimedOut {
        last: Option<Observation>,
        /// What was still missing, for the report and the escalation.
        missing: String,
    },
}

/// Steps the wait took, for the report and the timeline.
#[derive(Debug, Default, Clone)]
pub struct WaitSteps {
    pub refreshed: bool,
    pub terminated_stuck_operation: bool,
    pub synced: bool,
    pub polls: u32,
    pub controller_errors: u32,
}

/// Whether the revert is deployed and healthy in `obs`. `contains` says
/// whether a deployed revision contains the revert (is it or a descendant).
pub fn recovered(obs: &Observation, contains: &impl Fn(&CommitSha) -> bool) -> Result<(), String> {
    let Some(deployed) = &obs.deployed else {
        return Err("the controller reports no deployed revision yet".to_owned());
    };
    if !contains(deployed) {
        return Err(format!("{} still runs {}", obs.source, deployed.short()));
    }
    if obs.sync != SyncStatus::Synced {
        return Err(format!("{} is {:?}", obs.source, obs.sync));
    }
    if obs.health != Health::Healthy {
        return Err(format!("{} is {:?}", obs.source, obs.health));
    }
    // Health computed before the last operation ended is stale.
    if let (Some(reconciled), Some(op)) = (obs.reconciled_at, &obs.operation)
        && let Some(finished) = op.finished_at
        && reconciled < finished
    {
        return Err(format!(
            "{} has not reconciled since the sync finished",
            obs.source
        ));
    }
    Ok(())
}

/// Whether every pod of the current revision is Ready, and if not, which.
fn pods_ready(pods: &[crate::domain::health::PodState]) -> Result<(), String> {
    let waiting: Vec<&str> = pods
        .iter()
        .filter(|p| p.current && !p.ready)
        .map(|p| p.name.as_str())
        .collect();
    match waiting.as_slice() {
        [] => Ok(()),
        [one] => Err(format!("pod {one} is not Ready yet")),
        [first, rest @ ..] => Err(format!(
            "pods {first} and {} more are not Ready yet",
            rest.len()
        )),
    }
}

/// An operation running on a revision that does not contain the revert: the
/// controller retrying the bad deploy, which would block the fix.
fn stuck_on_old_revision(obs: &Observation, contains: &impl Fn(&CommitSha) -> bool) -> bool {
    obs.operation.as_ref().is_some_and(|op| {
        matches!(op.phase, OperationPhase::Running)
            && op.revision.as_ref().is_some_and(|r| !contains(r))
    })
}

pub async fn wait_healthy<C: Controller>(
    controller: &C,
    app: &AppRef,
    target: &WaitTarget,
    contains: impl Fn(&CommitSha) -> bool,
    progress: &mut Progress,
) -> (WaitOutcome, WaitSteps) {
    let started = tokio::time::Instant::now();
    let deadline = started + target.timeout;
    let mut steps = WaitSteps::default();
    let mut last: Option<Observation> = None;
    let mut missing = "no answer from the controller yet".to_owned();
    progress.start(&format!(
        "waiting for {} to run {} and be Healthy",
        app.describe(),
        target.revert.short()
    ));

    // Refresh first: the controller sees the revert now instead of at its
    // next git poll (Argo CD: 3 minutes by default). A refresh that hangs
    // may use half the wait; polling gets the rest.
    let refresh_deadline = started + target.timeout / 2;
    match tokio::time::timeout_at(refresh_deadline, controller.refresh(app)).await {
        Ok(Ok(obs)) => {
            steps.refreshed = true;
            last = Some(obs);
        }
        Ok(Err(e)) => {
            steps.controller_errors += 1;
            tracing::warn!(app = app.app(), error = %e, "refresh failed; polling instead");
        }
        Err(_) => missing = "the refresh did not return before the timeout".to_owned(),
    }

    loop {
        if let Some(obs) = &last {
            // The controller's Healthy is not the pods' (Flux `wait: false`
            // is Ready once applied): confirmed only when the revert's own
            // pods are Ready too.
            let verdict = match recovered(obs, &contains) {
                Ok(()) => match controller.pods(app).await {
                    Ok(pods) => pods_ready(&pods),
                    Err(e) => {
                        steps.controller_errors += 1;
                        Err(format!("the pods could not be read: {e}"))
                    }
                },
                Err(why) => Err(why),
            };
            match verdict {
                Ok(()) => {
                    progress.finish(&format!(
                        "{} is Healthy at {}",
                        app.describe(),
                        target.revert.short()
                    ));
                    return (
                        WaitOutcome::Healthy {
                            observation: obs.clone(),
                            waited: started.elapsed(),
                        },
                        steps,
                    );
                }
                Err(why) => {
                    progress.update(&why);
                    missing = why;
                }
            }
            if !steps.terminated_stuck_operation && stuck_on_old_revision(obs, &contains) {
                steps.terminated_stuck_operation = true;
                tracing::info!(
                    app = app.app(),
                    "terminating an operation stuck on the bad revision"
                );
                if let Err(e) = controller.terminate_operation(app).await {
                    steps.controller_errors += 1;
                    tracing::warn!(app = app.app(), error = %e, "could not terminate the stuck operation");
                }
            }
            // Nothing is syncing the revert (manual sync policy, or we just
            // terminated the stuck one): ask for it, once.
            let deployed = obs.deployed.as_ref().is_some_and(&contains);
            let running = obs
                .operation
                .as_ref()
                .is_some_and(|op| op.phase == OperationPhase::Running);
            if !steps.synced
                && !deployed
                && (!running || steps.terminated_stuck_operation)
                && steps.polls >= 1
            {
                steps.synced = true;
                match controller.sync(app, &target.revert).await {
                    Ok(()) => {
                        tracing::info!(app = app.app(), revision = %target.revert.short(), "asked the controller to sync the revert")
                    }
                    Err(ControllerError::OperationInProgress { .. }) => steps.synced = false,
                    Err(e) => {
                        steps.controller_errors += 1;
                        tracing::warn!(app = app.app(), error = %e, "sync request failed");
                    }
                }
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            progress.finish(&format!(
                "not Healthy after {:?}: {missing}",
                target.timeout
            ));
            return (WaitOutcome::TimedOut { last, missing }, steps);
        }
        tokio::time::sleep_until((now + target.poll).min(deadline)).await;
        steps.polls += 1;
        match tokio::time::timeout_at(deadline, controller.observe(app, Detail::Summary)).await {
            Ok(Ok(obs)) => last = Some(obs),
            Ok(Err(e)) => {
                steps.controller_errors += 1;
                missing = format!("the controller did not answer: {e}");
                tracing::warn!(app = app.app(), error = %e, "observing during the wait failed");
            }
            Err(_) => missing = "the controller did not answer before the timeout".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;
    use crate::domain::AppName;
    use crate::domain::health::{Operation, PodState};

    const BAD: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const REVERT: &str = "cccccccccccccccccccccccccccccccccccccccc";

    /// Plays back observations in order and records the calls made.
    struct Scripted {
        observations: RefCell<VecDeque<Observation>>,
        /// Each `pods` call's answer, the last repeating; none: no pods.
        pods: RefCell<VecDeque<Vec<PodState>>>,
        calls: RefCell<Vec<String>>,
    }

    impl Scripted {
        fn new(script: Vec<Observation>) -> Self {
            Self {
                observations: RefCell::new(script.into()),
                pods: RefCell::new(VecDeque::new()),
                calls: RefCell::new(Vec::new()),
            }
        }

        fn with_pods(self, pods: Vec<Vec<PodState>>) -> Self {
            *self.pods.borrow_mut() = pods.into();
            self
        }

        fn next(&self, call: &str) -> Result<Observation, ControllerError> {
            self.calls.borrow_mut().push(call.to_owned());
            let mut queue = self.observations.borrow_mut();
            // The last observation repeats forever.
            let obs = if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            };
            obs.ok_or_else(|| ControllerError::Unreachable {
                server: "scripted".into(),
                doing: call.into(),
                message: "no script".into(),
            })
        }
    }

    impl Controller for Scripted {
        fn server(&self) -> String {
            "scripted".into()
        }
        async fn observe_all(
            &self,
            _: &[AppRef],
        ) -> Result<Vec<Result<Observation, ControllerError>>, ControllerError> {
            unreachable!("not used by the wait")
        }
        async fn observe(&self, _: &AppRef, _: Detail) -> Result<Observation, ControllerError> {
            self.next("observe")
        }
        async fn refresh(&self, _: &AppRef) -> Result<Observation, ControllerError> {
            self.next("refresh")
        }
        async fn sync(&self, _: &AppRef, revision: &CommitSha) -> Result<(), ControllerError> {
            self.calls
                .borrow_mut()
                .push(format!("sync {}", revision.short()));
            Ok(())
        }
        async fn terminate_operation(&self, _: &AppRef) -> Result<(), ControllerError> {
            self.calls.borrow_mut().push("terminate".into());
            Ok(())
        }
        async fn pods(&self, _: &AppRef) -> Result<Vec<PodState>, ControllerError> {
            self.calls.borrow_mut().push("pods".into());
            let mut queue = self.pods.borrow_mut();
            let pods = if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            };
            Ok(pods.unwrap_or_default())
        }
    }

    fn pod(name: &str, ready: bool) -> PodState {
        PodState {
            name: name.into(),
            namespace: "default".into(),
            created_at: None,
            ready,
            ready_since: None,
            waiting: Vec::new(),
            restart_count: 0,
            images: Vec::new(),
            current: true,
        }
    }

    fn obs(
        deployed: &str,
        health: Health,
        sync: SyncStatus,
        op: Option<(OperationPhase, &str)>,
    ) -> Observation {
        Observation {
            app: AppName("web".into()),
            source: "argocd:web".into(),
            deployed: Some(deployed.parse().unwrap()),
            target: None,
            health,
            health_message: None,
            sync,
            operation: op.map(|(phase, rev)| Operation {
                phase,
                revision: Some(rev.parse().unwrap()),
                started_at: None,
                finished_at: None,
                message: String::new(),
                retry_count: 2,
            }),
            reconciled_at: None,
            history: Vec::new(),
            pods: Vec::new(),
            apply_failure: None,
        }
    }

    fn app() -> AppRef {
        AppRef::ArgoCd {
            app: "web".into(),
            name: "web".into(),
            namespace: None,
        }
    }

    fn target(timeout_secs: u64) -> WaitTarget {
        WaitTarget {
            revert: REVERT.parse().unwrap(),
            timeout: Duration::from_secs(timeout_secs),
            poll: Duration::from_secs(5),
        }
    }

    fn is_revert(sha: &CommitSha) -> bool {
        sha.as_str() == REVERT
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_sync_of_the_bad_revision_is_terminated_and_the_revert_synced() {
        let controller = Scripted::new(vec![
            obs(
                BAD,
                Health::Degraded,
                SyncStatus::OutOfSync,
                Some((OperationPhase::Running, BAD)),
            ),
            obs(BAD, Health::Degraded, SyncStatus::OutOfSync, None),
            obs(
                REVERT,
                Health::Progressing,
                SyncStatus::Synced,
                Some((OperationPhase::Succeeded, REVERT)),
            ),
            obs(
                REVERT,
                Health::Healthy,
                SyncStatus::Synced,
                Some((OperationPhase::Succeeded, REVERT)),
            ),
        ]);
        let (outcome, steps) = wait_healthy(
            &controller,
            &app(),
            &target(600),
            is_revert,
            &mut Progress::Quiet,
        )
        .await;
        assert!(
            matches!(outcome, WaitOutcome::Healthy { .. }),
            "{outcome:?}"
        );
        assert!(steps.refreshed && steps.terminated_stuck_operation && steps.synced);
        assert_eq!(
            controller.calls.borrow().as_slice(),
            [
                "refresh",
                "terminate",
                "observe",
                "sync cccccccccccc",
                "observe",
                "observe",
                "pods"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_revert_that_does_not_heal_times_out_once() {
        let controller = Scripted::new(vec![obs(
            REVERT,
            Health::Degraded,
            SyncStatus::Synced,
            None,
        )]);
        let (outcome, steps) = wait_healthy(
            &controller,
            &app(),
            &target(60),
            is_revert,
            &mut Progress::Quiet,
        )
        .await;
        match outcome {
            WaitOutcome::TimedOut { missing, .. } => {
                assert!(missing.contains("Degraded"), "{missing}")
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        // Deployed already: no sync, no terminate; a bounded number of polls.
        assert!(!steps.synced && !steps.terminated_stuck_operation);
        assert_eq!(steps.polls, 12);
    }

    #[test]
    fn stale_health_is_not_recovery() {
        let mut o = obs(
            REVERT,
            Health::Healthy,
            SyncStatus::Synced,
            Some((OperationPhase::Succeeded, REVERT)),
        );
        let t = |s: i64| jiff::Timestamp::from_second(s).unwrap();
        o.operation.as_mut().unwrap().finished_at = Some(t(100));
        o.reconciled_at = Some(t(90));
        assert!(recovered(&o, &is_revert).is_err());
        o.reconciled_at = Some(t(110));
        assert!(recovered(&o, &is_revert).is_ok());
    }

    /// Flux with `wait: false` is Ready as soon as it applied the revert:
    /// Healthy is confirmed only once the revert's pods are Ready too.
    #[tokio::test(start_paused = true)]
    async fn healthy_waits_for_the_pods_of_the_revert_to_be_ready() {
        let healthy = obs(REVERT, Health::Healthy, SyncStatus::Synced, None);
        let controller = Scripted::new(vec![healthy.clone()]).with_pods(vec![
            vec![pod("web-new-1", false), pod("web-new-2", true)],
            vec![pod("web-new-1", true), pod("web-new-2", true)],
        ]);
        let (outcome, steps) = wait_healthy(
            &controller,
            &app(),
            &target(600),
            is_revert,
            &mut Progress::Quiet,
        )
        .await;
        assert!(
            matches!(outcome, WaitOutcome::Healthy { .. }),
            "{outcome:?}"
        );
        assert_eq!(steps.polls, 1);

        let never = Scripted::new(vec![healthy])
            .with_pods(vec![vec![pod("web-new-1", false), pod("web-new-2", false)]]);
        let (outcome, _) =
            wait_healthy(&never, &app(), &target(60), is_revert, &mut Progress::Quiet).await;
        match outcome {
            WaitOutcome::TimedOut { missing, .. } => assert_eq!(
                missing, "pods web-new-1 and 1 more are not Ready yet",
                "{missing}"
            ),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
}
