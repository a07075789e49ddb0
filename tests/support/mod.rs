//! Test support: a smart-HTTP git host with Basic auth ([`GitHost`]), temp
//! repositories driven by the git CLI ([`WorkRepo`]) and small git2 client
//! helpers ([`git2_client`]). Not every test binary uses everything.
#![allow(dead_code, unused_imports)]

pub mod argocd_sim;
pub mod culprits;
pub mod fake_argocd;
pub mod fake_github;
pub mod fake_kube;
pub mod flux_check;
pub mod flux_objects;
pub mod git2_client;
pub mod githost;
pub mod http;
pub mod infra;
pub mod preflight;
pub mod registry_server;
pub mod repo;
pub mod runner;
pub mod scripted_http;
pub mod sshd;

pub use githost::{GitHost, USERNAME};
pub use repo::WorkRepo;
