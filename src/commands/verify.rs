//! `dbbackup verify [NAME...|--all]`: decompress fully (every member's CRC), check
//! the SQLite header, size and SHA-256 against the metadata, then run
//! `PRAGMA integrity_check` on the result. The copy goes to `$TMPDIR`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use serde::Serialize;

use super::Ctx;
use crate::cli::{BackupRef, VerifyArgs};
use crate::error::{Error, Result};
use crate::exit_code::ExitCode;
use crate::store::Entry;

/// The most backups `verify --all` checks side by side (see `run`).
const MAX_SIDE_BY_SIDE: usize = 4;

#[derive(Debug, Serialize)]
struct Verdict {
    name: String,
    ok: bool,
    detail: String,
    /// A failed snapshot found by `--all`: a known-failed attempt kept for
    /// inspection, not a restore point, so it is reported but does not make
    /// verify exit 1.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    failed_snapshot: bool,
    /// `verify --from-remote`: the database this point is a backup of, when
    /// it is not the configured one (one prefix may hold several's points).
    #[serde(skip_serializing_if = "Option::is_none")]
    other_database: Option<String>,
    /// `--all`: deleted since it was listed (a concurrent backup's retention,
    /// a prune), so not verified, and no failure (T28 F10).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

impl Verdict {
    /// Whether it makes verify exit 1.
    fn fails_verify(&self) -> bool {
        !self.ok && !self.failed_snapshot && !self.deleted
    }
}

pub(crate) fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<ExitCode> {
    run_attempt(ctx, args, 1)
}

/// The newest, deleted by a newer backup's retention before it was read,
/// is chosen again this many times in all (T28b #3: `verify` beside a loop
/// of backups with `max_backups: 1` said FAILED, exit 1).
const NEWEST_ATTEMPTS: u32 = 3;

fn run_attempt(ctx: &Ctx, args: &VerifyArgs, attempt: u32) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    if args.from_remote {
        return remote(ctx, &out, &args.names);
    }
    let newest_only = !args.all
        && args
            .names
            .iter()
            .all(|name| matches!(name, BackupRef::Latest))
        && args.names.len() <= 1;
    let dir = ctx.backup_dir();
    // Newer restore points `latest` passes over as damaged: verify's job is to
    // find damage, so each is a failed verdict, not a note.
    let mut passed_over = Vec::new();
    let mut entries = chosen(ctx, args, &dir, &mut passed_over)?;
    // `verify latest latest`, or a name and `latest` meaning one backup: check it once.
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| seen.insert(e.file_name.clone()));
    // Each passed-over one said once, and not when it is verified itself.
    passed_over.retain(|v: &Verdict| seen.insert(v.name.clone()));
    if entries.is_empty() {
        return Err(Error::failed(format!(
            "no backups to verify in {}",
            dir.path().display()
        )));
    }
    // A file holding another's backup under its own name reads back whole
    // (its bytes are a backup), yet is no backup of its own (T30 F12).
    let copies = dir.copies()?;
    let threads = crate::archive::worker_threads(ctx.settings.threads, ctx.job.cpus_per_task);
    // Several backups: one per core at a time, at most `MAX_SIDE_BY_SIDE`,
    // each inflated on one thread (`integrity_check`, most of the work, uses
    // one core); one backup: its members on every core. Memory is ~10 MiB per
    // worker (buffers, SQLite's cache), so at most four keep a 64-core node
    // under 64 MiB; `$TMPDIR` holds one decompressed copy per worker.
    let (workers, inner) = if entries.len() > 1 {
        (threads.min(entries.len()).min(MAX_SIDE_BY_SIDE), 1)
    } else {
        (1, threads)
    };
    // Progress bars of backups verified side by side would overwrite each other.
    let show_progress = ctx.settings.progress() && workers == 1;
    let next = AtomicUsize::new(0);
    // A cross-thread stop flag (a signal stops every worker claiming backups), not a result.
    let stop = AtomicBool::new(false);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<String>)>();
    for verdict in &passed_over {
        say(&out, verdict);
    }
    let mut verdicts = passed_over;
    let first_checked = verdicts.len();
    let mut interrupted = None;
    thread::scope(|scope| {
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let (entries, next, stop, job, copies) = (&entries, &next, &stop, &ctx.job, &copies);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(entry) = entries.get(i) else { return };
                    let result = match copies.get(&entry.file_name) {
                        Some(copy) => Err(Error::failed(copy.why.clone())),
                        None => crate::verify::one(entry, show_progress, job, inner),
                    };
                    if done_tx.send((i, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        // Verdicts in the order of `entries`, each as soon as those before it are in.
        let mut pending = BTreeMap::new();
        for (i, result) in done_rx {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&(verdicts.len() - first_checked)) {
                let entry = &entries[verdicts.len() - first_checked];
                let verdict = match result {
                    Err(error @ Error::Interrupted(_)) => {
                        stop.store(true, Ordering::SeqCst);
                        interrupted.get_or_insert(error);
                        return;
                    }
                    result => verdict_of(entry, result, args.all, args.all || newest_only),
                };
                say(&out, &verdict);
                verdicts.push(verdict);
            }
        }
    });
    if let Some(error) = interrupted {
        return Err(error);
    }
    if newest_only && attempt < NEWEST_ATTEMPTS && verdicts.iter().any(|v| v.deleted) {
        return run_attempt(ctx, args, attempt + 1);
    }
    out.document(&verdicts);
    // The newest asked for and never read (deleted each time): no "ok".
    let nothing_read = newest_only && verdicts.iter().all(|verdict| verdict.deleted);
    Ok(
        if nothing_read || verdicts.iter().any(Verdict::fails_verify) {
            ExitCode::Failure
        } else {
            ExitCode::Success
        },
    )
}

/// What verify found of `entry`; `all`: verifying every backup; `gone_ok`:
/// a backup deleted since it was listed is said so, no failure.
fn verdict_of(entry: &Entry, result: Result<String>, all: bool, gone_ok: bool) -> Verdict {
    let name = entry.file_name.clone();
    match result {
        Ok(detail) => Verdict {
            name,
            ok: true,
            detail,
            failed_snapshot: false,
            other_database: None,
            deleted: false,
        },
        Err(_) if gone_ok && deleted_since_listed(entry) => Verdict {
            name,
            ok: false,
            detail: "deleted since verify listed it (by a concurrent backup's retention or a prune): not verified".into(),
            failed_snapshot: false,
            other_database: None,
            deleted: true,
        },
        Err(error) => Verdict {
            detail: finding(&error, &entry.file_name),
            name,
            ok: false,
            failed_snapshot: all && entry.is_failed(),
            other_database: None,
            deleted: false,
        },
    }
}

/// The backup's file is gone: listed, then deleted before or while it was read.
fn deleted_since_listed(entry: &crate::store::Entry) -> bool {
    std::fs::symlink_metadata(&entry.path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// The backups `args` name, in the order given (`--all`: every one, newest
/// first); newer ones `latest` passes over go to `passed_over`.
fn chosen(
    ctx: &Ctx,
    args: &VerifyArgs,
    dir: &crate::store::BackupDir,
    passed_over: &mut Vec<Verdict>,
) -> Result<Vec<Entry>> {
    let mut latest = || latest(ctx, dir, passed_over);
    Ok(if args.all {
        // Newest first by creation time, as `list` shows them (legacy names are
        // local time, ours UTC, so name order is not creation order).
        let mut all = dir.entries()?;
        all.sort_by_key(|e| std::cmp::Reverse((e.created(), e.name.order_key())));
        all
    } else if args.names.is_empty() {
        vec![latest()?]
    } else {
        let mut entries = Vec::new();
        for name in &args.names {
            match name {
                BackupRef::Named(name) => entries.push(dir.by_name(name)?),
                BackupRef::Latest => entries.push(latest()?),
            }
        }
        entries
    })
}

/// The remote's points `names` gives (newest first, as `entries` is), each
/// once; `latest` is the database's own newest (a prefix may hold another
/// database's: T27b F14); a name the remote does not hold is an error naming
/// it (T27 F-A).
fn named(
    entries: Vec<Entry>,
    names: &[BackupRef],
    db: Option<&crate::store::DbId>,
    url: &dyn std::fmt::Display,
) -> Result<Vec<Entry>> {
    let ours = |e: &&Entry| {
        e.meta.as_ref().is_ok_and(|m| {
            m.kind != crate::store::Kind::PreRestore && db.is_none_or(|db| db.owns(&m.source))
        })
    };
    let mut wanted = Vec::new();
    for name in names {
        let found = match name {
            BackupRef::Latest => entries.iter().find(ours),
            BackupRef::Named(name) => entries.iter().find(|e| &e.file_name == name),
        };
        let Some(found) = found else {
            return Err(Error::failed(format!(
                "no restore point named '{}' on {url} (`dbbackup list --from-remote` lists them)",
                name.as_str()
            )));
        };
        if !wanted
            .iter()
            .any(|e: &Entry| e.file_name == found.file_name)
        {
            wanted.push(found.clone());
        }
    }
    Ok(wanted)
}

/// `verify --from-remote`: the restore points on the remote named (every one
/// when none is) downloaded (size and SHA-256 against its record), then
/// checked as a local one is.
fn remote(ctx: &Ctx, out: &crate::output::Output, names: &[BackupRef]) -> Result<ExitCode> {
    let remote = crate::remote::configured(&ctx.settings)?;
    // A download directory that cannot be used is one line, said before
    // anything is listed, not a "FAILED" for each point never read.
    let temp = std::env::temp_dir();
    drop(
        crate::remote::fetch::Staged::new(&temp)
            .map_err(|e| Error::failed(format!("{e} (downloads go to TMPDIR)")))?,
    );
    let points =
        crate::remote::mend::points_here(&remote, &ctx.backup_dir(), ctx.db_id().as_ref())?;
    // Only other databases' points: their `ok`s say nothing of this one's
    // off-site copy (T33 H13).
    if let Some(db) = ctx.db_id().filter(|_| names.is_empty())
        && !points.is_empty()
        && points
            .iter()
            .all(|p| crate::remote::whose::other_database(&points, &p.record.name, &db).is_some())
        && recorded_unlisted(ctx, &remote, &points, None).is_empty()
    {
        return Err(crate::remote::fetch::none_of(&db, &remote, &points));
    }
    let mut entries: Vec<Entry> = points
        .iter()
        .filter_map(|p| p.entry(remote.url()))
        .collect();
    // Recorded there by the last sync, no longer listed: also the only
    // ones (their records gone at the store), failed, not "none there".
    if entries.is_empty()
        && (!names.is_empty() || recorded_unlisted(ctx, &remote, &points, None).is_empty())
    {
        return Err(Error::failed(format!(
            "no restore points on {}",
            remote.url()
        )));
    }
    entries.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
    if !names.is_empty() {
        entries = named(entries, names, ctx.db_id().as_ref(), remote.url())?;
    }
    // Each base downloaded once, kept while the diffs on it are read.
    let entries = crate::remote::fetch::by_base(&points, entries);
    let mut downloads = crate::remote::fetch::OneBaseAtATime::new(&temp);
    let threads = crate::archive::worker_threads(ctx.settings.threads, ctx.job.cpus_per_task);
    let mut verdicts = Vec::new();
    // What each download read: `sync`, `list` and `check` count on it.
    let mut proofs = crate::remote::proof::Proofs::load(&ctx.settings.backup_dir, remote.url());
    for entry in &entries {
        let staged = downloads.stage(&remote, &points, &entry.file_name, &mut proofs);
        let mut unsound = None;
        let result = staged.and_then(|staged| {
            let local = crate::store::BackupDir::new(staged.dir()).by_name(&entry.file_name)?;
            let verdict = crate::verify::one(&local, false, &ctx.job, threads);
            unsound = crate::store::damage::unsound_finding(&local.path);
            verdict
        });
        // Kept for `list` and `restore latest` from the remote, which would
        // otherwise take the point (T35 R8); a passing check clears it.
        if (result.is_ok() || unsound.is_some())
            && let Some(point) = points.iter().find(|p| p.record.name == entry.file_name)
        {
            proofs.note_unsound(point, unsound);
        }
        proofs.save(remote.url());
        downloads.read(&entry.file_name, result.is_ok());
        let mut verdict = match result {
            Err(error @ Error::Interrupted(_)) => return Err(error),
            Ok(detail) => Verdict {
                name: entry.file_name.clone(),
                ok: true,
                detail: format!("{detail}, read back from {}", remote.url()),
                failed_snapshot: false,
                other_database: None,
                deleted: false,
            },
            Err(error) => Verdict {
                name: entry.file_name.clone(),
                ok: false,
                detail: finding(&error, &entry.file_name),
                failed_snapshot: false,
                other_database: None,
                deleted: false,
            },
        };
        whose(ctx, &points, &mut verdict);
        say(out, &verdict);
        verdicts.push(verdict);
    }
    if names.is_empty() {
        let newest = newest_unlisted(ctx, &remote, &points, &mut proofs);
        let others = recorded_unlisted(ctx, &remote, &points, newest.as_ref());
        // Noted, so that `check` fails on them too (T32 G7, G9).
        for verdict in &others {
            proofs.note_unlisted(&verdict.name, verdict.detail.clone());
        }
        proofs.save(remote.url());
        for verdict in newest.into_iter().chain(others).chain(invalid(&remote)) {
            say(out, &verdict);
            verdicts.push(verdict);
        }
    }
    out.document(&verdicts);
    Ok(if verdicts.iter().all(|v| v.ok) {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// Record objects at the store that are not valid records (changed there):
/// each a restore point no command can restore, failed (T33 H15: the
/// newest's, on a purged machine, and `verify --from-remote` was green).
fn invalid(remote: &crate::remote::Remote) -> Vec<Verdict> {
    remote
        .invalid_records()
        .into_iter()
        .map(|bad| Verdict {
            name: bad.name,
            ok: false,
            detail: format!(
                "its record {} is not a restore-point record ({}): it cannot be restored from {}; put the original record back, or delete it and `dbbackup sync` from a backup directory holding this backup uploads it again",
                bad.key,
                bad.why,
                remote.url()
            ),
            failed_snapshot: false,
            other_database: None,
            deleted: false,
        })
        .collect()
}

/// A point of another database than the configured one, said in its verdict:
/// the same name may be one of this database's local backups, and an `ok`
/// read as "my backup is safe on the remote" would be untrue.
fn whose(ctx: &Ctx, points: &[crate::remote::RemotePoint], verdict: &mut Verdict) {
    let Some(db) = ctx.db_id() else { return };
    if let Some(source) = crate::remote::whose::other_database(points, &verdict.name, &db) {
        verdict.detail.push_str(&format!(
            "; a backup of {source}, not of {}",
            crate::error::show(db.canonical())
        ));
        verdict.other_database = Some(source.to_string());
    }
}

/// The backup directory's newest restore point, recorded on the remote by
/// the last upload, that the listing no longer shows: a failed verdict (and
/// noted for `check`), since `restore latest` cannot restore it from there.
fn newest_unlisted(
    ctx: &Ctx,
    remote: &crate::remote::Remote,
    points: &[crate::remote::RemotePoint],
    proofs: &mut crate::remote::proof::Proofs,
) -> Option<Verdict> {
    let db = ctx.db_id()?;
    let (name, why) = crate::remote::newest::note_if_unlisted(
        &ctx.settings.backup_dir,
        &db,
        remote.url(),
        points,
        proofs,
    )?;
    proofs.save(remote.url());
    Some(Verdict {
        detail: format!(
            "{name} (the newest restore point here) cannot be restored from {}: {why}",
            remote.url()
        ),
        name,
        ok: false,
        failed_snapshot: false,
        other_database: None,
        deleted: false,
    })
}

/// The other points the last sync recorded on the remote that its listing
/// no longer shows as restore points (a record overwritten or deleted at the
/// store): not restorable from there, so failed verdicts, not a WARN beside
/// an exit 0 (T31 R15).
fn recorded_unlisted(
    ctx: &Ctx,
    remote: &crate::remote::Remote,
    points: &[crate::remote::RemotePoint],
    newest: Option<&Verdict>,
) -> Vec<Verdict> {
    let Some(db) = ctx.db_id() else {
        return Vec::new();
    };
    let url = remote.url().to_string();
    let Some(record) = crate::remote::state::read_for(&ctx.settings.backup_dir, &db, &url) else {
        return Vec::new();
    };
    crate::remote::newest::unlisted(&record, points)
        .filter(|name| newest.is_none_or(|v| &v.name != *name))
        .map(|name| Verdict {
            detail: format!(
                "recorded on {url} by the last sync ({}), but no valid restore-point record of it is listed there (deleted or damaged at the store): it cannot be restored from there",
                record.time
            ),
            name: name.clone(),
            ok: false,
            failed_snapshot: false,
            other_database: None,
            deleted: false,
        })
        .collect()
}

/// What `restore latest` would restore: the newest restore point not known to
/// be damaged (or missing its base). Newer ones passed over are failed verdicts.
fn latest(
    ctx: &Ctx,
    dir: &crate::store::BackupDir,
    passed_over: &mut Vec<Verdict>,
) -> Result<Entry> {
    let points = crate::store::latest::restore_points(dir, ctx.db_id().as_ref(), None)?;
    let chosen = points
        .iter()
        .position(|e| crate::diff::restore_problem(e).is_none())
        // None would restore: check the newest, which says why.
        .unwrap_or(0);
    // A newer file under a backup name whose metadata cannot be read may well
    // have been this database's newest (`check`'s `unreadable`): failed too.
    if let Ok(set) = ctx.backup_set(dir) {
        for (name, why) in crate::health::unreadable_passed_over(&set, &points[chosen]) {
            passed_over.push(Verdict {
                name,
                ok: false,
                detail: why,
                failed_snapshot: false,
                other_database: None,
                deleted: false,
            });
        }
    }
    for passed in &points[..chosen] {
        let why = crate::diff::restore_problem(passed).unwrap_or_default();
        passed_over.push(Verdict {
            name: passed.file_name.clone(),
            ok: false,
            detail: format!("{why} (`restore latest` passes over it)"),
            failed_snapshot: false,
            other_database: None,
            deleted: false,
        });
    }
    // The last backup made, newer than all of them, gone or its file now
    // holding another backup (T35 R6): `verify` said ok of an older one.
    if let Some((name, why)) = crate::restore::last_made_missing(&ctx.settings, &points) {
        passed_over.push(Verdict {
            name,
            ok: false,
            detail: format!("{why} (`restore latest` passes over it)"),
            failed_snapshot: false,
            other_database: None,
            deleted: false,
        });
    }
    Ok(points[chosen].clone())
}

/// One backup's verdict as people read it (a failure also as an error line).
fn say(out: &crate::output::Output, verdict: &Verdict) {
    if verdict.ok {
        out.line(format!("{}: ok ({})", verdict.name, verdict.detail));
    } else if verdict.deleted {
        out.line(format!("{}: {}", verdict.name, verdict.detail));
    } else if verdict.failed_snapshot {
        out.line(format!(
            "{}: failed snapshot, kept for inspection (not a restore point; does not make verify fail): {}",
            verdict.name, verdict.detail
        ));
    } else {
        // On a terminal the stdout line is the one shown (`logging::REPORTED`).
        tracing::error!(target: crate::logging::REPORTED, "{}: FAILED: {}", verdict.name, verdict.detail);
        out.line(format!("{}: FAILED: {}", verdict.name, verdict.detail));
    }
}

/// What is wrong with backup `name`, without naming it again: the verdict line
/// starts with the name (`NAME: FAILED: damaged: ...`).
fn finding(error: &Error, name: &str) -> String {
    match error {
        Error::Damaged {
            name: damaged, why, ..
        } if damaged == name => format!("damaged: {why}"),
        other => other.to_string(),
    }
}
