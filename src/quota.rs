//! The user's remaining quota where the backup directory lives, for `check
//! --min-free`: on cluster filesystems the quota usually runs out long before
//! the disk does. Asked of the site's own tools, in order: `lfs quota` (Lustre),
//! `mmlsquota` (GPFS / Spectrum Scale), `quota` (Linux quota tools, NFS via
//! rquotad). The first that answers with a limit for this user counts; none
//! answering (not installed, no quota, a filesystem it does not know) means no
//! quota. User quotas only: group and project (fileset) quotas are not asked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes left before the user's quota, and which tool said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Quota {
    pub tool: &'static str,
    pub remaining: u64,
}

/// A quota tool on a hung filesystem can block; it gets this long.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn remaining(dir: &Path) -> Option<Quota> {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()?
        .name;
    let dir = std::path::absolute(dir).ok()?;
    let dir_text = dir.to_string_lossy().into_owned();
    if let Some(text) = run("lfs", &["quota", "-q", "-u", &user, &dir_text])
        && let Some(remaining) = parse_lfs(&text)
    {
        return Some(Quota {
            tool: "lfs quota",
            remaining,
        });
    }
    let (mount_point, device) = mount_of(&dir).unwrap_or_default();
    if !device.is_empty()
        && let Some(text) = run("mmlsquota", &["-u", &user, "-Y", "--block-size", "1K"])
        && let Some(remaining) = parse_mmlsquota(&text, &device)
    {
        return Some(Quota {
            tool: "mmlsquota",
            remaining,
        });
    }
    if !mount_point.as_os_str().is_empty()
        && let Some(text) = run(
            "quota",
            &["-w", "-u", &user, "-f", &mount_point.to_string_lossy()],
        )
        && let Some(remaining) = parse_quota(&text)
    {
        return Some(Quota {
            tool: "quota",
            remaining,
        });
    }
    None
}

/// Run a tool, with a timeout; its stdout when it exits 0.
fn run(tool: &str, args: &[&str]) -> Option<String> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if started.elapsed() > TOOL_TIMEOUT => {
                tracing::warn!("{tool} did not answer within {TOOL_TIMEOUT:?}; quota not checked");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut text).ok()?;
    Some(text)
}

/// The tightest limit set (soft, else hard; 0 = none) minus usage, in KiB.
fn left_kib(used: &str, soft: &str, hard: &str) -> Option<u64> {
    let number = |s: &str| s.trim_end_matches('*').parse::<u64>().ok();
    let used = number(used)?;
    let limit = [number(soft)?, number(hard)?]
        .into_iter()
        .filter(|&l| l > 0)
        .min()?;
    Some(limit.saturating_sub(used) * 1024)
}

/// `lfs quota -q -u USER DIR`: `FS KBYTES QUOTA LIMIT GRACE FILES ...`; the
/// filesystem name may stand on a line of its own when it is long.
pub(crate) fn parse_lfs(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let start = words.iter().position(|w| w.starts_with('/'))?;
    let fields = words.get(start + 1..start + 4)?;
    left_kib(fields[0], fields[1], fields[2])
}

/// `mmlsquota -u USER -Y --block-size 1K`: colon-separated, a HEADER line naming
/// the columns, then one row per filesystem; the row of `device` counts.
pub(crate) fn parse_mmlsquota(text: &str, device: &str) -> Option<u64> {
    let device = device.trim_start_matches("/dev/");
    let mut columns: Vec<&str> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.get(2) == Some(&"HEADER") {
            columns = fields;
            continue;
        }
        let column = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| fields.get(i).copied())
        };
        if column("filesystemName") == Some(device) && column("quotaType") == Some("USR") {
            return left_kib(
                column("blockUsage")?,
                column("blockQuota")?,
                column("blockLimit")?,
            );
        }
    }
    None
}

/// `quota -w -u USER -f MOUNT`: a header, then `FS BLOCKS QUOTA LIMIT ...` (KiB).
pub(crate) fn parse_quota(text: &str) -> Option<u64> {
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 4 && fields[1].trim_end_matches('*').parse::<u64>().is_ok() {
            return left_kib(fields[1], fields[2], fields[3]);
        }
    }
    None
}

/// The mount point and source (device) of the filesystem holding `dir`.
fn mount_of(dir: &Path) -> Option<(PathBuf, String)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (source, target) = (fields.next()?, fields.next()?);
            // /proc/mounts escapes spaces as \040.
            let target = PathBuf::from(target.replace("\\040", " "));
            dir.starts_with(&target)
                .then(|| (target, source.to_string()))
        })
        .max_by_key(|(target, _)| target.as_os_str().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_tools_are_parsed() {
        let lfs = "     /lustre/scratch  4000  10000  12000  -  10  0  0  -\n";
        assert_eq!(parse_lfs(lfs), Some(6000 * 1024));
        let wrapped = "/lustre/a/very/long/name\n  4000*  0  5000  6d  10  0  0  -\n";
        assert_eq!(parse_lfs(wrapped), Some(1000 * 1024));
        assert_eq!(parse_lfs("/lustre 10 0 0 - 1 0 0 -"), None, "no limit set");
        let mm = "mmlsquota::HEADER:version:reserved:reserved:filesystemName:quotaType:id:name:blockUsage:blockQuota:blockLimit:blockInDoubt:blockGrace:\n\
                  mmlsquota::0:1:::gpfs0:USR:1000:alice:100:0:0:0:none:\n\
                  mmlsquota::0:1:::gpfs1:USR:1000:alice:300:1000:2000:0:none:\n";
        assert_eq!(parse_mmlsquota(mm, "gpfs1"), Some(700 * 1024));
        assert_eq!(parse_mmlsquota(mm, "gpfs0"), None, "no limit set");
        let quota = "Disk quotas for user alice (uid 1000): \n     Filesystem  blocks   quota   limit   grace   files   quota   limit   grace\n      /dev/sda1    1234  5000  6000            10       0       0\n";
        assert_eq!(parse_quota(quota), Some((5000 - 1234) * 1024));
        assert_eq!(
            parse_quota("Disk quotas for user alice (uid 1000): none\n"),
            None
        );
    }
}
