//! `dbbackup lock status`: who holds the backup-directory lock (host, pid, job,
//! since, from the lock file) and, when the holder is on this host, whether its
//! process is alive. Takes no lock and writes nothing.

use serde_json::json;

use super::Ctx;
use crate::cli::{LockArgs, LockCommand};
use crate::error::{Error, Result, show};
use crate::exit_code::ExitCode;

pub(crate) fn run(ctx: &Ctx, args: &LockArgs) -> Result<ExitCode> {
    let LockCommand::Status(format) = &args.command;
    let out = ctx.output(format.format);
    let dir = ctx.backup_dir();
    // "free" for a directory that is not there would hide a wrong path or mount.
    match dir.path().metadata() {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::failed(format!(
                "backup directory {} is not a directory",
                show(dir.path())
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::failed(format!(
                "no backup directory {}",
                show(dir.path())
            )));
        }
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot read backup directory {}: {e}",
                show(dir.path())
            )));
        }
    }
    let holder = crate::lock::holder(dir.path(), &ctx.job.host)?;
    let text = match (&holder.recorded, holder.held) {
        (None, false) if !dir.path().join(crate::store::LOCK_FILE).exists() => {
            "free (no lock file yet: never locked)".to_string()
        }
        (None, false) => "free".to_string(),
        (None, true) => match holder.pid {
            Some(pid) => format!(
                "held by pid {pid} on this host, which recorded nothing in the lock file (another tool, or a dbbackup that has just taken it)"
            ),
            None => "held by a process that recorded nothing (another tool?)".to_string(),
        },
        (Some(line), held) => {
            let alive = match holder.alive {
                Some(true) => "; its process is alive on this host",
                Some(false) => "; its process is gone from this host",
                None => "; on another host: its liveness cannot be checked from here",
            };
            if held {
                format!("held by {line}{alive}")
            } else {
                format!("free; the last holder ({line}) did not release it cleanly{alive}")
            }
        }
    };
    out.line(format!("lock of {}: {text}", dir.path().display()));
    out.document(&json!({"dir": dir.path(), "lock": holder}));
    Ok(ExitCode::Success)
}
