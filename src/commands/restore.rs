//! `dbbackup restore NAME|latest [--target PATH] [--if-db-missing] [--force]`:
//! glue over the restore engine in [`crate::restore`].

use serde_json::json;

use super::{Ctx, Status};
use crate::cli::RestoreArgs;
use crate::error::{Result, show};
use crate::restore::{self, Outcome, Request};

pub fn run(ctx: &Ctx, args: &RestoreArgs) -> Result<Status> {
    let out = ctx.output(args.output.format);
    let target = match &args.target {
        Some(target) => target.clone(),
        None => ctx.settings.db_path()?.to_path_buf(),
    };
    let request = Request {
        name: args.name.clone(),
        target: target.clone(),
        db: ctx.settings.db_path.clone(),
        force: args.force,
        if_db_missing: args.if_db_missing,
    };
    match restore::restore(&ctx.settings, &ctx.job, &ctx.backup_dir(), &request)? {
        Outcome::Skipped => {
            out.line(format!(
                "database {} exists; nothing to restore",
                show(&target)
            ));
            out.document(
                &json!({"status": "skipped", "reason": "database exists", "target": target}),
            );
        }
        Outcome::Restored(done) => {
            for (name, why) in &done.passed_over {
                out.line(format!("passed over {name}: {why}"));
            }
            match &done.saved {
                Some(saved) if done.saved_before => out.line(format!(
                    "restored {} into {} (previous content already held by backup {saved})",
                    done.name,
                    show(&done.target)
                )),
                Some(saved) => out.line(format!(
                    "restored {} into {} (previous content saved as {saved})",
                    done.name,
                    show(&done.target)
                )),
                None => out.line(format!(
                    "restored {} into {}",
                    done.name,
                    show(&done.target)
                )),
            }
            out.document(&json!({
                "status": "ok",
                "name": done.name,
                "target": done.target,
                "pre_restore_backup": done.saved,
                "passed_over": done.passed_over.iter()
                    .map(|(name, why)| json!({"name": name, "reason": why}))
                    .collect::<Vec<_>>(),
            }));
        }
    }
    Ok(Status::Success)
}
