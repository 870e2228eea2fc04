//! The S3 client: one object_store `AmazonS3` and the runtime that drives it.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use sha2::{Digest, Sha256};

use super::credentials;
use super::parts::PartFail;
use super::record::{self, Record};
use super::sent::SentCheck;
use super::store_error::{fail_text, keys_refused, stalled};
use super::url::RemoteUrl;
use crate::error::{Context, Error, Result, show};
use crate::sqlite_file::hex;
use crate::store::{
    BackupName, Entry, LOCAL_SEQ_BITS, Metadata, REMOTE_SEQ_BASE, TempFile, link_no_replace,
};

/// Parts of a multipart upload: what one upload holds in memory is at most
/// [`IN_FLIGHT`] + 1 parts, whatever the file's size.
const PART_SIZE: usize = 16 * 1024 * 1024;
/// Parts being sent at once.
const IN_FLIGHT: usize = 2;
/// S3 allows 10 000 parts: larger parts for files over ~150 GiB.
const MAX_PARTS: u64 = 9_000;
const READ_CHUNK: usize = 1024 * 1024;

const WHERE_KEYS_GO: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE and ~/.aws/credentials (docs/remote.md)";

/// `AWS_EC2_METADATA_DISABLED=true` (or 1), as the AWS SDKs read it.
pub(crate) struct Remote {
    url: RemoteUrl,
    /// No keys in the environment or the shared credentials file: object_store
    /// then asks the cloud instance-metadata service, whose error would
    /// mislead on a cluster; a failure says where keys go.
    no_keys: bool,
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
    /// `remote_timeout_seconds`: named when a request stalls.
    timeout: Duration,
    /// Which keys requests are signed with, and where they came from: named
    /// when the store refuses them (never the secret).
    keys_from: String,
    /// The record objects the last [`Remote::points`] passed over (not valid
    /// records): `verify --from-remote` fails on them (T33 H15).
    passed_over: std::sync::Mutex<Vec<InvalidRecord>>,
}

/// The publication number `entry` had in the backup directory it was made in
/// (an entry from the remote ranks by the store's order: [`RemotePoint::entry`]).
pub(crate) fn local_seq(entry: &Entry) -> Option<u64> {
    let seq = entry.seq()?;
    Some(if seq & REMOTE_SEQ_BASE != 0 {
        seq & ((1 << LOCAL_SEQ_BITS) - 1)
    } else {
        seq
    })
}

/// A restore point on the remote: its record, and why its data object does
/// not match it (missing, another size), if it does not.
#[derive(Debug, Clone)]
pub(crate) struct RemotePoint {
    pub record: Record,
    pub problem: Option<String>,
    /// The store's ETag of the data object as listed: changes with every
    /// write of it (`proof::Proofs`).
    pub e_tag: Option<String>,
    /// The record under this point's name is another point's (copied under
    /// this name by hand or a tool): that point's name. Never a restore
    /// point (`problem` says why), never counted or deleted by retention.
    pub misplaced: Option<String>,
    /// The number its record holds at the store, when the listing reads it
    /// lower (`mend`): `sync` writes the record again with the number read.
    pub mended_from: Option<u64>,
}

/// A record object under the prefix that is not a valid record (changed by
/// hand or by a tool): the point it names cannot be read.
#[derive(Debug, Clone)]
pub(crate) struct InvalidRecord {
    /// Its key, as another S3 client names it.
    pub key: String,
    /// The restore point it is the record of, by its name.
    pub name: String,
    /// Why it is not a record.
    pub why: String,
}

/// The key `text` as written: `Key::from` would escape a `*` (a character
/// S3 keys take as it is) into `%2A`, where no other tool given the same URL
/// finds it. `RemoteUrl` and backup names hold no character a key cannot
/// (no empty, `.` or `..` part, no control character), so parsing fails
/// only for a name from elsewhere, escaped then as before.
fn as_written(text: &str) -> Key {
    Key::parse(text).unwrap_or_else(|_| Key::from(text))
}

/// The restore point's name a record key is under.
fn key_name(key: &Key) -> String {
    key.filename()
        .and_then(|f| f.strip_suffix(record::SUFFIX))
        .unwrap_or_default()
        .to_string()
}

/// A record object as read from the store.
enum RecordRead {
    Absent,
    Valid(Box<Record>),
    /// Not a record of this format: why.
    Invalid(String),
}

/// What an upload made.
pub(crate) enum Uploaded {
    /// A restore point, read back and recorded.
    Point(Box<RemotePoint>),
    /// Nothing: the backup directory's file is not the backup as written
    /// (why); its object was deleted and no record written.
    NotIntact(String),
}

/// One whole read of an object: its size, SHA-256 and the store's ETag of
/// the bytes read.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub size: u64,
    pub sha256: String,
    pub e_tag: Option<String>,
}

impl RemotePoint {
    /// Whole on the remote: its object has the size its record says.
    pub(crate) fn complete(&self) -> bool {
        self.problem.is_none()
    }

    /// Its place in the remote's order: the publication number, then the
    /// numbering and `seq` of the directory it was made in, which order the
    /// points that share a publication number (`sync::place`; unnumbered
    /// records rank below every numbered one). As [`Entry::order`] orders
    /// [`RemotePoint::entry`].
    pub(crate) fn rank(&self) -> (u64, Option<jiff::Timestamp>, u64) {
        (
            self.record.remote_seq.unwrap_or(0),
            self.record.metadata.numbering_since,
            self.record.metadata.seq.unwrap_or(0),
        )
    }
}

impl RemotePoint {
    /// As a local [`Entry`] (path: the object's URL), so that ownership,
    /// ordering and `list`'s rows work on remote points as on local ones.
    pub(crate) fn entry(&self, url: &RemoteUrl) -> Option<Entry> {
        let name = BackupName::parse(&self.record.name)?;
        let mut meta = self.record.metadata.clone();
        if let Some(n) = self.record.remote_seq {
            let local = meta.seq.unwrap_or(0).min(u64::from(u32::MAX));
            let n = n.min((1 << 30) - 1);
            meta.seq = Some(REMOTE_SEQ_BASE | (n << LOCAL_SEQ_BITS) | local);
        }
        // The remote is ordered by its own numbers (`rank`), in which every
        // local numbering's points were placed when uploaded (docs/remote.md);
        // a numbering orders only the points that share one.
        let remote_numbering = meta.numbering_since.take();
        Some(Entry {
            name,
            file_name: self.record.name.clone(),
            path: PathBuf::from(url.object(&self.record.name)),
            size: self.record.size,
            meta: Ok(meta),
            legacy: false,
            implausible: None,
            damage: self.problem.clone(),
            placed: crate::store::Placed {
                remote_numbering,
                ..crate::store::Placed::default()
            },
        })
    }
}

/// A failure of the store or of a local read, before it is given its words.
enum Fail {
    Store(object_store::Error),
    /// Part N of a multipart upload (its PUT) failed.
    Part(usize, object_store::Error),
    /// Completing a multipart upload (the store assembles its parts) failed.
    Complete(object_store::Error),
    Local(Error),
}

impl From<object_store::Error> for Fail {
    fn from(e: object_store::Error) -> Self {
        Fail::Store(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Local(e)
    }
}

/// `AmazonS3Builder::from_env`, but with keys from the shared credentials
/// file (`file_keys`) no session token from the environment: as in the AWS
/// SDKs, `AWS_SESSION_TOKEN` goes with the environment's keys only (a stale
/// one left by an earlier `assume-role` would make the store refuse the
/// file's keys as `InvalidToken`); the file's own `aws_session_token` applies.
fn from_env(file_keys: bool) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new();
    for (key, value) in std::env::vars_os() {
        let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else {
            continue;
        };
        if !key.starts_with("AWS_") {
            continue;
        }
        let Ok(config) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() else {
            continue;
        };
        if file_keys && config == AmazonS3ConfigKey::Token {
            continue;
        }
        builder = builder.with_config(config, value);
    }
    builder
}

/// The endpoint requests go to as configured (`AWS_ENDPOINT_URL_S3` over
/// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT`), without a trailing slash; `None` for the AWS default.
/// Read-backs and upload records are kept per endpoint: two stores may hold
/// buckets of one name, and a proof made at one says nothing of the other.
pub(crate) fn endpoint_in_env() -> Option<String> {
    super::endpoint::effective(&from_env(false))
        .map(|(_, e)| e.trim_end_matches('/').to_string())
        .filter(|e| !e.is_empty())
}

/// The key under which what is known of `url` at `endpoint` is kept: the
/// URL, and the endpoint when one is set (keys kept before it was: the URL
/// alone).
pub(crate) fn store_key_at(url: &str, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(endpoint) => format!("{url} at {endpoint}"),
        None => url.to_string(),
    }
}

impl Remote {
    /// A client for `url`, with endpoint, region and credentials the standard AWS
    /// ways. A request that receives nothing for `timeout` fails, and the
    /// retries of one request stop after `timeout`.
    pub(crate) fn open(url: &RemoteUrl, timeout: Duration) -> Result<Remote> {
        // reqwest is built without a TLS provider of its own (aws-lc-rs would
        // break the manylinux build): ring's. Err only if one is installed already.
        // Deprecated for lacking post-quantum key exchange, which only aws-lc-rs has.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let seconds = |d: Duration| format!("{}ms", d.as_millis());
        // A web identity or container role: keys that object_store fetches.
        let role = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
            || std::env::var_os("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || std::env::var_os("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
        let file_keys = credentials::from_shared_file(role)?;
        let mut builder = from_env(file_keys.is_some())
            .with_bucket_name(&url.bucket)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: 4,
                retry_timeout: timeout,
            })
            // A stall (no byte for `timeout`) fails a request, not its length:
            // reqwest's total timeout covers the response body, and a 1 GB
            // download on a slow link is not a stall. The total is only a backstop.
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout),
                seconds(timeout),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                seconds(Duration::from_secs(24 * 3600)),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                seconds(timeout.min(Duration::from_secs(10))),
            );
        super::endpoint::refuse_bad_endpoint(&builder)?;
        let mut no_keys = !credentials::is_set("AWS_ACCESS_KEY_ID") && !role;
        // Empty variables are unset, as for the AWS SDKs; object_store would
        // sign with them, so without the file's keys they are refused here.
        if let (None, Some(name)) = (&file_keys, credentials::empty_keys_in_env()) {
            return Err(Error::failed(format!(
                "no credentials found for {url}: {name} is set but empty and the shared credentials file gives no keys: {WHERE_KEYS_GO}"
            )));
        }
        if let (None, false, Some((set, unset))) =
            (&file_keys, role, credentials::half_keys_in_env())
        {
            return Err(Error::failed(format!(
                "no credentials found for {url}: {set} is set but {unset} is not, and the shared credentials file gives no keys: {WHERE_KEYS_GO}"
            )));
        }
        let keys_from = match (&file_keys, role) {
            (Some(keys), _) => format!(
                "access key {} from {}",
                credentials::key_id_end(&keys.access_key_id),
                credentials::file_and_profile()
            ),
            (None, _) if credentials::is_set("AWS_ACCESS_KEY_ID") => format!(
                "access key {} from AWS_ACCESS_KEY_ID",
                credentials::key_id_end(&std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default())
            ),
            (None, true) => "the web identity or container role's".to_string(),
            (None, false) => "the cloud instance-metadata service's".to_string(),
        };
        if let Some(keys) = file_keys {
            no_keys = false;
            builder = builder
                .with_access_key_id(keys.access_key_id)
                .with_secret_access_key(keys.secret_access_key);
            if let Some(token) = keys.session_token {
                builder = builder.with_token(token);
            }
        }
        // The AWS SDKs' switch: where the metadata address hangs (a cluster), no
        // keys is said at once instead of after the connect timeout and retries.
        if no_keys && credentials::metadata_service_disabled() {
            return Err(Error::failed(format!(
                "no credentials found for {url}: {WHERE_KEYS_GO} (AWS_EC2_METADATA_DISABLED: the cloud instance-metadata service was not asked)"
            )));
        }
        refuse_keys_not_header_text(&builder)?;
        let store = builder
            .build()
            .map_err(|e| fail_text(url, "cannot set up", &e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context(|| "cannot start the remote client's runtime")?;
        Ok(Remote {
            url: url.clone(),
            no_keys,
            store,
            rt,
            timeout,
            keys_from,
            passed_over: std::sync::Mutex::default(),
        })
    }

    pub(crate) fn url(&self) -> &RemoteUrl {
        &self.url
    }

    fn key(&self, name: &str) -> Key {
        if self.url.prefix.is_empty() {
            as_written(name)
        } else {
            as_written(&format!("{}/{name}", self.url.prefix))
        }
    }

    /// Where `name`'s record is, as another S3 client names it.
    pub(crate) fn record_url(&self, name: &str) -> String {
        let key = self.key(&format!("{name}{}", record::SUFFIX));
        format!("s3://{}/{key}", self.url.bucket)
    }

    fn fail(&self, doing: &str, e: Fail) -> Error {
        let part = match &e {
            Fail::Part(n, _) => format!(" (PUT of part {n})"),
            Fail::Complete(_) => " (completing the multipart upload)".to_string(),
            _ => String::new(),
        };
        if let Fail::Store(inner) | Fail::Part(_, inner) | Fail::Complete(inner) = &e
            && stalled(inner)
        {
            // Every part went up; the store assembles them before it answers.
            let assembling = if matches!(e, Fail::Complete(_)) {
                "; the store assembles a large backup's parts before it answers: give remote_timeout_seconds more than that takes"
            } else {
                ""
            };
            return Error::failed(format!(
                "{doing} {}{part}: the store sent no reply within remote_timeout_seconds ({} s); the request was abandoned{assembling}",
                self.url,
                self.timeout.as_secs()
            ));
        }
        match e {
            Fail::Part(_, e) | Fail::Complete(e) => {
                Error::failed(format!("{}{part}", fail_text(&self.url, doing, &e)))
            }
            Fail::Store(e) if self.no_keys => {
                // What went wrong first: object_store's own error is about the
                // instance-metadata service, which a cluster user never set up.
                let text = fail_text(&self.url, doing, &e);
                Error::failed(format!(
                    "no credentials found for {}: {WHERE_KEYS_GO} (the cloud instance-metadata service, asked instead: {text})",
                    self.url
                ))
            }
            // Refused keys: which were used, and from where.
            Fail::Store(e) if keys_refused(&e) => Error::failed(format!(
                "{} (keys: {})",
                fail_text(&self.url, doing, &e),
                self.keys_from
            )),
            Fail::Store(e) => fail_text(&self.url, doing, &e),
            Fail::Local(e) => e,
        }
    }

    /// Every restore point under the prefix: a record, complete when its
    /// object exists with the size it records (else with the problem, for
    /// `verify` and `list` to name). Objects without a record (an upload that
    /// was stopped) do not count.
    pub(crate) fn points(&self) -> Result<Vec<RemotePoint>> {
        let (points, invalid) = self.listing()?;
        for bad in &invalid {
            tracing::warn!(
                "{}: not a restore-point record ({}); ignored",
                bad.key,
                bad.why
            );
        }
        if let Ok(mut passed_over) = self.passed_over.lock() {
            *passed_over = invalid;
        }
        Ok(points)
    }

    /// The record objects the last [`Remote::points`] passed over.
    pub(crate) fn invalid_records(&self) -> Vec<InvalidRecord> {
        self.passed_over
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// [`Remote::points`], and the record objects that are not valid
    /// records: `sync` fails on them (its retention cannot count or delete
    /// a point it cannot read), the other commands pass over them.
    pub(crate) fn listing(&self) -> Result<(Vec<RemotePoint>, Vec<InvalidRecord>)> {
        let mut sizes = std::collections::HashMap::new();
        let mut records = Vec::new();
        for object in self.objects()? {
            let Some(file_name) = object.location.filename() else {
                continue;
            };
            if let Some(name) = file_name.strip_suffix(record::SUFFIX) {
                if BackupName::parse(name).is_some() {
                    records.push(object.location.clone());
                }
            } else if BackupName::parse(file_name).is_some() {
                sizes.insert(file_name.to_string(), (object.size, object.e_tag.clone()));
            }
        }
        let mut points = Vec::new();
        let mut invalid = Vec::new();
        for key in records {
            let bytes = self
                .rt
                .block_on(async { self.store.get(&key).await?.bytes().await });
            let bytes = match bytes {
                Ok(bytes) => bytes,
                // Deleted meanwhile by another sync's retention.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.fail("cannot read", e.into())),
            };
            let record: Record = match record::decode(&bytes) {
                Ok(record) => record,
                Err(why) => {
                    invalid.push(InvalidRecord {
                        // `key` holds the prefix already.
                        key: format!("s3://{}/{key}", self.url.bucket),
                        name: key_name(&key),
                        why,
                    });
                    continue;
                }
            };
            let key_name = key_name(&key);
            if key_name != record.name {
                // Named (list, verify: damaged), never dropped in silence.
                points.push(self.misplaced(&key, key_name, record));
                continue;
            }
            let e_tag = sizes.get(&record.name).and_then(|(_, e)| e.clone());
            let problem = match sizes.get(&record.name).map(|(size, _)| *size) {
                Some(size) if size == record.size => None,
                Some(size) => Some(format!(
                    "its data object on {} is {size} bytes, its record says {} (truncated or replaced)",
                    self.url, record.size
                )),
                None => Some(format!(
                    "its data object is missing from {} (only its record is there)",
                    self.url
                )),
            };
            points.push(RemotePoint {
                record,
                problem,
                e_tag,
                misplaced: None,
                mended_from: None,
            });
        }
        super::mend::order(&mut points, &self.url);
        Ok((points, invalid))
    }

    /// The objects directly under the prefix (one listing).
    pub(super) fn objects(&self) -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = (!self.url.prefix.is_empty()).then(|| as_written(&self.url.prefix));
        let listing = self
            .rt
            .block_on(self.store.list_with_delimiter(prefix.as_ref()))
            .map_err(|e| self.fail("cannot list", e.into()))?;
        Ok(listing.objects)
    }

    /// The store's own clock: the time it gives an object written now (a
    /// marker under the prefix, deleted again). Ages of objects are judged
    /// by it, never by this machine's clock.
    pub(super) fn store_now(&self) -> Result<jiff::Timestamp> {
        let key = self.key(CLOCK_MARKER);
        let payload =
            PutPayload::from_static(b"written by dbbackup sync to read the store's clock\n");
        let meta = self.rt.block_on(async {
            self.store.put(&key, payload).await?;
            self.store.head(&key).await
        });
        let meta = meta.map_err(|e| self.fail("cannot write the clock marker to", e.into()))?;
        if let Err(e) = self.rt.block_on(self.store.delete(&key)) {
            tracing::debug!("cannot delete the clock marker {key}: {e}");
        }
        Ok(timestamp_of(&meta))
    }

    /// Delete the data object `name` only (none of its record).
    /// The metadata in the header of `name`'s data object (its first
    /// `HEADER_LEN` bytes, one ranged read): `None` when it holds none that
    /// reads (a plain gzip copied there, junk) or cannot be read now.
    pub(super) fn data_header(&self, name: &str) -> Option<Metadata> {
        let len = crate::store::metadata::HEADER_LEN as u64;
        let bytes = self
            .rt
            .block_on(self.store.get_range(&self.key(name), 0..len))
            .inspect_err(|e| tracing::debug!("cannot read the header of {name}: {e}"))
            .ok()?;
        crate::store::metadata::decode(&mut &bytes[..]).ok()
    }

    pub(super) fn delete_data(&self, name: &str) -> Result<()> {
        match self.rt.block_on(self.store.delete(&self.key(name))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(&format!("cannot delete {name} from"), e.into())),
        }
    }

    /// The point `name` whose record (at `key`) is the record of another
    /// point: listed under `name`, damaged, with the other point's metadata.
    fn misplaced(&self, key: &Key, name: String, mut record: Record) -> RemotePoint {
        let other = std::mem::replace(&mut record.name, name);
        let problem = format!(
            "its record s3://{}/{key} is the record of {other} (copied under this name): delete that object, and `dbbackup sync` uploads this point again from a backup directory that holds it",
            self.url.bucket
        );
        RemotePoint {
            record,
            problem: Some(problem),
            e_tag: None,
            misplaced: Some(other),
            mended_from: None,
        }
    }

    /// The record `NAME.meta.json`, whether or not its object is complete.
    /// One that is not a valid record fails, naming it: a sync must not take
    /// it for absent (its upload could never replace it) nor for another's.
    pub(crate) fn record(&self, name: &str) -> Result<Option<Record>> {
        let key = self.key(&format!("{name}{}", record::SUFFIX));
        match self.read_record(&key)? {
            RecordRead::Absent => Ok(None),
            RecordRead::Valid(record) => Ok(Some(*record)),
            RecordRead::Invalid(why) => Err(Error::failed(format!(
                "s3://{}/{key} is not a valid restore-point record ({why}): delete it, and `dbbackup sync` uploads {name} again from the backup directory (or put the original record back)",
                self.url.bucket
            ))),
        }
    }

    fn read_record(&self, key: &Key) -> Result<RecordRead> {
        let bytes = self
            .rt
            .block_on(async { self.store.get(key).await?.bytes().await });
        match bytes {
            Ok(bytes) => Ok(match record::decode(&bytes) {
                Ok(record) => RecordRead::Valid(Box::new(record)),
                Err(why) => RecordRead::Invalid(why),
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(RecordRead::Absent),
            Err(e) => Err(self.fail("cannot read", e.into())),
        }
    }

    /// Upload `file` (backup `name`, whose header holds `metadata`) and then its
    /// record, after reading the upload back: size and SHA-256 must be those of
    /// the bytes sent. Memory is bounded by the part size, not the file's.
    /// `fresh`: no record `name` was there, and the record is created only if
    /// none is there still (another sync's upload of the same name loses).
    /// Bytes sent that are not the backup as written (`SentCheck`: damaged on
    /// disk since) get no record, and their object is deleted: `NotIntact`.
    pub(crate) fn upload(
        &self,
        file: &mut File,
        name: &str,
        metadata: &Metadata,
        (remote_seq, fresh): (u64, bool),
        origin: super::identity::Origin,
    ) -> Result<Uploaded> {
        let size = file
            .metadata()
            .context(|| format!("cannot stat backup {name}"))?
            .len();
        let key = self.key(name);
        let mut check = SentCheck::new(metadata);
        let sent = self
            .rt
            .block_on(self.send(file, &key, size, |chunk| check.update(chunk)))
            .map_err(|e| self.fail(&format!("cannot upload {name} to"), e))?;
        if let Some(why) = check.problem(metadata) {
            match self.rt.block_on(self.store.delete(&key)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.fail(&format!("cannot delete {name} from"), e.into())),
            }
            return Ok(Uploaded::NotIntact(why));
        }
        // Sent, but no point: the data object of a fresh name goes again
        // (best effort), so that an interrupted or failed sync leaves nothing
        // half-done on the store either (T31 R12).
        let discard = |error: Error| -> Error {
            if fresh {
                let _ = self.rt.block_on(self.store.delete(&key));
            }
            error
        };
        let got = self
            .rt
            .block_on(self.read_back(&key))
            .map_err(|e| discard(self.fail(&format!("cannot read back {name} from"), e)))?;
        if (got.size, &got.sha256) != (size, &sent) {
            return Err(discard(Error::failed(format!(
                "upload of {name} to {} does not read back as sent ({} bytes, {}; sent {size} bytes, {sent}); it is not counted as a restore point there",
                self.url, got.size, got.sha256
            ))));
        }
        let mut record = Record {
            format: record::FORMAT,
            name: name.to_string(),
            size,
            sha256: sent,
            metadata: metadata.clone(),
            remote_seq: Some(remote_seq),
            from: Some(origin.from),
            set: origin.set,
        };
        let json = record::encode(&record).map_err(io::Error::other);
        let json = json.context(|| "cannot encode the remote record")?;
        let mode = if fresh {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let put = self.rt.block_on(self.store.put_opts(
            &self.key(&format!("{name}{}", record::SUFFIX)),
            PutPayload::from(json.clone()),
            PutOptions::from(mode),
        ));
        match put {
            Ok(_) => self.confirm_record(name, &json).map_err(discard)?,
            Err(object_store::Error::AlreadyExists { .. }) => match self.record(name)? {
                // A sync of this same backup at the same time (cron and a
                // manual one): its record describes these very bytes.
                Some(there) if there.same_file(&record) => record = there,
                there => {
                    let (whose, fix) = match there {
                        Some(there) if there.metadata.source == metadata.source => (
                            "another backup of this database".to_string(),
                            "its content differs from the local file, and the remote one is kept",
                        ),
                        Some(there) => (
                            format!("a restore point of {}", there.metadata.source),
                            "give each database its own remote prefix",
                        ),
                        None => ("another upload".to_string(), "run sync again"),
                    };
                    return Err(Error::failed(format!(
                        "{name} was recorded on {} by another sync meanwhile, as {whose}; its record there is kept: {fix}",
                        self.url
                    )));
                }
            },
            // No conditional writes (`If-None-Match: *`): every sync would
            // fail the same way, said once with why (T31 R10).
            Err(e) if fresh && super::store_error::not_implemented(&e) => {
                return Err(discard(Error::failed(format!(
                    "cannot write the record of {name} to {}: the store does not support conditional writes (`If-None-Match: *`: it answered 501 Not Implemented), which dbbackup needs so that two syncs never record one name twice; ask the store's operators for a version that has them (docs/remote.md)",
                    self.url
                ))));
            }
            Err(e) => {
                return Err(discard(
                    self.fail(&format!("cannot write the record of {name} to"), e.into()),
                ));
            }
        }
        // Another sync's bytes may have replaced ours after the read-back and
        // before the record (two syncs racing for one name): then this record
        // is not proved, and the next sync finds and repairs it.
        self.unchanged_since_read(name, &key, &got)?;
        Ok(Uploaded::Point(Box::new(RemotePoint {
            record,
            problem: None,
            e_tag: got.e_tag,
            misplaced: None,
            mended_from: None,
        })))
    }

    /// Write `record` over the record of the same name (its data object is
    /// not touched): only to mend its `remote_seq`.
    pub(crate) fn rewrite_record(&self, record: &Record) -> Result<()> {
        let name = &record.name;
        let json = record::encode(record).map_err(io::Error::other);
        let json = json.context(|| "cannot encode the remote record")?;
        self.rt
            .block_on(self.store.put(
                &self.key(&format!("{name}{}", record::SUFFIX)),
                PutPayload::from(json.clone()),
            ))
            .map_err(|e| self.fail(&format!("cannot write the record of {name} to"), e.into()))?;
        self.confirm_record(name, &json)
    }

    /// The record just written reads back as written: a store (or a gateway
    /// before it) that answers a PUT with success and keeps nothing must not
    /// make a point count, nor let retention delete the one before it (T31 R2).
    fn confirm_record(&self, name: &str, written: &[u8]) -> Result<()> {
        let key = self.key(&format!("{name}{}", record::SUFFIX));
        let read = self
            .rt
            .block_on(async { self.store.get(&key).await?.bytes().await });
        let there = match read {
            Ok(bytes) if bytes.as_ref() == written => return Ok(()),
            Ok(_) => "reads back other than written",
            Err(object_store::Error::NotFound { .. }) => "is not there when read back",
            Err(e) => {
                return Err(self.fail(
                    &format!("cannot read back the record of {name} from"),
                    e.into(),
                ));
            }
        };
        Err(Error::failed(format!(
            "the record of {name} written to {} {there}; {name} is not counted as a restore point there",
            self.url
        )))
    }

    /// The data object still has the ETag it had when read back as `got`.
    fn unchanged_since_read(&self, name: &str, key: &Key, got: &Got) -> Result<()> {
        let Some(read) = &got.e_tag else {
            return Ok(());
        };
        let now = self
            .rt
            .block_on(self.store.head(key))
            .map_err(|e| self.fail(&format!("cannot read back {name} from"), e.into()))?;
        if now.e_tag.as_ref() != Some(read) {
            return Err(Error::failed(format!(
                "{name} on {} was written again while it was uploaded (by another sync?); it is not proved there: the next sync reads it back and repairs it",
                self.url
            )));
        }
        Ok(())
    }

    /// Read `point`'s data object whole and compare it with its record: the
    /// store's ETag of the bytes read, and why they are not the uploaded
    /// file's (None: they are).
    pub(crate) fn read_whole(
        &self,
        point: &RemotePoint,
    ) -> Result<(Option<String>, Option<String>)> {
        let name = &point.record.name;
        let got = self
            .rt
            .block_on(self.read_back(&self.key(name)))
            .map_err(|e| self.fail(&format!("cannot read back {name} from"), e))?;
        Ok((got.e_tag.clone(), self.mismatch(point, &got)))
    }

    /// Why `got` is not the file `point` records, if it is not.
    fn mismatch(&self, point: &RemotePoint, got: &Got) -> Option<String> {
        ((got.size, &got.sha256) != (point.record.size, &point.record.sha256)).then(|| {
            format!(
                "its bytes on {} are not the file uploaded ({} bytes, {}; its record says {} bytes, {})",
                self.url, got.size, got.sha256, point.record.size, point.record.sha256
            )
        })
    }

    /// Upload `file` again as `point`'s data object, whose bytes on the remote
    /// were found not to match its record (`point`: this backup's own record,
    /// left as it is). The point as it is now, read back and matched; `None`
    /// when `file` is not the file the record describes either (nothing sent).
    pub(crate) fn repair(
        &self,
        file: &mut File,
        point: &RemotePoint,
    ) -> Result<Option<RemotePoint>> {
        let name = &point.record.name;
        let key = self.key(name);
        // Never replace damaged bytes by other damaged bytes.
        let (size, sha) = sha256_of(file).context(|| format!("cannot read backup {name}"))?;
        if (size, &sha) != (point.record.size, &point.record.sha256) {
            return Ok(None);
        }
        file.seek(io::SeekFrom::Start(0))
            .context(|| format!("cannot read backup {name}"))?;
        let sent = self
            .rt
            .block_on(self.send(file, &key, size, |_| {}))
            .map_err(|e| self.fail(&format!("cannot upload {name} to"), e))?;
        if (size, &sent) != (point.record.size, &point.record.sha256) {
            return Err(Error::failed(format!(
                "{name} in the backup directory is not the file its record on {} describes ({size} bytes, {sent}); the remote one was not repaired",
                self.url
            )));
        }
        let got = self
            .rt
            .block_on(self.read_back(&key))
            .map_err(|e| self.fail(&format!("cannot read back {name} from"), e))?;
        if let Some(why) = self.mismatch(point, &got) {
            return Err(Error::failed(format!(
                "{name} does not read back as sent after its repair: {why}"
            )));
        }
        // The record must still be this backup's: never leave our bytes under
        // another backup's record.
        if self.record(name)?.as_ref() != Some(&point.record) {
            return Err(Error::failed(format!(
                "the record of {name} on {} changed while its data was repaired (another sync?); run sync again",
                self.url
            )));
        }
        self.unchanged_since_read(name, &key, &got)?;
        Ok(Some(RemotePoint {
            record: point.record.clone(),
            problem: None,
            e_tag: got.e_tag,
            misplaced: None,
            mended_from: None,
        }))
    }

    /// Send the file's bytes, handing each chunk to `seen`; their SHA-256.
    async fn send(
        &self,
        file: &mut File,
        key: &Key,
        size: u64,
        mut seen: impl FnMut(&[u8]),
    ) -> std::result::Result<String, Fail> {
        let part = usize::try_from(size.div_ceil(MAX_PARTS))
            .unwrap_or(usize::MAX)
            .max(PART_SIZE);
        let mut hasher = Sha256::new();
        if size <= part as u64 {
            let mut bytes = Vec::new();
            file.take(part as u64 + 1)
                .read_to_end(&mut bytes)
                .context(|| format!("cannot read {key}"))?;
            hasher.update(&bytes);
            seen(&bytes);
            self.store.put(key, PutPayload::from(bytes)).await?;
            return Ok(format!("sha256:{}", hex(&hasher.finalize())));
        }
        let upload = self.store.put_multipart(key).await?;
        let sent = super::parts::send(upload, file, part, IN_FLIGHT, |bytes| {
            hasher.update(bytes);
            seen(bytes);
        })
        .await;
        match sent {
            Ok(()) => Ok(format!("sha256:{}", hex(&hasher.finalize()))),
            Err(PartFail::Part(n, e)) => Err(Fail::Part(n, e)),
            Err(PartFail::Complete(e)) => Err(Fail::Complete(e)),
            Err(PartFail::Local(e)) => Err(Fail::Local(e)),
        }
    }

    /// Size, SHA-256 and ETag of the object as the store returns it.
    async fn read_back(&self, key: &Key) -> std::result::Result<Got, Fail> {
        self.read_each(key, |_| Ok(())).await
    }

    /// Stream the object, handing each chunk to `each` (memory: one chunk);
    /// its size and SHA-256.
    async fn read_each(
        &self,
        key: &Key,
        mut each: impl FnMut(&[u8]) -> std::result::Result<(), Fail>,
    ) -> std::result::Result<Got, Fail> {
        let got = self.store.get(key).await?;
        // The ETag of the response: of exactly the bytes that follow.
        let e_tag = got.meta.e_tag.clone();
        let mut stream = got.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            crate::signals::stop_if_requested()?;
            hasher.update(&chunk);
            each(&chunk)?;
            size += chunk.len() as u64;
        }
        Ok(Got {
            size,
            sha256: format!("sha256:{}", hex(&hasher.finalize())),
            e_tag,
        })
    }

    /// Download `point` into `dir` under its name, checked against its record
    /// (size, SHA-256) before it gets the name; never replaces a file there.
    /// Bytes that do not match are [`Error::Damaged`]. The path, and the
    /// store's ETag of the bytes.
    pub(crate) fn download(
        &self,
        point: &RemotePoint,
        dir: &Path,
    ) -> Result<(PathBuf, Option<String>)> {
        let name = &point.record.name;
        if let Some(problem) = &point.problem {
            return Err(Error::failed(format!(
                "{name} cannot be downloaded: {problem}"
            )));
        }
        // The mode a new backup file gets (umask applies): a restore or
        // export copies the backup's mode, as a local one does. `dir` is
        // private (0700) while it is downloaded.
        let mut temp = TempFile::create_in(dir, 0o664)?;
        let got = self
            .rt
            .block_on(self.read_each(&self.key(name), |chunk| {
                std::io::Write::write_all(temp.file(), chunk)
                    .context(|| format!("cannot write {}", show(dir)))?;
                Ok(())
            }))
            .map_err(|e| self.fail(&format!("cannot download {name} from"), e))?;
        if let Some(why) = self.mismatch(point, &got) {
            return Err(Error::Damaged {
                backup: PathBuf::from(self.url.object(name)),
                name: name.clone(),
                why,
            });
        }
        temp.sync()?;
        let path = dir.join(name);
        link_no_replace(temp.path(), &path).context(|| format!("cannot create {}", show(&path)))?;
        Ok((path, got.e_tag))
    }

    /// Whether `name`'s data object is at the store (its record may not be).
    pub(crate) fn has_object(&self, name: &str) -> Result<bool> {
        match self.rt.block_on(self.store.head(&self.key(name))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail(&format!("cannot look for {name} on"), e.into())),
        }
    }

    /// Delete a point: its record first, so it stops counting before its
    /// file goes.
    pub(crate) fn delete(&self, name: &str) -> Result<()> {
        for key in [
            self.key(&format!("{name}{}", record::SUFFIX)),
            self.key(name),
        ] {
            match self.rt.block_on(self.store.delete(&key)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.fail(&format!("cannot delete {name} from"), e.into())),
            }
        }
        Ok(())
    }
}

/// The object `sync` writes to read the store's clock (`Remote::store_now`):
/// not a backup's name, so never taken for one.
const CLOCK_MARKER: &str = ".dbbackup-clock";

/// When the store last wrote an object, by the store's clock.
pub(super) fn timestamp_of(meta: &object_store::ObjectMeta) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(meta.last_modified.timestamp_millis())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Keys and a session token that cannot go into a request header (a line
/// break or space pasted with them, a non-ASCII letter) panic inside
/// object_store: said instead, naming which one and never its value.
fn refuse_keys_not_header_text(builder: &AmazonS3Builder) -> Result<()> {
    let keys = [
        (AmazonS3ConfigKey::AccessKeyId, "access key id"),
        (AmazonS3ConfigKey::SecretAccessKey, "secret access key"),
        (AmazonS3ConfigKey::Token, "session token"),
    ];
    for (key, what) in keys {
        if builder
            .get_config_value(&key)
            .is_some_and(|v| !v.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(Error::usage(format!(
                "the {what} (from an AWS_* variable or the credentials file) holds a space, line break or non-ASCII character: copy it again without them"
            )));
        }
    }
    Ok(())
}

/// Size and SHA-256 of `file` from where it is read to its end.
fn sha256_of(file: &mut File) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut size = 0u64;
    loop {
        let n = read_some(file, &mut buf)?;
        if n == 0 {
            return Ok((size, format!("sha256:{}", hex(&hasher.finalize()))));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// A read that fills as much of `buf` as the file gives.
pub(super) fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
