use clap::Parser;

fn main() -> std::process::ExitCode {
    dbbackup::run(dbbackup::cli::Cli::parse())
}
