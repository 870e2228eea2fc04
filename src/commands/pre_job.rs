//! `dbbackup pre-job`: a restore point from before this job's work. In an array job
//! the first task to get the lock makes it (tagged with the array id); the others
//! wait for the lock, find it recorded, and return. Returns only once it exists.

use serde_json::json;

use super::{Ctx, Status};
use crate::backup::{self, Outcome};
use crate::cli::FormatArgs;
use crate::error::Result;
use crate::jobstate::JobState;
use crate::store::{DbId, Kind};
use crate::summary::{self, Line};

pub fn run(ctx: &Ctx, args: &FormatArgs) -> Result<Status> {
    let out = ctx.output(args.format);
    let job_id = ctx.job.job_id().to_string();
    let result = make_once(ctx, &job_id);
    let mut line = Line::new(&ctx.job, "pre-job", summary::Status::Failed);
    let status = match &result {
        Ok((name, false)) => {
            line = Line::new(&ctx.job, "pre-job", summary::Status::Skipped);
            line.field("backup", name)
                .field("reason", "made by another task of this job");
            out.line(format!("restore point for job {job_id} exists: {name}"));
            out.document(&json!({"status": "skipped", "job": job_id, "backup": name}));
            Status::Success
        }
        Ok((name, true)) => {
            line = Line::new(&ctx.job, "pre-job", summary::Status::Ok);
            line.field("backup", name);
            out.line(format!("restore point for job {job_id}: created {name}"));
            out.document(&json!({"status": "ok", "job": job_id, "backup": name}));
            Status::Success
        }
        Err(error) => {
            line.field("error", &error.to_string());
            Status::Failure
        }
    };
    summary::append_or_warn(&ctx.settings.summary_log, &line);
    result.map(|_| status)
}

/// The job's pre-job backup name, and whether this call made it.
fn make_once(ctx: &Ctx, job_id: &str) -> Result<(String, bool)> {
    let db = ctx.settings.db_path()?;
    let dir = ctx.backup_dir();
    let lock = ctx.lock(&dir)?;
    let state = JobState::open(&dir)?;
    // Per job *and* database: databases sharing a backup directory each need
    // their own restore point.
    let key = format!("{job_id}-{}", DbId::of(db).key());
    if let Some(name) = state.pre_job_backup(&key) {
        return Ok((name, false));
    }
    let mut job = ctx.job.clone();
    job.tag = job_id.to_string();
    match backup::run(&ctx.settings, &job, &dir, &lock, db, Kind::PreJob, true)? {
        Outcome::Created(created) if created.is_good() => {
            state.record_pre_job(&key, &created.entry.file_name)?;
            Ok((created.entry.file_name, true))
        }
        Outcome::Created(created) => Err(crate::error::Error::failed(format!(
            "pre-job snapshot failed its integrity check (quick_check: {}); kept as {}",
            crate::snapshot::one_line(created.meta.check_detail.as_deref().unwrap_or_default()),
            created.entry.file_name
        ))),
        Outcome::Unchanged(name) => Ok((name, false)),
    }
}
