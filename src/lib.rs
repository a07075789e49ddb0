//! revertbot: a GitOps revert bot.
//!
//! `domain` and `policy` are pure; `git`, `manifest`, `config` and the other
//! adapters do I/O at the edges; `commands` sequences them. See DESIGN.md in
//! the docs folder and the README for the public contracts.

pub mod cli;
pub mod commands;
pub mod config;
pub mod controller;
pub mod domain;
pub mod errors;
pub mod forge;
pub mod git;
pub mod manifest;
pub mod policy;
pub mod redact;
pub mod registry;
pub mod render;
pub mod report;
pub mod report_github;
pub mod retry;
pub mod workflow_commands;
pub mod yaml;
