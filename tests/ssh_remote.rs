//! The real binary against an infra repo behind a real OpenSSH server
//! (`ssh://user@127.0.0.1:PORT/abs/path`), authenticating with the SSH agent
//! and checking the host key against `~/.ssh/known_hosts`: record, plan and
//! revert --mode push, and the ways SSH authentication goes wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::WorkRepo;
use support::infra::{BILLING, DEPLOY_V1, good_digest, stderr, stdout};
use support::repo::run;
use support::sshd::{SshAgent, Sshd, keygen};

const REPO: &str = "infra.git";

/// `.revertbot.yaml` whose remote is the SSH URL itself.
fn config(url: &str) -> String {
    format!(
        "\
version: 1
repo:
  remote: \"{url}\"
  branch: main
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: {{ app: guestbook }}
  - name: billing
    paths: [\"apps/billing/**\"]
    argocd: {{ app: billing }}
"
    )
}

/// History good → billing change → bad (guestbook v2, no readiness probe) on
/// the SSH server, and revertbot's checkout cloned over SSH.
struct SshInfra {
    sshd: Sshd,
    _dev: WorkRepo,
    bot: tempfile::TempDir,
    url: String,
    good: String,
    bad: String,
}

/// What the revertbot process gets for SSH.
#[derive(Clone, Copy)]
enum Agent<'a> {
    /// The server's agent, holding the authorized key.
    Authorized,
    Other(&'a SshAgent),
    /// `SSH_AUTH_SOCK` unset.
    None,
}

impl SshInfra {
    fn new() -> SshInfra {
        SshInfra::on(Sshd::start())
    }

    fn on(sshd: Sshd) -> SshInfra {
        let bare = sshd.create_bare(REPO);
        let url = sshd.url(&bare);
        let dev = WorkRepo::init();
        dev.write(".revertbot.yaml", config(&url));
        dev.write("apps/guestbook/deployment.yaml", DEPLOY_V1);
        dev.write("apps/billing/deployment.yaml", BILLING);
        let good = dev.commit("guestbook: first release, v1");
        dev.write(
            "apps/billing/deployment.yaml",
            BILLING.replace("2.3.0", "2.3.1"),
        );
        dev.commit("billing: 2.3.1");
        let bad_manifest = DEPLOY_V1.replace("guestbook:v1", "guestbook:v2").replace(
            "          readinessProbe:\n            httpGet: {path: /healthz, port: 80}\n",
            "",
        );
        dev.write("apps/guestbook/deployment.yaml", bad_manifest);
        let bad = dev.commit("guestbook: roll out v2");
        // The developers push over SSH with the git CLI (key file, no agent).
        run(dev
            .command()
            .env("GIT_SSH_COMMAND", sshd.git_ssh_command())
            .args(["push", "-q", &url, "main"]));
        let bot = tempfile::tempdir().expect("temp dir for the bot checkout");
        sshd.clone_into(REPO, &bot.path().join("infra"));
        SshInfra {
            sshd,
            _dev: dev,
            bot,
            url,
            good,
            bad,
        }
    }

    fn checkout(&self) -> PathBuf {
        self.bot.path().join("infra")
    }

    /// Runs `revertbot` in the checkout with a clean environment: `PATH`,
    /// `HOME` (with or without the pinned host key), the chosen agent, and
    /// the extra variables given. No `GITHUB_TOKEN` unless given.
    fn run_as(&self, args: &[&str], home: &Path, agent: Agent, env: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_revertbot"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("RUST_LOG", "revertbot=info")
            .current_dir(self.checkout())
            .args(args);
        match agent {
            Agent::Authorized => {
                cmd.env("SSH_AUTH_SOCK", self.sshd.auth_sock());
            }
            Agent::Other(agent) => {
                cmd.env("SSH_AUTH_SOCK", agent.auth_sock());
            }
            Agent::None => {}
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run revertbot")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_as(args, &self.sshd.home(), Agent::Authorized, &[])
    }

    fn json(&self, args: &[&str], expected_exit: i32) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(
            out.status.code(),
            Some(expected_exit),
            "revertbot {args:?}\nstdout:\n{}\nstderr:\n{}\nsshd log:\n{}",
            stdout(&out),
            stderr(&out),
            self.sshd.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn remote_tip(&self) -> String {
        self.sshd.rev_parse(REPO, "refs/heads/main").unwrap()
    }

    fn remote_note(&self, commit: &str) -> Value {
        let text = self
            .sshd
            .git(REPO, &["notes", "--ref", "revertbot", "show", commit]);
        serde_json::from_str(&text).expect("notes are JSON")
    }

    fn accepted_logins(&self) -> usize {
        self.sshd
            .log()
            .lines()
            .filter(|l| l.contains("Accepted publickey for"))
            .count()
    }
}

fn pinned_line() -> String {
    format!(
        "image: ghcr.io/acme/guestbook:v1@{} # revertbot-suspended {{\"$imagepolicy\": \"flux-system:guestbook\"}}",
        good_digest()
    )
}

/// The base64 parts of a key pair: the public blob and every line of the
/// private key's body.
fn key_material(private_key: &Path) -> Vec<String> {
    let private = std::fs::read_to_string(private_key).unwrap();
    let public = std::fs::read_to_string(private_key.with_extension("pub")).unwrap();
    let mut parts: Vec<String> = private
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_owned)
        .collect();
    parts.push(public.split_whitespace().nth(1).unwrap().to_owned());
    parts
}

#[test]
fn record_plan_and_revert_push_over_ssh_with_the_agent() {
    let infra = SshInfra::new();
    assert_eq!(infra.sshd.agent().list().len(), 1);
    let logins_before = infra.accepted_logins();

    // record: the ledger note goes to the server over SSH.
    let image = format!("ghcr.io/acme/guestbook:v1@{}", good_digest());
    let recorded = infra.json(
        &[
            "record",
            "--app",
            "guestbook",
            "--revision",
            &infra.good,
            "--image",
            &image,
        ],
        0,
    );
    assert_eq!(recorded["apps"][0]["action"], "recorded", "{recorded}");
    let lkg = infra.remote_note(&infra.good);
    assert_eq!(lkg["lkg"][0]["source"], "manual", "{lkg}");
    assert_eq!(
        lkg["lkg"][0]["images"][0]["digest"],
        good_digest().as_str(),
        "{lkg}"
    );

    // plan: reads over SSH, changes nothing.
    let tip = infra.remote_tip();
    let notes = infra.sshd.rev_parse(REPO, "refs/notes/revertbot");
    let plan = infra.json(&["plan", "--app", "guestbook", "--deployed", &infra.bad], 0);
    let app = &plan["apps"][0];
    assert_eq!(app["action"], "dry_run", "{plan}");
    assert_eq!(app["culprits"], serde_json::json!([infra.bad]));
    assert_eq!(app["last_known_good"], infra.good.as_str());
    assert_eq!(app["last_known_good_source"], "ledger");
    assert_eq!(app["pinned_images"][0]["digest"], good_digest().as_str());
    assert_eq!(infra.remote_tip(), tip);
    assert_eq!(infra.sshd.rev_parse(REPO, "refs/notes/revertbot"), notes);

    // revert --mode push: one revert commit on the server, with trailers,
    // the pinned digest and the incident note.
    let report = infra.json(
        &[
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--deployed",
            &infra.bad,
            "--mode",
            "push",
            "--reason",
            "v2 crash-loops",
        ],
        0,
    );
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pushed", "{report}");
    let revert = app["revert_commit"].as_str().unwrap().to_owned();
    assert_eq!(infra.remote_tip(), revert);
    assert_eq!(
        infra.sshd.git(REPO, &["rev-parse", &format!("{revert}^")]),
        tip
    );
    let reverts = infra.sshd.git(
        REPO,
        &["log", "--format=%H", "--grep=^Revertbot-Reverts:", "main"],
    );
    assert_eq!(reverts, revert, "exactly one revert commit");
    let manifest = infra.sshd.git(
        REPO,
        &["show", &format!("{revert}:apps/guestbook/deployment.yaml")],
    );
    assert!(manifest.contains(&pinned_line()), "{manifest}");
    assert!(manifest.contains("readinessProbe"), "{manifest}");
    let message = infra.sshd.git(REPO, &["log", "-1", "--format=%B", &revert]);
    for trailer in [
        "Revertbot-App: guestbook".to_owned(),
        format!("Revertbot-Reverts: {}", infra.bad),
        format!("Revertbot-Last-Known-Good: {}", infra.good),
        format!("Revertbot-Pinned-Image: {image}"),
        format!("Revertbot-Incident: guestbook-{}", &infra.bad[..12]),
    ] {
        assert!(message.contains(&trailer), "missing {trailer}:\n{message}");
    }
    let note = infra.remote_note(&revert);
    assert_eq!(note["incidents"][0]["app"], "guestbook", "{note}");
    assert_eq!(
        note["incidents"][0]["pinned_images"][0]["digest"],
        good_digest().as_str()
    );
    assert_eq!(infra.remote_note(&infra.good)["lkg"][0]["source"], "manual");

    // It all went through sshd, authenticated by the agent's key.
    assert!(
        infra.accepted_logins() > logins_before,
        "{}",
        infra.sshd.log()
    );
    assert!(infra.url.starts_with("ssh://"));
}

#[test]
fn refused_ssh_credentials_fail_fast_and_print_no_key_material() {
    let infra = SshInfra::new();
    let tip = infra.remote_tip();
    let empty = SshAgent::start();
    assert!(empty.list().is_empty());
    let stranger = SshAgent::start();
    let keys = tempfile::tempdir().unwrap();
    let stranger_key = keygen(&keys.path().join("stranger"));
    stranger.add(&stranger_key);
    let mut secrets = key_material(&infra.sshd.client_key());
    secrets.extend(key_material(&stranger_key));

    for (case, agent) in [
        ("an agent with no key", Agent::Other(&empty)),
        (
            "an agent with a key the server does not know",
            Agent::Other(&stranger),
        ),
        ("no agent at all", Agent::None),
    ] {
        let failed_before = infra.sshd.log().matches("Failed publickey").count();
        let out = infra.run_as(
            &[
                "-vv",
                "plan",
                "--app",
                "guestbook",
                "--deployed",
                &infra.bad,
            ],
            &infra.sshd.home(),
            agent,
            &[],
        );
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{case}:\n{all}");
        assert!(all.contains("refused the credentials"), "{case}:\n{all}");
        assert!(all.contains("127.0.0.1"), "{case}: names the remote\n{all}");
        for secret in &secrets {
            assert!(
                !all.contains(secret.as_str()),
                "{case}: key material in\n{all}"
            );
        }
        // Bounded: libgit2 offers the agent's keys once per credentials
        // callback, and the callback gives up after 3 calls.
        let failed = infra.sshd.log().matches("Failed publickey").count() - failed_before;
        assert!(
            failed <= 3,
            "{case}: {failed} refused keys\n{}",
            infra.sshd.log()
        );
        if matches!(agent, Agent::Other(a) if std::ptr::eq(a, &stranger)) {
            assert!(
                failed >= 1,
                "the agent's key was offered\n{}",
                infra.sshd.log()
            );
        }
    }
    assert_eq!(infra.remote_tip(), tip);
    assert_eq!(infra.sshd.rev_parse(REPO, "refs/notes/revertbot"), None);
}

#[test]
fn an_unknown_host_key_is_refused_and_nothing_is_sent() {
    let infra = SshInfra::new();
    let tip = infra.remote_tip();
    let empty_home = tempfile::tempdir().unwrap();
    let logins_before = infra.accepted_logins();
    let out = infra.run_as(
        &["plan", "--app", "guestbook", "--deployed", &infra.bad],
        empty_home.path(),
        Agent::Authorized,
        &[],
    );
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{all}");
    // A trust decision, reported as such (not retried as a network error).
    assert!(
        all.contains("host key") && all.contains("known_hosts"),
        "{all}"
    );
    assert!(!all.contains("retried"), "{all}");
    assert_eq!(
        infra.accepted_logins(),
        logins_before,
        "{}",
        infra.sshd.log()
    );
    assert_eq!(infra.remote_tip(), tip);
}

/// OpenSSH's stock config also offers `password`. libgit2 then allows
/// USER_PASS_PLAINTEXT as well as SSH_KEY: the agent must still be used, and
/// a `GITHUB_TOKEN` in the environment (as in GitHub Actions) must never be
/// sent to an SSH server as a password.
#[test]
fn a_server_that_also_offers_passwords_gets_the_agent_key_and_never_the_token() {
    let infra = SshInfra::on(Sshd::start_with(&["PasswordAuthentication yes"]));
    let token = "ghs_neverSentOverSshNeverSentOverSsh";
    for env in [&[][..], &[("GITHUB_TOKEN", token)][..]] {
        let out = infra.run_as(
            &["--output", "json", "plan", "--app", "guestbook"],
            &infra.sshd.home(),
            Agent::Authorized,
            env,
        );
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(
            out.status.code(),
            Some(4),
            "{env:?}: no last-known-good yet, so nothing to do:\n{all}\nsshd log:\n{}",
            infra.sshd.log()
        );
        assert!(!all.contains(token), "{all}");
    }
    let log = infra.sshd.log();
    assert!(!log.contains("password"), "a password was tried:\n{log}");
    assert!(!log.contains("x-access-token"), "{log}");
}
