"""Call dbbackup from Python analysis scripts.

Each function runs the ``dbbackup`` binary installed with this package, with
``--format json``, and returns what it printed, parsed (the fields are listed in
docs/json.md). Nothing is re-implemented here: settings, locking, retention and
checks are the binary's. Keyword options become the documented flags
(``max_backups=3`` → ``--max-backups=3``, ``backup_dir=path`` → ``--backup-dir=path``,
``mirror_dirs=[a, b]`` → ``--mirror-dir=a --mirror-dir=b``, ``True`` → a bare
flag, ``None``/``False`` → left out); the environment variables and
``dbbackup.yaml`` apply as they do on the command line.

A failure raises :class:`DbBackupError`, whose message is one line with the exit
code and the binary's own error line. The binary's log lines go to the
``logging`` logger ``"dbbackup"`` at their own level.

    import dbbackup

    dbbackup.auto("results.db")   # a backup if the newest is older than the interval
"""

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, cast

__all__ = [
    "DbBackupError",
    "auto",
    "backup",
    "binary",
    "check",
    "list_backups",
    "restore",
]

PathLike = Union[str, "os.PathLike[str]"]

_log = logging.getLogger("dbbackup")

# Config keys whose flag has another name: the repeatable `--mirror-dir`.
_FLAG_NAMES = {"mirror_dirs": "mirror-dir"}
# The API reads one JSON document from stdout; these would change or silence it.
_RESERVED = ("format", "quiet")
# A log line of the binary: "<time> <LEVEL> job=<tag> host=<name>: <message>". It is
# logged without time and level (logging adds its own), with job and host.
_LOG_LINE = re.compile(r"^\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s+(job=\S*\s+host=\S*:\s?(.*))$")
_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
}


class DbBackupError(Exception):
    """dbbackup failed: ``str(error)`` is one line naming the command, the exit
    code and the binary's error line.

    Attributes:
        command: the subcommand (``"backup"``, ``"restore"``, ...).
        argv: the full command line that was run.
        exit_code: 1 failure, 2 usage or configuration error, 128+N stopped by
            signal N (documented in the README).
        message: the binary's error line, without time stamp and job tag.
        stderr: everything the binary wrote to stderr.
        result: the JSON it printed despite failing (a backup whose snapshot
            failed its check reports ``"status": "failed"``), else ``None``.
    """

    def __init__(
        self,
        command: str,
        argv: Sequence[str],
        exit_code: int,
        message: str,
        stderr: str = "",
        result: Any = None,
    ) -> None:
        super().__init__(f"dbbackup {command} failed (exit {exit_code}): {message}")
        self.command = command
        self.argv = list(argv)
        self.exit_code = exit_code
        self.message = message
        self.stderr = stderr
        self.result = result


def binary() -> str:
    """The path of the ``dbbackup`` executable these functions run.

    The one installed with this package (the scripts directory of this
    environment, of the user scheme for ``pip install --user``, or the ``bin``
    beside the package for ``pip install --target``); else the first
    ``dbbackup`` on PATH (a development checkout with ``cargo install``).

    Raises:
        FileNotFoundError: neither exists.
    """
    exe = "dbbackup" + (sysconfig.get_config_var("EXE") or "")
    places = [sysconfig.get_path("scripts")]
    if sys.version_info >= (3, 10):
        places.append(sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user")))
    else:
        places.append(sysconfig.get_path("scripts", "nt_user" if os.name == "nt" else "posix_user"))
    places.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin"))
    for place in places:
        path = os.path.join(place, exe)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(exe)
    if found:
        return found
    raise FileNotFoundError(
        f"the dbbackup executable is neither installed with this package (looked in {', '.join(places)}) "
        "nor on PATH: reinstall the wheel"
    )


def auto(db_path: Optional[PathLike] = None, **options: Any) -> Dict[str, Any]:
    """Back up only when the newest backup is older than ``min_interval_hours``
    and the database changed since: the cheap call for analysis scripts (a no-op
    costs milliseconds; when another process is backing up it returns at once).

    Args:
        db_path: the database; ``None`` takes it from ``DBBACKUP_DB_PATH`` or
            ``dbbackup.yaml``, as the command line does.
        **options: global flags, e.g. ``backup_dir``, ``min_interval_hours``,
            ``max_backups``, ``config``.

    Returns:
        ``{"status": "ok", "name", "path", "size", ...}`` when a backup was made,
        ``{"status": "skipped", "reason", ...}`` when none was due.

    Raises:
        DbBackupError: the backup failed (exit code 1) or the settings are wrong (2).
    """
    return cast(Dict[str, Any], _run("auto", [], dict(options, db_path=db_path)))


def backup(force: bool = False, db_path: Optional[PathLike] = None, **options: Any) -> Dict[str, Any]:
    """Make a backup now; without ``force`` it is skipped when the database is
    unchanged since the newest backup.

    Returns:
        The backup's report (``"status": "ok"``, ``"name"``, ``"path"``,
        ``"checksum"``, ...) or ``{"status": "skipped", "reason"}``.

    Raises:
        DbBackupError: the backup failed (exit code 1; a snapshot that failed its
            integrity check is kept as ``*.failed.db.gz`` and its report is in
            ``error.result``) or the settings are wrong (2).
    """
    return cast(Dict[str, Any], _run("backup", [], dict(options, force=force, db_path=db_path)))


def restore(
    name: str = "latest",
    target: Optional[PathLike] = None,
    db_path: Optional[PathLike] = None,
    **options: Any,
) -> Dict[str, Any]:
    """Restore a backup (a file name from :func:`list_backups`, or ``"latest"``)
    into the database path, or into ``target``. An existing database is first
    saved as a ``pre-restore`` backup; a database in use is refused.

    Args:
        name: backup file name or ``"latest"`` (the newest good backup).
        target: restore here instead of over the database.
        db_path: the database (and default target).
        **options: e.g. ``if_db_missing=True`` (do nothing when the target
            exists), ``backup_dir``.

    Returns:
        ``{"status": "ok", "name", "target", "pre_restore_backup"}``, or
        ``{"status": "skipped", ...}`` with ``if_db_missing``.

    Raises:
        DbBackupError: no such backup, a backup that fails its checks, a target
            in use (exit code 1), or wrong settings (2).
    """
    return cast(Dict[str, Any], _run("restore", [name], dict(options, target=target, db_path=db_path)))


def check(db_path: Optional[PathLike] = None, **options: Any) -> Dict[str, Any]:
    """The health of the backup set. An unhealthy set is an answer, not an
    error: look at ``report["healthy"]``.

    Args:
        db_path: the database whose backups are judged.
        **options: thresholds ``max_age="24h"``, ``min_count=1``,
            ``max_shrink=50``, ``min_free="1G"``, and global flags.

    Returns:
        ``{"healthy": bool, "criteria": [{"name", "ok", "severity", "detail"}]}``.

    Raises:
        DbBackupError: the check could not run (wrong settings: exit code 2).
    """
    return cast(Dict[str, Any], _run("check", [], dict(options, db_path=db_path), report_on_exit_1=True))


def list_backups(db_path: Optional[PathLike] = None, **options: Any) -> List[Dict[str, Any]]:
    """The backups, newest first: one dict per file with ``name``, ``created``
    (RFC 3339, UTC), ``size``, ``db_size``, ``checksum``, ``job``, ``kind``,
    ``check``, ...

    Raises:
        DbBackupError: the backups could not be listed.
    """
    return cast(List[Dict[str, Any]], _run("list", [], dict(options, db_path=db_path)))


def _run(
    command: str,
    positional: Sequence[str],
    options: Mapping[str, Any],
    report_on_exit_1: bool = False,
) -> Any:
    argv = [binary(), command, *_flags(options), "--format=json"]
    if positional:
        argv += ["--", *positional]
    exit_code, stdout, stderr = _call(argv)
    for line in stderr.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            _log.log(_LEVELS[match.group(1)], "%s", match.group(2))
        elif line.strip():
            _log.debug("%s", line)
    try:
        result = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        if exit_code == 0:
            raise DbBackupError(
                command, argv, exit_code, f"printed something that is not JSON: {stdout[:200]!r}", stderr
            )
        result = None
    if exit_code == 0 or (report_on_exit_1 and exit_code == 1 and isinstance(result, dict) and "healthy" in result):
        return result
    raise DbBackupError(command, argv, exit_code, _error_line(stderr, exit_code), stderr, result)


def _flags(options: Mapping[str, Any]) -> List[str]:
    args: List[str] = []
    for key, value in options.items():
        if key in _RESERVED:
            raise TypeError(f"{key!r} is not an option of the Python API: it reads the JSON that dbbackup prints")
        if value is None or value is False:
            continue
        flag = "--" + _FLAG_NAMES.get(key, key.replace("_", "-"))
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [f"{flag}={_text(item)}" for item in value]
        else:
            args.append(f"{flag}={_text(value)}")
    return args


def _text(value: Any) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _call(argv: Sequence[str]) -> Tuple[int, str, str]:
    """Run the binary; on Ctrl-C, let it remove its temp files and release its
    lock (it stops within seconds on SIGINT) before the KeyboardInterrupt goes on."""
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
    ) as process:
        try:
            stdout, stderr = process.communicate()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            process.communicate()
            raise
    code = process.returncode
    # subprocess reports death by signal N as -N; the shell and the README say 128+N.
    return (128 - code if code < 0 else code), stdout, stderr


def _error_line(stderr: str, exit_code: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _LOG_LINE.match(line)
        if match and match.group(1) == "ERROR":
            return match.group(3)
    for line in lines:
        # clap's usage errors: "error: unexpected argument '--x' found".
        if line.startswith("error: "):
            return line[len("error: ") :]
    if exit_code > 128:
        return f"stopped by signal {exit_code - 128}"
    return lines[-1] if lines else "no error message"
