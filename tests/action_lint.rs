#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! The action and every workflow pass zizmor (offline, pedantic) and
//! actionlint (with shellcheck on the `run:` blocks), the action's scripts
//! pass shellcheck, no `run:` block holds a `${{ }}` expression (template
//! injection), and every `uses:` is pinned to a full commit SHA.
//!
//! A missing linter fails the test: `scripts/test.sh` installs them
//! (zizmor and actionlint from PyPI into `target/tools/lint`, shellcheck
//! from Debian).

use std::path::{Path, PathBuf};
use std::process::Command;

use revertbot::yaml::{Node, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

fn workflows() -> Vec<PathBuf> {
    let mut all = yaml_files(".github/workflows");
    all.extend(yaml_files("examples/workflows"));
    assert!(
        all.len() >= 6,
        "expected ci, release and four examples: {all:?}"
    );
    all
}

/// Everything the linters and scanners look at.
fn all_files() -> Vec<PathBuf> {
    let mut all = vec![root().join("action.yml")];
    all.extend(workflows());
    all
}

/// A linter from PATH, or from where scripts/test.sh installs it.
fn tool(name: &str) -> PathBuf {
    let installed = root().join("target/tools/lint/bin").join(name);
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| installed.is_file().then_some(installed))
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run scripts/test.sh (it installs zizmor, actionlint and shellcheck)")
        })
}

fn relative(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect()
}

#[test]
fn zizmor_reports_nothing() {
    let zizmor = tool("zizmor");
    let version = Command::new(&zizmor).arg("--version").output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&version.stdout).trim());
    let out = Command::new(&zizmor)
        .args([
            "--offline",
            "--persona=pedantic",
            "--format=json",
            "--no-progress",
        ])
        .args(relative(&all_files()))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "zizmor failed:\n{stdout}\n{stderr}");
    let findings: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("zizmor's JSON ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(findings, serde_json::json!([]), "{stderr}");
    // Every input was audited, none skipped as unparsable.
    for file in relative(&all_files()) {
        assert!(
            stderr.contains(&format!("completed {file}")),
            "{file} not audited:\n{stderr}"
        );
    }
}

#[test]
fn actionlint_reports_nothing() {
    let actionlint = tool("actionlint");
    // Without shellcheck on PATH actionlint skips the run: scripts silently.
    let shellcheck = tool("shellcheck");
    let version = Command::new(&actionlint).arg("-version").output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&version.stdout).trim());
    // actionlint lints workflows; action.yml is read through ci.yml's
    // `uses: ./` (its inputs are checked against the `with:` there).
    let out = Command::new(&actionlint)
        .arg("-oneline")
        .arg("-shellcheck")
        .arg(&shellcheck)
        .args(relative(&workflows()))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn actionlint_would_catch_a_bad_input_to_the_action() {
    // Proves the check above reads action.yml: an input it does not
    // declare is an error.
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::copy(root().join("action.yml"), dir.path().join("action.yml")).unwrap();
    std::fs::write(
        workflows.join("t.yml"),
        "name: t\non: push\npermissions: {}\njobs:\n  t:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: ./\n        with:\n          comand: check\n",
    )
    .unwrap();
    // actionlint finds `./` from the repository root: a git work tree.
    let init = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(init.success());
    let out = Command::new(tool("actionlint"))
        .args(["-oneline", ".github/workflows/t.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success()
            && text.contains(r#"input "comand" is not defined in action "revertbot""#),
        "{text}"
    );
}

#[test]
fn shellcheck_reports_nothing_on_the_action_scripts() {
    let scripts: Vec<PathBuf> = std::fs::read_dir(root().join("action"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    assert!(scripts.len() >= 2, "{scripts:?}");
    // action.yml runs them directly: they must be executable.
    for script in &scripts {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(script).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{} is not executable", script.display());
    }
    let out = Command::new(tool("shellcheck"))
        .args(["--shell=bash", "--severity=style"])
        .args(&scripts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Every `key: value` pair in the document, with the value's line.
fn pairs<'a>(node: &'a Node, out: &mut Vec<(&'a str, &'a Node)>) {
    match &node.value {
        Value::Map(entries) => {
            for e in entries {
                if let Some(key) = e.key.as_str() {
                    out.push((key, &e.value));
                }
                pairs(&e.value, out);
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| pairs(i, out)),
        Value::Scalar(_) => {}
    }
}

fn parse(path: &Path) -> (String, Node) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc =
        revertbot::yaml::parse_single(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text, doc)
}

/// `run:` scripts that evaluate `${{ }}`: the expression is pasted into the
/// script before the shell sees it, so a value from an event becomes code.
fn expressions_in_run(text: &str) -> Vec<(usize, String)> {
    let doc = revertbot::yaml::parse_single(text).unwrap();
    let mut all = Vec::new();
    pairs(&doc, &mut all);
    all.iter()
        .filter(|(key, _)| *key == "run")
        .filter_map(|(_, value)| {
            let script = value.as_str()?;
            script
                .contains("${{")
                .then(|| (value.span.start.line, script.to_owned()))
        })
        .collect()
}

#[test]
fn no_run_block_evaluates_an_expression() {
    let mut runs = 0;
    for path in all_files() {
        let (text, doc) = parse(&path);
        let mut all = Vec::new();
        pairs(&doc, &mut all);
        runs += all.iter().filter(|(k, _)| *k == "run").count();
        let found = expressions_in_run(&text);
        assert!(
            found.is_empty(),
            "{}: ${{{{ }}}} inside run: {found:?}",
            path.display()
        );
    }
    assert!(runs >= 8, "the scan found only {runs} run: blocks");
    // The scan sees through block scalars and flow style.
    for planted in [
        "steps:\n  - run: |\n      echo ok\n      echo \"${{ github.event.issue.title }}\"\n",
        "steps: [{run: \"echo ${{ inputs.app }}\"}]\n",
        "runs:\n  steps:\n    - shell: bash\n      run: >-\n        echo\n        ${{inputs.x}}\n",
    ] {
        assert_eq!(expressions_in_run(planted).len(), 1, "{planted}");
    }
}

#[test]
fn every_uses_is_pinned_to_a_full_commit_sha_with_its_version() {
    let mut checked = 0;
    for path in all_files() {
        let (text, doc) = parse(&path);
        let mut all = Vec::new();
        pairs(&doc, &mut all);
        for (key, value) in all.iter().filter(|(k, _)| *k == "uses") {
            let _ = key;
            let target = value.as_str().unwrap();
            let where_ = format!("{}:{}", path.display(), value.span.start.line);
            if target == "./" || target.starts_with("./") {
                continue;
            }
            let (action, sha) = target
                .split_once('@')
                .unwrap_or_else(|| panic!("{where_}: `{target}` has no @ref"));
            assert!(action.contains('/'), "{where_}: `{target}`");
            assert!(
                sha.len() == 40 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{where_}: `{target}` is not pinned to a full commit SHA"
            );
            // The version the SHA is, for people and for update bots.
            let line = text.lines().nth(value.span.start.line - 1).unwrap();
            assert!(
                line.split_once(" # v").is_some(),
                "{where_}: `{target}` lacks its `# vX` comment"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} uses: checked");
}
