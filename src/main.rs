//! The `lifeline` command line: parses the arguments and hands each command to its module
//! under `cli/` (`serve` runs the service; `migrate`, `generate`, `check`, `keys`, `import`
//! and `export` work on the configured store directly; `tiles` and `simulate` run jobs).
//! An error ends the process with status 1 and its message on stderr; stdout holds only a
//! command's result (as JSON with the global `--json`).

mod cli;

use clap::Parser;
use cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli {
        store,
        output,
        command,
    } = Cli::parse();
    // After parsing: the flags choose the log level.
    cli::init_tracing(&output);
    let out = cli::Output::new(&output);
    match &command {
        Command::Serve(args) => cli::serve::run(&store, args).await,
        Command::Migrate => cli::migrate::run(&store, out).await,
        Command::Generate(args) => cli::generate::run(&store, args, out).await,
        Command::Check => cli::check::run(&store, out).await,
        Command::Tiles { action } => cli::tiles::run(&store, action, out).await,
        Command::Simulate(args) => cli::simulate::run(args, out).await,
        Command::Keys { action } => cli::keys::run(&store, action, out).await,
        Command::Import(args) => cli::import::run(&store, args, out).await,
        Command::Export(args) => cli::export::run(&store, args, out).await,
        Command::Audit { action } => cli::audit::run(&store, action, out).await,
    }
}
