use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use revertbot::cli::{Cli, Command, ConfigCommand, LogFormat, OutputFormat};
use revertbot::commands::{self, Globals, Outcome, Request, exit};
use revertbot::report;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.log_format, cli.verbose);
    // The config lives in the infra repo, so by default it is found there.
    let globals = Globals {
        config: cli
            .config
            .clone()
            .unwrap_or_else(|| cli.repo.join(revertbot::config::DEFAULT_FILE)),
        repo: cli.repo.clone(),
    };
    match run(&cli, &globals) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            let chain = anyhow::Error::from(e);
            tracing::debug!(error = ?chain, "command failed");
            eprintln!("error: {chain}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: &Cli, globals: &Globals) -> Result<u8, commands::CommandError> {
    let outcome = match &cli.command {
        Command::Config(ConfigCommand::Validate) => {
            let text = commands::config_cmd::validate(&globals.config)?;
            return Ok(print_stdout(&text));
        }
        Command::Config(ConfigCommand::Schema) => {
            return Ok(print_stdout(&commands::config_cmd::schema()));
        }
        Command::Plan(args) => commands::plan::run(
            globals,
            &commands::plan::PlanArgs {
                app: args.app.clone(),
                request: Request {
                    deployed: args.revisions.deployed.clone(),
                    lkg: args.revisions.lkg.clone(),
                    commits: Vec::new(),
                },
            },
        )?,
        Command::Revert(args) => commands::revert::run(
            globals,
            &commands::revert::RevertArgs {
                app: args.app.clone(),
                request: Request {
                    deployed: args.revisions.deployed.clone(),
                    lkg: args.revisions.lkg.clone(),
                    commits: args.commits.clone(),
                },
                mode: commands::revert::Mode::Push,
                reason: args.reason.clone(),
            },
        )?,
        Command::Record(args) => commands::record::run(
            globals,
            &commands::record::RecordArgs {
                app: args.app.clone(),
                revision: args.revision.clone(),
                images: args.images.clone(),
            },
        )?,
    };
    Ok(emit(cli.output, &outcome))
}

fn emit(format: OutputFormat, outcome: &Outcome) -> u8 {
    let text = match format {
        OutputFormat::Text => report::to_text(&outcome.report),
        OutputFormat::Json => match serde_json::to_string_pretty(&outcome.report) {
            Ok(json) => format!("{json}\n"),
            Err(e) => {
                eprintln!("error: cannot encode the report as JSON: {e}");
                return exit::ERROR;
            }
        },
    };
    let written = print_stdout(&text);
    if written != exit::OK {
        return written;
    }
    outcome.exit_code
}

/// Writes results to stdout; a closed pipe is not a crash.
fn print_stdout(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(_) => exit::ERROR,
    }
}

fn init_tracing(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "revertbot=warn",
        1 => "revertbot=info",
        2 => "revertbot=debug",
        _ => "revertbot=trace",
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}
