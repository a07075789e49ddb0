//! Every hint revertbot prints names only flags and config keys that
//! exist: the string literals in `src/` are scanned for `--flags` (checked
//! against the clap definition) and config key paths (checked against the
//! JSON Schema). A hint naming a flag or key that does not exist sends the
//! user nowhere.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;
use serde_json::Value;

/// Flags of other tools that messages quote in their commands (`git fetch
/// --deepen=N`, `argocd account generate-token --account`, …).
const OTHER_TOOLS: &[&str] = &["--deepen", "--ref", "--account", "--with-source", "--notes"];

/// Last segments of host and file names.
const NOT_KEYS: &[&str] = &["com", "yaml", "yml", "json", "monitoring", "example", "io"];

/// tracing span names, not keys.
const SPAN_NAMES: &[&str] = &[
    "argocd.observe_all",
    "argocd.observe",
    "argocd.refresh",
    "argocd.sync",
    "argocd.terminate",
    "argocd.pods",
];

/// First segments that make a dotted token a config key path.
const SECTIONS: &[&str] = &[
    "repo",
    "argocd",
    "flux",
    "prometheus",
    "alertmanager",
    "github",
    "slack",
    "approvals",
    "apps",
    "health",
    "policy",
    "wait",
    "revert",
    "images",
];

fn literals(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            literals(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for literal in string_literals(&text) {
                out.push((path.display().to_string(), literal));
            }
        }
    }
}

/// The string literals of Rust source: enough of a lexer to skip comments,
/// char literals (`'"'`) and lifetimes, and to read raw strings.
fn string_literals(src: &str) -> Vec<String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            '\'' => {
                // 'x' or '\n' is a char literal; anything else a lifetime.
                if chars.get(i + 1) == Some(&'\\') {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            'r' if matches!(chars.get(i + 1), Some('#' | '"'))
                && !chars
                    .get(i.wrapping_sub(1))
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_') =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let start = j + 1;
                let mut k = start;
                let closed = loop {
                    if k >= chars.len() {
                        break k;
                    }
                    if chars[k] == '"' && (0..hashes).all(|h| chars.get(k + 1 + h) == Some(&'#')) {
                        break k;
                    }
                    k += 1;
                };
                out.push(chars[start..closed.min(chars.len())].iter().collect());
                i = closed + 1 + hashes;
            }
            '"' => {
                let start = i + 1;
                let mut k = start;
                while k < chars.len() && chars[k] != '"' {
                    if chars[k] == '\\' {
                        k += 1;
                    }
                    k += 1;
                }
                out.push(chars[start..k.min(chars.len())].iter().collect());
                i = k + 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn clap_flags(cmd: &clap::Command, out: &mut BTreeSet<String>) {
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            out.insert(format!("--{long}"));
        }
    }
    for sub in cmd.get_subcommands() {
        clap_flags(sub, out);
    }
}

fn schema_keys(node: &Value, defs: &Value, path: &str, depth: usize, out: &mut BTreeSet<String>) {
    if depth > 10 {
        return;
    }
    let node = match node.get("$ref").and_then(Value::as_str) {
        Some(r) => &defs[r.rsplit('/').next().unwrap()],
        None => node,
    };
    for combinator in ["anyOf", "oneOf", "allOf"] {
        for sub in node[combinator].as_array().into_iter().flatten() {
            schema_keys(sub, defs, path, depth + 1, out);
        }
    }
    if let Some(items) = node.get("items") {
        schema_keys(items, defs, &format!("{path}[]"), depth + 1, out);
    }
    for (key, value) in node["properties"].as_object().into_iter().flatten() {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        out.insert(here.clone());
        schema_keys(value, defs, &here, depth + 1, out);
    }
}

#[test]
fn hints_name_only_flags_and_keys_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    literals(&root.join("src"), &mut found);
    assert!(found.len() > 500, "the scan found too few literals");

    let mut flags = BTreeSet::new();
    clap_flags(&revertbot::cli::Cli::command(), &mut flags);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("schema/revertbot.schema.json")).unwrap(),
    )
    .unwrap();
    let mut keys = BTreeSet::new();
    schema_keys(&schema, &schema["$defs"], "", 0, &mut keys);

    let flag = regex::Regex::new(r"--[a-z][a-z-]+").unwrap();
    let key = regex::Regex::new(r"\b[a-z_]+(?:\[\d*\])?(?:\.[a-z_]+(?:\[\d*\])?)+\b").unwrap();
    let index = regex::Regex::new(r"\[\d*\]").unwrap();
    let mut wrong = Vec::new();
    for (file, literal) in &found {
        for m in flag.find_iter(literal) {
            let f = m.as_str();
            if !flags.contains(f) && !OTHER_TOOLS.contains(&f) {
                wrong.push(format!("{file}: flag {f} in {literal}"));
            }
        }
        for m in key.find_iter(literal) {
            // Host names and file names (`argocd.example.com`,
            // `clusters/apps.yaml`) are not keys.
            let before = literal[..m.start()].chars().next_back();
            if before.is_some_and(|c| "/@:.-".contains(c)) {
                continue;
            }
            let last = m.as_str().rsplit('.').next().unwrap_or_default();
            if NOT_KEYS.contains(&last) || SPAN_NAMES.contains(&m.as_str()) {
                continue;
            }
            let k = index.replace_all(m.as_str(), "[]").into_owned();
            let first = k.split(['.', '[']).next().unwrap_or_default();
            if !SECTIONS.contains(&first) {
                continue;
            }
            let known = keys
                .iter()
                .any(|s| s == &k || s.ends_with(&format!(".{k}")));
            if !known {
                wrong.push(format!("{file}: config key {k} in {literal}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "hints name what does not exist:\n{}",
        wrong.join("\n")
    );
}
