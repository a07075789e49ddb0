//! `WWW-Authenticate` parsing (RFC 7235 challenges) and the Bearer challenge
//! of the distribution token spec.
//!
//! Parameter values are tokens or quoted strings; quoted values may contain
//! commas (`scope="repository:a/b:pull,push"`) and backslash escapes. One
//! header may carry several challenges (`Basic realm="r", Bearer realm="…"`).

use url::Url;

/// One challenge: the scheme (lower case) and its parameters (names lower
/// case, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthChallenge {
    Bearer(BearerChallenge),
    Basic,
}

/// `Bearer realm="…",service="…",scope="…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerChallenge {
    pub realm: Url,
    pub service: Option<String>,
    /// Space-separated scopes as sent (usually one).
    pub scope: Option<String>,
}

/// Parses every challenge in a header value. Errors say what is wrong,
/// without echoing the header (it is not secret, but it can be long).
pub(crate) fn parse_challenges(header: &str) -> Result<Vec<Challenge>, String> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    p.skip_list_separators();
    while !p.at_end() {
        let scheme = p.token().ok_or_else(|| {
            format!(
                "expected an authentication scheme at byte {} of the challenge",
                p.i
            )
        })?;
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        // Parameters: `name = value` separated by commas, until a token
        // that is not followed by `=` (the next challenge's scheme).
        loop {
            p.skip_list_separators();
            if p.at_end() {
                break;
            }
            let save = p.i;
            let Some(name) = p.token() else {
                return Err(format!(
                    "unexpected character at byte {} of the challenge",
                    p.i
                ));
            };
            p.skip_ws();
            if !p.eat(b'=') {
                // The next challenge starts here.
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.token().ok_or_else(|| {
                    format!("parameter `{name}` has no value (quote values with spaces or commas)")
                })?
            };
            let name = name.to_ascii_lowercase();
            if challenge.param(&name).is_some() {
                return Err(format!("parameter `{name}` appears twice"));
            }
            challenge.params.push((name, value));
            p.skip_ws();
            if !(p.at_end() || p.peek() == Some(b',')) {
                return Err(format!(
                    "expected `,` after parameter at byte {} of the challenge",
                    p.i
                ));
            }
        }
        out.push(challenge);
    }
    if out.is_empty() {
        return Err("the WWW-Authenticate header is empty".to_owned());
    }
    Ok(out)
}

/// Picks what to do from a header: Bearer wins over Basic; any other
/// scheme alone is an error.
pub(crate) fn auth_challenge(header: &str) -> Result<AuthChallenge, String> {
    let challenges = parse_challenges(header)?;
    if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        return bearer_challenge(bearer).map(AuthChallenge::Bearer);
    }
    if challenges.iter().any(|c| c.scheme == "basic") {
        return Ok(AuthChallenge::Basic);
    }
    let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
    Err(format!(
        "unsupported authentication scheme(s) {} (revertbot speaks Bearer and Basic)",
        schemes.join(", ")
    ))
}

fn bearer_challenge(c: &Challenge) -> Result<BearerChallenge, String> {
    let realm = c
        .param("realm")
        .ok_or("the Bearer challenge has no realm (the token service URL)")?;
    let realm =
        Url::parse(realm).map_err(|e| format!("the Bearer realm is not an absolute URL ({e})"))?;
    if !matches!(realm.scheme(), "http" | "https") || realm.host_str().is_none() {
        return Err("the Bearer realm is not an http(s) URL".to_owned());
    }
    let nonempty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(BearerChallenge {
        realm,
        service: nonempty(c.param("service")),
        scope: nonempty(c.param("scope")),
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// RFC 7230 `token`.
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string starting at `"`, with `\` escapes.
    fn quoted(&mut self) -> Result<String, String> {
        let open = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(format!(
                        "the quoted value starting at byte {open} of the challenge is never closed"
                    ));
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b) => {
                            out.push(b);
                            self.i += 1;
                        }
                        None => return Err("the challenge ends inside an escape".to_owned()),
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
