//! The committed JSON Schema (`schema/revertbot.schema.json`) must equal
//! `revertbot::config::json_schema()`, and must describe the DESIGN example.
//!
//! Regenerate after changing the config types with
//! `REVERTBOT_BLESS=1 cargo test --test config_schema`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use revertbot::config::json_schema;
use revertbot::yaml::{self, Node, Value as Yaml};
use serde_json::Value;

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/revertbot.schema.json");
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/config/design-example.yaml"
);

fn schema() -> Value {
    serde_json::from_str(&json_schema()).unwrap()
}

#[test]
fn committed_schema_is_up_to_date() {
    let generated = json_schema();
    if std::env::var_os("REVERTBOT_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(SCHEMA_FILE).parent().unwrap()).unwrap();
        std::fs::write(SCHEMA_FILE, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/revertbot.schema.json is out of date with the config types; \
         regenerate it with `REVERTBOT_BLESS=1 cargo test --test config_schema` and commit it"
    );
}

#[test]
fn schema_header() {
    let text = json_schema();
    assert!(text.ends_with("}\n"));
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(s["$id"], revertbot::config::SCHEMA_ID);
    assert!(s["title"].as_str().unwrap().contains(".revertbot.yaml"));
    assert_eq!(s["required"], serde_json::json!(["version", "apps"]));
}

/// Every object schema with properties, anywhere, forbids other keys.
#[test]
fn every_object_forbids_unknown_keys() {
    fn walk(v: &Value, at: &str, count: &mut usize) {
        match v {
            Value::Object(map) => {
                if map.contains_key("properties") {
                    *count += 1;
                    assert_eq!(
                        map.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{at} allows unknown keys"
                    );
                }
                for (k, child) in map {
                    walk(child, &format!("{at}/{k}"), count);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), count);
                }
            }
            _ => {}
        }
    }
    let mut count = 0;
    walk(&schema(), "#", &mut count);
    assert!(count >= 20, "only {count} object schemas");
}

/// Follows `$ref`s and the non-null branch of `anyOf` (an `Option`).
fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.strip_prefix("#/$defs/").expect("local refs only");
            let target = &root["$defs"][name];
            // Keep walking; sibling keywords (description, default) carry
            // no structure.
            s = target;
            continue;
        }
        if let Some(branches) = s.get("anyOf").and_then(Value::as_array)
            && let Some(non_null) = branches.iter().find(|b| b["type"] != "null")
        {
            s = non_null;
            continue;
        }
        return s;
    }
}

fn types(s: &Value) -> Vec<&str> {
    match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Checks a YAML node against the schema's structure: every mapping key is
/// a property, lists have items, and scalars have a matching type or enum.
fn check(root: &Value, schema: &Value, node: &Node, at: &str, keys_seen: &mut usize) {
    let s = resolve(root, schema);
    match &node.value {
        Yaml::Map(entries) => {
            assert!(
                types(s).contains(&"object"),
                "{at}: schema is not an object: {s}"
            );
            for e in entries {
                let key = e.key.as_str().unwrap();
                let property = s["properties"]
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}.{key} is not in the schema"));
                *keys_seen += 1;
                check(root, property, &e.value, &format!("{at}.{key}"), keys_seen);
            }
        }
        Yaml::Seq(items) => {
            assert!(types(s).contains(&"array"), "{at}: schema is not an array");
            for (i, item) in items.iter().enumerate() {
                check(root, &s["items"], item, &format!("{at}[{i}]"), keys_seen);
            }
        }
        Yaml::Scalar(scalar) => {
            if let Some(variants) = s.get("oneOf").and_then(Value::as_array) {
                assert!(
                    variants.iter().any(|v| v["const"] == scalar.text.as_str()),
                    "{at}: `{}` is not an allowed value",
                    scalar.text
                );
                return;
            }
            let t = types(s);
            let ok = if scalar.as_bool().is_some() {
                t.contains(&"boolean")
            } else if scalar.as_i64().is_some() {
                t.contains(&"integer") || t.contains(&"number")
            } else if scalar.as_f64().is_some() {
                t.contains(&"number")
            } else {
                t.contains(&"string")
            };
            assert!(ok, "{at}: `{}` does not fit {t:?}", scalar.text);
            if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
                let re = regex::Regex::new(pattern).unwrap();
                assert!(
                    re.is_match(&scalar.text),
                    "{at}: `{}` !~ {pattern}",
                    scalar.text
                );
            }
        }
    }
}

#[test]
fn schema_describes_the_design_example() {
    let root = schema();
    let example = yaml::parse_single(&std::fs::read_to_string(EXAMPLE).unwrap()).unwrap();
    let mut keys_seen = 0;
    check(&root, &root, &example, "", &mut keys_seen);
    assert!(keys_seen > 40, "walked only {keys_seen} keys");
}

#[test]
fn schema_carries_defaults_and_descriptions() {
    let s = schema();
    let policy = &s["$defs"]["PolicyConfig"]["properties"];
    assert_eq!(policy["cooldown"]["default"], "30m");
    assert_eq!(policy["critical"]["default"], "push");
    assert_eq!(policy["warning"]["default"], "approve");
    assert_eq!(policy["grace"]["default"], "2m");
    assert_eq!(
        policy["max_reverts"]["default"],
        serde_json::json!({"count": 3, "per": "24h"})
    );
    assert_eq!(
        s["$defs"]["WaitConfig"]["properties"]["timeout"]["default"],
        "10m"
    );
    assert_eq!(
        s["$defs"]["RepoConfig"]["properties"]["remote"]["default"],
        "origin"
    );
    assert_eq!(
        s["$defs"]["AppFlux"]["properties"]["namespace"]["default"],
        "flux-system"
    );
    assert_eq!(
        s["$defs"]["ApprovalsConfig"]["properties"]["github_permission"]["default"],
        "write"
    );
    assert!(
        s["$defs"]["Duration"]["description"]
            .as_str()
            .unwrap()
            .contains("1h 30m")
    );
    assert!(s["properties"]["apps"]["description"].is_string());
    assert_eq!(
        s["$defs"]["AppConfig"]["properties"]["paths"]["minItems"],
        1
    );
}
