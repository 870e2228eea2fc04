//! `dbbackup sync`: every restore point not yet on the remote is uploaded (a
//! base before the diffs rebuilt on it), then remote retention.
//!
//! The backup-directory lock is not held while uploading: a sync from a login
//! node must never make a job's backup wait (its callers hold only the upload
//! turn, `serial`, which no backup waits for). It works from one listing of
//! the backup directory and reads each file through a descriptor opened once:
//! a file pruned meanwhile is passed over (not found) or read whole (unlinked,
//! still open). Backups are never rewritten once published, so what is read is
//! what was listed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::Path;

use super::client::InvalidRecord;
use super::identity;
use super::proof::{Proofs, Standing};
use super::record::Record;
use super::{Remote, RemotePoint, Uploaded};
use crate::error::{Context, Result, show};
use crate::store::{BackupSet, DbId, Entry, Metadata, open_no_follow};

/// What one sync did.
#[derive(Debug, Default)]
pub(crate) struct Synced {
    /// Uploaded and read back: name and size.
    pub uploaded: Vec<(String, u64)>,
    /// Already on the remote and proved (read back whole by this sync or
    /// recently enough: `proof`), not sent by this sync: the points of the
    /// backup directory's databases that retention keeps there.
    pub present: usize,
    /// Read back whole by this sync (not proved recently enough) and matched.
    pub read_back: Vec<String>,
    /// Found not to match on the remote, and uploaded again from the backup
    /// directory.
    pub repaired: Vec<String>,
    /// Found not to match on the remote, with no intact copy in the backup
    /// directory to repair it from: name and what was read.
    pub damaged: Vec<(String, String)>,
    /// Not uploaded: the backup directory's file is damaged (its bytes are
    /// not the backup as written); name and why.
    pub not_intact: Vec<(String, String)>,
    /// Passed over, and why (vanished meanwhile, its base is not on the remote).
    pub passed_over: Vec<(String, String)>,
    /// Not uploaded, nor on the remote: diffs retention keeps whose base is
    /// gone from the backup directory (nothing to check them on before they
    /// are sent); name and why.
    pub no_base: Vec<(String, String)>,
    /// Records on the remote that match neither their data object nor the
    /// backup directory's intact copy (changed at the store): name and why.
    pub wrong_records: Vec<(String, String)>,
    /// Not uploaded: the name is taken on the remote by another backup (of
    /// another database, or other content); name and whose it is.
    pub clashes: Vec<(String, String)>,
    /// Not uploaded: the remote holds points of this database from another
    /// backup directory, which the remote's order would rank against the
    /// clock (`identity::misordered`); name and which.
    pub mixed: Vec<(String, String)>,
    /// Record objects that are not valid records (changed at the store): key,
    /// and why with the remedy. Retention can neither count nor delete their
    /// points, and a point only the remote holds is lost with its record.
    pub invalid_records: Vec<(String, String)>,
    /// Restore points proved on the remote by an earlier sync, inside the
    /// retention window, gone from the store (record and data object), with
    /// no copy here to upload again (`vanished`).
    pub gone: Vec<String>,
    /// The same, accepted as lost (`sync --forget-missing`): their proofs
    /// were dropped.
    pub forgotten: Vec<String>,
    /// Of `gone` and `forgotten`: those whose record only is gone, their data
    /// object still at the store (put the record back, and the point is there).
    pub records_only: Vec<String>,
    /// `sync --forget-missing` was asked for: what it does not cover is said.
    pub forget_missing: bool,
    /// A point older than a `damaged` one is proved on the remote: retention
    /// keeps such points in place of the damaged ones.
    pub older_kept: bool,
    /// Records written again to mend their order (`reorder`).
    pub reordered: Vec<String>,
    /// The newest restore point, numbered again above older points ranked
    /// above it (`lift_own`): (its name, the older point it was below).
    pub lifted: Vec<(String, String)>,
    /// The backup directory's newest point of a database, ranked on the
    /// remote below a point another backup directory uploaded from this path
    /// (`identity::below_other_set`): (its name, that point).
    pub below_other_set: Vec<(String, String)>,
    /// Deleted from the remote by retention.
    pub deleted: Vec<String>,
    /// Backups of the backup directory this sync found damaged (their copy
    /// at the store damaged too) and marked so: a sync of the directory as
    /// it now is sends an older intact point in their place.
    pub marked_here: Vec<String>,
    /// Every restore point on the remote afterwards that is proved.
    pub on_remote: Vec<String>,
    /// Data objects without a record deleted (`unrecorded::clean`), with
    /// their age in hours by the store's clock.
    pub orphans: Vec<(String, i64)>,
    /// The error that stopped the work after the uploads (ordering,
    /// retention, clean-up): the sync fails with it, what it did is still
    /// said (T33 H4).
    pub stopped: Option<crate::error::Error>,
}

impl Synced {
    /// The sync's failure, when a point on the remote is damaged beyond what
    /// it could repair, or a backup to upload is damaged in the backup
    /// directory: one line naming each.
    pub(crate) fn problem(&self, remote: &Remote) -> Option<String> {
        let list = |points: &[(String, String)]| {
            let names: Vec<String> = points
                .iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect();
            names.join("; ")
        };
        let mut parts = Vec::new();
        if !self.damaged.is_empty() {
            parts.push(self.damaged_problem(remote, list(&self.damaged)));
        }
        if !self.not_intact.is_empty() {
            let older = match older_than(&self.on_remote, &self.not_intact) {
                true => "older points are kept in its place",
                false => "no older point is there to take its place",
            };
            parts.push(format!(
                "not uploaded to {}: damaged in the backup directory since it was made: {}; {older}",
                remote.url(),
                list(&self.not_intact)
            ));
        }
        if !self.no_base.is_empty() {
            parts.push(format!(
                "cannot upload to {}: diffs whose base is gone from the backup directory: {}; put the base back (a mirror may hold a copy) and run sync again",
                remote.url(),
                list(&self.no_base)
            ));
        }
        if !self.wrong_records.is_empty() {
            parts.push(format!(
                "records on {} that match neither their data object nor the backup directory's intact copy: {}",
                remote.url(),
                list(&self.wrong_records)
            ));
        }
        if !self.invalid_records.is_empty() {
            parts.push(format!(
                "record objects on {} that are not valid restore-point records: {}",
                remote.url(),
                list(&self.invalid_records)
            ));
        }
        parts.extend(self.gone_problem(remote));
        if !self.clashes.is_empty() {
            parts.push(format!(
                "not uploaded to {}: {} name(s) taken there by another backup, which the upload would replace: {}",
                remote.url(),
                self.clashes.len(),
                list(&self.clashes)
            ));
        }
        if let Some((_, why)) = self.mixed.first() {
            let names: Vec<&str> = self.mixed.iter().map(|(n, _)| n.as_str()).collect();
            parts.push(format!(
                "not uploaded to {}: {}: {why}",
                remote.url(),
                names.join(", ")
            ));
        }
        parts.extend(self.below_other_set.first().map(|(name, other)| {
            format!(
                "{name} ranks on {} below {other}, uploaded from this path by another backup directory and dated after it: the clock of the node that made {name} is behind the one that made {other} (a backup directory made again after a loss numbers its backups after the old one's), or two backup directories use this prefix; both are kept, and `restore latest --from-remote` takes {other}; run `dbbackup backup --force` on a node whose clock is right (then `dbbackup sync`), or give each backup directory its own prefix",
                remote.url()
            )
        }));
        (!parts.is_empty()).then(|| parts.join("; and "))
    }
}

impl Synced {
    /// `damaged` (listed as `names`): whether older points take their place,
    /// and the ways out.
    fn damaged_problem(&self, remote: &Remote, names: String) -> String {
        let older = if self.older_kept {
            "older points are kept in its place (`dbbackup list --from-remote`)"
        } else {
            "no older point is there to take its place"
        };
        let forget = if self.forget_missing {
            " (--forget-missing covers only points gone from the store entirely, record and data object)"
        } else {
            ""
        };
        format!(
            "damaged on {}, with no intact copy in the backup directory to upload again: {names}; {older}; put what is missing back at the store, or delete the damaged points' records (NAME.meta.json) there to drop them; else this fails until remote_max_backups newer points are there{forget}",
            remote.url()
        )
    }

    /// `gone`, split into points gone entirely and those whose record only
    /// is (`records_only`): each said as it is, with its remedy.
    fn gone_problem(&self, remote: &Remote) -> Vec<String> {
        let (records, entirely): (Vec<&String>, Vec<&String>) = self
            .gone
            .iter()
            .partition(|name| self.records_only.contains(name));
        let join = |names: &[&String]| {
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let accept = "or run `dbbackup sync --forget-missing` to accept the loss (diffs on them stay damaged)";
        let mut parts = Vec::new();
        if !entirely.is_empty() {
            parts.push(format!(
                "gone from the store {} (record and data object), with no copy in the backup directory to upload again: {}; restore points an earlier sync proved there, within remote_max_backups: put them back at the store, {accept}",
                remote.url(),
                join(&entirely)
            ));
        }
        if !records.is_empty() {
            parts.push(format!(
                "records missing on {} (their data objects are still there), with no copy in the backup directory to upload again: {}; restore points an earlier sync proved there, within remote_max_backups: put each record (NAME.meta.json) back from a copy of the store, {accept}",
                remote.url(),
                join(&records)
            ));
        }
        parts
    }
}

/// The backup file, or `None` when retention or a user deleted it meanwhile.
fn open_unless_gone(entry: &Entry) -> Result<Option<std::fs::File>> {
    match open_no_follow(&entry.path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(|| format!("cannot open {}", show(&entry.path))),
    }
}

/// Upload `set`'s restore points that retention keeps (the newest `keep` of
/// each database, and the bases of kept diffs), newest first (`to_upload`); then delete
/// from the remote the points of those databases that retention does not
/// keep. A point counts as there only when proved (`proof`): one not read
/// back recently enough, or written since, is read back whole; one that does
/// not match is uploaded again from the backup directory, or else reported
/// and kept out of retention's count (older points stay in its place).
pub(crate) fn sync(
    remote: &Remote,
    (set, db): (&BackupSet, Option<&DbId>),
    rules: Rules<'_>,
    proofs: &mut Proofs,
) -> Result<Synced> {
    let mut done = Synced::of(set);
    let mut on_remote = by_name(remote, set, rules, proofs, &mut done)?;
    // Proved in this run, or recently enough: what retention may count on.
    let mut proved: HashSet<String> = HashSet::new();
    let mut bad: HashMap<String, String> = HashMap::new();
    for entry in &to_upload(set, rules) {
        let Ok(meta) = &entry.meta else { continue };
        // This backup's own point, whole by size: proved, or read back now.
        let mut damaged_there = None;
        if let Some(point) = own_point(&on_remote, entry, meta) {
            // Quiet: the mismatch is said once, where what follows is known
            // (`repair` says it with the repair, `mismatch_warning` else).
            match prove(remote, point, proofs, &mut done, false)? {
                None => {
                    proved.insert(entry.file_name.clone());
                    continue;
                }
                Some(why) => damaged_there = Some((point.clone(), why)),
            }
        }
        if let Some(diff) = &meta.diff
            && (bad.contains_key(&diff.base)
                || !on_remote.get(&diff.base).is_some_and(RemotePoint::complete))
        {
            if let Some((point, why)) = &damaged_there {
                mismatch_warning(remote, proofs, point, why);
            }
            done.passed_over.push((
                entry.file_name.clone(),
                format!("its base {} is not on the remote", diff.base),
            ));
            continue;
        }
        let Some(mut file) = open_unless_gone(entry)? else {
            if let Some((point, why)) = damaged_there {
                mismatch_warning(remote, proofs, &point, &why);
                bad.insert(point.record.name.clone(), why);
            }
            done.passed_over.push((
                entry.file_name.clone(),
                "deleted from the backup directory meanwhile".into(),
            ));
            continue;
        };
        if let Some((point, why)) = damaged_there {
            // Its bytes are its record's: the local copy (the same file) can
            // only send them again.
            if proofs.content_damage(&point).is_some() {
                bad.insert(point.record.name.clone(), why);
                continue;
            }
            if let Some(repaired) = repair(remote, &mut file, &point, &why, proofs)? {
                done.repaired.push(entry.file_name.clone());
                proved.insert(entry.file_name.clone());
                on_remote.insert(entry.file_name.clone(), repaired);
            } else {
                not_repaired(remote, entry, why, (&mut bad, &mut done))?;
            }
            continue;
        }
        if unsound(entry, &proved, &mut done)? {
            continue;
        }
        let Some(placed) = placement(remote, &on_remote, (set, entry, meta), &mut done)? else {
            continue;
        };
        let point = match remote.upload(
            &mut file,
            &entry.file_name,
            &as_recorded(entry, meta),
            placed,
            identity::origin(entry),
        )? {
            Uploaded::Point(point) => *point,
            Uploaded::NotIntact(why) => {
                // Remembered, so that restore, verify and check know it too.
                crate::store::damage::mark(&entry.path, &why);
                done.not_intact.push((entry.file_name.clone(), why));
                continue;
            }
        };
        tracing::info!("uploaded {} to {}", entry.file_name, remote.url());
        proofs.note(&point, point.e_tag.clone(), None);
        done.uploaded
            .push((entry.file_name.clone(), point.record.size));
        proved.insert(entry.file_name.clone());
        on_remote.insert(entry.file_name.clone(), point);
    }
    without_base(set, rules, &on_remote, &mut done);
    let after = after_uploads(
        remote,
        (&mut on_remote, set, db),
        rules,
        (proofs, &mut proved, &mut bad),
        &mut done,
    );
    done.stopped = after.err();
    Ok(done.finish(bad, proved))
}

/// What follows the uploads: the order mended, remote retention, the
/// findings about what is there, the clean-up of data objects without a
/// record. An error here stops them; the uploads stay said.
fn after_uploads(
    remote: &Remote,
    (on_remote, set, db): (&mut HashMap<String, RemotePoint>, &BackupSet, Option<&DbId>),
    rules: Rules<'_>,
    (proofs, proved, bad): (
        &mut Proofs,
        &mut HashSet<String>,
        &mut HashMap<String, String>,
    ),
    done: &mut Synced,
) -> Result<()> {
    mend_order(remote, on_remote, set, done)?;
    done.deleted = retain(
        remote,
        on_remote,
        (set, db),
        rules,
        (proofs, proved, bad),
        &mut done.read_back,
    )?;
    done.deleted.iter().for_each(|name| proofs.forget(name));
    damaged_headers(remote, (set, db), (on_remote, proved), done);
    damaged_newest(set, on_remote, bad, done);
    misplaced(on_remote, bad, done);
    let recorded = on_remote
        .values()
        .filter(|point| !done.deleted.contains(&point.record.name));
    done.orphans = super::unrecorded::clean(remote, set, recorded, proved)?;
    Ok(())
}

impl Synced {
    /// What an earlier pass of the same sync (`first`) did that this one,
    /// over the backup directory as that pass left it, would not say again:
    /// its uploads, and why the points it found damaged are.
    pub(crate) fn after(mut self, first: Synced) -> Synced {
        let mut uploaded = first.uploaded;
        uploaded.append(&mut self.uploaded);
        self.uploaded = uploaded;
        for (name, why) in first.damaged {
            self.damaged.retain(|(n, _)| *n != name);
            self.damaged.push((name, why));
        }
        self.damaged.sort();
        self.older_kept = older_than(&self.on_remote, &self.damaged);
        self
    }

    /// The damaged points (`bad`) and the proved ones (`proved`) once
    /// retention is done.
    fn finish(mut self, bad: HashMap<String, String>, proved: HashSet<String>) -> Synced {
        // Named once: a point whose local copy is damaged too is named there.
        let named = |name: &String| {
            let of = |list: &[(String, String)]| list.iter().any(|(n, _)| n == name);
            of(&self.not_intact) || of(&self.wrong_records)
        };
        self.damaged = bad.into_iter().filter(|(name, _)| !named(name)).collect();
        self.damaged.sort();
        self.on_remote = proved
            .into_iter()
            .filter(|name| !self.deleted.contains(name))
            .collect();
        self.on_remote.sort();
        self.older_kept = older_than(&self.on_remote, &self.damaged);
        // Every proved point of these databases this sync did not send: also
        // those only the remote holds (a purged backup directory, a longer
        // remote_max_backups), proved by this sync's read-back or a restore's.
        let sent = |name: &String| {
            self.uploaded.iter().any(|(n, _)| n == name) || self.repaired.contains(name)
        };
        self.present = self.on_remote.iter().filter(|n| !sent(n)).count();
        self
    }
}

/// Whether one of `kept` (names on the remote) is older than one of `points`.
fn older_than(kept: &[String], points: &[(String, String)]) -> bool {
    let order = |name: &str| crate::store::BackupName::parse(name).map(|n| n.order_key());
    kept.iter().any(|kept| {
        points
            .iter()
            .any(|(point, _)| order(kept).is_some() && order(kept) < order(point))
    })
}

impl Synced {
    /// Nothing done yet for `set`, but its newest restore point said when
    /// it is a legacy file ([`legacy_newest`]).
    fn of(set: &BackupSet) -> Synced {
        Synced {
            passed_over: legacy_newest(set).into_iter().collect(),
            ..Synced::default()
        }
    }
}

/// The newest restore point when it is a legacy file, and why it is not
/// uploaded: said, not passed silently, as `check` asks for the newest on
/// the remote (T31 R19).
fn legacy_newest(set: &BackupSet) -> Option<(String, String)> {
    let newest = set.restore_points.first().filter(|e| e.legacy)?;
    Some((
        newest.file_name.clone(),
        "a legacy backup (plain gzip, no recorded size or checksum to prove an upload by): sync uploads dbbackup's own backups; `dbbackup backup` makes one".into(),
    ))
}

/// [`list`] by name, after giving the backup directory its identity if it
/// has none: before any upload is placed, so that a first sync's are told
/// apart from another backup set's under the same path (`remote::set_id`).
fn by_name(
    remote: &Remote,
    set: &BackupSet,
    rules: Rules<'_>,
    proofs: &mut Proofs,
    done: &mut Synced,
) -> Result<HashMap<String, RemotePoint>> {
    if let Some(dir) = set_dir(set) {
        super::set_id::ensure(dir);
    }
    let listed = list(remote, set, rules, proofs, done)?;
    Ok(listed
        .into_iter()
        .map(|p| (p.record.name.clone(), p))
        .collect())
}

/// The remote's restore points; its invalid records and the proved points
/// gone from the store (`vanished`) named in `done`; the proofs of points
/// no longer there dropped, but for those still to be named.
fn list(
    remote: &Remote,
    set: &BackupSet,
    rules: Rules<'_>,
    proofs: &mut Proofs,
    done: &mut Synced,
) -> Result<Vec<RemotePoint>> {
    let (listed, invalid) = remote.listing()?;
    let skip: HashSet<String> = invalid.iter().map(|bad| bad.name.clone()).collect();
    let gone = super::vanished::missing(proofs, &listed, set, (rules.keep, &skip));
    // Said as it is: a record deleted by hand leaves the data object there.
    for name in &gone {
        if remote.has_object(name)? {
            done.records_only.push(name.clone());
        }
    }
    done.forget_missing = rules.forget_missing;
    if rules.forget_missing {
        done.forgotten = gone;
    } else {
        done.gone = gone;
    }
    done.invalid_records = invalid_records(set, invalid);
    proofs.keep_only(&listed, &done.gone);
    Ok(listed)
}

/// Each record object that is not a valid record, by its key, with the
/// remedy: a point the backup directory holds is uploaded again once the
/// record is deleted; one only the remote held comes back only with its
/// original record.
fn invalid_records(set: &BackupSet, invalid: Vec<InvalidRecord>) -> Vec<(String, String)> {
    let here = |name: &str| set.restore_points.iter().any(|e| e.file_name == name);
    let mut named: Vec<(String, String)> = invalid
        .into_iter()
        .map(|bad| {
            let name = &bad.name;
            let fix = if here(name) {
                format!(
                    "delete it (the next `dbbackup sync` uploads {name} again from the backup directory while remote retention keeps it), or put the original record back"
                )
            } else {
                format!(
                    "{name} is not in the backup directory to upload again: put the original record back, or, if that restore point is not wanted, delete the record and {name} from the store"
                )
            };
            (bad.key, format!("{}; {fix}", bad.why))
        })
        .collect();
    named.sort();
    named
}

/// `entry`'s metadata as its record holds it: with the numbering it counts
/// in, also when made by a version that recorded none
/// (`store::place_unnumbered`), which orders it on the remote among the
/// points that share its number, as here.
fn as_recorded(entry: &Entry, meta: &Metadata) -> Metadata {
    Metadata {
        numbering_since: entry.placed.numbering,
        ..meta.clone()
    }
}

/// The `remote_seq` for `entry`'s upload, and whether no record is under
/// its name yet; `None` when it must not be uploaded (named in `done`; one
/// refusal stops only its own upload): the name is taken by another backup
/// (unless it is this backup before `adopt`), or the remote holds points of
/// this database from another backup directory that the number would order
/// against the clock.
fn placement(
    remote: &Remote,
    on_remote: &HashMap<String, RemotePoint>,
    (set, entry, meta): (&BackupSet, &Entry, &Metadata),
    done: &mut Synced,
) -> Result<Option<(u64, bool)>> {
    let name = &entry.file_name;
    // Read just before the upload, not from the listing: never replace
    // another database's point that has the same name (same second).
    let there = remote.record(name)?;
    let there = there.as_ref();
    if let Some(there) = there {
        if let Some(why) = identity::misplaced(there, name, remote.url()) {
            done.clashes.push((name.clone(), why));
            return Ok(None);
        }
        if !identity::adopted(there, entry, meta)
            && let Some(whose) = other_backup(there, meta)
        {
            done.clashes.push((name.clone(), whose));
            return Ok(None);
        }
    }
    let remote_seq = place(on_remote, set, entry, meta, there);
    if let Some(other) = identity::misordered(on_remote.values(), set, (entry, meta), remote_seq) {
        let why = identity::mixed_sets(&other.record, entry, meta);
        done.mixed.push((name.clone(), why));
        return Ok(None);
    }
    Ok(Some((remote_seq, there.is_none())))
}

/// The `remote_seq` for `entry`'s upload: the remote's order must be the
/// backups' own. A point whose record is there (its object lost) keeps its
/// number. One older than points of its database already there (uploaded
/// again after retention, a loss at the store, a raised remote_max_backups)
/// takes the lowest number among those newer ones: ties are ordered by the
/// local `seq` (`RemotePoint::entry`). Any other is the newest: one more
/// than the highest under the prefix, so that after a scratch purge (local
/// `seq` from 1 again) a new point still ranks above the old ones.
fn place(
    on_remote: &HashMap<String, RemotePoint>,
    set: &BackupSet,
    entry: &Entry,
    meta: &Metadata,
    there: Option<&Record>,
) -> u64 {
    if let Some(n) = there.and_then(|r| r.remote_seq) {
        return n;
    }
    let highest = on_remote
        .values()
        .filter_map(|p| p.record.remote_seq)
        .max()
        .unwrap_or(0);
    below_newer(on_remote, set, entry, meta).unwrap_or(highest + 1)
}

/// The lowest `remote_seq` among the points of `entry`'s database on the
/// remote that are newer than it, if any.
fn below_newer(
    on_remote: &HashMap<String, RemotePoint>,
    set: &BackupSet,
    entry: &Entry,
    meta: &Metadata,
) -> Option<u64> {
    let local: HashMap<&str, &Entry> = set
        .restore_points
        .iter()
        .map(|e| (e.file_name.as_str(), e))
        .collect();
    let here = identity::origin(entry);
    let newer = |point: &RemotePoint| {
        let record = &point.record;
        if record.metadata.source != meta.source || record.name == entry.file_name {
            return false;
        }
        match local.get(record.name.as_str()) {
            // The same backup: the backup directory's order.
            Some(e)
                if e.meta
                    .as_ref()
                    .is_ok_and(|m| m.checksum == record.metadata.checksum) =>
            {
                e.order() > entry.order()
            }
            // Pruned here: newer only if made after it by both its
            // directory's number and the clock (not a point from before a
            // scratch purge, whose number is higher and whose date is older).
            // One of another directory once under this path (made again
            // after a loss) has numbers that say nothing about ours: the
            // clocks alone place it (T33 H1: a node whose clock is behind
            // then ranks its new point below; `below_other_set` says so,
            // and the point is kept, never refused).
            _ => {
                let by_number = record
                    .metadata
                    .seq
                    .zip(meta.seq)
                    .is_some_and(|(r, m)| r > m);
                (by_number || identity::earlier_here(record, &here))
                    && record.metadata.created > meta.created
            }
        }
    };
    let lowest = on_remote
        .values()
        .filter(|p| newer(p))
        .filter_map(|p| Some((p.record.remote_seq?, p)))
        .min_by_key(|(n, _)| *n)?;
    // Ties are ordered by the local numbers, which say nothing against
    // another directory's: strictly below it.
    Some(match identity::earlier_here(&lowest.1.record, &here) {
        true => lowest.0.saturating_sub(1),
        false => lowest.0,
    })
}

/// The remote's order made the backups' own again where records say
/// otherwise (`write_mended`, `reorder`, `lift_own`), and what is still
/// ranked against this directory's newest said (`below_other_set`).
fn mend_order(
    remote: &Remote,
    on_remote: &mut HashMap<String, RemotePoint>,
    set: &BackupSet,
    done: &mut Synced,
) -> Result<()> {
    done.reordered = write_mended(remote, on_remote)?;
    done.reordered.extend(reorder(remote, on_remote, set)?);
    done.lifted = lift_own(remote, on_remote, set)?;
    done.below_other_set = below_other_set(set, on_remote);
    Ok(())
}

/// Points the listing read below a newer point of their own backup directory
/// (`mend`): their records are written again with the number read, so that
/// the store's order is the backups' own again (also for other readers).
fn write_mended(
    remote: &Remote,
    on_remote: &mut HashMap<String, RemotePoint>,
) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for point in on_remote.values_mut() {
        if point.mended_from.is_none() || point.misplaced.is_some() {
            continue;
        }
        remote.rewrite_record(&point.record)?;
        point.mended_from = None;
        written.push(point.record.name.clone());
    }
    written.sort();
    Ok(written)
}

/// Points of `set` that an earlier version numbered above newer points (it
/// gave an old point uploaded again the next number): their records are
/// written again with the number `place` gives, so that the remote's newest
/// is the newest backup again. Their data objects are not touched.
fn reorder(
    remote: &Remote,
    on_remote: &mut HashMap<String, RemotePoint>,
    set: &BackupSet,
) -> Result<Vec<String>> {
    let mut entries: Vec<&Entry> = set.restore_points.iter().collect();
    entries.sort_by_cached_key(|e| e.order());
    let mut reordered = Vec::new();
    for entry in entries {
        let Ok(meta) = &entry.meta else { continue };
        // A misplaced record is another point's: never written under this name.
        let Some(point) = on_remote
            .get(&entry.file_name)
            .filter(|p| p.misplaced.is_none())
        else {
            continue;
        };
        let record = &point.record;
        let (true, Some(now)) = (
            record.metadata.source == meta.source && record.metadata.checksum == meta.checksum,
            record.remote_seq,
        ) else {
            continue;
        };
        if let Some(other) = identity::misordered(on_remote.values(), set, (entry, meta), now) {
            tracing::warn!(
                "{}",
                identity::misranked(record, &other.record, remote.url())
            );
        }
        let Some(want) = below_newer(on_remote, set, entry, meta).filter(|&want| want < now) else {
            continue;
        };
        // Never below another backup directory's point made before it.
        if identity::misordered(on_remote.values(), set, (entry, meta), want).is_some() {
            continue;
        }
        let mut record = record.clone();
        record.remote_seq = Some(want);
        remote.rewrite_record(&record)?;
        tracing::info!(
            "{} on {} ranked above newer points (uploaded again by an earlier version): record written again below them",
            entry.file_name,
            remote.url()
        );
        if let Some(point) = on_remote.get_mut(&entry.file_name) {
            point.record = record;
        }
        reordered.push(entry.file_name.clone());
    }
    Ok(reordered)
}

/// This backup directory's points ranked below older points not its own
/// ([`identity::lifts`]: from before a scratch purge, or copied in from
/// another prefix): their records are written again with the next numbers,
/// as fresh uploads of them would have been, so that `restore latest` and
/// remote retention take them for the newer. Their data objects are not
/// touched. (Its name, the older point it was below.)
fn lift_own(
    remote: &Remote,
    on_remote: &mut HashMap<String, RemotePoint>,
    set: &BackupSet,
) -> Result<Vec<(String, String)>> {
    let Some(dir) = set_dir(set) else {
        return Ok(Vec::new());
    };
    let lifts = identity::lifts(on_remote.values(), set, &identity::origin_of(dir));
    let mut lifted = Vec::new();
    for lift in lifts {
        let Some(point) = on_remote.get_mut(&lift.name) else {
            continue;
        };
        let mut record = point.record.clone();
        record.remote_seq = Some(lift.number);
        remote.rewrite_record(&record)?;
        point.record = record;
        if !lift.above.is_empty() {
            lifted.push((lift.name, lift.above));
        }
    }
    Ok(lifted)
}

/// [`identity::below_other_set`] of the backup directory's newest points.
fn below_other_set(
    set: &BackupSet,
    on_remote: &HashMap<String, RemotePoint>,
) -> Vec<(String, String)> {
    set_dir(set).map_or_else(Vec::new, |dir| {
        identity::below_other_set(
            on_remote.values(),
            &newest_here(set),
            &identity::origin_of(dir),
        )
    })
}

/// The backup directory `set` was read from (any of its backups' parent).
fn set_dir(set: &BackupSet) -> Option<&std::path::Path> {
    set.own_files().next()?.path.parent()
}

/// Backups whose metadata is damaged (a header checksum mismatch, say) are
/// never uploaded: their order and database cannot be trusted. Named, so that
/// `sync` fails as for other backups damaged in the backup directory; but one
/// whose point is on the remote (a point of these databases by its name and
/// size, proved by this sync or recently) is there, as a backup damaged in
/// its body would be: its local copy is warned about, with the remedy.
fn damaged_headers(
    remote: &Remote,
    (set, db): (&BackupSet, Option<&DbId>),
    (on_remote, proved): (&HashMap<String, RemotePoint>, &HashSet<String>),
    done: &mut Synced,
) {
    for entry in set.damaged.iter().filter(|e| !e.legacy) {
        let Err(why) = &entry.meta else { continue };
        let name = &entry.file_name;
        let there = on_remote.get(name).is_some_and(|point| {
            point.misplaced.is_none()
                && point.record.size == entry.size
                && ours(set, db, &point.record.metadata.source)
        });
        if there && proved.contains(name) {
            tracing::warn!(
                "{name} is damaged in the backup directory ({why}); its copy on {} is intact and proved, so it counts as there: delete the local file (`dbbackup verify` names it); to have the backup here again, `dbbackup export {name} --from-remote --out FILE` (the database itself is not affected)",
                remote.url()
            );
            continue;
        }
        done.not_intact.push((name.clone(), why.clone()));
    }
}

/// Whether `source` is one of the databases whose restore points `set`
/// holds, or the configured `db`: the points remote retention counts.
fn ours(set: &BackupSet, db: Option<&DbId>, source: &str) -> bool {
    db.is_some_and(|db| db.owns(source))
        || set
            .restore_points
            .iter()
            .any(|e| e.meta.as_ref().is_ok_and(|m| m.source == source))
}

/// `set`'s restore points that retention keeps, newest first, each diff's
/// base just before the first diff on it (a diff is checked on its base on
/// the remote before it is sent): a sync stopped part-way (its cron window,
/// a kill, a lost network) has then put the newest point up, the one a
/// restore after a lost backup directory wants, not the oldest.
fn to_upload(set: &BackupSet, rules: Rules<'_>) -> Vec<Entry> {
    let restorable: Vec<Entry> = set
        .restore_points
        .iter()
        .filter(|e| e.meta.is_ok() && crate::diff::restore_problem(e).is_none())
        .cloned()
        .collect();
    let wanted = kept(&restorable, rules);
    let mut uploads: Vec<Entry> = restorable
        .into_iter()
        .filter(|e| wanted.contains(&e.file_name))
        .collect();
    uploads.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
    bases_first(uploads)
}

/// `newest_first` with each diff's base (when it is among them) moved just
/// before the first diff on it.
fn bases_first(newest_first: Vec<Entry>) -> Vec<Entry> {
    let mut placed: HashSet<String> = HashSet::new();
    let mut ordered = Vec::with_capacity(newest_first.len());
    for entry in &newest_first {
        let base = entry.meta.as_ref().ok().and_then(|m| m.diff.as_ref());
        if let Some(base) = base
            && let Some(base) = newest_first.iter().find(|e| e.file_name == base.base)
            && placed.insert(base.file_name.clone())
        {
            ordered.push(base.clone());
        }
        if placed.insert(entry.file_name.clone()) {
            ordered.push(entry.clone());
        }
    }
    ordered
}

/// `entry`'s own point on the remote (same database, size and content),
/// whole by size.
fn own_point<'a>(
    on_remote: &'a HashMap<String, RemotePoint>,
    entry: &Entry,
    meta: &Metadata,
) -> Option<&'a RemotePoint> {
    on_remote.get(&entry.file_name).filter(|point| {
        point.complete()
            && point.record.metadata.source == meta.source
            && point.record.size == entry.size
            && point.record.metadata.checksum == meta.checksum
    })
}

/// Upload `file` again under `point`, whose bytes on the remote are not its
/// own (`why`): its record stays, only the bytes under it are replaced.
/// `None`: `file` does not match the record either; nothing was sent.
fn repair(
    remote: &Remote,
    file: &mut std::fs::File,
    point: &RemotePoint,
    why: &str,
    proofs: &mut Proofs,
) -> Result<Option<RemotePoint>> {
    let name = &point.record.name;
    tracing::warn!(
        "{name} on {}: {why}; uploading it again from the backup directory",
        remote.url()
    );
    let repaired = remote.repair(file, point)?;
    if let Some(repaired) = &repaired {
        proofs.note(repaired, repaired.e_tag.clone(), None);
        tracing::info!("repaired {name} on {}", remote.url());
    }
    Ok(repaired)
}

/// `entry`'s point, whose bytes on the remote do not match its record
/// (`why`), was not repaired: the backup directory's copy does not match the
/// record either. It is `bad`. When that copy reads back whole as a restore
/// reads it, the record is what is wrong (changed at the store): named by
/// its key with the remedy, instead of "no intact copy".
fn not_repaired(
    remote: &Remote,
    entry: &Entry,
    why: String,
    (bad, done): (&mut HashMap<String, String>, &mut Synced),
) -> Result<()> {
    let name = entry.file_name.clone();
    if let Some(here) = super::content::damage(entry)? {
        // Remembered, as when an upload finds it (`list`, `check` and the
        // next listing take it for damaged, and an older point goes up in
        // its place: T33 H3).
        crate::store::damage::mark(&here.path, &here.why);
        done.marked_here.push(here.name);
        let why = format!("{why}; the backup directory's copy does not match its record either");
        bad.insert(name, why);
        return Ok(());
    }
    let fix = format!(
        "the backup directory's copy reads back whole, so the record {} is what is wrong: delete it, and `dbbackup sync` uploads {name} again from the backup directory",
        remote.record_url(&name)
    );
    done.wrong_records
        .push((name.clone(), format!("{why}; {fix}")));
    bad.insert(name, why);
    Ok(())
}

/// Diffs retention keeps (`keep`) whose base is gone from the backup
/// directory and that are not on the remote: `to_upload` leaves them out (a
/// diff is checked on its base before it is sent), so nothing else would
/// name them and `sync` would say "0 uploaded".
fn without_base(
    set: &BackupSet,
    rules: Rules<'_>,
    on_remote: &HashMap<String, RemotePoint>,
    done: &mut Synced,
) {
    let wanted = kept(&set.restore_points, rules);
    for entry in &set.restore_points {
        if !entry.name.diff
            || entry.damage.is_some()
            || !wanted.contains(&entry.file_name)
            || on_remote.contains_key(&entry.file_name)
        {
            continue;
        }
        let Some(why) = crate::diff::restore_problem(entry) else {
            continue;
        };
        // Looked at after its base: retention deletes a diff before its base,
        // so a diff still here was here without it; one gone too was pruned
        // with it while this sync ran (a job's backup), nothing to put back.
        if gone(entry) {
            deleted_meanwhile(&entry.file_name, done);
        } else {
            done.no_base.push((entry.file_name.clone(), why));
        }
    }
    done.no_base.sort();
}

/// Whether `entry`'s file is no longer in the backup directory.
fn gone(entry: &Entry) -> bool {
    std::fs::symlink_metadata(&entry.path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
}

/// `name` is passed over as deleted from the backup directory meanwhile:
/// that, not an earlier reason (its base not on the remote), is why.
fn deleted_meanwhile(name: &str, done: &mut Synced) {
    let why = "deleted from the backup directory meanwhile".to_string();
    match done.passed_over.iter_mut().find(|(n, _)| n == name) {
        Some(passed) => passed.1 = why,
        None => done.passed_over.push((name.to_string(), why)),
    }
}

/// A database's newest restore point found damaged in the backup directory
/// (by this sync or earlier: `to_upload` leaves it out) and not intact on the
/// remote is named by every sync until a newer one is there: else only the
/// first sync after the damage was found would say so.
fn damaged_newest(
    set: &BackupSet,
    on_remote: &HashMap<String, RemotePoint>,
    bad: &HashMap<String, String>,
    done: &mut Synced,
) {
    let mut newest: HashMap<&str, &Entry> = HashMap::new();
    for entry in &set.restore_points {
        let Ok(meta) = &entry.meta else { continue };
        let slot = newest.entry(meta.source.as_str()).or_insert(entry);
        if entry.order() > slot.order() {
            *slot = entry;
        }
    }
    for entry in newest.into_values() {
        let Some(why) = &entry.damage else { continue };
        let there = on_remote.contains_key(&entry.file_name) && !bad.contains_key(&entry.file_name);
        if !there && !done.not_intact.iter().any(|(n, _)| n == &entry.file_name) {
            done.not_intact.push((entry.file_name.clone(), why.clone()));
        }
    }
}

/// A record copied under another point's name is named by every sync (as
/// a damaged point, unless its upload already named it), not only by one
/// that has that point to upload: retention leaves it alone.
fn misplaced(
    on_remote: &HashMap<String, RemotePoint>,
    bad: &mut HashMap<String, String>,
    done: &Synced,
) {
    for (name, point) in on_remote {
        if let (Some(_), Some(why)) = (&point.misplaced, &point.problem)
            && !done.clashes.iter().any(|(n, _)| n == name)
        {
            bad.insert(name.clone(), why.clone());
        }
    }
}

/// Whether `entry` does not read back whole, as a restore would read it
/// (what `sent` hashes leaves out the header and the index member): then it
/// is marked damaged locally and named, never uploaded. A diff whose base is
/// the damaged file: the base is marked and named; the diff itself is sent
/// when the base's copy on the remote is proved (`proved`), as it can be
/// restored from there.
fn unsound(entry: &Entry, proved: &HashSet<String>, done: &mut Synced) -> Result<bool> {
    let damage = match super::content::damage(entry) {
        Ok(damage) => damage,
        // Read by its path (and a diff's base by its own): retention deleted
        // it (a diff with its base) since it was opened.
        Err(_) if gone(entry) => {
            deleted_meanwhile(&entry.file_name, done);
            return Ok(true);
        }
        Err(error) => return Err(error),
    };
    let Some(damage) = damage else {
        return Ok(false);
    };
    crate::store::damage::mark(&damage.path, &damage.why);
    if damage.name == entry.file_name {
        done.not_intact.push((entry.file_name.clone(), damage.why));
        return Ok(true);
    }
    if proved.contains(&damage.name) {
        tracing::warn!(
            "{} is damaged in the backup directory ({}); its copy on the remote is intact, so {} is uploaded, restorable from there",
            damage.name,
            damage.why,
            entry.file_name
        );
        return Ok(false);
    }
    done.passed_over.push((
        entry.file_name.clone(),
        format!(
            "its base {} is damaged in the backup directory",
            damage.name
        ),
    ));
    if !done.not_intact.iter().any(|(n, _)| n == &damage.name) {
        done.not_intact.push((damage.name, damage.why));
    }
    Ok(true)
}

/// The WARN for `point`, read back now with other bytes (`why`) and not
/// repaired; a content damage known before was not read now, and is named
/// with the sync's failure.
fn mismatch_warning(remote: &Remote, proofs: &Proofs, point: &RemotePoint, why: &str) {
    if proofs.content_damage(point).is_none() {
        tracing::warn!("{} on {}: {why}", point.record.name, remote.url());
    }
}

/// Whether `point`'s bytes are proved: recently enough, or by reading them
/// back whole now (noted in `proofs`, named in `done.read_back`; a mismatch
/// read now is warned about when `warn`). Why not, when they do not match.
fn prove(
    remote: &Remote,
    point: &RemotePoint,
    proofs: &mut Proofs,
    done: &mut Synced,
    warn: bool,
) -> Result<Option<String>> {
    if let Standing::Proved(_) = proofs.standing(point) {
        return Ok(None);
    }
    if let Some(why) = proofs.content_damage(point) {
        return Ok(Some(why));
    }
    let (e_tag, mismatch) = remote.read_whole(point)?;
    proofs.note(point, e_tag, mismatch.clone());
    match &mismatch {
        None => done.read_back.push(point.record.name.clone()),
        Some(why) if warn => tracing::warn!("{} on {}: {why}", point.record.name, remote.url()),
        Some(_) => {}
    }
    Ok(mismatch)
}

/// Whose backup the record `there` under the same name is, when it is not
/// this backup (another database's, or other content): the upload would
/// replace it.
fn other_backup(there: &Record, meta: &Metadata) -> Option<String> {
    if there.metadata.source == meta.source && there.metadata.checksum == meta.checksum {
        return None;
    }
    Some(if there.metadata.source == meta.source {
        "another backup of this database, whose content differs from the local file: the remote one is kept".to_string()
    } else {
        format!(
            "a restore point of {}: give each database its own remote prefix",
            there.metadata.source
        )
    })
}

/// What remote retention keeps of each database's points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// `remote_max_backups`: the newest this many.
    pub keep: u32,
    /// `check.max_shrink`: the pre-shrink point is held as local retention
    /// holds it (`retention::pre_shrink`), or a shrink (a mistaken `DELETE`,
    /// a database re-created empty after a purge) would push the only copy
    /// of the lost rows off the remote.
    pub max_shrink_percent: f64,
    /// `sync --forget-missing`: points gone from the store (`vanished`) are
    /// accepted as lost, not a failure.
    pub forget_missing: bool,
    /// The local backup directory, whose restore records (`restored`) say
    /// which size drops a restore made: not held as shrinks, as locally.
    pub backup_dir: Option<&'a Path>,
}

impl<'a> Rules<'a> {
    pub(crate) fn of(settings: &'a crate::config::Settings) -> Rules<'a> {
        Rules {
            keep: settings.remote_max_backups,
            max_shrink_percent: settings.check.max_shrink_percent,
            forget_missing: false,
            backup_dir: Some(&settings.backup_dir),
        }
    }
}

/// `points` grouped per database (`source`), each newest first.
fn by_source(points: &[Entry]) -> Vec<Vec<&Entry>> {
    let mut by_source: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for entry in points {
        if let Ok(meta) = &entry.meta {
            by_source.entry(&meta.source).or_default().push(entry);
        }
    }
    let mut lists: Vec<Vec<&Entry>> = by_source.into_values().collect();
    for list in &mut lists {
        list.sort_by_cached_key(|e| std::cmp::Reverse(e.order()));
    }
    lists
}

/// The pre-shrink point held per database among `points`
/// (`retention::pre_shrink`), compared since the last restore into it.
fn held(points: &[Entry], rules: Rules<'_>) -> Vec<String> {
    by_source(points)
        .into_iter()
        .filter_map(|list| {
            let source = list.first()?.meta.as_ref().ok()?.source.clone();
            let restored = rules
                .backup_dir
                .and_then(|dir| crate::restored::read(dir, &DbId::of(Path::new(&source))));
            let compared =
                crate::restored::since_by(list, restored.as_ref(), super::client::local_seq);
            crate::retention::pre_shrink(compared, rules.max_shrink_percent)
        })
        .map(|e| e.file_name.clone())
        .collect()
}

/// The backup directory's newest restore point of each database that can be
/// restored (by cheap tests and what whole reads found: one found damaged is
/// never uploaded, T33 H5), with metadata (a legacy file is never uploaded).
fn newest_here(set: &BackupSet) -> Vec<&Entry> {
    by_source(&set.restore_points)
        .into_iter()
        .filter_map(|list| {
            list.into_iter()
                .find(|e| crate::diff::restore_problem(e).is_none())
        })
        .collect()
}

/// Names to keep among `points`: per database (`source`), the newest `keep`,
/// the pre-shrink point (`held`), the pre-job points of running jobs (their
/// local pins) and the base of each kept diff.
pub(crate) fn kept(points: &[Entry], rules: Rules<'_>) -> HashSet<String> {
    let held = held(points, rules);
    // A running job's pre-job point, kept locally past max_backups (its pin),
    // is kept here too: the off-site copy of the state before the job.
    let pinned = rules.backup_dir.map_or_else(HashSet::new, |dir| {
        crate::slurm::array::JobState::protected(&crate::store::BackupDir::new(dir))
    });
    let mut names = HashSet::new();
    for list in by_source(points) {
        let newest = list.iter().take(rules.keep as usize);
        let pre_shrink = list.iter().filter(|e| held.contains(&e.file_name));
        let of_running_jobs = list.iter().filter(|e| pinned.contains(&e.file_name));
        for entry in newest.chain(pre_shrink).chain(of_running_jobs) {
            names.insert(entry.file_name.clone());
            if let Ok(meta) = &entry.meta
                && let Some(diff) = &meta.diff
            {
                names.insert(diff.base.clone());
            }
        }
    }
    names
}

/// Why a diff on `base` cannot be restored from the remote, if it cannot.
fn base_problem(
    points: &HashMap<String, RemotePoint>,
    bad: &HashMap<String, String>,
    base: &str,
) -> Option<String> {
    if bad.contains_key(base) {
        Some(format!("its base {base} is damaged"))
    } else if !points.contains_key(base) {
        Some(format!(
            "its base {base} is not on the remote (its record is missing) and not in the backup directory to upload again"
        ))
    } else {
        None
    }
}

/// Remote retention: of the databases whose restore points `set` holds (and
/// the configured `db`'s), delete
/// the remote points `kept` does not keep (never a base a kept diff needs).
/// Nothing is deleted until every point kept in its place is proved: one
/// found damaged (or incomplete) is left out of the count (and out of the
/// deletions), and the choice is made again without it, so an older intact
/// point stays.
fn retain(
    remote: &Remote,
    points: &HashMap<String, RemotePoint>,
    (set, db): (&BackupSet, Option<&DbId>),
    rules: Rules<'_>,
    (proofs, proved, bad): (
        &mut Proofs,
        &mut HashSet<String>,
        &mut HashMap<String, String>,
    ),
    read_back: &mut Vec<String>,
) -> Result<Vec<String>> {
    // An incomplete point (its object missing or of another size) that
    // retention would keep is damaged like one read back with other bytes;
    // one it would not keep goes.
    // The configured database's points count with no backup of it here (a
    // purged backup directory): the remote's copy is then the only one.
    let mut entries: Vec<Entry> = points
        .values()
        .filter(|p| ours(set, db, &p.record.metadata.source))
        // Another point's record under this name: left for the user (sync
        // and list name it), never counted nor deleted.
        .filter(|p| p.misplaced.is_none())
        .filter(|p| p.record.metadata.kind != crate::store::Kind::PreRestore)
        .filter_map(|p| p.entry(remote.url()))
        .collect();
    let keep = loop {
        entries.retain(|e| !bad.contains_key(&e.file_name));
        let keep = kept(&entries, rules);
        let mut found_bad = false;
        let mut names: Vec<&String> = keep.iter().collect();
        names.sort();
        for name in names {
            // Known bad already: still named by a kept diff as its base, but
            // never read again (that would go round for ever).
            let Some(point) = points.get(name).filter(|_| !bad.contains_key(name)) else {
                continue;
            };
            if let Some(why) = &point.problem {
                bad.insert(name.clone(), why.clone());
                found_bad = true;
                continue;
            }
            // A kept diff on a damaged base cannot be restored: it does not
            // count either, and an older point stays in its place.
            // A kept diff on a base without a record (deleted at the store,
            // no local copy to upload it again from) cannot be restored either.
            if let Some(diff) = &point.record.metadata.diff
                && let Some(why) = base_problem(points, bad, &diff.base)
            {
                bad.insert(name.clone(), why);
                found_bad = true;
                continue;
            }
            if proved.contains(name) {
                continue;
            }
            let mut done = Synced::default();
            match prove(remote, point, proofs, &mut done, true)? {
                None => {
                    proved.insert(name.clone());
                }
                Some(why) => {
                    bad.insert(name.clone(), why);
                    found_bad = true;
                }
            }
            read_back.extend(done.read_back);
        }
        if !found_bad {
            break keep;
        }
    };
    for name in held(&entries, rules) {
        // Its database's points, newest first, among those that stay.
        let is_base = by_source(&entries)
            .into_iter()
            .find(|list| list.iter().any(|e| e.file_name == name))
            .is_some_and(|list| {
                let kept = list.into_iter().filter(|e| keep.contains(&e.file_name));
                crate::retention::only_diffs_since(kept, &name)
            });
        // Deleted at the store only, the backup directory's copy goes up
        // again; a diff's base is as large and would be kept next (T37 S3).
        let base = entries
            .iter()
            .find(|e| e.file_name == name)
            .and_then(|e| Some(e.meta.as_ref().ok()?.diff.as_ref()?.base.clone()));
        let also = match base {
            Some(base) => format!(
                " and its base {base} from the backup directory (else `dbbackup sync` uploads them again) and from the store with their records (NAME.meta.json)"
            ),
            None => " from the backup directory (else `dbbackup sync` uploads it again) and from the store with its record (NAME.meta.json)".to_string(),
        };
        tracing::warn!(
            "remote retention keeps {name} on {}: the database is smaller by more than {}% than in it (check.max_shrink); {}",
            remote.url(),
            rules.max_shrink_percent,
            crate::retention::shrink_advice(&name, is_base, &also)
        );
    }
    let mut keep = identity::made_after_kept(&entries, keep);
    // The backup directory's newest point, once proved there, whatever ranks
    // above it (a newer point whose local copy was deleted, T31 R5; another
    // directory's by a clock that disagrees, R17): deleting it in the sync
    // that uploads it leaves `check` asking for a sync that never helps.
    for entry in newest_here(set) {
        if proved.contains(&entry.file_name)
            && entries.iter().any(|e| e.file_name == entry.file_name)
        {
            keep.insert(entry.file_name.clone());
            if let Some(diff) = entry.meta.as_ref().ok().and_then(|m| m.diff.as_ref()) {
                keep.insert(diff.base.clone());
            }
        }
    }
    let mut deleted = Vec::new();
    for entry in entries.iter().filter(|e| !keep.contains(&e.file_name)) {
        remote.delete(&entry.file_name)?;
        tracing::info!("deleted {} from {}", entry.file_name, remote.url());
        deleted.push(entry.file_name.clone());
    }
    deleted.sort();
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Checksum;
    use crate::store::Kind;
    use crate::store::metadata::{DiffInfo, DiffType};
    use crate::store::ownership::tests::entry;

    fn point(stamp: &str, source: &str, seq: u64, base: Option<&str>) -> Entry {
        let mut e = entry(stamp, source, Kind::Manual, false);
        let meta = e.meta.as_mut().unwrap();
        meta.seq = Some(seq);
        if let Some(base) = base {
            e.name = e.name.as_diff(true);
            e.file_name = e.name.file_name();
            meta.diff = Some(DiffInfo {
                kind: DiffType::Diff,
                base: base.to_string(),
                base_checksum: Checksum::of(b"base"),
                base_size: 0,
                page_size: 4096,
                page_count: 1,
                changed_pages: 1,
                diff_checksum: Checksum::of(b"diff"),
                diff_index: 1,
            });
        }
        e
    }

    /// A full and a diff on it that retention deleted (a diff before its
    /// base) once this sync had listed them: passed over as deleted
    /// meanwhile, neither a failed sync nor "diffs whose base is gone".
    #[test]
    fn a_diff_and_base_deleted_since_the_listing_are_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let base = "backup_20250101_000000.db.gz";
        let mut points = vec![
            point("20250101_000000", "/a.db", 1, None),
            point("20250101_010000", "/a.db", 2, Some(base)),
        ];
        for e in &mut points {
            e.path = dir.path().join(&e.file_name);
        }
        let mut done = Synced::default();
        for e in &points {
            assert!(unsound(e, &HashSet::new(), &mut done).unwrap());
        }
        let set = BackupSet {
            restore_points: points,
            ..BackupSet::default()
        };
        let rules = Rules {
            keep: 2,
            max_shrink_percent: 50.0,
            forget_missing: false,
            backup_dir: None,
        };
        without_base(&set, rules, &HashMap::new(), &mut done);
        let why = "deleted from the backup directory meanwhile".to_string();
        let names: Vec<String> = set
            .restore_points
            .iter()
            .map(|e| e.file_name.clone())
            .collect();
        assert_eq!(
            done.passed_over,
            [(names[0].clone(), why.clone()), (names[1].clone(), why)]
        );
        assert!(done.no_base.is_empty(), "{:?}", done.no_base);
        assert!(done.not_intact.is_empty(), "{:?}", done.not_intact);
    }

    /// Remote retention holds a pre-shrink point as local retention does, and
    /// like it not for the size drop a recorded restore made (T10 #4).
    #[test]
    fn a_restore_recorded_locally_is_no_shrink_on_the_remote() {
        let sized = |stamp, seq, size| {
            let mut e = point(stamp, "/a.db", seq, None);
            e.meta.as_mut().unwrap().db_size = size;
            e
        };
        let points = vec![
            sized("20250101_030000", 3, 10),
            sized("20250101_020000", 2, 1000),
            sized("20250101_010000", 1, 10),
        ];
        let local = tempfile::tempdir().unwrap();
        let rules = Rules {
            keep: 1,
            max_shrink_percent: 50.0,
            forget_missing: false,
            backup_dir: Some(local.path()),
        };
        assert_eq!(held(&points, rules), ["backup_20250101_020000.db.gz"]);
        let db = DbId::of(Path::new("/a.db"));
        crate::restored::record(
            local.path(),
            &db,
            ("backup_20250101_010000.db.gz", false),
            2,
            None,
        )
        .unwrap();
        assert!(held(&points, rules).is_empty());
        // Grown since the restore, then shrunk: held again.
        let later = [
            sized("20250101_050000", 5, 10),
            sized("20250101_040000", 4, 1000),
        ];
        let points: Vec<Entry> = later.into_iter().chain(points).collect();
        assert_eq!(held(&points, rules), ["backup_20250101_040000.db.gz"]);
    }

    #[test]
    fn retention_keeps_the_newest_per_database_and_the_bases_of_kept_diffs() {
        let f1 = "backup_20250101_000000.db.gz";
        let points = vec![
            point("20250101_000000", "/a.db", 1, None),
            point("20250101_010000", "/a.db", 2, Some(f1)),
            point("20250101_020000", "/a.db", 3, Some(f1)),
            point("20250101_030000", "/a.db", 4, None),
            // Another database's points are counted apart.
            point("20250101_000500", "/b.db", 1, None),
        ];
        let rules = Rules {
            keep: 2,
            max_shrink_percent: 50.0,
            forget_missing: false,
            backup_dir: None,
        };
        let mut kept: Vec<String> = kept(&points, rules).into_iter().collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                "backup_20250101_000000.db.gz",
                "backup_20250101_000500.db.gz",
                "backup_20250101_020000.diff.gz",
                "backup_20250101_030000.db.gz",
            ]
        );
    }
}
