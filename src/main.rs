fn main() -> std::process::ExitCode {
    malloc_settings::fixed_mmap_threshold();
    match dbbackup::cli::Cli::try_parse_ignoring_empty_env() {
        Ok(cli) => dbbackup::run(cli),
        Err(error) => dbbackup::usage_error(error),
    }
}

/// glibc raises its mmap threshold each time a large block is freed, after
/// which large buffers come from the heap and stay there when freed: `verify
/// --all` with four backups side by side peaked at 57-68 MiB (spec: under 64)
/// though it needs about 45. A fixed threshold keeps every buffer of 128 KiB
/// or more in its own mapping, returned when freed.
#[allow(unsafe_code)]
mod malloc_settings {
    pub(super) fn fixed_mmap_threshold() {
        // SAFETY: mallopt only sets a malloc parameter; called before any thread.
        unsafe {
            nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

/// Whether stdout was closed (`dbbackup list >&-`) when the process started.
/// Rust's runtime start-up, before `main`, reopens a closed fd 0-2 on
/// /dev/null, so a report written there would be lost with exit 0; the fd
/// can only be seen closed before that, from the ELF `.init_array` (run by the
/// C library ahead of the runtime). Unsafe code (with `malloc_settings`): the
/// section attribute and one `fcntl` that reads a flag.
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
