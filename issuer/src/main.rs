//! The `issuer` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for a configuration the issuer refuses to start with.
const EXIT_CONFIG: u8 = 2;

/// The Portcullis issuer.
#[derive(Debug, Parser)]
#[command(name = "issuer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, Debug, Subcommand)]
enum Command {
    /// Apply migrations and serve HTTP (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match issuer::config::load() {
            Ok(config) => start(config.log_format(), issuer::run(config)),
            Err(err) => config_error(&err),
        },
        Command::Migrate => match issuer::config::load_for_migrate() {
            Ok(config) => start(config.log_format(), issuer::migrate(config)),
            Err(err) => config_error(&err),
        },
    }
}

fn config_error(err: &issuer::config::ConfigError) -> ExitCode {
    eprintln!("issuer: configuration error: {err}");
    ExitCode::from(EXIT_CONFIG)
}

/// Installs logging, runs `work` on a Tokio runtime and turns its outcome into an exit code.
fn start(
    format: issuer::config::LogFormat,
    work: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    if let Err(err) = issuer::telemetry::init(format) {
        eprintln!("issuer: cannot install logging: {err}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("issuer: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("issuer: {err:#}");
            ExitCode::FAILURE
        }
    }
}
