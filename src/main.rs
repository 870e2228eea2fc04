use clap::Parser;

fn main() -> std::process::ExitCode {
    match dbbackup::cli::Cli::try_parse() {
        Ok(cli) => dbbackup::run(cli),
        Err(error) => dbbackup::usage_error(error),
    }
}
