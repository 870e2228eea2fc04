//! Which remote points were read back whole and matched their SHA-256: when,
//! and the store's ETag of the bytes read. A point counts as proved while its
//! data object still has that ETag (any write through the S3 API changes it:
//! another sync's upload, a tool overwriting it) and the read-back is younger
//! than [`REREAD_AFTER`] (what the ETag cannot show: bytes rotting at the
//! store). Kept in `.dbbackup-state/` beside the upload records, so that `check`
//! judges without reaching the store; a lost or stale file only costs a
//! read-back, never a false "ok" (the ETag must still match).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{RemotePoint, RemoteUrl};
use crate::slurm::array::STATE_DIR;
use crate::store::Checksum;

/// A read-back older than this is repeated by the next `sync`: the whole
/// remote is downloaded once a week at most (docs/remote.md, "What is
/// guaranteed").
pub(crate) const REREAD_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// One whole read of a point's data object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Proof {
    /// The record's SHA-256 the bytes were compared with.
    pub sha256: String,
    /// The record's database checksum (`metadata.checksum`): which backup
    /// the point read back is, beyond its name (a point of the same name may
    /// be another backup). Proofs written before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// The record's database (`metadata.source`): whose retention window
    /// the point is in once it is gone from the store (`vanished`). Proofs
    /// written before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The store's ETag of the bytes read (`None`: the store gave none).
    pub e_tag: Option<String>,
    pub time: Timestamp,
    /// The bytes matched the record.
    pub ok: bool,
    /// For a mismatch: what was read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The mismatch is in the content (gzip, the database's SHA-256), the
    /// bytes matched their record: reading them again finds the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub content: bool,
    /// Not read at all: a restore or verify found no valid record of it on
    /// the remote (deleted or damaged there), so it cannot be restored from
    /// there. Forgotten by the next `sync`, which uploads it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlisted: bool,
    /// Its bytes and content read back whole, the database in them fails
    /// `integrity_check` (found by `verify --from-remote`): what it found.
    /// Held while the bytes are these (a read-back of the same bytes keeps
    /// it), as a damaged mark is locally; never read as byte damage, which
    /// an upload could mend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsound: Option<String>,
}

/// What is known of a point's bytes on the remote.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Standing {
    /// Read back whole, matched, and not written since: when.
    Proved(Timestamp),
    /// Read back whole and found not to match (the same object is still
    /// there): what was read.
    Mismatch(String),
    /// Never read back, or written since, or read too long ago.
    Unproved,
}

/// The proofs of one remote, as kept in one backup directory.
#[derive(Debug, Default)]
pub(crate) struct Proofs {
    place: Option<PathBuf>,
    points: BTreeMap<String, Proof>,
    /// Changed by this process: merged into the file on save.
    changed: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    remote: String,
    /// The endpoint the read-backs were made at (`None`: the AWS default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    points: BTreeMap<String, Proof>,
}

fn place(backup_dir: &Path, url: &RemoteUrl, endpoint: Option<&str>) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(super::client::store_key_at(&url.to_string(), endpoint).as_bytes());
    backup_dir.join(STATE_DIR).join(format!(
        "remote-proofs-{}",
        crate::sqlite_file::hex(&digest[..6])
    ))
}

fn read(place: &Path, url: &RemoteUrl, endpoint: Option<&str>) -> BTreeMap<String, Proof> {
    std::fs::read(place)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<OnDisk>(&bytes).ok())
        .filter(|d| d.remote == url.to_string() && d.endpoint.as_deref() == endpoint)
        .map(|d| d.points)
        .unwrap_or_default()
}

impl Proofs {
    /// The proofs of `url` kept in `backup_dir` (none when it has none).
    pub(crate) fn load(backup_dir: &Path, url: &RemoteUrl) -> Proofs {
        Proofs::load_at(backup_dir, url, super::client::endpoint_in_env().as_deref())
    }

    /// The proofs of `url` at `endpoint` (`None`: the AWS default), for
    /// `check`, which never reaches the store and may run without the
    /// endpoint in its environment.
    pub(crate) fn load_at(backup_dir: &Path, url: &RemoteUrl, endpoint: Option<&str>) -> Proofs {
        let place = place(backup_dir, url, endpoint);
        Proofs {
            points: read(&place, url, endpoint),
            place: Some(place),
            changed: BTreeSet::new(),
        }
    }

    pub(crate) fn standing(&self, point: &RemotePoint) -> Standing {
        let Some(proof) = self.points.get(&point.record.name) else {
            return Standing::Unproved;
        };
        // Another record's proof (the name was uploaded again), or another
        // object than the one read: says nothing of these bytes.
        let same_object = proof.e_tag.is_some() && proof.e_tag == point.e_tag;
        if proof.sha256 != point.record.sha256 || (point.e_tag.is_some() && !same_object) {
            return Standing::Unproved;
        }
        if !proof.ok {
            return Standing::Mismatch(proof.detail.clone());
        }
        let age = Timestamp::now().duration_since(proof.time);
        if std::time::Duration::try_from(age).is_ok_and(|age| age <= REREAD_AFTER) {
            Standing::Proved(proof.time)
        } else {
            Standing::Unproved
        }
    }

    /// The newest read-back of `name`, if it matched.
    pub(crate) fn proved_at(&self, name: &str) -> Option<Timestamp> {
        self.points.get(name).filter(|p| p.ok).map(|p| p.time)
    }

    /// The point read back whole most recently: its name and when.
    pub(crate) fn newest_read_back(&self) -> Option<(&str, Timestamp)> {
        self.points
            .iter()
            .filter(|(_, p)| p.ok)
            .max_by_key(|(_, p)| p.time)
            .map(|(name, p)| (name.as_str(), p.time))
    }

    /// [`Proofs::proved_at`], if within [`REREAD_AFTER`]: what `list
    /// --from-remote` shows as `proved` (judged without the store's ETag).
    pub(crate) fn proved_recently(&self, name: &str) -> Option<Timestamp> {
        let at = self.proved_at(name)?;
        let age = std::time::Duration::try_from(Timestamp::now().duration_since(at)).ok()?;
        (age <= REREAD_AFTER).then_some(at)
    }

    /// [`Proofs::proved_recently`] for the backup whose database checksum
    /// is `checksum`: `Err` when the point read back under `name` is
    /// another backup. `None` also for a proof that did not record which.
    pub(crate) fn proved_recently_as(
        &self,
        name: &str,
        checksum: &Checksum,
    ) -> Option<std::result::Result<Timestamp, Timestamp>> {
        let at = self.proved_recently(name)?;
        let read = self.points.get(name)?.checksum.as_ref()?;
        Some(if read == checksum { Ok(at) } else { Err(at) })
    }

    /// The newest read-back of `name`, if it found other bytes than its
    /// record's: when, and what was read.
    pub(crate) fn mismatch_at(&self, name: &str) -> Option<(Timestamp, &str)> {
        self.points
            .get(name)
            .filter(|p| !p.ok)
            .map(|p| (p.time, p.detail.as_str()))
    }

    /// `point` was read back whole: its bytes had ETag `e_tag` and matched its
    /// record (`mismatch` None) or not.
    pub(crate) fn note(
        &mut self,
        point: &RemotePoint,
        e_tag: Option<String>,
        mismatch: Option<String>,
    ) {
        // The same bytes hold the same database: a finding of
        // `integrity_check` about them stays.
        let unsound = self
            .points
            .get(&point.record.name)
            .filter(|p| p.sha256 == point.record.sha256 && mismatch.is_none())
            .and_then(|p| p.unsound.clone());
        let proof = Proof {
            sha256: point.record.sha256.clone(),
            checksum: Some(point.record.metadata.checksum),
            source: Some(point.record.metadata.source.clone()),
            e_tag,
            time: Timestamp::now(),
            ok: mismatch.is_none(),
            detail: mismatch.unwrap_or_default(),
            content: false,
            unlisted: false,
            unsound,
        };
        self.points.insert(point.record.name.clone(), proof);
        self.changed.insert(point.record.name.clone());
    }

    /// `name` has no valid record on the remote (`why`), though a diff
    /// there or this backup directory's upload record says it should.
    pub(crate) fn note_unlisted(&mut self, name: &str, why: String) {
        let proof = Proof {
            sha256: String::new(),
            checksum: None,
            source: None,
            e_tag: None,
            time: Timestamp::now(),
            ok: false,
            detail: why,
            content: false,
            unlisted: true,
            unsound: None,
        };
        self.points.insert(name.to_string(), proof);
        self.changed.insert(name.to_string());
    }

    /// Whether the newest finding about `name` is that it has no valid
    /// record on the remote ([`Proofs::note_unlisted`]).
    pub(crate) fn unlisted(&self, name: &str) -> bool {
        self.points.get(name).is_some_and(|p| p.unlisted)
    }

    /// `point`'s bytes matched its record, but its content did not read
    /// back whole (`why`).
    pub(crate) fn note_content_damage(
        &mut self,
        point: &RemotePoint,
        e_tag: Option<String>,
        why: String,
    ) {
        self.note(point, e_tag, Some(why));
        if let Some(proof) = self.points.get_mut(&point.record.name) {
            proof.content = true;
        }
    }

    /// Why `point`'s content was found damaged, if it was and the object is
    /// still the one read: no read-back of its bytes can clear that.
    pub(crate) fn content_damage(&self, point: &RemotePoint) -> Option<String> {
        let proof = self.points.get(&point.record.name)?;
        match self.standing(point) {
            Standing::Mismatch(why) if proof.content => Some(why),
            _ => None,
        }
    }

    /// `point`, just read back whole (its bytes noted matching), holds a
    /// database that fails `integrity_check`: `why`, what it found. A
    /// whole check that passes on it clears that (`None`).
    pub(crate) fn note_unsound(&mut self, point: &RemotePoint, why: Option<String>) {
        if let Some(proof) = self.points.get_mut(&point.record.name)
            && proof.sha256 == point.record.sha256
        {
            proof.unsound = why;
            self.changed.insert(point.record.name.clone());
        }
    }

    /// The databases (by SHA-256) of points a whole read found failing
    /// `integrity_check` (`verify --from-remote`): point name and finding.
    /// By the database, as any point holding the same one fails the same way.
    pub(crate) fn unsound_by_checksum(&self) -> HashMap<Checksum, (String, String)> {
        self.points
            .iter()
            .filter_map(|(name, p)| Some((p.checksum?, (name.clone(), p.unsound.clone()?))))
            .collect()
    }

    /// The points read back whole that matched, by name, with their
    /// database (`None`: a proof written before it was recorded).
    pub(crate) fn proved(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.points
            .iter()
            .filter(|(_, p)| p.ok)
            .map(|(name, p)| (name.as_str(), p.source.as_deref()))
    }

    /// Only the points of `listed` (the remote's whole listing) and `also`
    /// (gone from the store, still to be named: `vanished`): the proofs of
    /// points deleted elsewhere go.
    pub(crate) fn keep_only(&mut self, listed: &[RemotePoint], also: &[String]) {
        let gone: Vec<String> = self
            .points
            .keys()
            .filter(|name| !listed.iter().any(|p| &p.record.name == *name))
            .filter(|name| !also.contains(name))
            .cloned()
            .collect();
        for name in gone {
            self.forget(&name);
        }
    }

    /// `name` was deleted from the remote.
    pub(crate) fn forget(&mut self, name: &str) {
        self.points.remove(name);
        self.changed.insert(name.to_string());
    }

    /// Write this process's findings over what the file holds now (another
    /// sync or verify may have written meanwhile); never fails the command.
    pub(crate) fn save(&self, url: &RemoteUrl) {
        if let Err(error) = self.save_checked(url) {
            tracing::debug!("remote read-backs not recorded: {error}");
        }
    }

    /// [`Proofs::save`], saying why the file could not be written (naming
    /// it): `sync` fails then, since `check` would not see what it found.
    pub(crate) fn save_checked(&self, url: &RemoteUrl) -> Result<(), String> {
        let Some(place) = &self.place else {
            return Ok(());
        };
        if self.changed.is_empty() {
            return Ok(());
        }
        let Some(backup_dir) = place.parent().and_then(Path::parent) else {
            return Ok(());
        };
        // A purged backup directory is not made again for this, but for a
        // finding no read of the bytes would make again: a database failing
        // `integrity_check`, which `restore latest` (its `quick_check`) would
        // take.
        let unsound_found = self
            .changed
            .iter()
            .any(|name| self.points.get(name).is_some_and(|p| p.unsound.is_some()));
        if !backup_dir.is_dir() && !unsound_found {
            return Ok(());
        }
        let mut points = read(place, url, super::client::endpoint_in_env().as_deref());
        for name in &self.changed {
            match self.points.get(name) {
                Some(proof) => points.insert(name.clone(), proof.clone()),
                None => points.remove(name),
            };
        }
        crate::store::perms::create_dir_all(place.parent().unwrap_or(backup_dir))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let disk = OnDisk {
                    remote: url.to_string(),
                    endpoint: super::client::endpoint_in_env(),
                    points,
                };
                let json = serde_json::to_vec(&disk).map_err(|e| e.to_string())?;
                crate::store::replace_file(place, 0o644, &json).map_err(|e| e.to_string())
            })
            .map_err(|e| format!("cannot write {}: {e}", crate::error::show(place)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::record::{FORMAT, Record};

    fn point(sha: &str, e_tag: Option<&str>) -> RemotePoint {
        let entry = crate::store::ownership::tests::entry(
            "20250101_000000",
            "/a.db",
            crate::store::Kind::Manual,
            false,
        );
        RemotePoint {
            record: Record {
                format: FORMAT,
                name: entry.file_name.clone(),
                size: 10,
                sha256: sha.to_string(),
                metadata: entry.meta.unwrap(),
                remote_seq: Some(1),
                from: None,
                set: None,
            },
            problem: None,
            e_tag: e_tag.map(str::to_string),
            misplaced: None,
            mended_from: None,
        }
    }

    #[test]
    fn a_proof_says_which_backup_was_read_under_a_name() {
        let mut proofs = Proofs::default();
        let read = point("sha256:a", Some("\"e1\""));
        let name = read.record.name.clone();
        let ours = read.record.metadata.checksum;
        proofs.note(&read, read.e_tag.clone(), None);
        assert!(matches!(
            proofs.proved_recently_as(&name, &ours),
            Some(Ok(_))
        ));
        let other = Checksum::of(b"another backup's database");
        assert!(matches!(
            proofs.proved_recently_as(&name, &other),
            Some(Err(_))
        ));
        // A proof from before the checksum was recorded says neither.
        proofs.points.get_mut(&name).unwrap().checksum = None;
        assert_eq!(proofs.proved_recently_as(&name, &ours), None);
    }

    #[test]
    fn a_proof_holds_for_the_object_read_and_not_for_long() {
        let mut proofs = Proofs::default();
        let read = point("sha256:a", Some("\"e1\""));
        assert_eq!(proofs.standing(&read), Standing::Unproved);
        proofs.note(&read, read.e_tag.clone(), None);
        assert!(matches!(proofs.standing(&read), Standing::Proved(_)));
        // Written since (another ETag), or another record under the name.
        assert_eq!(
            proofs.standing(&point("sha256:a", Some("\"e2\""))),
            Standing::Unproved
        );
        assert_eq!(
            proofs.standing(&point("sha256:b", Some("\"e1\""))),
            Standing::Unproved
        );
        // Read too long ago.
        let name = read.record.name.clone();
        let old = REREAD_AFTER + Duration::from_secs(60);
        proofs.points.get_mut(&name).unwrap().time =
            Timestamp::now() - jiff::SignedDuration::try_from(old).unwrap();
        assert_eq!(proofs.standing(&read), Standing::Unproved);
        // A mismatch stays known while the object is the one read.
        proofs.note(&read, read.e_tag.clone(), Some("other bytes".into()));
        assert_eq!(
            proofs.standing(&read),
            Standing::Mismatch("other bytes".into())
        );
        assert_eq!(
            proofs.standing(&point("sha256:a", Some("\"e3\""))),
            Standing::Unproved
        );
        assert_eq!(proofs.proved_at(&name), None);
    }
}
