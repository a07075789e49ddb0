//! Where the GitHub API lives: REST and GraphQL base URLs, from config or
//! the environment GitHub Actions sets, for github.com and Enterprise.

use url::Url;

use super::ForgeError;

/// The REST and GraphQL endpoints of one GitHub instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// REST base: `https://api.github.com` or `https://HOST/api/v3`.
    pub rest: Url,
    /// GraphQL: `https://api.github.com/graphql` or `https://HOST/api/graphql`.
    pub graphql: Url,
}

pub const GITHUB_COM_REST: &str = "https://api.github.com";

impl Endpoints {
    /// From explicit values (config first, then `GITHUB_API_URL` /
    /// `GITHUB_GRAPHQL_URL`), else github.com. A REST base alone implies its
    /// GraphQL endpoint: on Enterprise that is `/api/graphql`, not
    /// `/api/v3/graphql` (octocrab's guess, which GHES answers with 404).
    pub fn resolve(rest: Option<&str>, graphql: Option<&str>) -> Result<Self, ForgeError> {
        let rest_text = rest.map(str::trim).filter(|s| !s.is_empty());
        let rest = parse(
            "the GitHub API address",
            rest_text.unwrap_or(GITHUB_COM_REST),
        )?;
        let graphql = match graphql.map(str::trim).filter(|s| !s.is_empty()) {
            Some(g) => parse("the GitHub GraphQL address", g)?,
            None => graphql_for(&rest)?,
        };
        Ok(Self { rest, graphql })
    }

    /// The web address of the instance (`https://github.com`, or the
    /// Enterprise host): `GITHUB_SERVER_URL` when Actions sets it, else
    /// derived from the REST base. `None` when neither says (a custom
    /// proxy): links are then left out rather than guessed.
    pub fn web(&self, server_url: Option<&str>) -> Option<String> {
        if let Some(server) = server_url.map(str::trim).filter(|s| !s.is_empty()) {
            return Url::parse(server)
                .ok()
                .filter(|u| matches!(u.scheme(), "https" | "http"))
                .map(|u| u.as_str().trim_end_matches('/').to_owned());
        }
        let host = self.rest.host_str()?;
        if host == "api.github.com" {
            return Some("https://github.com".to_owned());
        }
        let path = self.rest.path().trim_end_matches('/');
        let prefix = path.strip_suffix("/api/v3")?;
        let mut web = self.rest.clone();
        web.set_path(prefix);
        Some(web.as_str().trim_end_matches('/').to_owned())
    }

    /// A REST path (`/repos/o/r/pulls`) under the base.
    pub fn rest_url(&self, path: &str) -> String {
        format!("{}{path}", self.rest.as_str().trim_end_matches('/'))
    }
}

fn parse(what: &str, text: &str) -> Result<Url, ForgeError> {
    Url::parse(text).map_err(|e| ForgeError::Setup {
        message: format!("{what} `{text}` is not a URL: {e}"),
    })
}

fn graphql_for(rest: &Url) -> Result<Url, ForgeError> {
    let path = rest.path().trim_end_matches('/');
    let graphql_path = match path.strip_suffix("/api/v3") {
        Some(prefix) => format!("{prefix}/api/graphql"),
        None => format!("{path}/graphql"),
    };
    let mut url = rest.clone();
    url.set_path(&graphql_path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_com_enterprise_and_explicit_addresses() {
        let com = Endpoints::resolve(None, None).unwrap();
        assert_eq!(com.rest.as_str(), "https://api.github.com/");
        assert_eq!(com.graphql.as_str(), "https://api.github.com/graphql");
        assert_eq!(
            com.rest_url("/repos/acme/infra/pulls"),
            "https://api.github.com/repos/acme/infra/pulls"
        );
        let ghes = Endpoints::resolve(Some("https://ghe.acme.io/api/v3"), None).unwrap();
        assert_eq!(ghes.graphql.as_str(), "https://ghe.acme.io/api/graphql");
        assert_eq!(
            ghes.rest_url("/repos/acme/infra/pulls"),
            "https://ghe.acme.io/api/v3/repos/acme/infra/pulls"
        );
        let slash = Endpoints::resolve(Some("https://ghe.acme.io/api/v3/"), None).unwrap();
        assert_eq!(slash.graphql.as_str(), "https://ghe.acme.io/api/graphql");
        let explicit = Endpoints::resolve(
            Some("https://ghe.acme.io/api/v3"),
            Some("https://ghe.acme.io/api/graphql"),
        )
        .unwrap();
        assert_eq!(explicit.graphql, ghes.graphql);
        assert!(Endpoints::resolve(Some("not a url"), None).is_err());
        assert_eq!(com.web(None).as_deref(), Some("https://github.com"));
        assert_eq!(ghes.web(None).as_deref(), Some("https://ghe.acme.io"));
        assert_eq!(
            com.web(Some("https://ghe.acme.io/")).as_deref(),
            Some("https://ghe.acme.io")
        );
        let proxy = Endpoints::resolve(Some("http://127.0.0.1:9/"), None).unwrap();
        assert_eq!(proxy.web(None), None);
    }
}
