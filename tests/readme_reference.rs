//! The README's config reference names every key of the JSON Schema, so a
//! key added to the config cannot go undocumented.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use serde_json::Value;

fn resolve<'a>(node: &'a Value, defs: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => &defs[r.rsplit('/').next().unwrap()],
        None => node,
    }
}

fn keys(node: &Value, defs: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
    if depth > 10 {
        return;
    }
    let node = resolve(node, defs);
    for combinator in ["anyOf", "oneOf", "allOf"] {
        for sub in node[combinator].as_array().into_iter().flatten() {
            keys(sub, defs, path, depth + 1, out);
        }
    }
    if let Some(items) = node.get("items") {
        keys(items, defs, &format!("{path}[]"), depth + 1, out);
    }
    for (key, value) in node["properties"].as_object().into_iter().flatten() {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        out.push(here.clone());
        keys(value, defs, &here, depth + 1, out);
    }
}

#[test]
fn the_readme_documents_every_config_key() {
    let root = env!("CARGO_MANIFEST_DIR");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/schema/revertbot.schema.json")).unwrap(),
    )
    .unwrap();
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let mut all = Vec::new();
    keys(&schema, &schema["$defs"], "", 0, &mut all);
    assert!(
        all.len() > 40,
        "the schema walk found too few keys: {all:?}"
    );
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| !readme.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's config reference lacks {missing:?}"
    );
}
