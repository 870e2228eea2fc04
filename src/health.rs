//! `check`: is the backup set healthy? Each criterion is judged from what the
//! backups record (creation time in the metadata, not file mtimes).

use std::path::Path;

use serde::Serialize;

use crate::config::{CheckThresholds, Settings};
use crate::error::{Result, show};
use crate::sqlite_file;
use crate::store::{BackupDir, BackupSet, DbId, Entry};
use crate::units::{human_bytes, human_duration};

/// How bad a failed criterion is, in monitoring terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Warning,
    Critical,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Criterion {
    /// `age`, `count`, `shrink`, `last`, `restorable`, `free`, with `mirror:<dir>:` in front
    /// for mirrors; `database` once, when a database is configured.
    pub name: String,
    pub ok: bool,
    pub severity: Severity,
    pub detail: String,
    /// Nagios perfdata label, value with unit, and thresholds.
    #[serde(skip)]
    pub perf: Option<String>,
    /// Healthy for now, but not yet what it should be (the newest restore
    /// point within its time to reach the remote): `check` says `WAIT`, not `OK`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// "name: detail" for each failed criterion.
pub(crate) fn problems(criteria: &[Criterion]) -> Vec<String> {
    criteria
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

/// The backup directory's criteria, then the database's, then each mirror's:
/// what `check`, `summary` and `periodic` all judge.
pub(crate) fn evaluate_all(
    settings: &Settings,
    thresholds: &CheckThresholds,
) -> Result<Vec<Criterion>> {
    let (db, assumed) = judged_database(settings)?;
    let current = db.as_ref().map(crate::due::Current::of);
    let primary = BackupDir::new(&settings.backup_dir);
    let mut criteria = evaluate(&primary, current.as_ref(), "", thresholds, true)?;
    // A lost backup directory whose mirror holds the points: what to do next
    // (T27b F4), on the line that says it is gone.
    if let (false, Some(db)) = (primary.path().is_dir(), &db)
        && let Some(report) = crate::store::latest::mirror_report(&settings.mirror_dirs, db)
        && let Some(age) = criteria.iter_mut().find(|c| c.name == "age")
    {
        age.detail = format!("{}; {report}", age.detail);
    }
    if let Some(db) = &db {
        // As the user wrote it; the recorded (absolute) path when assumed.
        let path = settings.db_path.as_deref().unwrap_or(db.canonical());
        // `restore latest` is advised only when it would find something.
        let restorable = BackupDir::new(&settings.backup_dir)
            .newest_restore_point(db, |e| crate::diff::restore_problem(e).is_none())
            .is_ok_and(|newest| newest.is_some());
        let put_back = if restorable {
            // Assumed: the command needs the database named, or it refuses.
            let named = if assumed {
                format!(" --db-path {}", show(path))
            } else {
                String::new()
            };
            format!("`dbbackup{named} restore latest` puts its newest backup back")
        } else {
            // The backup directory lost, a mirror intact: where to restore from.
            let nowhere = "no restore point of it in the backup directory to put back";
            crate::store::latest::mirror_report(&settings.mirror_dirs, db)
                .or_else(|| {
                    crate::store::latest::remote_hint(settings.remote.as_deref(), Some(db))
                        .map(|remote| format!("{nowhere}; {remote}"))
                })
                .unwrap_or_else(|| nowhere.to_string())
        };
        let mut criterion = database(path, &put_back);
        if assumed {
            // Say which database was judged: a job that lost its `--db-path`
            // must not read as healthy for the database it meant.
            criterion.detail = format!(
                "no --db-path given; judged the only database the backups record: {}",
                criterion.detail
            );
        }
        criteria.push(criterion);
        if let Some(current) = &current {
            criteria.push(attempt(&settings.backup_dir, current));
        }
        if let Some(url) = &settings.remote {
            criteria.push(remote(settings, url, db, thresholds));
        }
    }
    for mirror in &settings.mirror_dirs {
        let label = format!("mirror:{}:", mirror.display());
        // A broken mirror is one failing criterion: the backup directory's
        // own report still stands.
        match evaluate(
            &crate::mirror::dir(mirror),
            current.as_ref(),
            &label,
            thresholds,
            true,
        ) {
            Ok(judged) => criteria.extend(judged),
            Err(error) => {
                criteria.push(Criterion {
                    pending: false,
                    name: format!("{label}directory"),
                    ok: false,
                    severity: Severity::Critical,
                    detail: error.to_string(),
                    perf: None,
                });
                continue;
            }
        }
        if let Some(db) = &db {
            criteria.push(mirror_holds_newest(
                &settings.backup_dir,
                mirror,
                db,
                &label,
            ));
        }
    }
    Ok(criteria)
}

/// The database `check` and `summary` judge, and whether it was assumed: the
/// configured one, or else the one the backup directory holds backups of
/// (several: the usage error `verify` and `restore` give too).
pub(crate) fn judged_database(settings: &Settings) -> Result<(Option<DbId>, bool)> {
    match settings.db_path.as_deref() {
        Some(path) => Ok((Some(DbId::of(path)), false)),
        None => {
            let db = crate::store::latest::sole_database_of(&BackupDir::new(&settings.backup_dir))?;
            let assumed = db.is_some();
            Ok((db, assumed))
        }
    }
}

/// The mirror must hold the primary's newest restore point (by name and size):
/// after a failed copy its older backups still look fresh there. Healthy again
/// once a later run fills it in (`create::fill_mirrors`).
fn mirror_holds_newest(primary: &Path, mirror: &Path, db: &DbId, label: &str) -> Criterion {
    let newest = BackupDir::new(primary)
        .newest_restore_point(db, |e| crate::diff::restore_problem(e).is_none());
    let mut pending = false;
    let (ok, detail) = match newest {
        Ok(None) => (true, "no restore point to hold yet".to_string()),
        Ok(Some(newest)) => match crate::mirror::lacks(mirror, &newest) {
            None => (
                true,
                format!("holds the newest restore point {}", newest.file_name),
            ),
            // The run that published it copies it under the same lock: on a
            // slow filesystem for minutes (T27 F-E). Failing, it says so, and
            // `attempt` with the next check.
            Some(why) if let Some(holder) = copying(primary, &newest) => {
                pending = true;
                (
                    true,
                    format!(
                        "the newest restore point {} is not in the mirror yet ({why}): the dbbackup run holding the backup directory's lock ({holder}) copies it",
                        newest.file_name
                    ),
                )
            }
            Some(why) => (
                false,
                format!(
                    "the newest restore point {} is not in the mirror: {why}; {}the next backup, auto or periodic copies it",
                    newest.file_name,
                    // Never replaced (`mirror::occupied`): no run fills it in.
                    match crate::mirror::occupied(mirror, &newest) {
                        true => "move that file away, and ",
                        false => "",
                    }
                ),
            ),
        },
        Err(error) => (false, format!("cannot read the backup directory: {error}")),
    };
    Criterion {
        pending,
        name: format!("{label}newest"),
        ok,
        severity: Severity::Critical,
        detail,
        perf: None,
    }
}

/// What the process holding `backup_dir`'s lock recorded, while the run that
/// published `newest` does: it took the lock no later than `newest` was made
/// (only the holder publishes). Not a restore or another database's backup
/// that took it since (T27b F2).
fn copying(backup_dir: &Path, newest: &Entry) -> Option<String> {
    let holder = crate::lock::holder(backup_dir, "").ok()?;
    let since: jiff::Timestamp = holder.since.as_deref()?.parse().ok()?;
    (holder.held && since.as_second() <= newest.created().as_second())
        .then(|| holder.recorded.unwrap_or_else(|| "unrecorded".into()))
}

/// `remote`: the newest upload did not fail, and the newest restore point is
/// on the remote and proved there (read back whole and matched, by `sync` or
/// `verify --from-remote`: `remote::proof`), with its base when it is a diff,
/// within [`REREAD_AFTER`]; or it was made (or last proved) less than
/// `remote_max_age` before that (pending: the next `sync` takes it, or reads
/// it back). Judged from what the last upload recorded (`remote::state`):
/// `check` runs where the store may be out of reach.
fn remote(settings: &Settings, url: &str, db: &DbId, thresholds: &CheckThresholds) -> Criterion {
    // A sync that went well at another store (another endpoint, same URL)
    // says nothing of this one; one that failed is this remote's failure
    // whatever the endpoint (a cron job without `AWS_ENDPOINT_URL`).
    // A check whose environment names no endpoint (a monitoring cron: it
    // never reaches the store) judges by the endpoint the last upload was
    // made at; one that names another judges that other store (T33 H7).
    let recorded = crate::remote::state::read_for(&settings.backup_dir, db, url);
    let endpoint = crate::remote::endpoint_in_env()
        .or_else(|| recorded.as_ref().and_then(|r| r.endpoint.clone()));
    let record = recorded.filter(|r| !r.ok || r.endpoint == endpoint);
    let newest = BackupDir::new(&settings.backup_dir)
        .newest_restore_point(db, |e| crate::diff::restore_problem(e).is_none());
    let proofs = crate::remote::RemoteUrl::parse(url)
        .ok()
        .map(|url| {
            crate::remote::proof::Proofs::load_at(&settings.backup_dir, &url, endpoint.as_deref())
        })
        .unwrap_or_default();
    let max_age = thresholds.remote_max_age;
    let mut pending = false;
    let stranded = stranded(settings, db, url, record.as_ref());
    let (ok, detail) = match (&record, newest) {
        (_, Err(error)) => (false, format!("cannot read the backup directory: {error}")),
        (Some(record), _) if !record.ok => (
            false,
            format!(
                "the last upload to {} failed at {}: {}",
                record.remote, record.time, record.detail
            ),
        ),
        _ if stranded.is_some() => (false, stranded.unwrap_or_default()),
        // Purged, the remote the only copy.
        (Some(record), Ok(None)) if !record.on_remote.is_empty() => {
            let (ok, wait, detail) = purged(settings, db, url, (record, &proofs), max_age);
            pending = wait;
            (ok, detail)
        }
        // Purged: a failed sync cannot be recorded there, so nothing known
        // of the remote, the only copy now, can be trusted.
        (None, Ok(None)) if !settings.backup_dir.is_dir() => (
            false,
            format!(
                "backup directory {} does not exist: no sync of {url} is recorded (sync records nothing without it); create it (`mkdir -p {}`) and run `dbbackup sync` (if the database is lost too, `dbbackup restore latest` first); `dbbackup list --from-remote` shows what the remote holds",
                show(&settings.backup_dir),
                show(&settings.backup_dir)
            ),
        ),
        // Purged and restored from the remote: the backup directory holds
        // only the pre-restore copy; the remote's point is the newest.
        (None, Ok(None)) if proofs.newest_read_back().is_some() => {
            let (name, at) = proofs.newest_read_back().unwrap_or_default();
            // Waiting for that sync, but not for ever (T37 S4).
            let (ok, _) = read_back_age(at, max_age);
            pending = ok;
            (
                ok,
                format!(
                    "no restore point in the backup directory: the newest are on {url} ({name} read back whole there at {at}); no sync of {url} is recorded here: run `dbbackup sync`"
                ),
            )
        }
        // Backups of it were made, none is here and none reached the remote:
        // nothing of it is anywhere (T31 R13), not "nothing to upload yet".
        (_, Ok(None)) => match crate::attempts::newest(&settings.backup_dir, db)
            .and_then(|attempt| Some((attempt.backup?, attempt.time)))
        {
            Some((backup, at)) => (
                false,
                format!(
                    "no restore point in the backup directory and none recorded on {url}: its backup {backup} (attempt at {at}) is gone without reaching the remote; `dbbackup backup`, then `dbbackup sync`"
                ),
            ),
            None => (true, "no restore point to upload yet".to_string()),
        },
        // Never uploaded: no sync helps, a dbbackup backup does (T31 R19).
        (_, Ok(Some(newest))) if newest.legacy => (
            false,
            format!(
                "the newest restore point {} is a legacy backup (plain gzip), which sync does not upload to {url}: `dbbackup backup` makes one that it does",
                newest.file_name
            ),
        ),
        (record, Ok(Some(newest))) => {
            let recorded = record
                .as_ref()
                .is_some_and(|r| r.on_remote.contains(&newest.file_name));
            let judged = newest_proof(&proofs, &newest, recorded);
            let (ok, wait, detail) = judged.verdict(&newest, url, record.as_ref(), max_age);
            pending = wait;
            (ok, detail)
        }
    };
    Criterion {
        name: "remote".to_string(),
        ok,
        severity: Severity::Critical,
        detail,
        perf: None,
        pending,
    }
}

/// The remote line with no restore point in the backup directory and the
/// last sync's `record` of what the remote holds: one of its points read back
/// damaged since by a restore, export or verify fails at once, as with the
/// backup directory there (T31 R7); so does a newer backup that never
/// reached it (T32 G10).
fn purged(
    settings: &Settings,
    db: &DbId,
    url: &str,
    (record, proofs): (
        &crate::remote::state::Uploaded,
        &crate::remote::proof::Proofs,
    ),
    max_age: std::time::Duration,
) -> (bool, bool, String) {
    let damaged = record
        .on_remote
        .iter()
        .find_map(|name| Some((name, proofs.mismatch_at(name)?)));
    // The newest backup an attempt made, never recorded there (T32 G10).
    let unsynced = crate::attempts::newest(&settings.backup_dir, db)
        .and_then(|attempt| Some((attempt.backup?, attempt.time)))
        .filter(|(backup, _)| !record.on_remote.contains(backup));
    // The newest read-back of what it proved: as old as the proofs are,
    // never the last sync's word for ever (T37 S4).
    // (No proof kept of them: the sync that proved them, when it did.)
    let read_back = record
        .on_remote
        .iter()
        .filter_map(|name| proofs.proved_at(name))
        .max()
        .or(Some(record.time));
    match (damaged, unsynced) {
        (Some((name, (at, why))), _) => (
            false,
            false,
            format!(
                "no restore point in the backup directory, and {name} on {url} was read back damaged at {at}: {why}; `dbbackup list --from-remote` shows what is left there"
            ),
        ),
        (None, Some((backup, at))) => (
            false,
            false,
            format!(
                "no restore point in the backup directory, and its newest backup {backup} (attempt at {at}) is gone without reaching {url}: the remote's newest is older; `dbbackup backup`, then `dbbackup sync`"
            ),
        ),
        (None, None) => {
            let (ok, wait) = read_back.map_or((false, false), |at| read_back_age(at, max_age));
            let detail = format!(
                "no restore point in the backup directory; the last sync ({}) proved {} on {url}",
                record.time,
                record.on_remote.len()
            );
            match read_back {
                Some(at) if wait || !ok => (
                    ok,
                    wait,
                    format!(
                        "{detail}, last read back whole at {at}, more than {} ago (remote_max_age {}): run `dbbackup sync` where the store is reachable to read it back",
                        human_duration(crate::remote::proof::REREAD_AFTER),
                        human_duration(max_age)
                    ),
                ),
                _ => (ok, wait, detail),
            }
        }
    }
}

/// A read-back at `at`: good for [`REREAD_AFTER`](crate::remote::proof::REREAD_AFTER)
/// (OK), then awaited for `max_age` more (OK, pending: the next sync reads it
/// back), then failed.
fn read_back_age(at: jiff::Timestamp, max_age: std::time::Duration) -> (bool, bool) {
    let reread = crate::remote::proof::REREAD_AFTER;
    let age = std::time::Duration::try_from(jiff::Timestamp::now().duration_since(at))
        .unwrap_or_default();
    match age {
        age if age <= reread => (true, false),
        age if age <= reread + max_age => (true, true),
        _ => (false, false),
    }
}

/// Why the newest restore point, a diff whose base is gone from the backup
/// directory, can never reach the remote, when it is not there: `sync`
/// cannot check it before sending it (nothing to rebuild it on), so the
/// newest restorable point `check` would judge instead is not the newest.
fn stranded(
    settings: &Settings,
    db: &DbId,
    url: &str,
    record: Option<&crate::remote::state::Uploaded>,
) -> Option<String> {
    let newest = BackupDir::new(&settings.backup_dir)
        .newest_restore_point(db, |_| true)
        .ok()??;
    if !newest.name.diff
        || newest.damage.is_some()
        || record.is_some_and(|r| r.on_remote.contains(&newest.file_name))
    {
        return None;
    }
    let why = crate::diff::restore_problem(&newest)?;
    Some(format!(
        "the newest restore point {} is not on {url} and cannot be uploaded: {why}; put its base back in the backup directory (a mirror may hold a copy) and run `dbbackup sync`",
        newest.file_name
    ))
}

/// What `check` knows of the newest restore point's copy on the remote.
enum RemoteProof {
    /// It, or its base, was read back and does not match its record: which,
    /// when, and what was read.
    Damaged(String, jiff::Timestamp, String),
    /// It, or its base, was found by a restore or verify to have no valid
    /// record there: which, when, and what was found.
    Unlisted(String, jiff::Timestamp, String),
    /// Recorded there and read back whole (its base too) at this time, the
    /// older of the two.
    Proved(jiff::Timestamp),
    /// Recorded there, but it or its base not read back yet.
    Unread,
    /// Not recorded on the remote.
    Absent,
}

/// A diff's copy is restorable only with its base's: the older of the two
/// proofs counts, and a damaged base is a damaged point.
fn newest_proof(
    proofs: &crate::remote::proof::Proofs,
    newest: &Entry,
    recorded: bool,
) -> RemoteProof {
    let mut names = vec![newest.file_name.clone()];
    if let Ok(meta) = &newest.meta
        && let Some(diff) = &meta.diff
    {
        names.push(diff.base.clone());
    }
    // Read back and found damaged (by a restore, export or verify since the
    // last sync): known bad, not pending.
    for name in &names {
        if let Some((at, why)) = proofs.mismatch_at(name) {
            if proofs.unlisted(name) {
                return RemoteProof::Unlisted(name.clone(), at, why.to_string());
            }
            return RemoteProof::Damaged(name.clone(), at, why.to_string());
        }
    }
    if !recorded {
        return RemoteProof::Absent;
    }
    let times: Option<Vec<jiff::Timestamp>> =
        names.iter().map(|name| proofs.proved_at(name)).collect();
    match times.and_then(|t| t.into_iter().min()) {
        Some(at) => RemoteProof::Proved(at),
        None => RemoteProof::Unread,
    }
}

impl RemoteProof {
    /// OK, pending (`WAIT`), and the line.
    fn verdict(
        &self,
        newest: &Entry,
        url: &str,
        record: Option<&crate::remote::state::Uploaded>,
        max_age: std::time::Duration,
    ) -> (bool, bool, String) {
        use crate::remote::proof::REREAD_AFTER;
        let name = &newest.file_name;
        match self {
            RemoteProof::Damaged(damaged, at, why) => {
                let whose = if damaged == name {
                    String::new()
                } else {
                    format!(" cannot be restored: its base {damaged}")
                };
                (
                    false,
                    false,
                    format!(
                        "the newest restore point {name}{whose} on {url} was read back at {at} and does not match its record: {why}; run `dbbackup sync` to upload it again from the backup directory"
                    ),
                )
            }
            RemoteProof::Unlisted(missing, at, why) => {
                let whose = if missing == name {
                    "it".to_string()
                } else {
                    format!("its base {missing}")
                };
                (
                    false,
                    false,
                    format!(
                        "the newest restore point {name} cannot be restored from {url}: {whose} has no valid record there ({why}; found by a restore or verify at {at}); run `dbbackup sync` to upload it again from the backup directory"
                    ),
                )
            }
            RemoteProof::Proved(at) => {
                let age = std::time::Duration::try_from(jiff::Timestamp::now().duration_since(*at))
                    .unwrap_or_default();
                if age <= REREAD_AFTER {
                    // A diff's time is the older of its own and its base's proofs.
                    let read = if newest.name.diff {
                        format!("it and its base read back whole there, the earlier at {at}")
                    } else {
                        format!("read back whole at {at}")
                    };
                    return (
                        true,
                        false,
                        format!(
                            "the newest restore point {name} is on {url}, {read} (as of the last read-back by sync, verify, restore or export: check does not reach the store)"
                        ),
                    );
                }
                // An expired proof (what `list --from-remote` shows as
                // `unverified`): the next sync reads it back; remote_max_age
                // after the proof expired, it fails.
                let wait = age <= REREAD_AFTER + max_age;
                (
                    wait,
                    wait,
                    format!(
                        "the newest restore point {name} on {url} was last read back whole at {at}, more than {} ago (remote_max_age {}): run `dbbackup sync` where the store is reachable to read it back",
                        human_duration(REREAD_AFTER),
                        human_duration(max_age)
                    ),
                )
            }
            RemoteProof::Unread | RemoteProof::Absent => {
                let when = record.map_or_else(
                    || "no upload recorded yet".to_string(),
                    |r| format!("last upload {}", r.time),
                );
                let what = if matches!(self, RemoteProof::Unread) {
                    format!("is recorded on {url} but not read back whole there yet")
                } else {
                    format!("is not on {url} yet")
                };
                let young = newest.age() <= max_age;
                (
                    young,
                    young,
                    format!(
                        "the newest restore point {name} ({} old) {what} ({when}; remote_max_age {}): run `dbbackup sync` where the store is reachable",
                        human_duration(newest.age()),
                        human_duration(max_age)
                    ),
                )
            }
        }
    }
}

/// Judge one backup directory: the database's restore points there (the whole
/// directory's when no database is configured).
pub(crate) fn evaluate(
    backups: &BackupDir,
    current: Option<&crate::due::Current>,
    label: &str,
    thresholds: &CheckThresholds,
    check_free: bool,
) -> Result<Vec<Criterion>> {
    let db = current.map(crate::due::Current::db);
    let dir = backups.path();
    let set = match db {
        Some(db) => backups.set(db)?,
        None => BackupSet::whole_dir(backups.entries()?),
    };
    // A diff whose base is missing or damaged (cheap tests) cannot be restored:
    // not a good backup for age, count or shrink; the `restorable` criterion names it.
    let (good, no_base) = crate::diff::split_restorable(&set.restore_points);
    // Judged on the backups something vouches for; unverified legacy ones
    // only lift a failing `age` or `count` to a warning (`unverified`).
    let vouched: Vec<Entry> = good.iter().filter(|e| !unverified(e)).cloned().collect();
    let unverified = good.len() - vouched.len();
    let mut age = or_unverified(
        unchanged_lifts(age(&vouched, label, thresholds), &vouched, backups, current),
        age(&good, label, thresholds),
        unverified,
    );
    // A mistyped path must not read like "backups stopped".
    if !dir.is_dir() {
        age.detail = format!("no good backup: {} does not exist", backups.name());
    } else if good.is_empty()
        && let Some(db) = db
        && let Some(note) = moved_here(backups, db)
    {
        // A moved project: its backups are here, under the old path.
        age.detail.push_str(&note);
    }
    let restored = db.and_then(|db| crate::restored::read(dir, db));
    let mut criteria = vec![
        age,
        or_unverified(
            count(&vouched, label, thresholds),
            count(&good, label, thresholds),
            unverified,
        ),
        shrink(&good, restored.clone(), label, thresholds),
        last_attempt(&set, label, restored.as_ref()),
    ];
    if let Some(criterion) = restorable(&set.restore_points, &good, &no_base, label) {
        criteria.push(criterion);
    }
    if let Some(criterion) = unreadable(&set, &good, label) {
        criteria.push(criterion);
    }
    if let Some(criterion) = clock(&set, label) {
        criteria.push(criterion);
    }
    if check_free && let Some(min_free) = thresholds.min_free_bytes {
        criteria.push(free_space(dir, label, min_free));
    }
    Ok(criteria)
}

/// A legacy backup (the seed's plain gzip: no size or checksum recorded) that
/// `verify` has not read whole: nothing says its data is there.
fn unverified(entry: &Entry) -> bool {
    entry.legacy && !crate::store::verified::is_verified(&entry.path)
}

/// `vouched` (judged without the `unverified` legacy backups) unless it fails
/// and `with_legacy` (judged counting them) passes: then a warning, never OK,
/// so a set of only unverified legacy files is not healthy. Either way a
/// failure says how to have them counted.
fn or_unverified(vouched: Criterion, with_legacy: Criterion, unverified: usize) -> Criterion {
    if vouched.ok || unverified == 0 {
        return vouched;
    }
    let s = if unverified == 1 { "" } else { "s" };
    let advice = "never read whole): run `dbbackup verify --all`";
    if with_legacy.ok {
        return Criterion {
            ok: false,
            severity: Severity::Warning,
            detail: format!(
                "{}, counting {unverified} unverified legacy backup{s} (plain gzip, {advice}",
                with_legacy.detail
            ),
            ..with_legacy
        };
    }
    // Failing with them too: what they would make of it, so that the reason
    // (the newest of them days old) is read the first time (T30 F3).
    let detail = match with_legacy.detail == vouched.detail {
        true => format!(
            "{}; not counting {unverified} unverified legacy backup{s} (plain gzip, {advice}",
            vouched.detail
        ),
        false => format!(
            "{}; counting {unverified} unverified legacy backup{s} too: {} (plain gzip, {advice}",
            vouched.detail, with_legacy.detail
        ),
    };
    Criterion { detail, ..vouched }
}

/// The age of the newest good backup this host's clock can place: one dated in
/// the future is not "0 s old" (the `clock` criterion names it).
fn age(good: &[Entry], label: &str, thresholds: &CheckThresholds) -> Criterion {
    let max = thresholds.max_age;
    match good.iter().find(|e| !e.future_dated()) {
        None => Criterion {
            pending: false,
            name: format!("{label}age"),
            ok: false,
            severity: Severity::Critical,
            detail: match good.first() {
                Some(future) => format!(
                    "no good backup dated by this host's clock: {} is dated in the future, its age cannot be told",
                    future.file_name
                ),
                None => "no good backup".into(),
            },
            perf: None,
        },
        Some(newest) => {
            let age = newest.age();
            Criterion {
                pending: false,
                name: format!("{label}age"),
                ok: age <= max,
                severity: Severity::Critical,
                detail: match ahead_by(newest) {
                    // Within the slack clocks may differ by: not "0s old".
                    Some(ahead) => format!(
                        "newest good backup {} is dated {} in the future (within the {} clocks may differ by; max age {})",
                        newest.file_name,
                        human_duration(ahead),
                        human_duration(crate::store::CLOCK_SLACK.unsigned_abs()),
                        human_duration(max)
                    ),
                    None => format!(
                        "newest good backup {} is {} old (max {})",
                        newest.file_name,
                        human_duration(age),
                        human_duration(max)
                    ),
                },
                perf: Some(format!(
                    "'{label}age'={}s;;{};0",
                    age.as_secs(),
                    max.as_secs()
                )),
            }
        }
    }
}

/// A finished project: its newest good backup is older than the max age, yet
/// the database still holds exactly its state (the test `backup` skips by), so
/// nothing is unprotected and no backup would be made: healthy, said so (NEW-7).
/// A database changed since, or that cannot be read, keeps the failure.
fn unchanged_lifts(
    mut age: Criterion,
    good: &[Entry],
    backups: &BackupDir,
    current: Option<&crate::due::Current>,
) -> Criterion {
    let (false, Some(newest), Some(current)) =
        (age.ok, good.iter().find(|e| !e.future_dated()), current)
    else {
        return age;
    };
    if current.held_by(backups).as_ref() == Some(&newest.file_name) {
        age.ok = true;
        age.detail
            .push_str(", and the database is unchanged since it: nothing to back up");
    }
    age
}

/// How far ahead of this host's clock `entry` is dated, from a second on.
fn ahead_by(entry: &Entry) -> Option<std::time::Duration> {
    std::time::Duration::try_from(entry.created().duration_since(jiff::Timestamp::now()))
        .ok()
        .filter(|ahead| ahead.as_secs() >= 1)
}

fn count(good: &[Entry], label: &str, thresholds: &CheckThresholds) -> Criterion {
    Criterion {
        pending: false,
        name: format!("{label}count"),
        ok: good.len() >= thresholds.min_count as usize,
        severity: Severity::Critical,
        detail: format!(
            "{} good backup{} (min {})",
            good.len(),
            if good.len() == 1 { "" } else { "s" },
            thresholds.min_count
        ),
        perf: Some(format!(
            "'{label}count'={};;{}:;0",
            good.len(),
            thresholds.min_count
        )),
    }
}

/// The newest backup's database size against the median of the earlier ones: a
/// sudden shrink usually means rows were lost or the wrong file is backed up.
/// `good`: since the last restore (`restored::since`), whose size drop was the
/// user's act.
fn shrink(
    good: &[Entry],
    restored: Option<crate::restored::Restored>,
    label: &str,
    thresholds: &CheckThresholds,
) -> Criterion {
    let since = restored.as_ref().map_or(String::new(), |r| {
        format!(" since the restore of {}", r.backup)
    });
    let good = crate::restored::since(good, restored.as_ref());
    let name = format!("{label}shrink");
    let sized = crate::retention::shrink_sizes(good.iter().copied());
    let sizes: Vec<u64> = sized.iter().map(|&(_, size)| size).collect();
    let Some((&newest, earlier)) = sizes.split_first().filter(|(_, rest)| !rest.is_empty()) else {
        return Criterion {
            pending: false,
            name,
            ok: true,
            severity: Severity::Warning,
            detail: format!("no earlier backups to compare with{since}"),
            perf: None,
        };
    };
    // A `DELETE` without `VACUUM` leaves the file its size: its pages in use tell.
    let with_free = sized
        .first()
        .and_then(|(e, size)| e.meta.as_ref().ok().filter(|m| m.db_size != *size))
        .map_or(String::new(), |m| {
            format!(" in use ({} with its free pages)", human_bytes(m.db_size))
        });
    // Retention holds the pre-shrink point while the shrink lasts: the warning
    // and the held point go together, and deleting the file ends both.
    if let Some((held, largest)) =
        crate::retention::held_by_shrink(&sized, thresholds.max_shrink_percent)
    {
        let is_base = crate::retention::only_diffs_since(good.iter().copied(), &held.file_name);
        return Criterion {
            pending: false,
            name,
            ok: false,
            severity: Severity::Warning,
            detail: format!(
                "newest database size {}{with_free} vs {} of {} (kept while the database is smaller by more than {}%): {}",
                human_bytes(newest),
                human_bytes(largest),
                held.file_name,
                thresholds.max_shrink_percent,
                crate::retention::shrink_advice(&held.file_name, is_base, "")
            ),
            perf: Some(format!("'{label}db_size'={newest}B;;;0")),
        };
    }
    let median = median(earlier);
    let floor = median as f64 * (100.0 - thresholds.max_shrink_percent) / 100.0;
    Criterion {
        pending: false,
        name,
        ok: newest as f64 >= floor,
        severity: Severity::Warning,
        detail: format!(
            "newest database size {}{with_free} vs median {} of {} earlier{since} (may shrink {}%)",
            human_bytes(newest),
            human_bytes(median),
            earlier.len(),
            thresholds.max_shrink_percent
        ),
        // `N:` is a lower bound in monitoring-plugins range syntax: warn below it.
        perf: Some(format!("'{label}db_size'={newest}B;{}:;;0", floor as u64)),
    }
}

/// Every diff among the restore points needs its base there, whole in size and
/// with the checksum the diff was made against, and a full backup with page
/// hashes the size it was written at (cheap checks; `verify` reads the
/// content). `None` when no restore point is a diff and none has a problem.
///
/// Unhealthy while such a point is newer than the newest good one (or there is
/// no good one); once a good backup is the newest again, the older ones are
/// evidence that retention keeps, bounded, and the criterion is healthy again
/// but still names them.
///
/// Named `restorable` (it was `base`, the word for a diff's full backup, which
/// read wrongly for a truncated full backup).
fn restorable(
    points: &[Entry],
    good: &[Entry],
    no_base: &[(Entry, String)],
    label: &str,
) -> Option<Criterion> {
    let name = format!("{label}{RESTORABLE}");
    let newest_key = |e: &Entry| e.order();
    if let Some((newest, problem)) = no_base.iter().max_by_key(|(e, _)| newest_key(e)) {
        let more = match no_base.len() {
            1 => String::new(),
            n => format!(
                " (and {} more restore point{} that cannot be restored)",
                n - 1,
                if n == 2 { "" } else { "s" }
            ),
        };
        let newest_good = good.iter().max_by_key(|e| newest_key(e));
        if let Some(fine) = newest_good
            && let Some(criterion) = same_unsound_content(fine, no_base, &name)
        {
            return Some(criterion);
        }
        return Some(match newest_good {
            Some(fine) if newest_key(fine) > newest_key(newest) => Criterion {
                pending: false,
                name,
                ok: true,
                severity: Severity::Critical,
                detail: format!(
                    "newest good backup {} is newer than {} (kept as evidence: {problem}){more}",
                    fine.file_name, newest.file_name
                ),
                perf: None,
            },
            _ => Criterion {
                pending: false,
                name,
                ok: false,
                severity: Severity::Critical,
                detail: format!(
                    "newest restore point {} cannot be restored: {problem}{more}",
                    newest.file_name
                ),
                perf: None,
            },
        });
    }
    let diffs = points.iter().filter(|e| e.name.diff).count();
    (diffs > 0).then(|| Criterion {
        pending: false,
        name,
        ok: true,
        severity: Severity::Critical,
        detail: format!(
            "the base of each of {diffs} diff{} is present and whole in size",
            if diffs == 1 { "" } else { "s" }
        ),
        perf: None,
    })
}

/// The newest good point holds the very database (by its SHA-256) that a
/// whole read found failing `integrity_check` in another backup: its own
/// `quick_check` passed, but the database needs repair (T26b #1).
fn same_unsound_content(
    newest: &Entry,
    unrestorable: &[(Entry, String)],
    name: &str,
) -> Option<Criterion> {
    let checksum = |e: &Entry| e.meta.as_ref().ok().map(|m| m.checksum);
    let (unsound, problem) = unrestorable.iter().find(|(e, _)| {
        checksum(e).is_some()
            && checksum(e) == checksum(newest)
            && crate::store::damage::unsound_finding(&e.path).is_some()
    })?;
    Some(Criterion {
        pending: false,
        name: name.to_string(),
        ok: false,
        severity: Severity::Critical,
        detail: format!(
            "newest restore point {} holds the same database as {}, and {problem}: the database needs repair (`sqlite3 DB 'PRAGMA integrity_check'`; `REINDEX` for an index)",
            newest.file_name, unsound.file_name
        ),
        perf: None,
    })
}

/// The name of the criterion "the newest restore point passes the cheap tests".
pub(crate) const RESTORABLE: &str = "restorable";

/// Files under our backup names whose metadata cannot be read (truncated inside
/// the header, emptied, overwritten) and whose name is newer than every good
/// restore point's: whose backup each was cannot be told, but it may well have
/// been this database's newest (`summary` counts them as unusable).
pub(crate) fn unreadable_newer<'a>(set: &'a BackupSet, good: &[Entry]) -> Vec<&'a Entry> {
    let newest_good = good.iter().map(|e| e.name.order_key()).max();
    set.damaged
        .iter()
        .filter(|e| !e.legacy && e.meta.is_err())
        .filter(|e| newest_good.is_none_or(|good| e.name.order_key() > good))
        .collect()
}

/// [`unreadable_newer`] than `chosen` (the point `latest` takes) as passed-over
/// lines, said alike by `restore latest` and `verify`: each file's name and why
/// it matters though `latest` could not weigh it.
pub(crate) fn unreadable_passed_over(set: &BackupSet, chosen: &Entry) -> Vec<(String, String)> {
    unreadable_newer(set, std::slice::from_ref(chosen))
        .into_iter()
        .map(|entry| {
            let why = entry.problem().unwrap_or("unreadable metadata");
            (
                entry.file_name.clone(),
                format!("{why}: it may well have been this database's newest backup"),
            )
        })
        .collect()
}

/// The name of the criterion "no newer file under a backup name is unreadable".
pub(crate) const UNREADABLE: &str = "unreadable";

/// Unhealthy while [`unreadable_newer`] finds one; healthy again once a good
/// backup is newer (the damaged file stays, listed, as evidence).
fn unreadable(set: &BackupSet, good: &[Entry], label: &str) -> Option<Criterion> {
    let found = unreadable_newer(set, good);
    let newest = found.iter().max_by_key(|e| e.name.order_key())?;
    let why = newest.problem().unwrap_or("unreadable metadata");
    let than = good.iter().max_by_key(|e| e.name.order_key()).map_or_else(
        || "there is no good backup".to_string(),
        |g| format!("newer than the newest good backup {}", g.file_name),
    );
    Some(Criterion {
        pending: false,
        name: format!("{label}{UNREADABLE}"),
        ok: false,
        severity: Severity::Critical,
        detail: format!(
            "{} cannot be read ({why}; {than}): it may well have been this database's newest backup{}; healthy again once a good backup is newer",
            newest.file_name,
            match found.len() {
                1 => String::new(),
                n => format!(", and {} more", n - 1),
            }
        ),
        perf: None,
    })
}

/// The newest snapshot attempt must have passed its check: a database that went
/// corrupt keeps failing while older good backups still look fresh. One made
/// before a restore into the database judges what the restore replaced: the
/// restored copy was checked (and a snapshot made since is judged instead).
fn last_attempt(
    set: &BackupSet,
    label: &str,
    restored: Option<&crate::restored::Restored>,
) -> Criterion {
    let name = format!("{label}last");
    match set.newest_attempt() {
        Some(newest)
            if newest.is_failed()
                && let Some(restored) = restored.filter(|r| {
                    r.time > newest.created()
                        && !r.forced
                        && set.restore_points.iter().any(|e| e.file_name == r.backup)
                }) =>
        {
            Criterion {
                pending: false,
                name,
                ok: true,
                severity: Severity::Critical,
                detail: format!(
                    "newest snapshot {} failed its integrity check, but the database was replaced since by a checked restore of {} at {}",
                    newest.file_name, restored.backup, restored.time
                ),
                perf: None,
            }
        }
        Some(newest) if newest.is_failed() => {
            let meta = newest.meta.as_ref().ok();
            let kind = meta.map(|m| m.check_kind).unwrap_or_default();
            let full = meta.and_then(|m| m.check_detail.as_deref());
            if let Some(full) = full {
                tracing::debug!("{kind} output of {}:\n{full}", newest.file_name);
            }
            let detail = full.map_or_else(String::new, |d| {
                format!(" ({kind}: {})", sqlite_file::one_line(d))
            });
            Criterion {
                pending: false,
                name,
                ok: false,
                severity: Severity::Critical,
                detail: format!(
                    "newest snapshot {} failed its integrity check{detail}: the database may be corrupt",
                    newest.file_name
                ),
                perf: None,
            }
        }
        // A legacy backup (the seed's plain gzip) records no check.
        Some(newest) if newest.meta.is_err() => Criterion {
            pending: false,
            name,
            ok: true,
            severity: Severity::Critical,
            detail: format!(
                "newest snapshot {} is a legacy backup: whether it passed a check is unknown",
                newest.file_name
            ),
            perf: None,
        },
        Some(newest) => Criterion {
            pending: false,
            name,
            ok: true,
            severity: Severity::Critical,
            // Only what this criterion judges, the database at that moment: an
            // OK line never praises a copy the cheap tests find damaged
            // (`restorable` fails it and says why).
            detail: match crate::diff::restore_problem(newest) {
                // quick_check, not integrity_check (which `verify` runs): an
                // index that disagrees with its table passes it (T15 #8).
                None => format!(
                    "newest snapshot {} passed its quick_check (`dbbackup verify` runs the full integrity_check)",
                    newest.file_name
                ),
                Some(_) => format!(
                    "the database passed its quick_check when the newest snapshot {} was made",
                    newest.file_name
                ),
            },
            perf: None,
        },
        // Not "attempts": a backup attempt that made no file (`attempt`) is none.
        None => Criterion {
            pending: false,
            name,
            ok: true,
            severity: Severity::Critical,
            detail: "no snapshot of the database made yet, so none failed its integrity check"
                .into(),
            perf: None,
        },
    }
}

/// Whether `restored` put back one of this database's restore points (not
/// a failed snapshot, a damaged file or a legacy file of unknown owner).
fn restored_point(
    backups: &crate::store::BackupDir,
    db: &crate::store::DbId,
    restored: &crate::restored::Restored,
) -> bool {
    backups.set(db).is_ok_and(|set| {
        set.restore_points
            .iter()
            .any(|e| e.file_name == restored.backup)
    })
}

/// The name of the newest-attempt criterion.
pub(crate) const ATTEMPT: &str = "attempt";

/// The newest backup attempt of the configured database must not have failed:
/// an attempt that left no file (full disk, unwritable or missing directory,
/// lock or busy timeout) is otherwise silent while older backups look fresh.
/// Healthy again after the next success (`attempts`).
pub(crate) fn attempt(backup_dir: &Path, current: &crate::due::Current) -> Criterion {
    let last = crate::attempts::last(backup_dir, current);
    let died = died_holding_the_lock(backup_dir, last.as_ref().map(|l| l.time));
    let (ok, detail) = match last {
        _ if died.is_some() => (false, died.unwrap_or_default()),
        None => (true, "no attempt recorded yet".to_string()),
        Some(last) => {
            let now = jiff::Timestamp::now();
            // A record dated ahead of this host's clock is not "0s ago".
            let when = match std::time::Duration::try_from(now.duration_since(last.time)) {
                Err(_) if last.time > now + jiff::SignedDuration::from_secs(1) => format!(
                    "dated {} in the future: host {}'s clock is fast or this host's slow",
                    human_duration(
                        std::time::Duration::try_from(last.time.duration_since(now))
                            .unwrap_or_default()
                    ),
                    last.host
                ),
                age => format!("{} ago", human_duration(age.unwrap_or_default())),
            };
            let which = format!(
                "newest attempt ({}, host {}, job {}, {when})",
                last.kind, last.host, last.job,
            );
            // Checked: a restore point that passed its check, not a failed
            // snapshot or another database's file given back with --force
            // (T29 F13, T29b N4).
            let restored = crate::restored::read(backup_dir, current.db()).filter(|restored| {
                restored.time > last.time
                    && !restored.forced
                    && restored_point(
                        &crate::store::BackupDir::new(backup_dir),
                        current.db(),
                        restored,
                    )
            });
            match &last.lost {
                // The database was then replaced by a checked restore: what it
                // holds is in a backup again (a corrupt database repaired from
                // one, T28b); the next attempt says whether backups work.
                _ if !last.ok
                    && let Some(restored) = restored =>
                {
                    (
                        true,
                        format!(
                            "{which} failed: {}; the database was replaced since by a checked restore of {} at {}, so what it holds is in a backup; the next attempt says whether backups work again",
                            last.detail, restored.backup, restored.time
                        ),
                    )
                }
                _ if !last.ok => (
                    false,
                    format!(
                        "{which} failed: {}; healthy again after the next successful backup",
                        last.detail
                    ),
                ),
                Some(lost) => {
                    use crate::attempts::Lost;
                    let name = last.backup.as_deref().unwrap_or("?");
                    let lost = match lost {
                        Lost::Missing => format!("its backup {name} is now missing"),
                        Lost::Unreadable => {
                            format!("its backup {name} cannot be restored (see `{UNREADABLE}`)")
                        }
                        Lost::Unrestorable => {
                            format!("its backup {name} cannot be restored (see `{RESTORABLE}`)")
                        }
                        Lost::NotARestorePoint => format!(
                            "its backup {name} is no longer a restore point of this database"
                        ),
                        Lost::CannotRead(e) => format!("its backup {name} cannot be read: {e}"),
                    };
                    (
                        false,
                        format!(
                            "{which} succeeded ({}), but that is no success now: {lost}; healthy again after the next successful backup",
                            last.detail
                        ),
                    )
                }
                None => awaited(&which, &last),
            }
        }
    };
    Criterion {
        pending: false,
        name: ATTEMPT.into(),
        ok,
        severity: Severity::Critical,
        detail,
        perf: None,
    }
}

/// A successful newest attempt, and the post-job backup its job owes when it
/// was a pre-job: a job that ended without one left its work in no backup.
fn awaited(which: &str, last: &crate::attempts::Record) -> (bool, String) {
    use crate::attempts::Awaited;
    let detail = &last.detail;
    let said = |(due, awaited): &(crate::attempts::PostJobDue, Awaited)| {
        let who = due.who();
        match awaited {
            Awaited::Running(how) => {
                format!("{who} has not ended ({how}): its post-job backup is to come")
            }
            Awaited::Ended { how, .. } => format!(
                "{who} ended without its post-job backup ({how}; killed? the OOM killer, a node failure; or a script with no post-job): what the database took in since its pre-job (its work's writes, or any other writer's) is in no backup"
            ),
            Awaited::EndedUnchanged(how) => format!(
                "{who} ended without its post-job backup ({how}), but the database is unchanged since {}: nothing is lost",
                last.backup.as_deref().unwrap_or("then")
            ),
            Awaited::CannotTell(why) => format!(
                "whether {who} has ended cannot be told here ({why}): if it ended without its post-job backup, what its work wrote since is in no backup"
            ),
        }
    };
    let ended: Vec<String> = last
        .awaited
        .iter()
        .filter(|(_, a)| matches!(a, Awaited::Ended { .. }))
        .map(said)
        .collect();
    if !ended.is_empty() {
        return (
            false,
            format!(
                "{which} succeeded: {detail}, but {}; healthy again after a successful backup made once it ended",
                ended.join("; ")
            ),
        );
    }
    let notes: Vec<String> = last.awaited.iter().map(said).collect();
    if notes.is_empty() {
        (true, format!("{which} succeeded: {detail}"))
    } else {
        (
            true,
            format!("{which} succeeded: {detail}; {}", notes.join("; ")),
        )
    }
}

/// A run killed while it held the backup directory's lock (SIGKILL: the OOM
/// killer, SLURM's KILL after the grace time) recorded no attempt, but the
/// lock file still names it. Newer than this database's newest recorded
/// attempt, it may be this database's backup that never finished: said as a
/// failure, not passed over (the next backup's lock replaces the record).
fn died_holding_the_lock(backup_dir: &Path, newest: Option<jiff::Timestamp>) -> Option<String> {
    let holder = crate::lock::holder(backup_dir, "").ok()?;
    let recorded = match (holder.held, holder.recorded) {
        // Dead, and nothing took the lock since. `since` is in whole seconds;
        // a record survives only until the next run takes the lock, so an
        // attempt in the same second is not one after it.
        (false, Some(recorded)) => {
            let since: jiff::Timestamp = holder.since?.parse().ok()?;
            if newest.is_some_and(|newest| newest.as_second() > since.as_second()) {
                return None;
            }
            recorded
        }
        // Kept by the run that took it next (a restore, a prune, another
        // database's backup: T27b F1): an attempt after that is after it.
        _ => {
            // No attempt of this database at all: nothing of it was cut short
            // that any attempt of it covered (a database new to a shared
            // directory is not alarmed by another's death).
            let (recorded, taken) = crate::lock::died_holding(backup_dir)?;
            if newest.is_none_or(|newest| newest > taken) {
                return None;
            }
            recorded
        }
    };
    Some(format!(
        "a dbbackup run ({recorded}) ended without releasing the backup directory's lock (killed?), after this database's newest recorded attempt: if it was this database's backup, it did not finish; healthy again after the next successful backup"
    ))
}

/// A backup of this database dated more than `CLOCK_SLACK` ahead of this host's
/// clock: some node's clock is wrong (or this one's). Only present when there is
/// one. A warning: nothing is lost (`latest` and "unchanged" go by publication
/// order), but its age cannot be told and the interval rule passes over it.
fn clock(set: &BackupSet, label: &str) -> Option<Criterion> {
    let ahead: Vec<&Entry> = set
        .restore_points
        .iter()
        .chain(&set.failed)
        .filter(|e| e.future_dated())
        .collect();
    let newest = ahead.iter().max_by_key(|e| e.created())?;
    let by = std::time::Duration::try_from(newest.created().duration_since(jiff::Timestamp::now()))
        .unwrap_or_default();
    let made = newest.meta.as_ref().map_or_else(
        |_| "made on a host whose clock is fast".to_string(),
        |m| format!("made on host {}, whose clock is fast", m.host),
    );
    Some(Criterion {
        pending: false,
        name: format!("{label}clock"),
        ok: false,
        severity: Severity::Warning,
        detail: format!(
            "{} is dated {} in the future ({made}, or this host's is slow){}; its age cannot be told, and the backup interval is judged from backups dated by this host's clock",
            newest.file_name,
            human_duration(by),
            match ahead.len() {
                1 => String::new(),
                n => format!(", and {} more", n - 1),
            }
        ),
        perf: None,
    })
}

/// Backups of another database whose file no longer exists (`list` names
/// them too): `db` may be it, moved, and `adopt` claims them.
fn moved_here(backups: &BackupDir, db: &DbId) -> Option<String> {
    let entries = backups.entries().ok()?;
    let legacy = crate::store::Legacy::judge(&entries, db);
    let moved = crate::store::adopt::moved_from(&entries, db, &legacy);
    let (source, n) = moved.first()?;
    let (s, are) = if *n == 1 { ("", "is") } else { ("s", "are") };
    Some(format!(
        "; {n} backup{s} of {source}, which no longer exists, {are} here: if this database moved from there, `dbbackup adopt {source}`"
    ))
}

/// The configured database must be there: backups of a database that was
/// deleted or moved away keep looking fresh until they age out. `put_back`:
/// how a restore puts it back, or that nothing can.
pub(crate) fn database(db: &Path, put_back: &str) -> Criterion {
    let (ok, detail) = match std::fs::metadata(db) {
        // Only a file SQLite would open can be backed up: judged by its header, cheaply.
        Ok(meta) if meta.is_file() => match crate::sqlite_file::header(db) {
            Ok(crate::sqlite_file::Header::Sqlite) => (
                true,
                format!("{} exists ({})", show(db), human_bytes(meta.len())),
            ),
            Ok(crate::sqlite_file::Header::Empty) => (
                false,
                format!(
                    "{} is empty (0 B): not an SQLite database, so it cannot be backed up ({put_back})",
                    show(db)
                ),
            ),
            Ok(crate::sqlite_file::Header::Other) => (
                false,
                format!(
                    "{} is not an SQLite database ({}), so it cannot be backed up",
                    show(db),
                    human_bytes(meta.len())
                ),
            ),
            Err(e) => (false, format!("cannot read {}: {e}", show(db))),
        },
        Ok(_) => (false, format!("{} is not a regular file", show(db))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            false,
            format!(
                "{} does not exist (deleted? {put_back}; moved or mistyped? point --db-path at its real place)",
                show(db)
            ),
        ),
        Err(e) => (false, format!("cannot access {}: {e}", show(db))),
    };
    Criterion {
        pending: false,
        name: "database".into(),
        ok,
        severity: Severity::Critical,
        detail,
        perf: None,
    }
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2
    } else {
        sorted[mid]
    }
}

/// Free space where backups go: the disk's free space, or the user's remaining
/// quota when a quota tool answers for the directory and that is smaller.
fn free_space(dir: &Path, label: &str, min_free: u64) -> Criterion {
    let name = format!("{label}free");
    let at = measured_at(dir);
    // The first backup creates the directory: where it will be is what counts.
    let missing = if at == dir {
        String::new()
    } else {
        format!(
            "; {} does not exist yet: measured at {}",
            show(dir),
            show(&at)
        )
    };
    match nix::sys::statvfs::statvfs(&at) {
        Ok(stat) => {
            let disk = stat.blocks_available() * stat.fragment_size();
            let quota = crate::quota::remaining(&at);
            let (free, source) = match &quota {
                Some(quota) if quota.remaining < disk => (
                    quota.remaining,
                    format!(
                        " (quota left, from {}; disk has {})",
                        quota.tool,
                        human_bytes(disk)
                    ),
                ),
                Some(quota) => (
                    disk,
                    format!(
                        " (quota left: {}, from {})",
                        human_bytes(quota.remaining),
                        quota.tool
                    ),
                ),
                None => (disk, String::new()),
            };
            Criterion {
                pending: false,
                name,
                ok: free >= min_free,
                severity: Severity::Critical,
                detail: format!(
                    "{} free{source} (min {}){missing}",
                    human_bytes(free),
                    human_bytes(min_free)
                ),
                perf: Some(format!("'{label}free'={free}B;;{min_free}:;0")),
            }
        }
        Err(errno) => Criterion {
            pending: false,
            name,
            ok: false,
            severity: Severity::Critical,
            detail: format!(
                "cannot measure free space at {}: {}",
                show(&at),
                errno.desc()
            ),
            perf: None,
        },
    }
}

/// `dir`, or its nearest existing parent when it does not exist yet.
fn measured_at(dir: &Path) -> std::path::PathBuf {
    let mut at = dir.to_path_buf();
    if at.exists() {
        return at;
    }
    at = std::path::absolute(dir).unwrap_or(at);
    while !at.exists() && at.pop() {}
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[5, 1, 3]), 3);
        assert_eq!(median(&[4, 1, 3, 2]), 2);
        assert_eq!(median(&[7]), 7);
    }
}
