//! The `lifeline` command line: parses the arguments and hands each command to its module
//! under `cli/` (`serve` runs the service; `migrate`, `generate`, `check`, `keys`, `import`
//! and `export` work on the configured store directly; `tiles` and `simulate` run jobs).
//! An error ends the process with status 1 and its message on stderr.

mod cli;

use clap::Parser;
use cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    let Cli { store, command } = Cli::parse();
    match &command {
        Command::Serve(args) => cli::serve::run(&store, args).await,
        Command::Migrate => cli::migrate::run(&store).await,
        Command::Generate(args) => cli::generate::run(&store, args).await,
        Command::Check(args) => cli::check::run(&store, args).await,
        Command::Tiles { action } => cli::tiles::run(&store, action).await,
        Command::Simulate(args) => cli::simulate::run(args).await,
        Command::Keys { action } => cli::keys::run(&store, action).await,
        Command::Import(args) => cli::import::run(&store, args).await,
        Command::Export(args) => cli::export::run(&store, args).await,
    }
}
