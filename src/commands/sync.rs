//! `dbbackup sync`: glue over [`crate::remote::sync`]; the outcome is recorded
//! for `check` (`remote::state`) and the summary log.

use serde_json::json;

use super::Ctx;
use crate::cli::SyncArgs;
use crate::error::{Error, Result, show};
use crate::exit_code::ExitCode;
use crate::remote::proof::Proofs;
use crate::remote::state;
use crate::remote::sync::Synced;
use crate::store::{BackupDir, BackupSet, Entry};
use crate::units::human_bytes;

/// The configured database. One prefix is one database's: without one, a
/// directory holding several databases' backups is refused, as `check`
/// refuses it, not uploaded into one prefix together (T31 R20).
fn database(ctx: &Ctx) -> Result<Option<crate::store::DbId>> {
    let db = ctx.db_id();
    if db.is_none() {
        crate::store::latest::sole_database_of(&ctx.backup_dir())?;
    }
    Ok(db)
}

/// One sync of `set`; again over the backup directory as it then is when
/// it found backups there damaged too and marked them, so that an older
/// intact point goes up in their place in this run (T33 H3).
fn sync_set(
    ctx: &Ctx,
    (remote, rules): (&crate::remote::Remote, crate::remote::sync::Rules<'_>),
    (set, db): (&crate::store::BackupSet, Option<&crate::store::DbId>),
    proofs: &mut Proofs,
) -> Result<crate::remote::sync::Synced> {
    let first = crate::remote::sync::sync(remote, (set, db), rules, proofs)?;
    if first.marked_here.is_empty() || first.stopped.is_some() {
        return Ok(first);
    }
    let set = with_mirrors(ctx, ctx.backup_set(&ctx.backup_dir())?);
    let again = crate::remote::sync::sync(remote, (&set, db), rules, proofs)?;
    Ok(again.after(first))
}

pub(crate) fn run(ctx: &Ctx, args: &SyncArgs) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    let remote = crate::remote::configured(&ctx.settings)?;
    let url = remote.url().to_string();
    let db = database(ctx)?;
    // Nowhere to record this sync for `check`, even when a mirror's points
    // go up (the directory is not made for it): no success either way.
    let gone = !ctx.settings.backup_dir.is_dir();
    let mut from_mirrors = false;
    // Held until the outcome is recorded: an inline upload of this directory
    // waits for it, and it for one under way (`remote::serial`); the proofs
    // are read once it is this sync's turn (the one before may add some).
    let (turn, waited) = take_turn(ctx, &remote);
    let mut proofs = Proofs::load(&ctx.settings.backup_dir, remote.url());
    let listed = waited.and_then(|()| ctx.backup_set(&ctx.backup_dir()));
    let result = listed.and_then(|set| {
        let set = with_mirrors(ctx, set);
        from_mirrors = !set.restore_points.is_empty();
        let rules = crate::remote::sync::Rules {
            forget_missing: args.forget_missing,
            ..crate::remote::sync::Rules::of(&ctx.settings)
        };
        sync_set(ctx, (&remote, rules), (&set, db.as_ref()), &mut proofs)
    });
    let mut unrecorded = proofs.save_checked(remote.url()).err();
    let mut result = result;
    // Stopped after its uploads: failed, and what it did still said.
    let stopped = result.as_mut().ok().and_then(|done| done.stopped.take());
    let problem = result.as_ref().ok().and_then(|done| {
        done.problem(&remote)
            .or_else(|| gone.then(|| lost_dir(ctx, &url, from_mirrors)))
    });
    if let Some(db) = db {
        let outcome = match (
            &result,
            stopped
                .as_ref()
                .map(ToString::to_string)
                .or(problem.clone()),
        ) {
            (Err(error), _) => Err(error.to_string()),
            (Ok(_), Some(problem)) => Err(problem),
            (Ok(done), None) => Ok(done.on_remote.clone()),
        };
        let detail = result.as_ref().map(summary).unwrap_or_default();
        let event = ("sync", url.as_str());
        let written = state::record_checked(&ctx.settings, &db, &ctx.job, event, outcome, &detail);
        unrecorded = unrecorded.or(written.err());
    }
    drop(turn);
    // What `check` cannot see must not pass as done: the sync fails (exit 1).
    let unrecorded = unrecorded.map(|why| {
        format!(
            "this sync's outcome is not recorded for `check`, which goes on judging by an older one: {why}; run sync as an account that can write there"
        )
    });
    if let (Some(why), true) = (
        &unrecorded,
        result.is_err() || problem.is_some() || stopped.is_some(),
    ) {
        tracing::error!("{why}");
    }
    let done: Synced = match result {
        Ok(done) => done,
        Err(error) => {
            // A script reading `--format json` gets a document either way.
            out.document(&json!({
                "status": "failed",
                "remote": url,
                "error": error.to_string(),
            }));
            return Err(error);
        }
    };
    say_done(&out, &done, &url);
    out.line(format!("{url}: {}", summary(&done)));
    let failed = problem.is_some() || unrecorded.is_some() || stopped.is_some();
    let mut document = document(&done, &url, failed);
    if let Some(error) = stopped {
        document["error"] = json!(error.to_string());
        out.document(&document);
        if let Some(problem) = problem {
            tracing::error!("{problem}");
        }
        return Err(error);
    }
    out.document(&document);
    match problem.or(unrecorded) {
        Some(problem) => Err(Error::failed(problem)),
        None => Ok(ExitCode::Success),
    }
}

/// What the sync did, point by point (the summary line follows).
fn say_done(out: &crate::output::Output, done: &Synced, url: &str) {
    for (name, size) in &done.uploaded {
        out.line(format!("uploaded {name} ({}) to {url}", human_bytes(*size)));
    }
    for (name, why) in &done.passed_over {
        tracing::warn!("not uploaded: {name}: {why}");
    }
    for name in &done.repaired {
        out.line(format!(
            "repaired {name} on {url}: its bytes there did not match its SHA-256; uploaded again from the backup directory"
        ));
    }
    for name in &done.reordered {
        out.line(format!(
            "moved {name} below the newer points on {url} (it was ordered above them there: an upload by an earlier version, a record copied from another prefix or changed at the store, or two syncs placing points at once)"
        ));
    }
    for (name, older) in &done.lifted {
        out.line(format!(
            "moved {name} above {older} on {url}: {older} is older (made before it, not in this backup directory: from before a purge of it, or copied in from another prefix) but was ranked above it, so `restore latest` would have taken it"
        ));
    }
    for name in &done.forgotten {
        let what = if done.records_only.contains(name) {
            "its record is gone from"
        } else {
            "gone from"
        };
        out.line(format!(
            "forgot {name}: {what} {url}, with no copy here to upload again (--forget-missing); diffs on it stay damaged"
        ));
    }
    for name in &done.deleted {
        out.line(format!("deleted {name} from {url} (remote_max_backups)"));
    }
    for (name, hours) in &done.orphans {
        out.line(format!(
            "deleted {name} from {url}: a data object without a record (an upload stopped before its record, or a record lost), written {hours} h ago by the store's clock, older than a restore point there, and not in the backup directory"
        ));
    }
}

/// This sync's turn to upload (`remote::serial`), or why it did not come.
fn take_turn(
    ctx: &Ctx,
    remote: &crate::remote::Remote,
) -> (Option<crate::remote::serial::Turn>, Result<()>) {
    let wait = crate::remote::serial::limit(ctx.settings.remote_timeout);
    match crate::remote::serial::wait_turn(&ctx.settings.backup_dir, remote.url(), &ctx.job, wait) {
        Ok(turn) => (Some(turn), Ok(())),
        Err(error) => (None, Err(error)),
    }
}

/// Why a sync without its backup directory fails: nothing of it (its outcome,
/// its read-backs) can be recorded for `check`; `from_mirrors`: the mirrors'
/// points were uploaded all the same.
fn lost_dir(ctx: &Ctx, url: &str, from_mirrors: bool) -> String {
    let dir = show(&ctx.settings.backup_dir);
    let what = if from_mirrors {
        "the mirrors' restore points were uploaded, but this sync cannot be recorded for `check` (nor its read-backs kept: each sync reads the remote's points back whole again)"
    } else {
        "nothing to upload, and this sync cannot be recorded for `check`"
    };
    format!(
        "backup directory {dir} does not exist: {what}; create it (`mkdir -p {dir}`) and run `dbbackup sync` again (if the database is lost too, `dbbackup restore latest` from {url} first)"
    )
}

/// `sync --format json`'s document.
fn document(done: &Synced, url: &str, failed: bool) -> serde_json::Value {
    json!({
        "status": if failed { "failed" } else { "ok" },
        "remote": url,
        "read_back": done.read_back,
        "repaired": done.repaired,
        "damaged": reasons(&done.damaged, "name"),
        "uploaded": done.uploaded.iter()
            .map(|(name, size)| json!({"name": name, "size": size}))
            .collect::<Vec<_>>(),
        "already_there": done.present,
        "not_intact": reasons(&done.not_intact, "name"),
        "passed_over": reasons(&done.passed_over, "name"),
        "no_base": reasons(&done.no_base, "name"),
        "wrong_records": reasons(&done.wrong_records, "name"),
        "invalid_records": reasons(&done.invalid_records, "key"),
        "clashes": reasons(&done.clashes, "name"),
        "mixed": reasons(&done.mixed, "name"),
        "gone": done.gone,
        "forgotten": done.forgotten,
        "reordered": done.reordered,
        "lifted": done.lifted.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        "deleted": done.deleted,
    })
}

/// `[{FIELD: NAME, "reason": WHY}, …]` of `list`.
fn reasons(list: &[(String, String)], field: &str) -> Vec<serde_json::Value> {
    list.iter()
        .map(|(name, why)| json!({field: name, "reason": why}))
        .collect()
}

/// `set` with the restore points a mirror holds that it lacks (a purged or
/// lost backup directory: else the mirrors' copies never reach the remote),
/// named with the mirror they are uploaded from. A mirror that cannot be
/// read is named and passed over.
fn with_mirrors(ctx: &Ctx, mut set: BackupSet) -> BackupSet {
    for dir in &ctx.settings.mirror_dirs {
        let mirror = match ctx.backup_set(&BackupDir::new(dir)) {
            Ok(mirror) => mirror,
            Err(error) => {
                tracing::warn!("cannot read mirror {} for sync: {error}", show(dir));
                continue;
            }
        };
        let lacking: Vec<Entry> = mirror
            .restore_points
            .into_iter()
            .filter(|e| {
                !set.restore_points
                    .iter()
                    .any(|p| p.file_name == e.file_name)
            })
            .collect();
        if lacking.is_empty() {
            continue;
        }
        let names: Vec<&str> = lacking.iter().map(|e| e.file_name.as_str()).collect();
        tracing::warn!(
            "the backup directory lacks {} restore point(s) that mirror {} holds, taken from the mirror (uploaded if not on the remote yet; the summary line counts what was): {}",
            lacking.len(),
            show(dir),
            names.join(", ")
        );
        set.restore_points.extend(lacking);
    }
    set.restore_points
        .sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
    set
}

/// `N uploaded, M already there (R read back whole)`: what a point
/// "already there" means is that it was proved (docs/remote.md).
fn summary(done: &Synced) -> String {
    let mut text = format!(
        "{} uploaded, {} already there",
        done.uploaded.len(),
        done.present
    );
    if !done.read_back.is_empty() {
        text.push_str(&format!(" ({} read back whole)", done.read_back.len()));
    }
    if !done.repaired.is_empty() {
        text.push_str(&format!(", {} repaired", done.repaired.len()));
    }
    if !done.damaged.is_empty() {
        text.push_str(&format!(", {} damaged", done.damaged.len()));
    }
    if !done.no_base.is_empty() {
        text.push_str(&format!(
            ", {} diff(s) without their base",
            done.no_base.len()
        ));
    }
    if !done.wrong_records.is_empty() {
        text.push_str(&format!(", {} wrong record(s)", done.wrong_records.len()));
    }
    if !done.invalid_records.is_empty() {
        text.push_str(&format!(
            ", {} invalid record(s)",
            done.invalid_records.len()
        ));
    }
    if !done.gone.is_empty() {
        text.push_str(&format!(", {} gone from the store", done.gone.len()));
    }
    if !done.clashes.is_empty() {
        text.push_str(&format!(", {} name(s) taken", done.clashes.len()));
    }
    if !done.mixed.is_empty() {
        text.push_str(&format!(
            ", {} refused (another backup directory's points there)",
            done.mixed.len()
        ));
    }
    if !done.not_intact.is_empty() {
        text.push_str(&format!(
            ", {} damaged in the backup directory",
            done.not_intact.len()
        ));
    }
    text
}
