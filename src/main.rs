//! The `mysql-aa-operator` binary: wiring only.

use std::process::ExitCode;

use clap::Parser;
use mysql_aa_operator::cli::{Cli, Plugin, is_plugin, run, run_pair};

fn main() -> ExitCode {
    let out = &mut std::io::stdout().lock();
    // Installed as `kubectl-myaa`, it is the kubectl plugin.
    let result = match std::env::args_os().next() {
        Some(argv0) if is_plugin(&argv0) => run_pair(Plugin::parse().command, out),
        _ => run(Cli::parse(), out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`... | head`) is the reader's choice, not a failure.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
