//! Writing a scalar back in a given style without changing what it means.

use std::borrow::Cow;

use super::{Scalar, Style};

/// Renders `text` as a scalar in `style`, for splicing into a source. Returns
/// `None` when the text cannot be written in that style without changing its
/// meaning (the caller then picks another style or refuses).
pub fn render_scalar(text: &str, style: Style) -> Option<Cow<'_, str>> {
    match style {
        Style::Plain => plain_safe(text).then_some(Cow::Borrowed(text)),
        Style::SingleQuoted => {
            (!text.contains('\n')).then(|| Cow::Owned(format!("'{}'", text.replace('\'', "''"))))
        }
        Style::DoubleQuoted => {
            let mut out = String::with_capacity(text.len() + 2);
            out.push('"');
            for c in text.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            Some(Cow::Owned(out))
        }
        Style::Literal | Style::Folded => None,
    }
}

/// Whether `text` reads back as the same string when written plain.
fn plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@` \t".contains(first) {
        return false;
    }
    if text.ends_with(' ') || text.contains(": ") || text.contains(" #") || text.contains('\n') {
        return false;
    }
    let probe = Scalar {
        text: text.to_owned(),
        style: Style::Plain,
        tag: None,
    };
    !(probe.is_null() || probe.as_bool().is_some() || probe.as_f64().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_single;

    #[test]
    fn render_keeps_meaning() {
        assert_eq!(
            render_scalar("nginx:1@sha256:ab", Style::Plain).unwrap(),
            "nginx:1@sha256:ab"
        );
        assert!(render_scalar("true", Style::Plain).is_none());
        assert!(render_scalar("1.5", Style::Plain).is_none());
        assert_eq!(
            render_scalar("it's", Style::SingleQuoted).unwrap(),
            "'it''s'"
        );
        assert_eq!(
            render_scalar("a\"b", Style::DoubleQuoted).unwrap(),
            "\"a\\\"b\""
        );
        for (text, style) in [
            ("x: y", Style::Plain),
            ("a\"b\\c", Style::DoubleQuoted),
            ("it's", Style::SingleQuoted),
        ] {
            if let Some(r) = render_scalar(text, style) {
                let doc = parse_single(&format!("k: {r}\n")).unwrap();
                assert_eq!(doc.get("k").unwrap().as_str(), Some(text));
            }
        }
    }
}
