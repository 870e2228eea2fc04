//! `dbbackup list [--format json]`: every backup in the directory, newest first,
//! each marked with what it is to the configured database (its restore point,
//! pre-restore copy, failed snapshot, or another database's backup).

use serde::Serialize;

use super::Ctx;
use super::report::{saved_percent, saved_text};
use crate::cli::ListArgs;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::output::Output;
use crate::remote::proof::{Proofs, Standing};
use crate::store::{Checksum, DbId, Entry, Legacy, Role, ownership};
use crate::units::human_bytes;

/// One backup as `list --format json` prints it (documented in docs/json.md).
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub name: String,
    pub created: String,
    pub size: u64,
    pub db_size: Option<u64>,
    pub saved_percent: Option<f64>,
    pub checksum: Option<Checksum>,
    pub host: Option<String>,
    pub job: Option<String>,
    /// `manual`, ..., `pre-restore`, `legacy`; `null` when the metadata is damaged.
    pub kind: Option<String>,
    /// `full`, or `diff` for a differential backup; `null` when the metadata is
    /// damaged (a legacy backup is `full`).
    #[serde(rename = "type")]
    pub backup_type: Option<&'static str>,
    /// For a diff: the full backup it is rebuilt on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// `ok`, `failed`, `no-base` (a diff whose base is missing or damaged),
    /// `damaged` (a file of another size than when it was written, or found
    /// damaged by `verify`, `restore` or `export`), or `unknown` when no check
    /// result was recorded; from the remote also `unverified` (not read back
    /// whole recently enough, or written since).
    pub check: String,
    /// With check `no-base` or `damaged`: what is wrong (cheap tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_problem: Option<String>,
    /// The failed check's whole output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_detail: Option<String>,
    /// Which check the backup's `check` is the verdict of (with metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_kind: Option<crate::store::metadata::CheckKind>,
    pub source: Option<String>,
    /// The source it was first recorded under, if `dbbackup adopt` moved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopted_from: Option<String>,
    /// What it is to the configured database: `restore-point`, `pre-restore`,
    /// `failed`, `damaged`, `other-database` or `unknown-owner` (`null` without a
    /// database).
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With `--job N`: `N` when this is the restore point pre-job recorded for
    /// job N though N did not make it (reused: the database was unchanged since
    /// it), the one `restore --before-job N` restores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_job_of: Option<String>,
    /// Why a legacy file's tables say it is not this database's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_owner: Option<String>,
}

impl Row {
    /// `legacy`: whose the directory's legacy files are to `db`.
    pub(crate) fn from_entry(entry: &Entry, db: Option<&DbId>, legacy: &Legacy) -> Row {
        let meta = entry.meta.as_ref().ok();
        let restore_problem = (meta.is_some() || entry.legacy)
            .then(|| crate::diff::restore_problem(entry))
            .flatten();
        let check = if entry.is_failed() {
            "failed".to_string()
        } else if restore_problem.is_some() && entry.name.diff && entry.damage.is_none() {
            "no-base".to_string()
        } else if restore_problem.is_some() {
            "damaged".to_string()
        } else if meta.is_some() {
            "ok".to_string()
        } else {
            "unknown".to_string()
        };
        Row {
            name: entry.file_name.clone(),
            created: entry.created().to_string(),
            size: entry.size,
            db_size: meta.map(|m| m.db_size),
            saved_percent: meta
                .filter(|_| check != "damaged")
                .map(|m| (saved_percent(m.db_size, entry.size) * 10.0).round() / 10.0),
            checksum: meta.map(|m| m.checksum),
            host: meta.map(|m| m.host.clone()),
            job: meta.map(|m| m.job.clone()),
            kind: entry.kind_name().map(str::to_string),
            backup_type: match meta {
                Some(meta) => Some(meta.type_name()),
                None if entry.legacy => Some("full"),
                None => None,
            },
            base: meta.and_then(|m| m.diff.as_ref()).map(|d| d.base.clone()),
            check,
            restore_problem,
            check_detail: meta.and_then(|m| m.check_detail.clone()),
            check_kind: meta.map(|m| m.check_kind),
            source: meta.map(|m| m.source.clone()),
            adopted_from: meta.and_then(|m| m.adopted_from.clone()),
            role: db.map(|db| ownership::role(entry, db, legacy).as_str()),
            error: entry.problem().map(str::to_string),
            pre_job_of: None,
            unknown_owner: legacy.unlike(&entry.file_name).map(str::to_string),
        }
    }
}

pub(crate) fn run(ctx: &Ctx, args: &ListArgs) -> Result<ExitCode> {
    let out = ctx.output(args.output.format);
    let db = ctx.db_id();
    // `--from-remote`: the complete points on the remote, as entries.
    let remote = args
        .from_remote
        .then(|| crate::remote::configured(&ctx.settings))
        .transpose()?;
    let place = match &remote {
        Some(remote) => remote.url().to_string(),
        None => ctx.settings.backup_dir.display().to_string(),
    };
    if remote.is_none() {
        // A bad --job is a usage error (exit 2) whether or not the directory exists.
        if let Some(id) = args.job.as_deref() {
            crate::slurm::undo::JobRef::parse(id)?;
        }
        refuse_missing_dir(ctx, db.as_ref())?;
    }
    let (entries, legacy, standings, reused) = listed(ctx, args, db.as_ref(), remote.as_ref())?;
    warn_if_missing(ctx, &entries, db.as_ref(), &legacy);
    // As SLURM reads it (`0805` is job 805), as the backups are tagged.
    let job_id = (args.job.as_deref())
        .map(|j| crate::slurm::undo::JobRef::parse_in(j, &ctx.backup_dir()).map(|j| j.id()))
        .transpose()?;
    let mut rows: Vec<Row> = entries
        .iter()
        .map(|e| Row::from_entry(e, db.as_ref(), &legacy))
        .collect();
    for row in rows.iter_mut().filter(|r| reused.contains(&r.name)) {
        row.pre_job_of = job_id.clone();
    }
    if remote.is_some() {
        remote_checks(&mut rows, &entries, &standings);
    }
    out.document(&rows);
    if rows.is_empty() {
        match job_id.as_deref() {
            Some(id) => out.line(format!(
                "no backups made by job {id} in {}",
                ctx.settings.backup_dir.display()
            )),
            None => {
                out.line(format!("no backups in {place}"));
                if remote.is_none()
                    && let Some(db) = &db
                    && let Some(hint) =
                        crate::store::latest::mirror_report(&ctx.settings.mirror_dirs, db)
                {
                    out.line(hint);
                }
            }
        }
        return Ok(ExitCode::Success);
    }
    print_table(&out, &rows, &entries, &legacy);
    print_notes(
        &out,
        &rows,
        &entries,
        (db.as_ref(), &legacy),
        remote.is_some(),
    );
    Ok(ExitCode::Success)
}

/// A backup directory that does not exist fails the listing (exit 1), as it
/// fails `check`: an empty list with exit 0 would read as "no backups yet" to a
/// script whose path is mistyped or whose working directory is another.
fn refuse_missing_dir(ctx: &Ctx, db: Option<&DbId>) -> Result<()> {
    let dir = &ctx.settings.backup_dir;
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        _ => return Ok(()),
    }
    let mirrors =
        db.and_then(|db| crate::store::latest::mirror_report(&ctx.settings.mirror_dirs, db));
    let remote = || crate::store::latest::remote_hint(ctx.settings.remote.as_deref(), db);
    let next = mirrors.or_else(remote).unwrap_or_else(|| {
        "no backup was made into it yet, or its path is mistyped (a relative `backup_dir` in a config file is from the file's directory; a relative --backup-dir or DBBACKUP_BACKUP_DIR from the working directory)"
            .to_string()
    });
    Err(crate::error::Error::failed(format!(
        "backup directory {} does not exist: {next}",
        crate::error::show(dir)
    )))
}

/// What is known of each remote point's bytes (`remote::proof`), by name.
type Standings = std::collections::HashMap<String, Standing>;

/// A configured database that is not there (a mistyped `--db-path` made every
/// row `other:`): said in one line on stderr. The listing stays useful, so the
/// exit code does not change.
fn warn_if_missing(ctx: &Ctx, entries: &[Entry], db: Option<&DbId>, legacy: &Legacy) {
    let (Some(path), Some(db)) = (ctx.settings.db_path.as_deref(), db) else {
        return;
    };
    if std::fs::symlink_metadata(path).is_ok() {
        return;
    }
    let ours = entries
        .iter()
        .filter(|e| {
            !matches!(
                ownership::role(e, db, legacy),
                Role::Other | Role::OwnerUnknown | Role::Damaged
            )
        })
        .count();
    let unknown = entries
        .iter()
        .filter(|e| ownership::role(e, db, legacy) == Role::OwnerUnknown)
        .count();
    let which = match ours {
        0 if unknown > 0 => format!(
            "none of the backups listed is known to be of it ({unknown} legacy of unknown owner: see the notes)"
        ),
        0 => "none of the backups listed is of it: mistyped --db-path?".to_string(),
        n => format!("{n} backup{} listed of it", if n == 1 { "" } else { "s" }),
    };
    tracing::warn!(
        "database {} does not exist; {which}",
        crate::error::show(path)
    );
}

/// The directory's backups, newest first, with whose its legacy files are;
/// with `--job`, only those the job made and the restore point pre-job
/// recorded for it (the last item: those of them it did not make, reused).
/// From the remote: with what is known of each point's bytes.
fn listed(
    ctx: &Ctx,
    args: &ListArgs,
    db: Option<&DbId>,
    remote: Option<&crate::remote::Remote>,
) -> Result<(Vec<Entry>, Legacy, Standings, Vec<String>)> {
    let mut standings = Standings::new();
    let mut entries = match remote {
        Some(remote) => {
            let points = crate::remote::mend::points_here(remote, &ctx.backup_dir(), db)?;
            let proofs = Proofs::load(&ctx.settings.backup_dir, remote.url());
            for point in &points {
                standings.insert(point.record.name.clone(), proofs.standing(point));
            }
            let mut entries: Vec<Entry> = points
                .iter()
                .filter_map(|p| p.entry(remote.url()))
                .collect();
            unsound_there(&ctx.settings.backup_dir, &proofs, &mut entries);
            entries
        }
        None => ctx.backup_dir().entries()?,
    };
    let job = args
        .job
        .as_deref()
        .map(|j| crate::slurm::undo::JobRef::parse_in(j, &ctx.backup_dir()))
        .transpose()?;
    // Newest first in the order `latest` goes by (publication, not clocks).
    crate::store::place_unnumbered(&mut entries);
    entries.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
    if let Some(remote) = remote {
        let newest = entries.first().map(|e| e.file_name.as_str());
        let so = "`list --from-remote` leaves it out";
        crate::remote::unrecorded::warn_newer(remote, newest, so);
    }
    let legacy = match db {
        Some(db) => Legacy::judge(&entries, db),
        None => Legacy::judge_whole_dir(&entries),
    };
    // Judged on the whole directory above; only then narrowed to one job.
    let mut reused = Vec::new();
    if let Some(job) = &job {
        // `restore --before-job` restores the recorded point: listed beside
        // what the job made, also when an earlier job or run made it.
        let recorded = match remote {
            Some(_) => Vec::new(),
            None => crate::slurm::undo::recorded_pre_jobs(&ctx.backup_dir(), None, &job.job),
        };
        entries.retain(|e| {
            let made = e.meta.as_ref().is_ok_and(|m| job.made(&m.job));
            if !made && recorded.contains(&e.file_name) {
                reused.push(e.file_name.clone());
            }
            made || recorded.contains(&e.file_name)
        });
    }
    Ok((entries, legacy, standings, reused))
}

/// The table people read: a header, then one line per backup.
fn print_table(out: &Output, rows: &[Row], entries: &[Entry], legacy: &Legacy) {
    // One abbreviation in the header would be wrong for half the year's rows
    // (CET over CEST rows): name the zone, or else give each row its offset.
    let zone = jiff::tz::TimeZone::system();
    let (created_header, row_format) = match zone.iana_name() {
        Some(name) => (format!("CREATED ({name})"), "%Y-%m-%d %H:%M:%S"),
        None => ("CREATED".to_string(), "%Y-%m-%d %H:%M:%S %:z"),
    };
    let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    // The BASE column only when some row is a diff.
    let base_width = rows
        .iter()
        .filter_map(|r| r.base.as_ref().map(|b| b.len() + 1))
        .max()
        .unwrap_or(0);
    let base_column = |base: &str| {
        if base_width == 0 {
            String::new()
        } else {
            format!("{base:<base_width$}")
        }
    };
    let created_width = created_header
        .len()
        .max(if row_format.ends_with('z') { 26 } else { 19 });
    // `unverified` (from the remote) is wider than the local words.
    let check_width = rows.iter().map(|r| r.check.len()).max().unwrap_or(0).max(7);
    let kind_width = rows
        .iter()
        .map(|r| kind_column(r).len())
        .max()
        .unwrap_or(0)
        .max(11);
    out.line(
        format!(
            "{:<name_width$} {:<created_width$} {:>10} {:>10} {:>6} {:<14} {:<kind_width$} {:<4} {:<check_width$} {}{}",
            "NAME",
            created_header,
            "SIZE",
            "DB SIZE",
            "SAVED",
            "JOB",
            "KIND",
            "TYPE",
            "CHECK",
            base_column("BASE"),
            "DATABASE"
        )
        .trim_end(),
    );
    for (row, entry) in rows.iter().zip(entries) {
        let local = entry
            .created()
            .to_zoned_datetime(zone.clone())
            .strftime(row_format)
            .to_string();
        out.line(format!(
            "{:<name_width$} {:<created_width$} {:>10} {:>10} {:>6} {:<14} {:<kind_width$} {:<4} {:<check_width$} {}{}",
            row.name,
            local,
            human_bytes(row.size),
            row.db_size.map(human_bytes).unwrap_or_else(|| "-".into()),
            // A damaged file's size is not the one written (T28 F17).
            saved_column(row.db_size.filter(|_| row.check != "damaged"), row.size),
            row.job.as_deref().unwrap_or("-"),
            kind_column(row),
            row.backup_type.unwrap_or("-"),
            row.check,
            base_column(row.base.as_deref().unwrap_or("-")),
            database_column(row, legacy)
        ));
    }
}

/// The KIND column: the recorded kind, or `pre-job (reused)` for the restore
/// point `list --job N` shows because pre-job recorded it for job N.
fn kind_column(row: &Row) -> &str {
    match &row.pre_job_of {
        Some(_) => "pre-job (reused)",
        None => row.kind.as_deref().unwrap_or("-"),
    }
}

/// Whose database a backup is, as the DATABASE column says it.
fn database_column(row: &Row, legacy: &Legacy) -> String {
    match (row.role, &row.source) {
        (Some("other-database"), Some(source)) => format!("other: {source}"),
        (_, _) if row.error.is_some() => {
            format!("? ({})", row.error.as_deref().unwrap_or(""))
        }
        (Some("unknown-owner"), _) => "unknown (legacy, see note)".to_string(),
        (Some(_), _) => "this".to_string(),
        (None, Some(source)) => source.clone(),
        // No database configured: there is no "this" (T28 F7).
        (None, None) if matches!(legacy, Legacy::Ours(_)) && legacy.unlike(&row.name).is_none() => {
            "unknown (legacy, no metadata)".to_string()
        }
        (None, None) => "unknown (legacy, see note)".to_string(),
    }
}

/// The notes under the table: what cannot be restored, legacy files whose
/// database cannot be told, backups of a database that moved.
fn print_notes(
    out: &Output,
    rows: &[Row],
    entries: &[Entry],
    (db, legacy): (Option<&DbId>, &Legacy),
    from_remote: bool,
) {
    for row in rows {
        if let Some(problem) = &row.restore_problem {
            out.line(format!("note: {} cannot be restored: {problem}", row.name));
        }
    }
    // A remote's points say nothing about where databases are now.
    let moved = if from_remote {
        Vec::new()
    } else {
        moved_hints(entries, db, legacy)
    };
    let unknown = entries
        .iter()
        .filter(|e| e.legacy && e.implausible.is_none())
        .count();
    if *legacy == Legacy::OwnerUnknown && unknown > 0 {
        out.line(format!(
            "note: {unknown} legacy backup{s} (plain gzip, no recorded database) {are} not counted as {whose}: this directory also holds backups of other databases, so whose {they} {are} cannot be told; restore one by name with --target to look at it (dbbackup restore NAME --target copy.db){adopt}",
            s = if unknown == 1 { "" } else { "s" },
            are = if unknown == 1 { "is" } else { "are" },
            they = if unknown == 1 { "it" } else { "they" },
            whose = if db.is_some() { "this database's" } else { "any database's" },
            adopt = if moved.is_empty() {
                ""
            } else {
                "; if this database moved here, `dbbackup adopt` (below) gives it the legacy files too once no other database's backups are left"
            },
        ));
    }
    // One note per file, a few at most: the rest counted (JSON has each).
    let unlike: Vec<_> = entries
        .iter()
        .filter_map(|e| legacy.unlike(&e.file_name).map(|why| (e, why)))
        .collect();
    for (entry, why) in unlike.iter().take(UNLIKE_NOTES) {
        out.line(format!(
            "note: {} is a legacy backup (plain gzip, no recorded database) that {why}; not counted, chosen or deleted (to look at it: dbbackup restore {} --target copy.db)",
            entry.file_name, entry.file_name,
        ));
    }
    if unlike.len() > UNLIKE_NOTES {
        let more = unlike.len() - UNLIKE_NOTES;
        out.line(format!(
            "note: and {more} more legacy backup{s} whose owner is unknown for {their} tables (`dbbackup list --format json`: unknown_owner)",
            s = if more == 1 { "" } else { "s" },
            their = if more == 1 { "its" } else { "their" },
        ));
    }
    if *legacy == Legacy::Unclaimed && unknown > 0 {
        out.line(unclaimed_note(unknown));
    }
    for line in moved {
        out.line(line);
    }
}

/// How many legacy files' notes `list` prints (T29 F10: 30 files, 17 KB).
const UNLIKE_NOTES: usize = 3;

/// Why legacy files in a directory the config file does not give this database
/// are not its own, and how to say they are.
fn unclaimed_note(unknown: usize) -> String {
    format!(
        "note: {unknown} legacy backup{s} (plain gzip, no recorded database) {are} not counted as this database's: nothing says whose {they} {are} (the seed's names carry no database, and this backup directory is not the one dbbackup.yaml gives this database: --backup-dir, --db-path or a DBBACKUP_* variable chose it); if {they} {are} this database's, write db_path and backup_dir into dbbackup.yaml (dbbackup --db-path DB --backup-dir DIR init); to look at one: dbbackup restore NAME --target copy.db",
        s = if unknown == 1 { "" } else { "s" },
        are = if unknown == 1 { "is" } else { "are" },
        they = if unknown == 1 { "it" } else { "they" },
    )
}

/// Remote points holding a database a whole read found failing
/// `integrity_check` (`remote::fetch::unsound`: in the backup directory, or
/// on the remote): damaged, as `restore latest --from-remote` passes over
/// them (T35 R8).
fn unsound_there(backup_dir: &std::path::Path, proofs: &Proofs, entries: &mut [Entry]) {
    let unsound = crate::remote::fetch::unsound(backup_dir, proofs);
    for entry in entries.iter_mut() {
        let Ok(meta) = &entry.meta else { continue };
        if let Some(why) = unsound.get(&meta.checksum) {
            entry.damage.get_or_insert_with(|| why.clone());
        }
    }
}

/// On the remote, a point whose data object does not match its record
/// (`remote::Remote::points`: missing, another size; or read back and found
/// other bytes, `remote::proof`) is damaged, and a diff whose base is not
/// whole there (absent, or damaged) cannot be restored. `ok` only for a point
/// proved: read back whole recently enough and not written since, and for a
/// diff its base too (it is only as restorable as its base); else
/// `unverified`. The local tests (`diff::restore_problem`) would look for
/// files in the backup directory. `entries`: the rows' own.
fn remote_checks(rows: &mut [Row], entries: &[Entry], standings: &Standings) {
    let damage = |e: &Entry| {
        e.damage
            .clone()
            .or_else(|| match standings.get(&e.file_name) {
                Some(Standing::Mismatch(why)) => Some(why.clone()),
                _ => None,
            })
    };
    // Each point on the remote: whether it is whole there.
    let whole: std::collections::HashMap<&str, bool> = entries
        .iter()
        .map(|e| (e.file_name.as_str(), damage(e).is_none()))
        .collect();
    let proved = |name: &str| matches!(standings.get(name), Some(Standing::Proved(_)));
    for (row, entry) in rows.iter_mut().zip(entries) {
        if let Some(damage) = damage(entry) {
            row.restore_problem = Some(damage);
            row.check = "damaged".into();
            continue;
        }
        row.restore_problem = row
            .base
            .as_ref()
            .and_then(|base| match whole.get(base.as_str()) {
                None => Some(format!("its base {base} is not on the remote")),
                Some(false) => Some(format!("its base {base} on the remote is damaged")),
                Some(true) => None,
            });
        let proved = proved(&entry.file_name) && row.base.as_deref().is_none_or(proved);
        row.check = match (&row.restore_problem, row.kind.as_deref()) {
            (Some(_), _) => "no-base".into(),
            (None, _) if row.error.is_some() => "unknown".into(),
            _ if row.check == "failed" => "failed".into(),
            _ if !proved => "unverified".into(),
            _ => "ok".into(),
        };
    }
}

/// `—` when compression saved nothing (a large negative percentage says nothing
/// useful), `-` when nothing was recorded.
fn saved_column(db_size: Option<u64>, size: u64) -> String {
    match db_size {
        Some(db_size) => saved_text(db_size, size).unwrap_or_else(|| "—".into()),
        None => "-".into(),
    }
}

/// Other databases' backups whose database no longer exists: perhaps this one,
/// moved. Say how to claim them.
fn moved_hints(entries: &[Entry], db: Option<&DbId>, legacy: &Legacy) -> Vec<String> {
    let Some(db) = db else {
        return Vec::new();
    };
    crate::store::adopt::moved_from(entries, db, legacy)
        .into_iter()
        .map(|(source, n)| {
            format!(
                "note: {n} backup{} of {source}, which no longer exists; if this database moved from there: dbbackup adopt {source}",
                if n == 1 { "" } else { "s" }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_reads_the_same_in_list_and_backup_and_nothing_saved_is_one_mark() {
        // 41.46% saved: rounded once it is 41%; rounded twice (to 41.5 for JSON,
        // then to 42) it was 42% in `list` while `backup` said 41%.
        assert_eq!(saved_column(Some(10_000), 5_854), "41%");
        assert_eq!(saved_text(10_000, 5_854).as_deref(), Some("41%"));
        assert_eq!(saved_column(Some(8_192), 8_343), "—", "a tiny database");
        assert_eq!(saved_column(Some(0), 8_200), "—", "an empty database");
        assert_eq!(saved_column(Some(10_000), 10_000), "—");
        assert_eq!(saved_column(None, 100), "-");
        assert_eq!(saved_text(1_000_000, 1_500).as_deref(), Some("99.8%"));
        assert_eq!(saved_text(1_000_000, 6_000).as_deref(), Some("99%"));
    }
}
