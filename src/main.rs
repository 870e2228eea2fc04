fn main() -> std::process::ExitCode {
    match dbbackup::cli::Cli::try_parse_ignoring_empty_env() {
        Ok(cli) => dbbackup::run(cli),
        Err(error) => dbbackup::usage_error(error),
    }
}
