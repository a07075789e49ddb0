//! JSON Schema export, generated from the same types the decoder builds.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::model::Config;

/// `$id` of the schema. A URN rather than a URL: the schema is shipped in the
/// repo (`schema/revertbot.schema.json`) and printed by
/// `revertbot config schema`, not served from a fixed address.
pub const SCHEMA_ID: &str = "urn:revertbot:config:v1";

/// The JSON Schema (draft 2020-12) of `.revertbot.yaml`, pretty-printed with
/// a trailing newline.
pub fn json_schema() -> String {
    let mut schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Config>();
    schema.insert("$id".into(), SCHEMA_ID.into());
    schema.insert(
        "title".into(),
        "revertbot configuration (.revertbot.yaml)".into(),
    );
    // Top-level `x-…` keys are ignored by the decoder: a place for YAML
    // anchors shared between apps.
    schema.insert(
        "patternProperties".into(),
        serde_json::json!({ "^x-": { "description": "Ignored: a place for YAML anchors (`x-defaults: &defaults …`)." } }),
    );
    // Serializing a `serde_json::Value` cannot fail (its map keys are strings).
    let mut text = serde_json::to_string_pretty(schema.as_value()).unwrap_or_default();
    text.push('\n');
    text
}

/// Schema of a duration string.
pub(crate) struct DurationSchema;

impl JsonSchema for DurationSchema {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: numbers with units, like `30s`, `5m`, `1h 30m`, `2 hours` or `1d` (a day is 24h).",
            "pattern": DURATION_PATTERN,
            "examples": ["30s", "5m", "1h 30m"]
        })
    }
}

/// Loose shape of jiff's friendly duration format, for editors; the decoder
/// is the authority.
pub(crate) const DURATION_PATTERN: &str =
    r"^[+]?[0-9]+(\.[0-9]+)?\s*[a-zA-Zµ]+(,?\s*[0-9]+(\.[0-9]+)?\s*[a-zA-Zµ]+)*$";

/// Schema of a signed percentage string.
pub(crate) struct PercentSchema;

impl JsonSchema for PercentSchema {
    fn schema_name() -> Cow<'static, str> {
        "Percent".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A signed percentage, like `-3%` or `+30%`.",
            "pattern": r"^[+-]?[0-9]+(\.[0-9]+)?\s*%$",
            "examples": ["-3%", "+30%"]
        })
    }
}

/// Schema of a repo-relative glob.
pub(crate) struct GlobSchema;

impl JsonSchema for GlobSchema {
    fn schema_name() -> Cow<'static, str> {
        "Glob".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A glob relative to the repo root: `*` within a directory, `**` any depth, `?`, `[abc]`, `{a,b}`. No leading `/` or `./`, no `..`.",
            "minLength": 1,
            "not": { "pattern": r"^(/|\./|\.\./|[A-Za-z]:)|(^|/)\.\.(/|$)" },
            "examples": ["guestbook/**", "apps/*/values.yaml"]
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::Serialize;
    use serde_json::Value;

    use super::json_schema;
    use crate::config::decode::Keyword;
    use crate::config::model::{FluxKind, GitHubPermission};
    use crate::config::model_app::{Action, RevertScope, Severity};
    use crate::config::read::SECTIONS;

    fn schema() -> Value {
        serde_json::from_str(&json_schema()).unwrap()
    }

    /// The `$defs` name a property schema points at (directly, as list
    /// items, or as the non-null branch of an `Option`).
    fn target(property: &Value) -> Option<String> {
        let reference = property
            .get("$ref")
            .or_else(|| property.get("items").and_then(|i| i.get("$ref")))
            .or_else(|| {
                property
                    .get("anyOf")?
                    .as_array()?
                    .iter()
                    .find_map(|b| b.get("$ref"))
            })?;
        Some(
            reference
                .as_str()?
                .trim_start_matches("#/$defs/")
                .to_owned(),
        )
    }

    #[test]
    fn decoder_keys_equal_schema_properties() {
        let schema = schema();
        let defs = schema["$defs"].as_object().unwrap();
        for section in SECTIONS {
            let object = if section.type_name == "Config" {
                &schema
            } else {
                defs.get(section.type_name)
                    .unwrap_or_else(|| panic!("no $defs entry {}", section.type_name))
            };
            let properties: BTreeSet<&str> = object["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let keys: BTreeSet<&str> = section.keys.iter().copied().collect();
            assert_eq!(
                keys, properties,
                "decoder keys (left) and schema properties (right) of {} differ",
                section.type_name
            );
            assert_eq!(object["additionalProperties"], Value::Bool(false));
        }
        for (name, def) in defs {
            if def.get("properties").is_some() {
                assert!(
                    SECTIONS.iter().any(|s| s.type_name == name),
                    "{name} is an object in the schema but has no Section in read.rs"
                );
            }
        }
    }

    #[test]
    fn section_places_follow_the_schema() {
        let schema = schema();
        for section in SECTIONS.iter().filter(|s| !s.place.is_empty()) {
            let mut here = &schema;
            let mut name = "Config".to_owned();
            for step in section.place.split('.') {
                let key = step.trim_end_matches("[]");
                let property = &here["properties"][key];
                name = target(property)
                    .unwrap_or_else(|| panic!("{}: `{key}` is not an object", section.place));
                here = &schema["$defs"][&name];
            }
            assert_eq!(name, section.type_name, "place {}", section.place);
        }
    }

    fn check_keyword<K: Keyword + Serialize>(schema: &Value, def: &str) {
        let names: BTreeSet<String> = K::NAMES.iter().map(|(n, _)| (*n).to_owned()).collect();
        for (name, value) in K::NAMES {
            assert_eq!(serde_json::to_value(value).unwrap(), Value::from(*name));
        }
        let in_schema: BTreeSet<String> = schema["$defs"][def]["oneOf"]
            .as_array()
            .or_else(|| schema["$defs"][def]["enum"].as_array())
            .unwrap_or_else(|| panic!("{def} has no oneOf/enum"))
            .iter()
            .map(|v| v.get("const").unwrap_or(v).as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, in_schema, "{def}");
    }

    #[test]
    fn keyword_names_equal_schema_enums() {
        let schema = schema();
        check_keyword::<Action>(&schema, "Action");
        check_keyword::<Severity>(&schema, "Severity");
        check_keyword::<RevertScope>(&schema, "RevertScope");
        check_keyword::<FluxKind>(&schema, "FluxKind");
        check_keyword::<GitHubPermission>(&schema, "GitHubPermission");
        check_keyword::<crate::config::FailOn>(&schema, "FailOn");
    }

    fn pattern(schema: &Value, def: &str) -> regex::Regex {
        regex::Regex::new(schema["$defs"][def]["pattern"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn value_patterns_agree_with_the_decoder() {
        let schema = schema();
        let duration = pattern(&schema, "Duration");
        for ok in [
            "30s",
            "5m",
            "1h 30m",
            "1h30m",
            "2 hours",
            "2 hours, 15 minutes",
            "1d",
            "1.5h",
            "0s",
        ] {
            assert!(crate::config::values::parse_duration(ok).is_ok(), "{ok}");
            assert!(duration.is_match(ok), "schema rejects {ok}");
        }
        for bad in ["5", "-5m", "PT5M", ""] {
            assert!(!duration.is_match(bad), "schema accepts {bad}");
        }
        let percent = pattern(&schema, "Percent");
        for ok in ["-3%", "+30%", "2.5%", "-3 %"] {
            assert!(crate::config::values::parse_percent(ok).is_ok(), "{ok}");
            assert!(percent.is_match(ok), "schema rejects {ok}");
        }
        let not_glob =
            regex::Regex::new(schema["$defs"]["Glob"]["not"]["pattern"].as_str().unwrap()).unwrap();
        for ok in ["guestbook/**", "apps/*/values.yaml", "a..b/c", "x/.hidden"] {
            assert!(!not_glob.is_match(ok), "schema rejects {ok}");
        }
        for bad in ["/abs", "./x", "../x", "a/../b", "C:/x", "a/.."] {
            assert!(not_glob.is_match(bad), "schema accepts {bad}");
        }
    }

    proptest::proptest! {
        /// Editors must never flag a duration revertbot accepts.
        #[test]
        fn every_decoded_duration_matches_the_schema(text in "[0-9]{1,3}(\\.[0-9])? ?(s|m|h|d|w|secs?|mins?|minutes?|hours?|hrs?|days?|weeks?)(,? [0-9]{1,2} ?(m|s|mins|seconds))?") {
            let duration = pattern(&schema(), "Duration");
            if crate::config::values::parse_duration(&text).is_ok() {
                proptest::prop_assert!(duration.is_match(&text), "schema rejects {}", text);
            }
        }
    }
}
