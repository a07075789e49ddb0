//! Where an [`ImageRef`] lives on the wire: API host, repository path,
//! scheme, and the key its credentials are stored under.

use std::net::IpAddr;

use crate::domain::image::ImageRef;

/// Docker Hub's API host; `docker.io` itself serves no registry API.
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key `docker login` stores Docker Hub credentials under.
pub(crate) const DOCKER_HUB_CREDENTIAL_KEY: &str = "https://index.docker.io/v1/";
const DOCKER_HUB_ALIASES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The registry as the user would name it (`docker.io`, `ghcr.io`,
    /// `127.0.0.1:5000`): used in errors and as the cache key.
    pub display: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    pub base: String,
    /// `library/nginx`, `team/app`.
    pub repository: String,
    /// Where docker keeps this registry's credentials.
    pub credential_key: String,
    pub plain_http: bool,
}

impl Endpoint {
    /// `plain_http` lists registries (`host` or `host:port`) that speak
    /// plain HTTP; loopback registries always may.
    pub fn of(image: &ImageRef, plain_http: &[String]) -> Endpoint {
        let written = image.registry();
        let hub = written.is_none_or(|r| {
            DOCKER_HUB_ALIASES
                .iter()
                .any(|alias| alias.eq_ignore_ascii_case(r))
        });
        if hub {
            let repository = image.repository();
            let repository = if repository.contains('/') {
                repository.to_owned()
            } else {
                format!("library/{repository}")
            };
            return Endpoint {
                display: "docker.io".to_owned(),
                base: format!("https://{DOCKER_HUB_API}"),
                repository,
                credential_key: DOCKER_HUB_CREDENTIAL_KEY.to_owned(),
                plain_http: false,
            };
        }
        let host = written.unwrap_or_default().to_ascii_lowercase();
        let insecure = is_loopback(&host) || plain_http_allowed(&host, plain_http);
        let scheme = if insecure { "http" } else { "https" };
        Endpoint {
            display: host.clone(),
            base: format!("{scheme}://{host}"),
            repository: image.repository().to_owned(),
            credential_key: host,
            plain_http: insecure,
        }
    }

    pub fn manifest_url(&self, reference: &str) -> String {
        format!("{}/v2/{}/manifests/{reference}", self.base, self.repository)
    }

    /// The scope a pull needs, for a token service that did not say.
    pub fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }
}

/// Whether plain HTTP to `host_port` (`host`, `host:port`, `[v6]:port`) is
/// allowed by the list.
pub(crate) fn plain_http_allowed(host_port: &str, list: &[String]) -> bool {
    let host = strip_port(host_port);
    list.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        entry == host_port || entry == host
    })
}

/// `localhost`, `127.0.0.0/8`, `::1`, with or without a port.
pub(crate) fn is_loopback(host_port: &str) -> bool {
    let host = strip_port(host_port);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn strip_port(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        return host_port
            .split_once(']')
            .map_or(host_port, |(h, _)| &host_port[..=h.len()]);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::of(&s.parse().unwrap(), &["registry.internal:5000".to_owned()])
    }

    #[test]
    fn docker_hub_forms() {
        for s in [
            "nginx:1.25",
            "docker.io/nginx:1.25",
            "docker.io/library/nginx:1.25",
            "index.docker.io/library/nginx",
        ] {
            let e = ep(s);
            assert_eq!(e.base, "https://registry-1.docker.io", "{s}");
            assert_eq!(e.repository, "library/nginx", "{s}");
            assert_eq!(e.display, "docker.io");
            assert_eq!(e.credential_key, DOCKER_HUB_CREDENTIAL_KEY);
        }
        assert_eq!(ep("bitnami/redis:7").repository, "bitnami/redis");
    }

    #[test]
    fn same_repository_as_oci_client() {
        // oci-client's Reference is the reference implementation we compare
        // with; we only differ in the Docker Hub API host alias.
        for s in [
            "nginx",
            "docker.io/bitnami/redis:7",
            "ghcr.io/stefanprodan/podinfo:6.6.1",
            "localhost:5000/a/b/c:v1",
            "127.0.0.1:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let Ok(ours) = s.parse::<ImageRef>() else {
                continue;
            };
            let theirs: oci_client::Reference = s.parse().unwrap();
            let e = Endpoint::of(&ours, &[]);
            assert_eq!(e.repository, theirs.repository(), "{s}");
            let host = theirs.resolve_registry();
            let expected = if host == "index.docker.io" {
                DOCKER_HUB_API
            } else {
                host
            };
            assert!(e.base.ends_with(&format!("://{expected}")), "{s}: {e:?}");
        }
    }

    #[test]
    fn scheme_policy() {
        assert_eq!(ep("ghcr.io/a/b").base, "https://ghcr.io");
        assert_eq!(ep("localhost:5000/a").base, "http://localhost:5000");
        assert_eq!(ep("127.0.0.1:40000/a").base, "http://127.0.0.1:40000");
        assert_eq!(ep("[::1]:5000/a").base, "http://[::1]:5000");
        assert_eq!(
            ep("registry.internal:5000/a").base,
            "http://registry.internal:5000"
        );
        assert_eq!(
            ep("registry.internal:5001/a").base,
            "https://registry.internal:5001"
        );
        assert_eq!(ep("127.example.com/a").base, "https://127.example.com");
        let listed_without_port =
            Endpoint::of(&"reg.lan:8080/a".parse().unwrap(), &["REG.lan".to_owned()]);
        assert!(listed_without_port.plain_http);
    }

    #[test]
    fn urls() {
        let e = ep("ghcr.io/stefanprodan/podinfo:6.6.1");
        assert_eq!(
            e.manifest_url("6.6.1"),
            "https://ghcr.io/v2/stefanprodan/podinfo/manifests/6.6.1"
        );
        assert_eq!(e.pull_scope(), "repository:stefanprodan/podinfo:pull");
    }
}
