//! Data side of [`super::FakeKube`]: fixtures (YAML or JSON, placeholders
//! substituted, lists expanded), label selectors, annotation merge patches.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use revertbot::yaml::{self, Node, Style};

const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/flux")
        .join(name)
}

/// The text of a fixture, with the flux2 testdata placeholders
/// substituted (`{{ .fluxns }}` → `flux-system`, `{{ .ns }}` → `trace`).
pub fn fixture(name: &str) -> String {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.replace("{{ .fluxns }}", "flux-system")
        .replace("{{ .ns }}", "trace")
}

/// The objects of a fixture the fake serves: every document of a YAML
/// stream, the items of a `*List`, skipping kinds it does not serve
/// (`Namespace`).
pub fn fixture_objects(name: &str) -> Vec<Value> {
    let text = fixture(name);
    let documents: Vec<Value> = if name.ends_with(".json") {
        vec![serde_json::from_str(&text).unwrap()]
    } else {
        yaml::parse_documents(&text)
            .unwrap()
            .iter()
            .map(to_json)
            .collect()
    };
    let mut out = Vec::new();
    for document in documents {
        let kind = document["kind"].as_str().unwrap_or_default();
        if kind.ends_with("List") {
            out.extend(document["items"].as_array().cloned().unwrap_or_default());
        } else if super::RESOURCES.iter().any(|r| r.3 == kind) {
            out.push(document);
        }
    }
    out
}

/// A YAML node as JSON with the core schema: plain `2` is a number, plain
/// `true` a boolean, quoted scalars are strings.
pub fn to_json(node: &Node) -> Value {
    match &node.value {
        yaml::Value::Scalar(s) if s.style != Style::Plain => json!(s.text),
        yaml::Value::Scalar(s) if s.is_null() => Value::Null,
        yaml::Value::Scalar(s) => {
            if let Some(b) = s.as_bool() {
                json!(b)
            } else if let Some(i) = s.as_i64() {
                json!(i)
            } else if let Some(f) = s.as_f64().filter(|f| f.is_finite()) {
                json!(f)
            } else {
                json!(s.text)
            }
        }
        yaml::Value::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        yaml::Value::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|e| {
                    (
                        e.key.as_str().unwrap_or_default().to_owned(),
                        to_json(&e.value),
                    )
                })
                .collect(),
        ),
    }
}

/// Checks that a merge patch changes only `metadata.annotations` (string or
/// null values) and returns them.
pub fn annotations_only(patch: &Value) -> Result<Map<String, Value>, String> {
    let refuse = |what: &str| {
        Err(format!(
            "the fake accepts merge patches of metadata.annotations only (string or null values); this one {what}"
        ))
    };
    let Some(root) = patch.as_object() else {
        return refuse("is not an object");
    };
    if root.keys().any(|k| k != "metadata") {
        return refuse("changes more than metadata");
    }
    let Some(metadata) = root.get("metadata").and_then(Value::as_object) else {
        return refuse("has no metadata object");
    };
    if metadata.keys().any(|k| k != "annotations") {
        return refuse("changes metadata other than annotations");
    }
    let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) else {
        return refuse("has no annotations object");
    };
    if annotations
        .values()
        .any(|v| !(v.is_string() || v.is_null()))
    {
        return refuse("sets an annotation to a non-string");
    }
    Ok(annotations.clone())
}

/// RFC 7386 on `metadata.annotations`; returns the requested-reconcile
/// token when the patch set one.
pub fn merge_annotations(object: &mut Value, patch: Map<String, Value>) -> Option<String> {
    let metadata = &mut object["metadata"];
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = json!({});
    }
    let mut requested = None;
    if let Some(current) = metadata["annotations"].as_object_mut() {
        for (key, value) in patch {
            if value.is_null() {
                current.remove(&key);
            } else {
                if key == REQUESTED_AT {
                    requested = value.as_str().map(str::to_owned);
                }
                current.insert(key, value);
            }
        }
    }
    requested
}

/// Evaluates a label selector (`a=b,c!=d,e in (f,g),h notin (i),j,!k`)
/// against a `metadata.labels` value.
pub fn matches_selector(selector: &str, labels: &Value) -> Result<bool, String> {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let mut depth = 0;
    let mut start = 0;
    let mut requirements = Vec::new();
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                requirements.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    requirements.push(&selector[start..]);
    for requirement in requirements.into_iter().map(str::trim) {
        let ok = if requirement.is_empty() {
            return Err("empty requirement".to_owned());
        } else if let Some(key) = requirement.strip_prefix('!') {
            label(key.trim()).is_none()
        } else if let Some((key, set)) = requirement.split_once(" notin ") {
            !set_of(set)?.contains(&label(key.trim()).unwrap_or("\0"))
        } else if let Some((key, set)) = requirement.split_once(" in ") {
            label(key.trim()).is_some_and(|v| set_of(set).is_ok_and(|s| s.contains(&v)))
        } else if let Some((key, value)) = requirement.split_once("!=") {
            label(key.trim()) != Some(value.trim())
        } else if let Some((key, value)) = requirement
            .split_once("==")
            .or_else(|| requirement.split_once('='))
        {
            label(key.trim()) == Some(value.trim())
        } else if requirement
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            label(requirement).is_some()
        } else {
            return Err(format!("cannot parse {requirement:?}"));
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn set_of(set: &str) -> Result<Vec<&str>, String> {
    let inner = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("{set:?} is not a parenthesised set"))?;
    Ok(inner.split(',').map(str::trim).collect())
}

/// `%XX` and `+` decoding of one query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed request path.
pub struct Route {
    pub resource: &'static (&'static str, &'static str, &'static str, &'static str, bool),
    pub namespace: String,
    pub name: Option<String>,
}

pub fn route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (*ns, *plural, None),
        ["namespaces", ns, plural, name] => (*ns, *plural, Some((*name).to_owned())),
        _ => return None,
    };
    let resource = super::RESOURCES
        .iter()
        .find(|r| r.0 == group && r.1 == version && r.2 == plural)?;
    (!namespace.is_empty()).then(|| Route {
        resource,
        namespace: namespace.to_owned(),
        name,
    })
}

pub fn form_urlencoded(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}
