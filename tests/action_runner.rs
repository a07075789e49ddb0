#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! The action's scripts under a simulated runner (`support::runner`):
//! `install.sh` against a release served on loopback (verified, tampered,
//! missing), and `run.sh` running the real binary — a breach on the
//! simulated Argo CD reverted through the action, its outputs and summary
//! read back as the runner reads them — with hostile inputs passed through
//! literally.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::argocd_sim::setup_with;
use support::http::Response;
use support::infra::{CONFIG, Sandbox};
use support::runner::{Runner, action_path, release_tarball, sha256_file, stderr, target_triple};
use support::scripted_http::ScriptedHttp;

const TAG: &str = "v0.1.0";

/// A copy of the freshly built binary: the target directory is shared, and
/// a build running beside the tests may replace the original meanwhile.
struct Binary {
    dir: tempfile::TempDir,
}

impl Binary {
    fn copy() -> Binary {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            env!("CARGO_BIN_EXE_revertbot"),
            dir.path().join("revertbot"),
        )
        .unwrap();
        Binary { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("revertbot")
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn sha256(bytes: &[u8]) -> String {
    revertbot::registry::sha256_digest(bytes)
        .unwrap()
        .to_string()
}

/// A small stand-in "binary" for the tests that must not install it.
fn script_binary(dir: &Path) -> PathBuf {
    let path = dir.join("revertbot");
    std::fs::write(&path, "#!/bin/sh\ntouch \"$HOME/owned\"\n").unwrap();
    path
}

/// Serves `files` (path → bytes) under /releases/download; 404 otherwise.
fn release_server(files: Vec<(String, Vec<u8>)>) -> ScriptedHttp {
    ScriptedHttp::start(
        move |req| match files.iter().find(|(path, _)| path == req.path()) {
            Some((_, body)) => Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/octet-stream".into())],
                body: body.clone(),
            },
            None => Response::text(404, "Not Found"),
        },
    )
}

fn asset_paths() -> (String, String) {
    let name = format!("revertbot-{TAG}-{}.tar.gz", target_triple());
    let tarball = format!("/releases/download/{TAG}/{name}");
    (tarball.clone(), format!("{tarball}.sha256"))
}

fn install_runner(server: &ScriptedHttp) -> Runner {
    Runner::new().env("REVERTBOT_VERSION", TAG).env(
        "REVERTBOT_RELEASE_BASE_URL",
        &format!("{}/releases/download", server.url),
    )
}

#[test]
fn install_downloads_verifies_and_puts_the_release_on_the_path() {
    let name = format!("revertbot-{TAG}-{}.tar.gz", target_triple());
    let binary = Binary::copy();
    let tarball = release_tarball(TAG, &target_triple(), &binary.path());
    let (tar_path, sum_path) = asset_paths();
    let sum = sha256_file(&tarball, &name);
    let server = release_server(vec![
        (tar_path.clone(), tarball),
        (sum_path.clone(), sum.into_bytes()),
    ]);
    let runner = install_runner(&server);
    let out = runner.run("install.sh", &runner.work(), &[]);
    assert!(out.status.success(), "install failed:\n{}", stderr(&out));
    assert!(stderr(&out).contains("verified"), "{}", stderr(&out));
    let entries = runner.path_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let installed = Path::new(&entries[0]).join("revertbot");
    assert!(
        installed.starts_with(runner.temp()),
        "{}",
        installed.display()
    );
    assert!(
        sha256(&std::fs::read(&installed).unwrap())
            == sha256(&std::fs::read(binary.path()).unwrap()),
        "the installed binary is not the released one"
    );
    let version = std::process::Command::new(&installed)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("revertbot "));
    assert_eq!(runner.outputs()["bin"], entries[0]);
    let seen: Vec<String> = server.seen().iter().map(|s| s.target.clone()).collect();
    assert_eq!(seen, [tar_path, sum_path]);
}

#[test]
fn a_tampered_release_is_refused_and_nothing_is_installed() {
    let name = format!("revertbot-{TAG}-{}.tar.gz", target_triple());
    // The checksum published for the genuine release; the tarball served
    // has the same name and layout, other bytes (a script).
    let genuine = b"the genuine release tarball";
    let fake = tempfile::tempdir().unwrap();
    let tampered = release_tarball(TAG, &target_triple(), &script_binary(fake.path()));
    let (tar_path, sum_path) = asset_paths();
    let server = release_server(vec![
        (tar_path, tampered),
        (sum_path, sha256_file(genuine, &name).into_bytes()),
    ]);
    let runner = install_runner(&server);
    let out = runner.run("install.sh", &runner.work(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("::error title=revertbot install::checksum mismatch")
            && err.contains("not installing"),
        "{err}"
    );
    assert!(runner.path_entries().is_empty());
    assert!(
        !runner.temp().join("revertbot").exists(),
        "nothing installed"
    );
    assert!(!runner.dir.path().join("home/owned").exists());
    // Nothing left behind either.
    let left: Vec<_> = std::fs::read_dir(runner.temp()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_missing_checksum_is_refused_and_plain_http_elsewhere_is_never_used() {
    let fake = tempfile::tempdir().unwrap();
    let tarball = release_tarball(TAG, &target_triple(), &script_binary(fake.path()));
    let (tar_path, _) = asset_paths();
    let server = release_server(vec![(tar_path, tarball)]);
    let runner = install_runner(&server);
    let out = runner.run("install.sh", &runner.work(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not installing an unverified binary"),
        "{}",
        stderr(&out)
    );
    assert!(runner.path_entries().is_empty());

    for url in [
        "http://example.com/releases",
        "http://127.0.0.1.example.com:80/x",
        "ftp://127.0.0.1:21/x",
    ] {
        let runner = Runner::new()
            .env("REVERTBOT_VERSION", TAG)
            .env("REVERTBOT_RELEASE_BASE_URL", url);
        let out = runner.run("install.sh", &runner.work(), &[]);
        assert_eq!(out.status.code(), Some(1), "{url}");
        assert!(
            stderr(&out).contains("must be an https URL"),
            "{url}: {}",
            stderr(&out)
        );
    }
}

/// No asset for this version (404): built from the action's checkout with
/// `cargo install --locked`. `cargo` here records its arguments and
/// installs the test binary, so the test does not rebuild the crate.
#[test]
fn no_release_asset_falls_back_to_cargo_install_locked() {
    let server = release_server(Vec::new());
    let runner = install_runner(&server);
    let stub = runner.dir.path().join("stub");
    std::fs::create_dir(&stub).unwrap();
    let log = runner.dir.path().join("cargo-args");
    // What the build "installs": a stand-in that answers the `--version`
    // install.sh asks.
    let built = runner.dir.path().join("built-revertbot");
    std::fs::write(&built, "#!/bin/sh\necho revertbot 0.1.0\n").unwrap();
    std::fs::write(
        stub.join("cargo"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nwhile [ \"$1\" != --root ]; do shift; done\nmkdir -p \"$2/bin\" && cp '{}' \"$2/bin/revertbot\"\n",
            log.display(),
            built.display()
        ),
    )
    .unwrap();
    for file in [stub.join("cargo"), built] {
        let status = std::process::Command::new("chmod")
            .arg("+x")
            .arg(file)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = runner.run("install.sh", &runner.work(), &[&stub]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
    let args = std::fs::read_to_string(&log).unwrap();
    let args: Vec<&str> = args.lines().collect();
    let root = runner.temp().join("revertbot-build");
    assert_eq!(
        args,
        [
            "install",
            "--locked",
            "--quiet",
            "--path",
            action_path().to_str().unwrap(),
            "--root",
            root.to_str().unwrap()
        ]
    );
    assert_eq!(runner.path_entries(), [root.join("bin").to_str().unwrap()]);
}

/// What run.sh passed: a stand-in `revertbot` that prints its argv.
fn argv_of(runner: Runner) -> Vec<String> {
    let stub = runner.dir.path().join("argv-bin");
    std::fs::create_dir(&stub).unwrap();
    std::fs::write(stub.join("revertbot"), "#!/bin/sh\nprintf '%s\\0' \"$@\"\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(stub.join("revertbot"))
        .status()
        .unwrap();
    let runner = runner.env("RB_INPUT_BIN", stub.to_str().unwrap());
    let out = runner.run("run.sh", &runner.work(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(str::to_owned)
        .collect()
}

#[test]
fn preflight_takes_base_and_head_from_the_pull_request_event() {
    let argv = argv_of(
        Runner::new()
            .event("pull_request", "webhook-pull_request-opened.json")
            .env("RB_INPUT_COMMAND", "preflight"),
    );
    assert_eq!(
        argv,
        [
            "--output=text",
            "preflight",
            "--base=f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            "--head=ec26c3e57ca3a959ca5aad62de7213c562f8c821"
        ]
    );
}

#[test]
fn a_repository_dispatch_names_the_app_in_its_client_payload() {
    let argv = argv_of(
        Runner::new()
            .event(
                "repository_dispatch",
                "webhook-repository_dispatch-revertbot-alert.json",
            )
            .env("RB_INPUT_COMMAND", "check")
            .env("RB_INPUT_DRY_RUN", "true"),
    );
    assert_eq!(
        argv,
        ["--output=text", "check", "--app=guestbook", "--dry-run"]
    );
    // The upstream payload has no app: every app is checked.
    let argv = argv_of(
        Runner::new()
            .event("repository_dispatch", "webhook-repository_dispatch.json")
            .env("RB_INPUT_COMMAND", "check"),
    );
    assert_eq!(argv, ["--output=text", "check"]);
}

#[test]
fn hostile_inputs_become_single_literal_arguments() {
    let reason = "$(touch pwned); rm -rf / `touch pwned2`\n::error::injected\n--force-guards";
    let argv = argv_of(
        Runner::new()
            .env("RB_INPUT_COMMAND", "revert")
            .env("RB_INPUT_APP", "--force-guards")
            .env("RB_INPUT_REASON", reason)
            .env(
                "RB_INPUT_COMMIT",
                "b0c4a37f00d1e5ac5b6a70b0f3c1b4d3e2a1f0c9, 25288f7",
            )
            .env("RB_INPUT_CONFIG", "a b/*.yaml")
            .env("RB_INPUT_ARGS", "--no-wait\n$(touch pwned3) *\n"),
    );
    assert_eq!(
        argv,
        [
            "--config=a b/*.yaml".to_owned(),
            "--output=text".to_owned(),
            "revert".to_owned(),
            "--app=--force-guards".to_owned(),
            "--mode=push".to_owned(),
            "--commit=b0c4a37f00d1e5ac5b6a70b0f3c1b4d3e2a1f0c9".to_owned(),
            "--commit=25288f7".to_owned(),
            format!("--reason={reason}"),
            "--no-wait".to_owned(),
            "$(touch pwned3) *".to_owned(),
        ]
    );
}

#[test]
fn invalid_inputs_are_refused_before_anything_runs() {
    for (name, value, message) in [
        ("RB_INPUT_COMMAND", "check; touch pwned", "unknown command"),
        ("RB_INPUT_COMMAND", "approve", "not available"),
        ("RB_INPUT_MODE", "pr-automerge", "mode must be push or pr"),
        (
            "RB_INPUT_COMMIT",
            "$(touch pwned)",
            "commit must be commit SHAs",
        ),
        ("RB_INPUT_DRY_RUN", "yes", "dry-run must be true or false"),
    ] {
        let runner = Runner::new()
            .env("RB_INPUT_COMMAND", "revert")
            .env("RB_INPUT_APP", "guestbook")
            .env(name, value)
            .env("RB_INPUT_BIN", "/nonexistent");
        let out = runner.run("run.sh", &runner.work(), &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}={value}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(message),
            "{name}={value}: {}",
            stderr(&out)
        );
        assert!(!runner.work().join("pwned").exists());
    }
}

/// The alert-triggered path end to end: a repository_dispatch for
/// guestbook, `check` through the action on the simulated Argo CD, the
/// revert pushed and confirmed Healthy, and the step outputs, summary and
/// masks as the runner would see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sh_reverts_a_breach_and_writes_the_outputs_and_summary() {
    const SIM_CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
    wait: { timeout: 20s }
";
    let s = setup_with(true, Duration::from_millis(300), || {
        Sandbox::with_config(SIM_CONFIG)
    })
    .await;
    s.until_crash_looping().await;
    let (sb, url, token) = (Arc::clone(&s.sb), s.url.clone(), s.token.clone());
    let result = Arc::new(Mutex::new(None));
    let done = Arc::clone(&result);
    tokio::task::spawn_blocking(move || {
        let runner = Runner::new()
            .event(
                "repository_dispatch",
                "webhook-repository_dispatch-revertbot-alert.json",
            )
            .env("RB_INPUT_COMMAND", "check")
            .env("RB_INPUT_OUTPUT", "json")
            .env("RB_INPUT_ARGOCD_SERVER", &url)
            .env("RB_INPUT_ARGOCD_TOKEN", &token)
            .env("RB_INPUT_GITHUB_TOKEN", sb.host.token());
        let binary = Binary::copy();
        let out = runner.run("run.sh", &sb.checkout(), &[binary.dir()]);
        *done.lock().unwrap() = Some((runner, out, sb.remote_tip(), sb.host.token().to_owned()));
    })
    .await
    .unwrap();
    let (runner, out, tip, git_token) = result.lock().unwrap().take().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // stdout is exactly the report: one JSON document.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(report["apps"][0]["action"], "pushed", "{report}");

    let outputs = runner.outputs();
    assert_eq!(outputs["decision"], "pushed", "{outputs:?}");
    assert_eq!(outputs["revert-sha"], tip);
    assert_eq!(outputs["healthy"], "true");
    assert_eq!(outputs["exit-code"], "0");
    assert_eq!(outputs["pr-url"], "");
    assert!(outputs["incident"].starts_with("guestbook"), "{outputs:?}");
    let from_output: serde_json::Value = serde_json::from_str(&outputs["report"]).unwrap();
    assert_eq!(from_output, report);

    let summary = runner.summary();
    assert!(
        summary.starts_with("## revertbot: revert pushed\n"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "[`{}`](https://github.com/acme/infra/commit/{tip})",
            &tip[..12]
        )),
        "{summary}"
    );
    assert!(summary.contains("| Healthy confirmed | yes |"), "{summary}");
    assert!(
        summary.contains("`ghcr.io/acme/guestbook:v1@sha256:"),
        "{summary}"
    );
    // Secrets are masked before anything else is printed.
    assert!(
        err.starts_with(&format!(
            "::add-mask::{git_token}\n::add-mask::{}\n",
            s.token
        )),
        "{err}"
    );
    assert!(
        err.contains("running: revertbot --output=json check --app=guestbook"),
        "{err}"
    );
    assert_eq!(s.sb.remote_reverts(), vec![tip]);
}

/// A manual revert through the action with shell metacharacters in every
/// free-text input: they reach the commit message byte for byte, and no
/// shell ever runs them.
#[test]
fn a_manual_revert_passes_metacharacters_through_literally() {
    let sb = Sandbox::with_config(CONFIG);
    sb.record_good();
    let reason =
        "v2 `crash-loops` $(touch pwned) | ; rm -rf ~ && touch pwned2 \"quoted\" 'single' *";
    let runner = Runner::new()
        .env("RB_INPUT_COMMAND", "revert")
        .env("RB_INPUT_APP", "guestbook")
        .env("RB_INPUT_DEPLOYED", &sb.bad)
        .env("RB_INPUT_REASON", reason)
        .env("RB_INPUT_ARGS", "--no-wait")
        .env("RB_INPUT_GITHUB_TOKEN", sb.host.token());
    let binary = Binary::copy();
    let out = runner.run("run.sh", &sb.checkout(), &[binary.dir()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let outputs = runner.outputs();
    assert_eq!(outputs["decision"], "pushed");
    let tip = sb.remote_tip();
    assert_eq!(outputs["revert-sha"], tip);
    // --no-wait: not confirmed, and not an error either.
    assert_eq!(outputs["healthy"], "false");
    assert!(!stderr(&out).contains("::error"), "{}", stderr(&out));
    let message = sb
        .host
        .git(support::infra::REMOTE, &["log", "-1", "--format=%B", &tip]);
    assert!(message.contains(reason), "{message}");
    for dir in [sb.checkout(), runner.work(), runner.dir.path().join("home")] {
        for file in ["pwned", "pwned2"] {
            assert!(!dir.join(file).exists(), "{} in {}", file, dir.display());
        }
    }
}
