//! Hostile YAML and oversized files from the infra repo: the real binary
//! under a memory limit, so code that expanded an alias bomb or read a file
//! without bound dies instead of passing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::infra::{Sandbox, good_digest, stderr};

/// Address space for one run, in KiB. A normal run needs well under this;
/// expanding the bombs below needs several GiB.
const MEMORY_LIMIT_KIB: u64 = 1024 * 1024;

/// Ten levels of nine aliases: 9^10 (3.5 billion) nodes once expanded.
fn bomb(indent: &str) -> String {
    let mut src = format!("{indent}l0: &l0 [{}]\n", ["\"lol\""; 9].join(", "));
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 9].join(", ");
        src.push_str(&format!("{indent}l{i}: &l{i} [{refs}]\n"));
    }
    src
}

/// `revertbot` with `args` in `dir`, under [`MEMORY_LIMIT_KIB`] of address
/// space (`ulimit -v`: `unsafe` is denied, so no `setrlimit` here).
fn run_limited(dir: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_revertbot"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // glibc reserves 64 MiB of address space per malloc arena.
        .env("MALLOC_ARENA_MAX", "2")
        .env("RUST_LOG", "revertbot=info")
        .current_dir(dir)
        .output()
        .expect("run revertbot under sh")
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

const CONFIG_HEAD: &str = "\
version: 1
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
";

#[test]
fn an_alias_bomb_in_the_config_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("{CONFIG_HEAD}x-bomb:\n{}", bomb("  "));
    std::fs::write(dir.path().join("bomb.yaml"), &config).unwrap();
    let out = run_limited(dir.path(), &["--config", "bomb.yaml", "config", "validate"]);
    assert_exit(&out, 2);
    assert_points_at_the_bomb(&stderr(&out), "bomb.yaml", &config);
}

/// `err` names `file:line:col` of an alias on `l5`, where the expansion
/// passes 250,000 nodes (`l5` alone is about 9^6 nodes), and says what to do.
fn assert_points_at_the_bomb(err: &str, file: &str, source: &str) {
    let pattern = format!(
        r"{}:(\d+):(\d+): alias expansion exceeds 250000 nodes — YAML alias bombs are refused; remove the aliases or split the file",
        regex::escape(file)
    );
    let found = regex::Regex::new(&pattern)
        .unwrap()
        .captures(err)
        .unwrap_or_else(|| panic!("no {pattern:?} in:\n{err}"));
    let line: usize = found[1].parse().unwrap();
    let column: usize = found[2].parse().unwrap();
    let text = source.lines().nth(line - 1).unwrap();
    assert!(text.trim_start().starts_with("l5:"), "{line}: {text}");
    assert!(
        text[column - 1..].starts_with("*l4"),
        "{line}:{column}: {text}"
    );
}

#[test]
fn a_config_that_never_ends_is_not_read_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_limited(dir.path(), &["--config", "/dev/zero", "config", "validate"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("cannot read /dev/zero: more than 1 MiB, the limit for a config file"),
        "{err}"
    );
}

#[test]
fn an_oversized_config_is_refused_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CONFIG_HEAD.to_owned();
    while config.len() <= 1024 * 1024 {
        config.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(dir.path().join("big.yaml"), &config).unwrap();
    let out = run_limited(dir.path(), &["--config", "big.yaml", "config", "validate"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot read big.yaml: {} bytes, more than 1 MiB, the limit for a config file",
            config.len()
        )),
        "{err}"
    );
}

/// A sandbox whose remote tip adds `file` under guestbook's paths after
/// the bad deploy, so the revert tree (and the plan's pinning) holds it.
fn sandbox_with(file: &str, content: &[u8]) -> Sandbox {
    let sb = Sandbox::new(None);
    sb.record_good();
    sb.dev.write(file, content);
    sb.dev.commit("guestbook: add a file");
    sb.dev.push(&["main"]);
    sb
}

#[test]
fn an_alias_bomb_in_a_manifest_fails_that_plan_with_its_position() {
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n{}",
        bomb("  ")
    );
    let sb = sandbox_with("apps/guestbook/bomb.yaml", manifest.as_bytes());
    let out = sb.run_limited(
        &["plan", "--app", "guestbook", "--deployed", &sb.bad],
        MEMORY_LIMIT_KIB,
    );
    assert_exit(&out, 1);
    assert_points_at_the_bomb(&stderr(&out), "apps/guestbook/bomb.yaml", &manifest);

    // The other app in the same repo is not affected.
    let billing = format!(
        "registry.example.com:5000/acme/billing:2.3.0@{}",
        good_digest()
    );
    sb.json(
        &[
            "record",
            "--app",
            "billing",
            "--revision",
            &sb.good,
            "--image",
            &billing,
        ],
        0,
    );
    let out = sb.run_limited(
        &[
            "--output",
            "json",
            "plan",
            "--app",
            "billing",
            "--deployed",
            &sb.bad,
        ],
        MEMORY_LIMIT_KIB,
    );
    assert_exit(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["apps"][0]["action"], "dry_run", "{report}");
    assert_eq!(
        report["apps"][0]["pinned_images"][0]["digest"],
        good_digest().as_str()
    );
}

#[test]
fn an_oversized_manifest_fails_that_plan_with_its_size() {
    let mut manifest =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n");
    let mut i = 0;
    while manifest.len() <= 8 * 1024 * 1024 {
        manifest.push_str(&format!("  key{i}: \"{}\"\n", "x".repeat(100)));
        i += 1;
    }
    let sb = sandbox_with("apps/guestbook/big.yaml", manifest.as_bytes());
    let out = sb.run_limited(
        &["plan", "--app", "guestbook", "--deployed", &sb.bad],
        MEMORY_LIMIT_KIB,
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "apps/guestbook/big.yaml: {} bytes, more than 8 MiB, the limit for a manifest",
            manifest.len()
        )),
        "{err}"
    );
}

#[test]
fn the_same_plan_without_the_bomb_still_works_under_the_limit() {
    // Proves the memory limit leaves room for a normal run, so the tests
    // above fail on the bomb, not on the limit.
    let sb = sandbox_with(
        "apps/guestbook/aliases.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata:\n  a: &a \"x\"\n  b: *a\n",
    );
    let out = sb.run_limited(
        &["plan", "--app", "guestbook", "--deployed", &sb.bad],
        MEMORY_LIMIT_KIB,
    );
    assert_exit(&out, 0);
}

mod parser_bounds {
    use proptest::prelude::*;
    use revertbot::yaml::{self, ErrorKind, Limits, Node, Value};

    fn count(node: &Node) -> (usize, usize) {
        match &node.value {
            Value::Scalar(s) => (1, s.text.len()),
            Value::Seq(items) => items.iter().map(count).fold((1, 0), add),
            Value::Map(entries) => entries
                .iter()
                .flat_map(|e| [count(&e.key), count(&e.value)])
                .fold((1, 0), add),
        }
    }

    fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
        (a.0 + b.0, a.1 + b.1)
    }

    /// A bomb of `levels` anchored lists of `fan_out` aliases each, in
    /// block or flow style, over a scalar of `width` bytes.
    fn bomb(fan_out: usize, levels: usize, width: usize, block: bool) -> String {
        let mut src = format!("l0: &l0 {}\n", "x".repeat(width));
        for i in 1..=levels {
            let alias = format!("*l{}", i - 1);
            if block {
                src.push_str(&format!("l{i}: &l{i}\n"));
                for _ in 0..fan_out {
                    src.push_str(&format!("  - {alias}\n"));
                }
            } else {
                src.push_str(&format!(
                    "l{i}: &l{i} [{}]\n",
                    vec![alias; fan_out].join(", ")
                ));
            }
        }
        src
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn bombs_parse_within_the_bounds_or_fail_on_them(
            fan_out in 1usize..12,
            levels in 1usize..12,
            width in 1usize..64,
            block in any::<bool>(),
            max_nodes in 10usize..5_000,
            max_aliases in 1usize..500,
            max_scalar_bytes in 1usize..20_000,
        ) {
            let src = bomb(fan_out, levels, width, block);
            let limits = Limits { max_nodes, max_aliases, max_scalar_bytes, ..Limits::DEFAULT };
            match yaml::parse_documents_with(&src, &limits) {
                Ok(docs) => {
                    let (nodes, bytes) = docs.iter().map(count).fold((0, 0), add);
                    prop_assert!(nodes <= max_nodes, "{nodes} nodes > {max_nodes}");
                    prop_assert!(bytes <= max_scalar_bytes, "{bytes} bytes > {max_scalar_bytes}");
                    let aliases = src.matches('*').count();
                    prop_assert!(aliases <= max_aliases, "{aliases} aliases > {max_aliases}");
                }
                Err(e) => {
                    prop_assert_eq!(e.kind, ErrorKind::Limit, "{}", e);
                    // The node that crossed the bound: an alias, or any
                    // node created after the aliases already filled it.
                    prop_assert!(e.line >= 1 && e.line <= src.lines().count() + 1, "{}", e);
                }
            }
        }

        #[test]
        fn deep_nesting_parses_or_fails_on_the_depth_bound(depth in 1usize..300, flow in any::<bool>()) {
            let src = if flow {
                format!("{}x{}", "[".repeat(depth), "]".repeat(depth))
            } else {
                (0..depth).map(|i| format!("{}-\n", "  ".repeat(i))).collect::<String>()
                    + &"  ".repeat(depth) + "x\n"
            };
            let parsed = yaml::parse_documents(&src);
            if depth <= Limits::DEFAULT.max_depth {
                prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
            } else {
                // The depth bound, or saphyr's own bound on flow nesting.
                prop_assert!(parsed.is_err());
            }
        }
    }
}
