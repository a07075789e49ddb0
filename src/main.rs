use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use revertbot::cli::{Cli, Command, ConfigCommand, LogFormat, OutputFormat};
use revertbot::commands::{self, Globals, Outcome, Request, exit};
use revertbot::{redact, report};

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
    // Before anything can log: every output is scrubbed of these.
    redact::register_env([]);
    scrub_panics();
    init_tracing(cli.log_format, cli.verbose);
    // Two TLS crypto providers end up linked in (aws-lc-rs, ring); pick one
    // before any client builds a TLS config, or that client panics.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
            tracing::debug!(error = %revertbot::errors::chain(&e), "command failed");
            // Each error's text already says its cause: print it once.
            eprintln!("error: {}", redact::scrub(&e.to_string()));
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
        Command::Check(args) => {
            let check = commands::check::CheckArgs {
                app: args.app.clone(),
                dry_run: args.dry_run,
            };
            runtime()?.block_on(async {
                let (ws, controllers) = open_with_controllers(globals).await?;
                commands::check::run_in(&ws, &check, &controllers).await
            })?
        }
        Command::Watch(args) => {
            let watch = commands::watch::WatchArgs {
                check: commands::check::CheckArgs {
                    app: args.app.clone(),
                    dry_run: args.dry_run,
                },
                interval: args.interval,
            };
            let output = cli.output;
            // One document per cycle (and per finished wait): JSON lines
            // with --output json.
            let mut emit = |report: &report::Report| {
                let text = match output {
                    OutputFormat::Text => report::to_text(report),
                    OutputFormat::Json => serde_json::to_string(report)
                        .map(|j| format!("{j}\n"))
                        .unwrap_or_default(),
                };
                print_stdout(&text);
            };
            return runtime()?.block_on(async {
                let (ws, controllers) = open_with_controllers(globals).await?;
                commands::watch::run(globals, ws, &controllers, &watch, &mut emit).await
            });
        }
        Command::Drill(args) => {
            let drill = commands::drill::DrillArgs {
                keep: args.keep || args.dir.is_some(),
                dir: args.dir.clone(),
                on_repo: args.app.clone().map(|app| commands::drill::OnRepo {
                    app,
                    globals: globals.clone(),
                }),
            };
            let (report, code) = runtime()?.block_on(commands::drill::run(&drill))?;
            let text = match cli.output {
                OutputFormat::Text => commands::drill::to_text(&report),
                OutputFormat::Json => serde_json::to_string_pretty(&report)
                    .map(|j| format!("{j}\n"))
                    .unwrap_or_default(),
            };
            let written = print_stdout(&text);
            return Ok(if written == exit::OK { code } else { written });
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
        Command::Revert(args) => {
            let revert = commands::revert::RevertArgs {
                app: args.app.clone(),
                request: Request {
                    deployed: args.revisions.deployed.clone(),
                    lkg: args.revisions.lkg.clone(),
                    commits: args.commits.clone(),
                },
                mode: match args.mode {
                    revertbot::cli::Mode::Push => commands::revert::Mode::Push,
                    revertbot::cli::Mode::Pr => commands::revert::Mode::Pr,
                },
                reason: args.reason.clone(),
                observed_images: Vec::new(),
                force_guards: args.force_guards,
            };
            // A pull request is merged by people, later: nothing to wait for.
            if revert.mode == commands::revert::Mode::Pr {
                commands::pull_request::run(globals, &revert)?
            } else if args.no_wait || !commands::has_controller(globals, &args.app)? {
                commands::revert::run(globals, &revert)?
            } else {
                runtime()?.block_on(async {
                    let (ws, controllers) =
                        open_with_controllers(globals).await.map_err(|e| match e {
                            commands::CommandError::ControllerSetup(setup) => {
                                commands::CommandError::Usage(format!(
                                    "{setup} — revert waits for the controller to report Healthy; pass --no-wait to revert without waiting"
                                ))
                            }
                            other => other,
                        })?;
                    commands::check::revert_and_confirm(&ws, &revert, &controllers).await
                })?
            }
        }
        Command::RestoreMarkers(args) => {
            let session = commands::Session::open(globals, &args.app)?;
            commands::restore_markers::run(
                &session,
                &commands::restore_markers::RestoreArgs {
                    app: args.app.clone(),
                    dry_run: args.dry_run,
                },
            )?
            .warned(&session.config_warnings)
        }
        Command::Preflight(args) => {
            let request = commands::preflight::PreflightArgs {
                base: args.base.clone(),
                head: args.head.clone(),
                fail_on: args.fail_on.map(|f| match f {
                    revertbot::cli::FailOn::Error => revertbot::config::FailOn::Error,
                    revertbot::cli::FailOn::Warning => revertbot::config::FailOn::Warning,
                }),
            };
            let report = runtime()?.block_on(commands::preflight::run(globals, &request))?;
            // Annotations on stderr (the runner reads workflow commands from
            // either stream; stdout stays the result), the job summary
            // appended where Actions asks for it.
            if revertbot::workflow_commands::in_actions() {
                let mut stderr = std::io::stderr().lock();
                for line in report.annotations() {
                    let _ = writeln!(stderr, "{line}");
                }
            }
            if let Err(e) = revertbot::workflow_commands::append_to_env_file(
                "GITHUB_STEP_SUMMARY",
                &redact::scrub(&report.summary_markdown()),
            ) {
                eprintln!("warning: cannot append the job summary to $GITHUB_STEP_SUMMARY: {e}");
            }
            let text = match cli.output {
                OutputFormat::Text => report.to_text(),
                OutputFormat::Json => report.to_json(),
            };
            let written = print_stdout(&text);
            return Ok(if written == exit::OK {
                report.exit_code()
            } else {
                written
            });
        }
        Command::Record(args) => match &args.revision {
            Some(revision) => commands::record::run(
                globals,
                &commands::record::RecordArgs {
                    app: args.app.clone(),
                    revision: revision.clone(),
                    images: args.images.clone(),
                },
            )?,
            // On demand, from the controller.
            None => runtime()?.block_on(async {
                let (ws, controllers) = open_with_controllers(globals).await?;
                commands::check::record_now(&ws, &args.app, &controllers).await
            })?,
        },
    };
    Ok(emit(cli.output, &outcome))
}

/// The workspace (config loaded once) and the controllers its apps need.
async fn open_with_controllers(
    globals: &Globals,
) -> Result<(commands::Workspace, commands::controllers::Controllers), commands::CommandError> {
    let ws = commands::Workspace::open(globals)?;
    let controllers = commands::controllers::Controllers::from_env(&ws.config)
        .await
        .map_err(commands::CommandError::ControllerSetup)?;
    Ok((ws, controllers))
}

fn runtime() -> Result<tokio::runtime::Runtime, commands::CommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(commands::CommandError::io("cannot start the async runtime"))
}

fn emit(format: OutputFormat, outcome: &Outcome) -> u8 {
    let text = match format {
        OutputFormat::Text => report::to_text(&outcome.report),
        OutputFormat::Json => match serde_json::to_string_pretty(&outcome.report) {
            Ok(json) => format!("{json}\n"),
            Err(e) => {
                eprintln!(
                    "error: cannot encode the report as JSON: {}",
                    redact::scrub(&e.to_string())
                );
                return exit::ERROR;
            }
        },
    };
    let written = print_stdout(&text);
    if written != exit::OK {
        return written;
    }
    // In Actions: step outputs, job summary and annotations (stderr), so
    // stdout stays exactly the report.
    if revertbot::workflow_commands::in_actions() {
        revertbot::report_github::publish(&outcome.report, outcome.exit_code);
    }
    outcome.exit_code
}

/// Writes results to stdout, scrubbed of secrets; a closed pipe is not a
/// crash.
fn print_stdout(text: &str) -> u8 {
    let text = redact::scrub(text);
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
    // Colour only for a person at a terminal who did not opt out
    // (https://no-color.org: set and not empty means no colour).
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| ScrubbedStderr(Vec::new()))
        .with_ansi(colour)
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

/// A panic message can quote any value (a response body in an `expect`):
/// print it, and the backtrace when asked for, through the scrubber.
fn scrub_panics() {
    std::panic::set_hook(Box::new(|info| {
        let mut text = format!("revertbot panicked: {info}\n");
        let trace = std::backtrace::Backtrace::capture();
        if trace.status() == std::backtrace::BacktraceStatus::Captured {
            text.push_str(&format!("{trace}\n"));
        }
        let _ = std::io::stderr().write_all(redact::scrub(&text).as_bytes());
    }));
}

/// The log writer: tracing-subscriber makes one per event, so buffering the
/// event and scrubbing it whole on drop catches a secret however the
/// formatter split its writes, for text and JSON alike.
struct ScrubbedStderr(Vec<u8>);

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedStderr {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        // A log line that cannot be written has nowhere else to go.
        let _ = std::io::stderr().write_all(redact::scrub(&text).as_bytes());
    }
}
