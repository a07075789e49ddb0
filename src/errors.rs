//! Error text shared by the adapters.

/// The error and those of its sources whose text it does not already
/// include, joined as `a: b: c` for a one-line message (reqwest's own
/// message is only "error sending request"; most of our errors quote their
/// source).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
