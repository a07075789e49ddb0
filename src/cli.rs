//! Command-line definitions (clap only; `main` turns them into requests).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "revertbot",
    version,
    about = "GitOps revert bot: finds the commit that broke a deploy and reverts it with last-known-good images pinned by digest",
    propagate_version = true
)]
pub struct Cli {
    /// Path of the config file [default: .revertbot.yaml in --repo].
    #[arg(long, global = true, env = "REVERTBOT_CONFIG")]
    pub config: Option<PathBuf>,

    /// The infra repository (a git checkout).
    #[arg(long, global = true, default_value = ".")]
    pub repo: PathBuf,

    /// Result format on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// More logging (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One pass over all (or one) apps: observe, judge, act per policy.
    Check(CheckArgs),
    /// `check` in a loop until stopped (SIGTERM / Ctrl-C finish the cycle).
    Watch(WatchArgs),
    /// A game day in a sandbox: simulated Argo CD, a bad release, detection,
    /// revert with the digest pinned, Healthy confirmed, and a timeline.
    Drill(DrillArgs),
    /// Show what a revert would do (culprits, diff, pins); change nothing.
    Plan(PlanArgs),
    /// Revert the culprits of an app and publish the revert.
    Revert(RevertArgs),
    /// Record a revision as last-known-good for an app, with image digests.
    Record(RecordArgs),
    /// Once an incident is over: restore the Flux image-automation markers
    /// a revert suspended on the app's pinned lines (one commit, pushed).
    RestoreMarkers(RestoreMarkersArgs),
    /// Check an infra pull request before it merges: mutable tags, re-promoted
    /// bad digests, files no app owns, images revertbot cannot pin, commits
    /// a later revert could not undo cleanly.
    Preflight(PreflightArgs),
    /// Check or describe the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Keep the sandbox for inspection (its path is printed).
    #[arg(long)]
    pub keep: bool,

    /// Build the sandbox in this (new or empty) directory; implies --keep.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Rehearse this app of your own config on a sandbox copy of --repo
    /// (nothing is pushed to your remote) and report whether it is ready.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only this app.
    #[arg(long)]
    pub app: Option<String>,

    /// Judge and plan, but record and revert nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between the starts of two checks (`30s`, `2m`).
    #[arg(long, default_value = "30s", value_parser = parse_interval)]
    pub interval: std::time::Duration,

    /// Only this app.
    #[arg(long)]
    pub app: Option<String>,

    /// Judge and plan, but record and revert nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let span: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("`{text}` is not a duration like 30s or 2m: {e}"))?;
    let d =
        std::time::Duration::try_from(span).map_err(|_| format!("`{text}` must be positive"))?;
    if d < std::time::Duration::from_secs(1) {
        return Err(format!("`{text}` is too short — use at least 1s"));
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct Revisions {
    /// Revision the controller deployed (default: the branch tip on the remote).
    #[arg(long, value_name = "SHA")]
    pub deployed: Option<String>,

    /// Last-known-good revision (default: the newest ledger record on the
    /// deployed history).
    #[arg(long, value_name = "SHA")]
    pub lkg: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The app, as named in the config.
    #[arg(long)]
    pub app: String,

    #[command(flatten)]
    pub revisions: Revisions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Push the revert to the branch (fast-forward only).
    Push,
    /// Open a pull request from `revertbot/<app>/<short sha>` (needs
    /// GITHUB_TOKEN); a rerun updates it instead of opening another.
    Pr,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    #[arg(long)]
    pub app: String,

    #[command(flatten)]
    pub revisions: Revisions,

    /// Revert these commits instead of searching (repeatable).
    #[arg(long = "commit", value_name = "SHA")]
    pub commits: Vec<String>,

    /// How to publish the revert.
    #[arg(long, value_enum, default_value_t = Mode::Push)]
    pub mode: Mode,

    /// Why, for the commit message and the ledger.
    #[arg(long)]
    pub reason: Option<String>,

    /// Revert although a guard holds it (freeze, cooldown, revert limit,
    /// loop guard); the overridden guards are recorded in the commit and the
    /// incident. Never overrides a missing last-known-good.
    #[arg(long)]
    pub force_guards: bool,

    /// Do not wait for the controller to report the app Healthy at the
    /// revert (the default waits when the app has a controller).
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct RestoreMarkersArgs {
    #[arg(long)]
    pub app: String,

    /// List the markers that would be restored; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[arg(long)]
    pub app: String,

    /// The healthy revision (with --image). Without both, the revision and
    /// digests come from the controller, and only a Healthy app is recorded.
    #[arg(long, value_name = "SHA", requires = "images")]
    pub revision: Option<String>,

    /// An image it ran, with its digest: NAME:TAG@sha256:HEX (repeatable).
    #[arg(long = "image", value_name = "IMAGE", requires = "revision")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// The pull request's base (default: `repo.branch` on the remote).
    /// Changes are taken from the merge base of base and head.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,

    /// The pull request's head.
    #[arg(long, value_name = "REF", default_value = "HEAD")]
    pub head: String,

    /// The lowest severity that fails the check (exit 5) [default: the
    /// config's `preflight.fail_on`, else error].
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config file; report every problem with file:line:column.
    Validate,
    /// Print the config's JSON Schema (draft 2020-12).
    Schema,
}
