//! A real S3-compatible server for the remote tests: moto's standalone server
//! (`moto[server]` from PyPI, installed by `.ci/run`; `DBBACKUP_MOTO_SERVER`
//! names its `moto_server`, else it is looked up on PATH), on a free port of
//! 127.0.0.1. One server is shared by the tests of a process (a bucket each);
//! a test that stops its server starts its own. A watchdog shell kills a
//! server when the test process is gone, so none is left behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Env, Run};

/// The secret every remote test uses: no output may contain it.
pub(crate) const SECRET: &str = "s3cr3t-Tk9wQ2xZ-never-printed";
pub(crate) const KEY_ID: &str = "AKIATESTDBBACKUP";

pub(crate) struct Server {
    pub endpoint: String,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// Kill the server (its watchdog goes with it).
    pub(crate) fn stop(&mut self) {
        // The watchdog's process group: the shell and moto.
        let pid = self.child.id() as i32;
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }

    /// Send `signal` to the server (SIGSTOP: a stalled store; SIGCONT).
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.id() as i32;
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }

    /// A new empty bucket (moto takes unsigned requests to create one).
    pub(crate) fn bucket(&self, name: &str) {
        let status = http(&self.endpoint, "PUT", &format!("/{name}"));
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "create bucket {name}: {status}"
        );
    }
}

/// `moto_server`, if installed; else the test is skipped (failed under
/// `DBBACKUP_REQUIRE_TOOLS=1`).
pub(crate) fn moto_path() -> Option<PathBuf> {
    let path = match std::env::var_os("DBBACKUP_MOTO_SERVER") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from("moto_server"),
    };
    let found = Command::new(&path)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(path);
    }
    assert!(
        std::env::var("DBBACKUP_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "DBBACKUP_REQUIRE_TOOLS=1 but moto_server is not installed (.ci/run installs it; set DBBACKUP_MOTO_SERVER)"
    );
    eprintln!("SKIPPED: moto_server is not installed (set DBBACKUP_MOTO_SERVER)");
    None
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A server of this test's own.
pub(crate) fn start() -> Option<Server> {
    start_on(free_port())
}

/// A server on `port`.
pub(crate) fn start_on(port: u16) -> Option<Server> {
    launch(port, "")
}

/// moto_server on `port`, started with the environment words `env` (`""` for
/// none), once it accepts connections.
fn launch(port: u16, env: &str) -> Option<Server> {
    let moto = moto_path()?;
    // The shell waits while the test process lives, then kills moto: no
    // orphan server when a test binary is killed.
    let script = format!(
        "{env}\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill -9 $m 2>/dev/null",
        parent = std::process::id()
    );
    let child = std::os::unix::process::CommandExt::process_group(
        Command::new("sh").arg("-c").arg(script).arg(&moto),
        0,
    )
    .stdin(Stdio::null())
    .spawn()
    .expect("start moto_server");
    let server = Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(server)
}

/// A server of this test's own whose clock is this machine's plus the
/// offset written in `clock` (libfaketime's `+25h`, read at every call;
/// `+0` at first): a store whose clock the test moves on. `None` (the test
/// skipped) without moto or libfaketime.
pub(crate) fn start_with_clock(clock: &Path) -> Option<Server> {
    let lib = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/lib64/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ]
    .into_iter()
    .find(|lib| Path::new(lib).exists());
    let Some(lib) = lib else {
        assert!(
            std::env::var("DBBACKUP_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "DBBACKUP_REQUIRE_TOOLS=1 but libfaketime is not installed (.ci/run installs faketime)"
        );
        eprintln!("SKIPPED: libfaketime is not installed");
        return None;
    };
    std::fs::write(clock, "+0\n").unwrap();
    let env = format!(
        "LD_PRELOAD={lib} FAKETIME_TIMESTAMP_FILE={} FAKETIME_NO_CACHE=1 ",
        clock.display()
    );
    launch(free_port(), &env)
}

/// The server the tests of this process share.
pub(crate) fn shared() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER.get_or_init(start).as_ref()
}

/// A bucket no other test uses.
pub(crate) fn unique_bucket(server: &Server) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    server.bucket(&name);
    name
}

/// One plain HTTP/1.1 request; the status line.
pub(crate) fn http(endpoint: &str, method: &str, path: &str) -> String {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.lines().next().unwrap_or_default().to_string()
}

/// `env`'s command with the remote `url` at `endpoint` and the test keys; no
/// AWS setting of the machine's (nor its `~/.aws/credentials`) leaks in.
pub(crate) fn command(env: &Env, endpoint: &str, url: &str) -> Command {
    let mut command = env.command();
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("AWS_") {
            command.env_remove(key.as_ref());
        }
    }
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        // No credentials file: a HOME without `.aws/credentials` (a named
        // file that is not there is a mistake dbbackup refuses).
        .env("HOME", env.path("no-home"))
        .env("DBBACKUP_REMOTE", url)
        .env("DBBACKUP_REMOTE_TIMEOUT_SECONDS", "20");
    command
}

/// `check`'s `remote:` line (a test fails naming the output when there is none).
pub(crate) fn remote_line(check: &Run) -> String {
    check
        .stdout
        .lines()
        .find(|l| l.contains("remote:"))
        .unwrap_or_else(|| panic!("{}", check.stdout))
        .to_string()
}

pub(crate) fn run(env: &Env, endpoint: &str, url: &str, args: &[&str]) -> Run {
    command(env, endpoint, url)
        .args(args)
        .output()
        .expect("run dbbackup")
        .into()
}

/// A few changed pages of `db` (any database: the table is made if missing),
/// enough for a diff when the database is large enough.
pub(crate) fn add_row(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS extra(x BLOB)")
        .unwrap();
    conn.execute("INSERT INTO extra VALUES (randomblob(2000))", [])
        .unwrap();
}

/// The names of `points` (as [`Remote::points`] gives them), oldest first.
pub(crate) fn names(points: &[(String, String)]) -> Vec<String> {
    points.iter().map(|(name, _)| name.clone()).collect()
}

/// A remote test's database, its bucket (its own) and prefix, and a runner
/// with the remote configured.
pub(crate) struct Remote {
    pub env: Env,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub url: String,
}

impl Remote {
    /// A small database (`Env::new`) and a new bucket on `server`.
    pub(crate) fn new(server: &Server, prefix: &str) -> Remote {
        let r = Remote::empty(server, prefix);
        super::make_ledger_db(&r.env.db, 200, false);
        r
    }

    /// No database yet (`Env::empty`) and a new bucket on `server`.
    pub(crate) fn empty(server: &Server, prefix: &str) -> Remote {
        let bucket = unique_bucket(server);
        Remote {
            env: Env::empty(),
            endpoint: server.endpoint.clone(),
            url: format!("s3://{bucket}/{prefix}"),
            bucket,
            prefix: prefix.to_string(),
        }
    }

    /// With a database large enough that a few changed pages make a diff.
    pub(crate) fn sizeable(server: &Server, prefix: &str) -> Remote {
        let r = Remote::empty(server, prefix);
        super::make_results_db(&r.env.db, 4.0, false);
        r
    }

    /// With a database of `mb` MiB of random blobs: its backup is as large
    /// (incompressible), an upload of several parts.
    pub(crate) fn incompressible(server: &Server, prefix: &str, mb: usize) -> Remote {
        let r = Remote::empty(server, prefix);
        let conn = rusqlite::Connection::open(&r.env.db).unwrap();
        conn.execute_batch("CREATE TABLE blobs(x BLOB)").unwrap();
        for _ in 0..mb {
            conn.execute("INSERT INTO blobs SELECT randomblob(1048576)", [])
                .unwrap();
        }
        r
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(&self.env, &self.endpoint, &self.url, args)
    }

    /// The command with the remote configured, to add settings or spawn it.
    pub(crate) fn command(&self) -> Command {
        command(&self.env, &self.endpoint, &self.url)
    }

    /// `args` with the upload inline (`DBBACKUP_REMOTE_UPLOAD=inline`).
    pub(crate) fn run_inline(&self, args: &[&str]) -> Run {
        self.command()
            .env("DBBACKUP_REMOTE_UPLOAD", "inline")
            .args(args)
            .output()
            .expect("run dbbackup")
            .into()
    }

    /// A few changed pages of the database.
    pub(crate) fn add_row(&self) {
        add_row(&self.env.db);
    }

    /// [`Remote::add_row`] `n` times.
    pub(crate) fn add_rows(&self, n: u32) {
        for _ in 0..n {
            self.add_row();
        }
    }

    /// The store's list of multipart uploads under way in the bucket (XML;
    /// one holds `<UploadId>`).
    pub(crate) fn uploads(&self) -> String {
        get(&self.endpoint, &format!("/{}?uploads", self.bucket))
    }

    /// A `sync` sent `signal` once a multipart upload of it is under way on
    /// the store (a kill, a job's end); how it ended.
    pub(crate) fn sync_stopped_mid_upload(&self, signal: nix::sys::signal::Signal) -> Run {
        let mut sync = self
            .command()
            .arg("sync")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sync");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.uploads().contains("<UploadId>") {
            assert!(
                sync.try_wait().unwrap().is_none(),
                "sync ended before its upload was seen"
            );
            assert!(Instant::now() < deadline, "no multipart upload seen");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = nix::unistd::Pid::from_raw(sync.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        sync.wait_with_output().unwrap().into()
    }

    /// `n` backups of growing content (more options: `args`), then one
    /// sync: each one's name (oldest first) and content digest.
    pub(crate) fn points(&self, n: usize, args: &[&str]) -> Vec<(String, String)> {
        let mut points = Vec::new();
        for _ in 0..n {
            self.add_row();
            self.run(&[args, &["backup"]].concat()).ok();
            let name = self.env.backup_files().last().unwrap().clone();
            points.push((name, super::content_digest(&self.env.db)));
        }
        self.run(&["sync"]).ok();
        points
    }

    /// The object key of `name` under the prefix.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// The bytes of `name` under the prefix, read behind dbbackup's back.
    pub(crate) fn object(&self, name: &str) -> Vec<u8> {
        object(&self.endpoint, &self.bucket, &self.key(name))
    }

    /// Write `bytes` as `name` under the prefix, behind dbbackup's back.
    pub(crate) fn put(&self, name: &str, bytes: &[u8]) {
        put_object(&self.endpoint, &self.bucket, &self.key(name), bytes);
    }

    /// Delete `name` under the prefix, behind dbbackup's back.
    pub(crate) fn delete(&self, name: &str) {
        delete_object(&self.endpoint, &self.bucket, &self.key(name));
    }

    /// Damage `name`'s data object at the store, its size kept.
    pub(crate) fn corrupt(&self, name: &str) {
        corrupt_same_size(&self.endpoint, &self.bucket, &self.key(name));
    }

    /// `name`'s record (`NAME.meta.json`) as the store has it.
    pub(crate) fn record(&self, name: &str) -> serde_json::Value {
        serde_json::from_slice(&self.object(&format!("{name}.meta.json"))).unwrap()
    }

    /// Write `record` as `name`'s record the way an earlier version wrote
    /// records (format 1, without the record's own checksum), so that a
    /// change made to it is read as that record's truth.
    pub(crate) fn put_old_record(&self, name: &str, record: serde_json::Value) {
        let record = old_record(record);
        self.put(
            &format!("{name}.meta.json"),
            &serde_json::to_vec(&record).unwrap(),
        );
    }

    /// The rows of `list --from-remote --format json`.
    pub(crate) fn listed(&self) -> Vec<serde_json::Value> {
        let listed = self.run(&["list", "--from-remote", "--format", "json"]);
        listed.ok();
        listed.json().as_array().unwrap().clone()
    }

    /// How many points `list --from-remote` shows.
    pub(crate) fn remote_count(&self) -> usize {
        self.listed().len()
    }

    /// `list --from-remote`'s check column, by name.
    pub(crate) fn checks(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self
            .listed()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["check"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    /// The names `list --from-remote` shows, sorted.
    pub(crate) fn remote_names(&self) -> Vec<String> {
        self.checks().into_iter().map(|(name, _)| name).collect()
    }

    /// `restore latest --from-remote` into a new file `latest{n}.db`: the
    /// content digest of what the remote's `latest` is.
    pub(crate) fn restored_latest(&self, n: u32) -> String {
        let target = self.env.path(&format!("latest{n}.db"));
        self.restore_from_remote("latest", &target).ok();
        super::content_digest(&target)
    }

    /// [`check_when_stale`] against this remote.
    pub(crate) fn check_when_stale(&self) -> Run {
        check_when_stale(&self.env, &self.endpoint, &self.url)
    }

    /// `restore NAME --from-remote --target TARGET`.
    pub(crate) fn restore_from_remote(&self, name: &str, target: &Path) -> Run {
        self.run(&[
            "restore",
            name,
            "--from-remote",
            "--target",
            target.to_str().unwrap(),
        ])
    }
}

/// `record` as an earlier version wrote it: format 1, no `record_sha256`.
pub(crate) fn old_record(mut record: serde_json::Value) -> serde_json::Value {
    record["format"] = 1.into();
    record.as_object_mut().unwrap().remove("record_sha256");
    record
}

/// A server that checks credentials (moto's IAM auth after its first
/// `INITIAL_NO_AUTH_ACTION_COUNT` requests), with `bucket` on it. It knows no
/// key: every signed request is refused (`InvalidAccessKeyId`). (moto 5's S3
/// signature check also refuses boto3's correct signatures, so a "right key"
/// cannot be shown against it.)
pub(crate) fn start_with_auth(bucket: &str) -> Option<Server> {
    let server = launch(free_port(), "INITIAL_NO_AUTH_ACTION_COUNT=1 ")?;
    server.bucket(bucket);
    Some(server)
}

/// A "store" on 127.0.0.1 that accepts connections and then answers every
/// request with `reply` (`None`: never answers). Runs until the test ends.
pub(crate) fn fake_store(reply: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            match reply {
                Some(reply) => {
                    std::thread::spawn(move || {
                        let mut stream = stream;
                        let mut buf = [0u8; 65536];
                        // One reply per request head read; the body is ignored.
                        while let Ok(n) = stream.read(&mut buf) {
                            if n == 0 || stream.write_all(reply.as_bytes()).is_err() {
                                break;
                            }
                        }
                    });
                }
                None => held.push(stream),
            }
        }
    });
    endpoint
}

/// One unsigned GET; the whole reply.
pub(crate) fn get(endpoint: &str, path: &str) -> String {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

/// A "store" that keeps the head of every request it gets and answers 403:
/// which credentials a client signed with can be read from its Authorization.
pub(crate) fn recording_store() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = heads.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            if let Ok(n) = stream.read(&mut buf) {
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            let _ = stream.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (endpoint, heads)
}

/// One raw request as another S3 client would make it, with `body`: moto
/// wants an Authorization header for writes and deletes, and checks no
/// signature. The status code and the reply's body.
pub(crate) fn raw(endpoint: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIATEST/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let head_end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&reply[..head_end]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = reply[head_end..].to_vec();
    // moto answers a GET with `Content-Length`; a chunked reply is decoded.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (code, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// The bytes of object `key` in `bucket`, read behind dbbackup's back.
pub(crate) fn object(endpoint: &str, bucket: &str, key: &str) -> Vec<u8> {
    let (code, body) = raw(endpoint, "GET", &format!("/{bucket}/{key}"), b"");
    assert_eq!(code, 200, "GET {bucket}/{key}");
    body
}

/// Write `body` as object `key`, as another client (or a racing sync) would.
pub(crate) fn put_object(endpoint: &str, bucket: &str, key: &str, body: &[u8]) {
    let (code, _) = raw(endpoint, "PUT", &format!("/{bucket}/{key}"), body);
    assert_eq!(code, 200, "PUT {bucket}/{key}");
}

/// Damage object `key` at the store without changing its size: bytes in
/// its middle inverted, written back through the S3 API.
pub(crate) fn corrupt_same_size(endpoint: &str, bucket: &str, key: &str) {
    let mut bytes = object(endpoint, bucket, key);
    let (middle, len) = (bytes.len() / 2, bytes.len());
    for byte in &mut bytes[middle..(middle + 64).min(len)] {
        *byte = !*byte;
    }
    put_object(endpoint, bucket, key, &bytes);
}

/// Delete object `key` behind dbbackup's back.
pub(crate) fn delete_object(endpoint: &str, bucket: &str, key: &str) {
    let (code, _) = raw(endpoint, "DELETE", &format!("/{bucket}/{key}"), b"");
    assert!(code == 204 || code == 200, "DELETE {bucket}/{key}: {code}");
}

/// `check --remote-max-age 1h` once the newest backup is 3 h old: what
/// `check` says of a newest point that has not reached the remote in time.
pub(crate) fn check_when_stale(env: &Env, endpoint: &str, url: &str) -> Run {
    super::backdate(&env.newest_backup(), Duration::from_secs(3 * 3600));
    run(env, endpoint, url, &["check", "--remote-max-age", "1h"])
}

/// A pass-through proxy to `endpoint` that runs `race` once, just before it
/// forwards the first request writing a restore-point record
/// (`PUT ….meta.json`): what another sync writing the same name in that
/// instant does. Its endpoint; runs until the test ends.
pub(crate) fn racing_proxy(endpoint: &str, race: impl Fn() + Send + Sync + 'static) -> String {
    let upstream = endpoint.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let race = std::sync::Arc::new(race);
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (race, fired) = (race.clone(), fired.clone());
            let (mut from_server, mut to_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let (mut client, mut server) = (client, server);
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = client.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    let head = String::from_utf8_lossy(&chunk[..n.min(4096)]);
                    if head.starts_with("PUT ")
                        && head
                            .lines()
                            .next()
                            .is_some_and(|l| l.contains(".meta.json"))
                        && !fired.swap(true, Ordering::SeqCst)
                    {
                        race();
                    }
                    if server.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    proxy
}

/// A pass-through proxy to `endpoint` that loses the network once `records`
/// restore-point records (`PUT ….meta.json`) have gone through: every later
/// request's connection is closed unanswered, as a sync sees a store gone
/// in the middle of its run. Its endpoint; runs until the test ends.
pub(crate) fn cutting_proxy(endpoint: &str, records: usize) -> String {
    let seen = AtomicUsize::new(0);
    proxy(endpoint, move |request| {
        if seen.load(Ordering::SeqCst) >= records {
            return false;
        }
        if request.starts_with("PUT ") && request.contains(".meta.json") {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        true
    })
}

/// A pass-through proxy to `endpoint` that answers every restore-point
/// record's upload (`PUT ….meta.json`) with success and keeps nothing: a
/// faulty store or gateway. Its endpoint; runs until the test ends.
pub(crate) fn record_dropping_proxy(endpoint: &str) -> String {
    record_answering_proxy(
        endpoint,
        "HTTP/1.1 200 OK\r\nETag: \"0\"\r\nContent-Length: 0\r\n\r\n",
    )
}

/// A store without conditional writes (`If-None-Match: *`), as many centre
/// stores still are: every record upload answered 501, nothing kept.
pub(crate) fn conditional_write_refusing_proxy(endpoint: &str) -> String {
    let body = "<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>";
    let reply = format!(
        "HTTP/1.1 501 Not Implemented\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    record_answering_proxy(endpoint, Box::leak(reply.into_boxed_str()))
}

/// A pass-through proxy to `endpoint` that answers every restore-point
/// record's upload (`PUT ….meta.json`) with `reply`, forwarding nothing of it.
fn record_answering_proxy(endpoint: &str, reply: &'static str) -> String {
    let upstream = endpoint.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut from_server, to_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            let answer = std::sync::Arc::new(std::sync::Mutex::new(client.try_clone().unwrap()));
            let answer_copy = answer.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = from_server.read(&mut buf) {
                    if n == 0 || answer_copy.lock().unwrap().write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let (mut client, mut server) = (client, server);
                let mut buf = vec![0u8; 1 << 16];
                // Bytes of a swallowed request's body still to come.
                let mut swallowing = 0usize;
                let reply = || {
                    let _ = answer.lock().unwrap().write_all(reply.as_bytes());
                };
                while let Ok(n) = client.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    if swallowing > 0 {
                        swallowing = swallowing.saturating_sub(n);
                        if swallowing == 0 {
                            reply();
                        }
                    } else if let Some(body) = record_put_body(chunk) {
                        swallowing = body.saturating_sub(n - header_end(chunk));
                        if swallowing == 0 {
                            reply();
                        }
                    } else if server.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    proxy
}

/// The body length of a record's upload starting in `chunk`, if it is one.
fn record_put_body(chunk: &[u8]) -> Option<usize> {
    let head = String::from_utf8_lossy(&chunk[..header_end(chunk)]);
    let first = head.lines().next()?;
    if !(first.starts_with("PUT ") && first.contains(".meta.json")) {
        return None;
    }
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

/// Where `chunk`'s HTTP header ends (all of it when it holds no end).
fn header_end(chunk: &[u8]) -> usize {
    chunk
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(chunk.len(), |at| at + 4)
}

/// A pass-through proxy to `endpoint` that closes, unanswered, every request
/// completing a multipart upload (`POST …?uploadId=`): its parts all went up,
/// the store never assembles them. Its endpoint; runs until the test ends.
pub(crate) fn completion_cutting_proxy(endpoint: &str) -> String {
    proxy(endpoint, |request| {
        !(request.starts_with("POST ") && request.contains("uploadId="))
    })
}

/// A pass-through proxy to `endpoint` that closes, unanswered, every request
/// reading a backup's data object (`GET ….db.gz`): its upload goes up, its
/// read-back fails. Its endpoint; runs until the test ends.
pub(crate) fn read_back_cutting_proxy(endpoint: &str) -> String {
    proxy(endpoint, |request| {
        !(request.starts_with("GET ")
            && (request.contains(".db.gz HTTP") || request.contains(".diff.gz HTTP")))
    })
}

/// A pass-through proxy to `endpoint` that closes, unanswered, every request
/// deleting objects (`DELETE`, or the bulk `POST …?delete`): uploads and
/// reads go through, remote retention fails. Its endpoint; runs until the
/// test ends.
pub(crate) fn delete_cutting_proxy(endpoint: &str) -> String {
    proxy(endpoint, |request| {
        !(request.starts_with("DELETE ")
            || (request.starts_with("POST ") && request.contains("?delete")))
    })
}

/// A pass-through proxy to `endpoint` that keeps the first line of every
/// request (`GET /bucket/key HTTP/1.1`): what the store was asked. Its
/// endpoint and the lines; runs until the test ends.
pub(crate) fn recording_proxy(
    endpoint: &str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = lines.clone();
    let proxy = proxy(endpoint, move |request| {
        kept.lock().unwrap().push(request.to_string());
        true
    });
    (proxy, lines)
}

/// A pass-through proxy to `endpoint` that hands each request's first line
/// to `forward` first: `false` closes the connection unanswered instead.
fn proxy(endpoint: &str, forward: impl Fn(&str) -> bool + Send + Sync + 'static) -> String {
    let upstream = endpoint.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let forward = std::sync::Arc::new(forward);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let forward = forward.clone();
            let (mut from_server, mut to_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let (mut client, mut server) = (client, server);
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = client.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    let head = String::from_utf8_lossy(&chunk[..n.min(4096)]);
                    // A new request (else a body's next bytes).
                    let request = ["GET ", "PUT ", "POST ", "HEAD ", "DELETE "]
                        .iter()
                        .any(|m| head.starts_with(m));
                    if request && !forward(head.lines().next().unwrap_or_default()) {
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        let _ = server.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    if server.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    proxy
}
