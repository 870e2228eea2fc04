fn main() -> std::process::ExitCode {
    match dbbackup::cli::Cli::try_parse_ignoring_empty_env() {
        Ok(cli) => dbbackup::run(cli),
        Err(error) => dbbackup::usage_error(error),
    }
}

/// Whether stdout was closed (`dbbackup list >&-`) when the process started.
/// Rust's runtime start-up, before `main`, reopens a closed fd 0-2 on
/// /dev/null, so a report written there would be lost with exit 0; the fd
/// can only be seen closed before that, from the ELF `.init_array` (run by the
/// C library ahead of the runtime). The one piece of unsafe code: the section
/// attribute and one `fcntl` that reads a flag.
#[allow(unsafe_code)]
mod closed_stdout {
    #[used]
    #[unsafe(link_section = ".init_array")]
    static AT_START: extern "C" fn() = at_start;

    extern "C" fn at_start() {
        // SAFETY: F_GETFD on fd 1 only reads its descriptor flags.
        let flags = unsafe { nix::libc::fcntl(1, nix::libc::F_GETFD) };
        if flags == -1 && nix::errno::Errno::last() == nix::errno::Errno::EBADF {
            dbbackup::stdout_closed_at_start();
        }
    }
}
