//! Debian's `docker-registry` (the CNCF distribution server) on loopback,
//! with helpers that upload images through its HTTP API, plus
//! [`token::TokenServer`] (a token service the registry really verifies)
//! and [`front::Front`] (a counting, fault-injecting proxy in front of it).
//!
//! The binary is required: a missing one fails the test with what to
//! install, it never skips.

pub mod front;
pub mod token;

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use revertbot::registry::sha256_digest;

/// Where Debian installs it; `REVERTBOT_DOCKER_REGISTRY` overrides.
pub const DEFAULT_BINARY: &str = "/usr/bin/docker-registry";

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Installs the rustls crypto provider once per process (CRATES.md).
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// One running registry process; killed on drop.
pub struct RegistryServer {
    child: Child,
    port: u16,
    /// Keeps config, logs and (unless shared) storage alive.
    dir: tempfile::TempDir,
    storage: PathBuf,
}

/// A pushed manifest: its digest and exact bytes.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Which family of media types an image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

impl RegistryServer {
    /// An open registry with its own empty storage.
    pub async fn start() -> RegistryServer {
        Self::spawn(None, "").await
    }

    /// A registry that demands tokens from `token` and serves `storage`
    /// (share it with an open instance to upload without tokens).
    pub async fn start_with_token_auth(
        storage: &Path,
        token: &token::TokenServer,
    ) -> RegistryServer {
        let auth = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            token.realm(),
            token::SERVICE,
            token::ISSUER,
            token.cert_path().display()
        );
        Self::spawn(Some(storage.to_owned()), &auth).await
    }

    async fn spawn(storage: Option<PathBuf>, extra: &str) -> RegistryServer {
        let binary = std::env::var_os("REVERTBOT_DOCKER_REGISTRY")
            .map_or_else(|| PathBuf::from(DEFAULT_BINARY), PathBuf::from);
        assert!(
            binary.is_file(),
            "{} not found: the registry tests need the CNCF distribution server — \
             install Debian's `docker-registry` package (apt-get install -y docker-registry) \
             or point REVERTBOT_DOCKER_REGISTRY at a `registry` binary",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = storage.unwrap_or_else(|| dir.path().join("storage"));
        std::fs::create_dir_all(&storage).expect("storage dir");
        // The port is free when we pick it; another process could take it
        // before the registry binds, so try a few.
        let log_path = dir.path().join("registry.log");
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n{extra}",
                    storage.display()
                ),
            )
            .expect("write registry config");
            let log = std::fs::File::create(&log_path).expect("log file");
            let mut child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            if wait_ready(&mut child, port).await {
                return RegistryServer {
                    child,
                    port,
                    dir,
                    storage,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if !log.contains("address already in use") {
                panic!("docker-registry did not come up on port {port}; its log:\n{log}");
            }
        }
        panic!("docker-registry found no free port in 5 tries");
    }

    /// `127.0.0.1:<port>`: the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.host())
    }

    pub fn storage(&self) -> &Path {
        &self.storage
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Uploads a blob (monolithic: POST an upload, PUT it with the digest).
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let client = reqwest::Client::new();
        let digest = sha256_digest(bytes).unwrap().to_string();
        let resp = client
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.base_url()))
            .send()
            .await
            .expect("start blob upload");
        assert_eq!(resp.status().as_u16(), 202, "start upload: {}", self.log());
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base_url())
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = client
            .put(format!("{location}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("finish blob upload");
        assert_eq!(resp.status().as_u16(), 201, "finish upload of {digest}");
        digest
    }

    /// PUTs manifest bytes under `reference` (a tag or the digest) and
    /// checks the registry's digest is the sha256 of those bytes.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &'static str,
        bytes: Vec<u8>,
    ) -> Pushed {
        let resp = reqwest::Client::new()
            .put(format!(
                "{}/v2/{repo}/manifests/{reference}",
                self.base_url()
            ))
            .header("content-type", media_type)
            .body(bytes.clone())
            .send()
            .await
            .expect("put manifest");
        let status = resp.status();
        let header = resp
            .headers()
            .get("docker-content-digest")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(
            status.as_u16(),
            201,
            "put manifest {repo}:{reference}: {body}"
        );
        let digest = sha256_digest(&bytes).unwrap().to_string();
        assert_eq!(
            header.as_deref(),
            Some(digest.as_str()),
            "registry digest of {repo}:{reference}"
        );
        Pushed {
            digest,
            media_type,
            bytes,
        }
    }

    /// A small single-platform image (config blob + one layer) tagged
    /// `tag`. `seed` makes the content, and so the digest, unique.
    pub async fn push_image(&self, repo: &str, tag: &str, flavor: Flavor, seed: &str) -> Pushed {
        let layer = format!("layer of {seed}\n").into_bytes();
        let layer_digest = self.push_blob(repo, &layer).await;
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"seed":"{seed}"}}}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
        )
        .into_bytes();
        let config_digest = self.push_blob(repo, &config).await;
        let (media_type, config_type, layer_type) = match flavor {
            Flavor::Oci => (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            Flavor::Docker => (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            ),
        };
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"{config_type}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{layer_type}","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        self.push_manifest(repo, tag, media_type, manifest.into_bytes())
            .await
    }

    /// An index (OCI) or manifest list (Docker) over `children`, one per
    /// platform `(os, architecture)`, tagged `tag`.
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        flavor: Flavor,
        children: &[(&Pushed, &str, &str)],
    ) -> Pushed {
        let media_type = match flavor {
            Flavor::Oci => OCI_INDEX,
            Flavor::Docker => DOCKER_LIST,
        };
        let mut entries = String::new();
        for (i, (child, os, arch)) in children.iter().enumerate() {
            if i > 0 {
                entries.push(',');
            }
            write!(
                entries,
                r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"{os}"}}}}"#,
                child.media_type,
                child.digest,
                child.bytes.len()
            )
            .unwrap();
        }
        let index =
            format!(r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[{entries}]}}"#);
        self.push_manifest(repo, tag, media_type, index.into_bytes())
            .await
    }

    /// Points `tag` at an already pushed manifest (re-tagging, as a CI
    /// pipeline re-pushing `:v1` would).
    pub async fn retag(&self, repo: &str, tag: &str, manifest: &Pushed) {
        self.push_manifest(repo, tag, manifest.media_type, manifest.bytes.clone())
            .await;
    }

    /// Deletes a manifest by digest (tags pointing at it go with it).
    pub async fn delete_manifest(&self, repo: &str, digest: &str) {
        let resp = reqwest::Client::new()
            .delete(format!("{}/v2/{repo}/manifests/{digest}", self.base_url()))
            .send()
            .await
            .expect("delete manifest");
        assert_eq!(resp.status().as_u16(), 202, "delete {repo}@{digest}");
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `/v2/` until it answers (200 open, 401 with token auth).
async fn wait_ready(child: &mut Child, port: u16) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(resp) = client
            .get(format!("http://127.0.0.1:{port}/v2/"))
            .send()
            .await
            && matches!(resp.status().as_u16(), 200 | 401)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}
