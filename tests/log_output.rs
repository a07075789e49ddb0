#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! What a person or a log pipeline sees on stderr: JSON lines with one key
//! each (no second `message` hiding the event text), no colour codes when
//! stderr is not a terminal, and error texts that say each cause once and
//! call a garbled answer an answer, not "cannot reach".

mod support;

use std::collections::HashSet;
use std::fmt;
use std::process::Output;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use support::http::Response;
use support::infra::{Sandbox, stderr, stdout};
use support::scripted_http::ScriptedHttp;

/// A JSON value that fails to deserialize when any object in it repeats a
/// key (serde_json itself silently keeps the last one).
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
}

#[test]
fn the_duplicate_key_check_can_fail() {
    assert!(serde_json::from_str::<NoDuplicateKeys>(r#"{"a":1,"b":{"c":[{"d":1}]}}"#).is_ok());
    assert!(serde_json::from_str::<NoDuplicateKeys>(r#"{"message":"a","message":"b"}"#).is_err());
    assert!(serde_json::from_str::<NoDuplicateKeys>(r#"{"s":{"x":1,"x":2}}"#).is_err());
}

/// Every stderr line of a `--log-format json` run, parsed strictly; the
/// final `error:` line is plain text by contract.
fn json_log_lines(out: &Output) -> Vec<serde_json::Value> {
    let err = stderr(out);
    let mut lines = Vec::new();
    for line in err.lines().filter(|l| !l.starts_with("error: ")) {
        if let Err(e) = serde_json::from_str::<NoDuplicateKeys>(line) {
            panic!("{e} in log line:\n{line}");
        }
        lines.push(serde_json::from_str(line).unwrap());
    }
    lines
}

fn set_origin(sb: &Sandbox, url: &str) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(sb.checkout())
        .args(["remote", "set-url", "origin", url])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The git fetch comes first; the Argo CD client only has to be buildable.
fn run_with_argo(sb: &Sandbox, args: &[&str]) -> Output {
    let server = format!("http://127.0.0.1:{}", closed_port());
    sb.run_with_env(
        args,
        sb.host.token(),
        &[
            ("ARGOCD_SERVER", &server),
            ("ARGOCD_AUTH_TOKEN", "tok-123456"),
        ],
    )
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn json_logs_of_a_failing_fetch_have_one_message_each() {
    let sb = Sandbox::new(None);
    let remote = format!("http://127.0.0.1:{}/infra.git", closed_port());
    set_origin(&sb, &remote);
    let out = run_with_argo(
        &sb,
        &[
            "--log-format",
            "json",
            "-vvv",
            "record",
            "--app",
            "guestbook",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_log_lines(&out);
    let retries: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("retrying"))
        })
        .collect();
    assert!(
        !retries.is_empty(),
        "the retry warnings are logged:\n{}",
        stderr(&out)
    );
    for line in retries {
        assert!(
            line["error"]
                .as_str()
                .is_some_and(|e| e.contains("refused")),
            "the cause is in `error`: {line}"
        );
    }
}

#[test]
fn json_logs_of_a_failing_controller_have_one_message_each() {
    let garbage = ScriptedHttp::start(|_| Response::text(200, "<html>login</html>"));
    let sb = Sandbox::new(None);
    let out = sb.run_with_env(
        &["--log-format", "json", "-vvv", "check"],
        sb.host.token(),
        &[
            ("ARGOCD_SERVER", &garbage.url),
            ("ARGOCD_AUTH_TOKEN", "tok-123456"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_log_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "ERROR" && l["error"].is_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let sb = Sandbox::new(None);
    let remote = format!("http://127.0.0.1:{}/infra.git", closed_port());
    set_origin(&sb, &remote);
    let out = run_with_argo(&sb, &["-vv", "record", "--app", "guestbook"]);
    let err = stderr(&out);
    assert!(err.contains("WARN"), "logs were written:\n{err}");
    assert!(!err.contains('\u{1b}'), "ANSI escapes on a pipe:\n{err:?}");
}

/// stdout and the `error:` line, with ports and durations made stable.
fn stable(text: &str) -> String {
    let ports = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    ports.replace_all(text, "127.0.0.1:PORT").into_owned()
}

fn error_line(out: &Output) -> String {
    let err = stderr(out);
    err.lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{err}"))
        .to_owned()
}

fn against(server: &str, args: &[&str]) -> Output {
    let sb = Sandbox::new(None);
    sb.run_with_env(
        args,
        sb.host.token(),
        &[
            ("ARGOCD_SERVER", server),
            ("ARGOCD_AUTH_TOKEN", "tok-123456"),
        ],
    )
}

#[test]
fn controller_down_is_said_once() {
    let server = format!("http://127.0.0.1:{}", closed_port());
    let record = against(&server, &["record", "--app", "guestbook"]);
    // A controller that is down is a runtime failure (1), not usage (2).
    assert_eq!(record.status.code(), Some(1), "{}", stderr(&record));
    let line = stable(&error_line(&record));
    assert_eq!(line.matches("cannot reach").count(), 1, "{line}");
    insta::assert_snapshot!("controller_down_record", line);
    let check = against(&server, &["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let report = stable(&stdout(&check));
    assert_eq!(
        report.matches("cannot reach").count(),
        2,
        "one per app:\n{report}"
    );
    assert_eq!(
        report.matches("no revert without an answer").count(),
        2,
        "{report}"
    );
    insta::assert_snapshot!("controller_down_check", report);
}

#[test]
fn a_controller_answering_garbage_is_not_unreachable() {
    let garbage = ScriptedHttp::start(|_| Response::text(200, "<html>login</html>"));
    let record = against(&garbage.url, &["record", "--app", "guestbook"]);
    let line = stable(&error_line(&record));
    assert!(!line.contains("cannot reach"), "{line}");
    insta::assert_snapshot!("controller_garbage_record", line);
    let check = against(&garbage.url, &["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let report = stable(&stdout(&check));
    assert!(!report.contains("cannot reach"), "{report}");
    assert!(report.contains("not an Application list"), "{report}");
    insta::assert_snapshot!("controller_garbage_check", report);
}
