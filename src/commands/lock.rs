//! `dbbackup lock status`: who holds the backup-directory lock (host, pid, job,
//! since, from the lock file) and, when the holder is on this host, whether its
//! process is alive. Takes no lock and writes nothing.

use serde_json::json;

use super::{Ctx, Status};
use crate::cli::{LockArgs, LockCommand};
use crate::error::Result;

pub fn run(ctx: &Ctx, args: &LockArgs) -> Result<Status> {
    let LockCommand::Status(format) = &args.command;
    let out = ctx.output(format.format);
    let dir = ctx.backup_dir();
    let holder = crate::lock::holder(dir.path(), &ctx.job.host)?;
    let text = match (&holder.recorded, holder.held) {
        (None, false) => "free".to_string(),
        (None, true) => "held by a process that recorded nothing (another tool?)".to_string(),
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
    Ok(Status::Success)
}
