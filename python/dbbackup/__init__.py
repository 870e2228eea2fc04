"""Call dbbackup from Python analysis scripts.

Each function runs the ``dbbackup`` binary installed with this package, with
``--format json``, and returns what it printed, parsed (the fields are listed in
docs/json.md). Nothing is re-implemented here: settings, locking, retention and
checks are the binary's. Keyword options become the documented flags
(``max_backups=3`` → ``--max-backups=3``, ``backup_dir=path`` → ``--backup-dir=path``,
``mirror_dirs=[a, b]`` → ``--mirror-dir=a --mirror-dir=b``, ``True`` → a bare
flag, ``None``/``False`` → left out); the environment variables and
``dbbackup.yaml`` apply as they do on the command line. The database is the one
positional argument of every function; arguments of the wrong type raise
``TypeError`` (or ``ValueError``) naming them before the binary runs.

Keyword options of every function: ``backup_dir``, ``config``, ``summary_log``,
``mirror_dirs``, ``compression_level``, ``max_backups``, ``keep_daily``,
``keep_weekly``, ``keep_pre_restore``, ``diff_backups``, ``threads``,
``min_interval_hours``, ``busy_timeout_seconds``, ``lock_timeout_seconds``,
``term_grace_seconds``, ``shared``, ``remote``, ``remote_upload``,
``remote_max_backups``, ``remote_timeout_seconds``, ``verbose``. Besides them:
:func:`restore` ``name``, ``target``, ``before_job``, ``if_db_missing``, ``force``,
``full_check``, ``from_remote``; :func:`backup` ``force``; :func:`check`
``max_age``, ``min_count``, ``max_shrink``, ``min_free``, ``remote_max_age``;
:func:`list_backups` ``job``, ``from_remote``; :func:`verify` and :func:`export`
``from_remote``. Their types: ``dbbackup.Options`` and the classes beside it.

A failure raises :class:`DbBackupError`, whose message is one line with the exit
code and the binary's own error line. The binary's log lines go to the
``logging`` logger ``"dbbackup"`` at their own level (the error line the
exception carries at DEBUG: it is shown once, by whoever handles the exception).

    import dbbackup

    dbbackup.auto("results.db")   # a backup if the newest is older than the interval
"""

import difflib
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union, cast

from typing import Literal, TypedDict  # 3.8+, as requires-python says

if TYPE_CHECKING:
    # For type checkers only (mypy and pyright ship its stubs): never imported,
    # so the package needs nothing beyond the standard library at run time.
    from typing_extensions import Unpack

# What `help(dbbackup)` shows: the functions and the error. The option types
# (`Options`, ...) and `CheckReport` stay importable for type checkers; listed
# here, pydoc showed each with every inherited `dict` method (T25 #10), and the
# options are listed in the module's docstring instead.
__all__ = [
    "DbBackupError",
    "auto",
    "backup",
    "binary",
    "check",
    "export",
    "list_backups",
    "restore",
    "sync",
    "verify",
]

PathLike = Union[str, "os.PathLike[str]"]
# A list or tuple, not any Sequence: one str is a Sequence too (and would be split).
Paths = Union[List[PathLike], Tuple[PathLike, ...]]


class Options(TypedDict, total=False):
    """The keyword options every function takes, typed for type checkers (the
    global flags of ``dbbackup --help``). ``None`` leaves one out. At run time an
    option not listed here (a newer binary's) is still passed on; a type checker
    flags it, as it flags a misspelling."""

    backup_dir: Optional[PathLike]
    config: Optional[PathLike]
    summary_log: Optional[PathLike]
    mirror_dirs: Optional[Paths]
    compression_level: Optional[int]
    max_backups: Optional[int]
    keep_daily: Optional[int]
    keep_weekly: Optional[int]
    keep_pre_restore: Optional[int]
    diff_backups: Optional[int]
    threads: Optional[int]
    min_interval_hours: Optional[float]
    busy_timeout_seconds: Optional[int]
    lock_timeout_seconds: Optional[int]
    term_grace_seconds: Optional[int]
    shared: Optional[Literal["group", "umask"]]
    remote: Optional[str]
    remote_upload: Optional[Literal["sync", "inline"]]
    remote_max_backups: Optional[int]
    remote_timeout_seconds: Optional[int]
    verbose: Union[bool, int, None]


class RestoreOptions(Options, total=False):
    """:func:`restore`'s own options beside ``name`` and ``target``."""

    before_job: Union[str, int, None]
    if_db_missing: Optional[bool]
    force: Optional[bool]
    full_check: Optional[bool]
    from_remote: Optional[bool]


class CheckOptions(Options, total=False):
    """:func:`check`'s thresholds."""

    max_age: Optional[str]
    min_count: Optional[int]
    max_shrink: Union[float, str, None]
    min_free: Optional[str]
    remote_max_age: Optional[str]


class ListOptions(Options, total=False):
    """:func:`list_backups`'s own options."""

    job: Union[str, int, None]
    from_remote: Optional[bool]


class RemoteOptions(Options, total=False):
    """:func:`verify`'s and :func:`export`'s own option."""

    from_remote: Optional[bool]

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

    def __reduce__(self) -> Tuple[Any, ...]:
        # Pickled with all its fields (multiprocessing and concurrent.futures
        # send a worker's exception back this way); Exception's default would
        # call __init__ with the message alone.
        return (
            type(self),
            (self.command, self.argv, self.exit_code, self.message, self.stderr, self.result),
        )


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


def auto(db_path: Optional[PathLike] = None, **options: "Unpack[Options]") -> Dict[str, Any]:
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
        TypeError, ValueError: an argument of the wrong type or an empty path
            (before anything runs).
        DbBackupError: the backup failed (exit code 1) or the settings are wrong (2).
    """
    return cast(Dict[str, Any], _run("auto", [], db_path, options))


def backup(db_path: Optional[PathLike] = None, *, force: bool = False, **options: "Unpack[Options]") -> Dict[str, Any]:
    """Make a backup now; without ``force`` it is skipped when the database is
    unchanged since the newest backup.

    Returns:
        The backup's report (``"status": "ok"``, ``"name"``, ``"path"``,
        ``"checksum"``, ...) or ``{"status": "skipped", "reason"}``.

    Raises:
        TypeError, ValueError: an argument of the wrong type (before anything runs).
        DbBackupError: the backup failed (exit code 1; a snapshot that failed its
            integrity check is kept as ``*.failed.db.gz`` and its report is in
            ``error.result``) or the settings are wrong (2).
    """
    return cast(Dict[str, Any], _run("backup", [], db_path, dict(options, force=force)))


def restore(
    db_path: Optional[PathLike] = None,
    *,
    name: Optional[PathLike] = None,
    target: Optional[PathLike] = None,
    **options: "Unpack[RestoreOptions]",
) -> Dict[str, Any]:
    """Restore a backup (a file name from :func:`list_backups`, or ``"latest"``)
    into the database path, or into ``target``. An existing database is first
    saved as a ``pre-restore`` backup; a database in use is refused.

    Args:
        db_path: the database (and default target).
        name: backup file name or ``"latest"`` (the newest good backup);
            required unless ``before_job`` chooses one (as ``dbbackup
            restore`` needs NAME: a restore replaces the database).
        target: restore here instead of over the database.
        **options: e.g. ``if_db_missing=True`` (do nothing when the target
            exists), ``before_job=264`` (the restore point from before that
            job, instead of ``name``), ``backup_dir``.

    Returns:
        ``{"status": "ok", "name", "target", "pre_restore_backup",
        "pre_restore_copy"}`` (``pre_restore_backup`` holds the replaced
        content: a copy made now, or an existing backup of that content;
        ``pre_restore_copy`` is only a copy made now, else ``None``), or
        ``{"status": "skipped", ...}`` with ``if_db_missing``.

    Raises:
        TypeError, ValueError: an argument of the wrong type (before anything runs).
        DbBackupError: no such backup, a backup that fails its checks, a target
            in use (exit code 1), or wrong settings (2).
    """
    by_job = options.get("before_job") is not None
    if isinstance(name, os.PathLike):
        # A path to a backup in the backup directory names it, as on the CLI.
        name = os.fspath(name)
    if name is None:
        pass
    elif not isinstance(name, str):
        raise TypeError(f"name must be a str (a backup file name or 'latest'), not {_kind(name)}")
    elif not name or "\0" in name:
        raise ValueError(f"name must be a backup file name or 'latest', not {name!r}")
    elif by_job:
        raise ValueError(f"give name={name!r} or before_job, not both")
    path = os.fspath(db_path) if isinstance(db_path, (str, os.PathLike)) else None
    if isinstance(path, str) and path.endswith((".db.gz", ".diff.gz")):
        # The first positional is the database, as in every function; a backup's
        # name there (restore's old first positional) would restore over that file.
        name_hint = os.path.basename(path)
        raise ValueError(f"db_path {path!r} is a backup, not a database: restore(db_path, name={name_hint!r})")
    if path == "latest" and not os.path.exists(path):
        # `restore("latest")`: the name where the database goes.
        raise ValueError("db_path 'latest' is a restore name, not a database: restore(db_path, name='latest')")
    if name is None and not by_job:
        # Every other argument's type first (as `_run` checks them), then, as on
        # the command line: replacing a database is never a default.
        _refuse_others_options("restore", options)
        _flags(dict(options, target=target, db_path=db_path))
        raise ValueError(
            "restore() needs name= (a backup file name from list_backups(), or 'latest') or before_job=JOB"
        )
    positional = [] if name is None else [name]
    return cast(Dict[str, Any], _run("restore", positional, db_path, dict(options, target=target)))


class CheckReport(Dict[str, Any]):
    """:func:`check`'s report: a dict, true only when the set is healthy, so
    that ``if dbbackup.check(db):`` and ``assert dbbackup.check(db)`` mean it."""

    def __bool__(self) -> bool:
        return self.get("healthy") is True


def check(db_path: Optional[PathLike] = None, **options: "Unpack[CheckOptions]") -> CheckReport:
    """The health of the backup set. An unhealthy set is an answer, not an
    error: look at ``report["healthy"]`` (the report is true only when healthy).

    Args:
        db_path: the database whose backups are judged.
        **options: thresholds ``max_age="24h"``, ``min_count=1``,
            ``max_shrink=50``, ``min_free="1G"``, and global flags.

    Returns:
        ``{"healthy": bool, "criteria": [{"name", "ok", "severity", "detail"}]}``.

    Raises:
        TypeError, ValueError: an argument of the wrong type (before anything runs).
        DbBackupError: the check could not run: wrong settings (exit code 2), or
            a failure before any report (exit 1, e.g. the backup directory is a
            file). An unhealthy set (exit 1 with a report) is returned.
    """
    return CheckReport(cast(Dict[str, Any], _run("check", [], db_path, options, report_on_exit_1=True)))


def list_backups(db_path: Optional[PathLike] = None, **options: "Unpack[ListOptions]") -> List[Dict[str, Any]]:
    """The backups, newest first: one dict per file with ``name``, ``created``
    (UTC, ``2026-12-06T07:12:56.188759+00:00``: ``datetime.fromisoformat``
    parses it on every supported Python), ``size``, ``db_size``, ``checksum``,
    ``job``, ``kind``, ``check``, ...

    Raises:
        TypeError, ValueError: an argument of the wrong type (before anything runs).
        DbBackupError: the backups could not be listed, or the backup directory
            does not exist (exit code 1: a mistyped path is not "no backups yet").
    """
    rows = cast(List[Dict[str, Any]], _run("list", [], db_path, options))
    for row in rows:
        if isinstance(row.get("created"), str):
            row["created"] = _iso_time(row["created"])
    return rows


# RFC 3339 as the binary writes it: nanoseconds (trailing zeros dropped) and "Z".
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(?:Z|[+-]00:00)$")


def _iso_time(text: str) -> str:
    """A UTC time as ``datetime.fromisoformat`` reads it on Python 3.8-3.10 too:
    those take 3 or 6 fractional digits and "+00:00", not 9 digits and "Z".
    Cut (not rounded: 999999.5 would roll the second) to microseconds."""
    match = _RFC3339.match(text)
    if not match:
        return text
    fraction = match.group(2)
    return f"{match.group(1)}{'.' + fraction[:6].ljust(6, '0') if fraction else ''}+00:00"


def sync(db_path: Optional[PathLike] = None, **options: "Unpack[Options]") -> Dict[str, Any]:
    """Copy the restore points not yet on the remote (``remote="s3://BUCKET/PREFIX"``,
    or ``remote`` in the settings) there, then apply the remote's retention.

    Returns:
        The sync report (fields in docs/json.md).

    Raises:
        TypeError, ValueError: an argument of the wrong type (before anything runs).
        DbBackupError: no remote configured or wrong settings (exit code 2), the
            remote failed (1).
    """
    return cast(Dict[str, Any], _run("sync", [], db_path, options))


def verify(
    db_path: Optional[PathLike] = None,
    *,
    names: Optional[Sequence[PathLike]] = None,
    all: bool = False,
    **options: "Unpack[RemoteOptions]",
) -> List[Dict[str, Any]]:
    """Decompress backups whole and run SQLite's full ``integrity_check`` on
    them: the only call that reads a backup's every byte (``check`` and
    ``list_backups`` run cheap tests only).

    Args:
        db_path: the database whose backups are verified.
        names: backup file names from :func:`list_backups` (or ``"latest"``);
            ``None``: the newest restore point, as ``restore`` picks it.
        all: every backup in the directory instead.
        **options: ``from_remote=True`` (the remote's restore points), global flags.

    Returns:
        ``[{"name", "ok": True, "detail"}, ...]`` when every one verified.

    Raises:
        TypeError, ValueError: an argument of the wrong type (before anything runs).
        DbBackupError: a backup is damaged (exit code 1; ``error.result`` is the
            list, with ``"ok": False`` for each damaged one), none to verify or
            no such backup (1), wrong settings (2).
    """
    if names is None:
        positional: List[str] = []
    elif isinstance(names, (list, tuple)):
        positional = [_backup_name(f"names[{i}]", name) for i, name in enumerate(names)]
        # A filter that matched nothing: not "the newest" (T27 F-F).
        if not positional:
            raise ValueError("names is empty: give at least one backup name, or names=None for the newest")
    else:
        # Not one str: it would be split into letters.
        raise TypeError(f"names must be a list or tuple of backup file names, not {_kind(names)}")
    if all and positional:
        raise ValueError("give names or all=True, not both")
    return cast(List[Dict[str, Any]], _run("verify", positional, db_path, dict(options, all=all)))


def export(
    db_path: Optional[PathLike] = None,
    *,
    out: PathLike,
    name: PathLike = "latest",
    **options: "Unpack[RemoteOptions]",
) -> Dict[str, Any]:
    """Write a restore point (a diff rebuilt on its base) as a plain full
    ``.db.gz`` at ``out``, which must not exist.

    Args:
        db_path: the database whose backups are read.
        out: the ``.db.gz`` file to write.
        name: a backup file name from :func:`list_backups`, or ``"latest"``.
        **options: ``from_remote=True``, global flags.

    Returns:
        ``{"status": "ok", "name", "out", "size", "db_size", "checksum"}``.

    Raises:
        TypeError, ValueError: an argument of the wrong type (before anything runs).
        DbBackupError: no such backup, a damaged one, ``out`` exists (exit code 1),
            or wrong settings (2).
    """
    positional = [_backup_name("name", name)]
    # Required: None is no way to leave it out (T28 F2).
    _path("out", out)
    return cast(Dict[str, Any], _run("export", positional, db_path, dict(options, out=out)))


def _backup_name(key: str, value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a str (a backup file name or 'latest'), not {_kind(value)}")
    if not value or "\0" in value:
        raise ValueError(f"{key} must be a backup file name or 'latest', not {value!r}")
    return value


def _run(
    command: str,
    positional: Sequence[str],
    db_path: Any,
    options: Mapping[str, Any],
    report_on_exit_1: bool = False,
) -> Any:
    # Every argument is checked before the binary runs: a wrong type raises here,
    # naming the argument, instead of becoming a strange flag value.
    _refuse_others_options(command, options)
    flags = _flags(dict(options, db_path=db_path))
    argv = [binary(), command, *flags, "--format=json"]
    if positional:
        argv += ["--", *positional]
    exit_code, stdout, stderr = _call(argv)
    try:
        result = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        if exit_code == 0:
            _log_lines(stderr, raising=False)
            raise DbBackupError(
                command, argv, exit_code, f"printed something that is not JSON: {stdout[:200]!r}", stderr
            )
        result = None
    if exit_code == 0 or (report_on_exit_1 and exit_code == 1 and isinstance(result, dict) and "criteria" in result):
        _log_lines(stderr, raising=False)
        return result
    _log_lines(stderr, raising=True)
    # The caller's own values, quoted back by the binary, name no flag (T28 F1).
    values = [v for v in map(_text_of, [*positional, db_path, *options.values()]) if v and "--" in v]
    message = _with_keywords(command, _in_python_terms(_error_line(stderr, exit_code)), list(options), values)
    raise DbBackupError(command, argv, exit_code, message, stderr, result)


def _text_of(value: Any) -> Optional[str]:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return value if isinstance(value, str) else None


def _log_lines(stderr: str, raising: bool) -> None:
    """The binary's log lines to the ``dbbackup`` logger at their own level,
    except the error line a DbBackupError is about to carry (``raising``): that
    one is the caller's to show, and logged as well, Python's last-resort handler
    printed every failure twice. It goes to DEBUG."""
    lines = stderr.splitlines()
    raised = _error_line_at(lines) if raising else None
    for at, line in enumerate(lines):
        match = _LOG_LINE.match(line)
        if match:
            _log.log(logging.DEBUG if at == raised else _LEVELS[match.group(1)], "%s", match.group(2))
        elif line.strip():
            _log.debug("%s", line)


# A flag in the binary's message: `--max-backups`, `'--max-backups <N>'`.
_FLAG_IN_TEXT = re.compile(r"--([a-z][a-z0-9-]*)")
# A flag the message says does not help ("refusing ..., even with --force").
_NO_HELP = re.compile(r"even with --[a-z][a-z0-9-]*")
# clap's suggestion of a flag the API refuses (format, quiet) misleads a Python caller.
_SUGGESTION = re.compile(r"; did you mean '--(?:%s)'\?" % "|".join(_RESERVED))


# A command the binary suggests: "use `dbbackup restore latest --target e.db`".
_SUGGESTED_COMMAND = re.compile(r"`dbbackup ([^`]+)`")
# Where a suggested command's positionals go in the function's call.
_POSITIONAL_KEYWORD = {"restore": "name", "export": "name", "verify": "names"}


def _in_python_terms(message: str) -> str:
    """A command the binary suggests, as the call a Python caller would write:
    `dbbackup restore latest --target e.db` → `dbbackup.restore(..., name='latest',
    target='e.db')`. One it cannot say so (not an API function, a flag or form
    this module does not know) stays as the binary wrote it."""
    return _SUGGESTED_COMMAND.sub(lambda m: _as_call(m.group(1)) or m.group(0), message)


def _as_call(command_line: str) -> Optional[str]:
    try:
        words = shlex.split(command_line)
    except ValueError:
        return None
    command: Optional[str] = None
    keywords: Dict[str, Any] = {}
    positional: List[str] = []
    if any(mark in command_line for mark in "|[]{}<>…"):
        return None  # a usage pattern, not a command to run
    while words:
        word = words.pop(0)
        if not word.startswith("-"):
            if command is None:
                command = word
            else:
                positional.append(word)
            continue
        flag, has_value, value = word[2:].partition("=")
        key = {f: k for k, f in _FLAG_NAMES.items()}.get(flag, flag.replace("-", "_"))
        kind = _KINDS.get(key)
        if not word.startswith("--") or kind is None or kind is _verbosity:
            return None
        if kind is _flag:
            keywords[key] = True
            continue
        if not has_value:
            if not words:
                return None
            value = words.pop(0)
        if kind is _paths:
            keywords.setdefault(key, []).append(value)
        else:
            keywords[key] = value
    if command is None or command not in _OWN_OPTIONS or (positional and command not in _POSITIONAL_KEYWORD):
        return None
    if positional:
        to = _POSITIONAL_KEYWORD[command]
        if to != "names" and len(positional) > 1:
            return None
        keywords = dict({to: positional if to == "names" else positional[0]}, **keywords)
    arguments = ["..."] + [f"{key}={value!r}" for key, value in keywords.items()]
    return f"`dbbackup.{_FUNCTIONS.get(command, command)}({', '.join(arguments)})`"


def _with_keywords(command: str, message: str, given: Sequence[str] = (), values: Sequence[str] = ()) -> str:
    """The binary speaks flags; a Python caller wrote keywords. The message
    stays the binary's, with the keywords of the flags it names appended:
    ``... '--max-backups <N>' ... (keyword max_backups=)``. Only keywords the
    called function takes, or the caller ``given``: a hint about another
    command names a flag this one lacks."""
    message = _SUGGESTION.sub("", message)
    flag_keys = {flag: key for key, flag in _FLAG_NAMES.items()}
    keywords: List[str] = []
    scanned = _NO_HELP.sub("", message)
    for value in sorted(values, key=len, reverse=True):
        scanned = scanned.replace(repr(value), "").replace(value, "")
    for flag in _FLAG_IN_TEXT.findall(scanned):
        key = flag_keys.get(flag, flag.replace("-", "_"))
        if key in _RESERVED or key in ("help", "version") or f"{key}=" in keywords:
            continue
        takes = key in _OWN_OPTIONS[command] or (key in _KINDS and not any(key in own for own in _OWN_OPTIONS.values()))
        if takes or key in given:
            keywords.append(f"{key}=")
    if not keywords:
        return message
    return f"{message} (keyword{'s' if len(keywords) > 1 else ''} {', '.join(keywords)})"


# Each command's own options (`dbbackup COMMAND --help`); the others are global.
_OWN_OPTIONS: Dict[str, Tuple[str, ...]] = {
    "auto": (),
    "backup": ("force",),
    "restore": ("name", "target", "before_job", "if_db_missing", "force", "full_check", "from_remote"),
    "check": ("max_age", "min_count", "max_shrink", "min_free", "remote_max_age"),
    "list": ("job", "from_remote"),
    "sync": (),
    "verify": ("all", "from_remote"),
    "export": ("name", "out", "from_remote"),
}
_FUNCTIONS = {"list": "list_backups"}


def _refuse_others_options(command: str, options: Mapping[str, Any]) -> None:
    """Another function's option is Python's mistake to name: passed on, the
    binary would refuse a flag the caller never typed (and suggest another)."""
    function = _FUNCTIONS.get(command, command)
    for key in options:
        if key in _OWN_OPTIONS[command]:
            continue
        takers = [f"{_FUNCTIONS.get(c, c)}()" for c, own in _OWN_OPTIONS.items() if key in own]
        if takers:
            raise TypeError(
                f"{function}() got an unexpected keyword argument {key!r}"
                f" (only {' and '.join(takers)} {'takes' if len(takers) == 1 else 'take'} it)"
            )


def _flags(options: Mapping[str, Any]) -> List[str]:
    args: List[str] = []
    for key, value in options.items():
        if key in _RESERVED:
            raise TypeError(f"{key!r} is not an option of the Python API: it reads the JSON that dbbackup prints")
        if key not in _KINDS:
            # A misspelling of a known option is Python's mistake to name; an
            # option unlike any (a newer binary's) is passed on for it to judge.
            close = difflib.get_close_matches(key, list(_KINDS), n=1, cutoff=0.8)
            if close:
                raise TypeError(f"unexpected keyword argument {key!r}; did you mean {close[0]!r}?")
        kind = _KINDS.get(key, _any_value)
        flag = "--" + _FLAG_NAMES.get(key, key.replace("_", "-"))
        # None leaves any option out; False only a flag (a False count is a mistake).
        if value is None or (value is False and kind in (_flag, _any_value)):
            continue
        args += [flag if text is None else f"{flag}={text}" for text in kind(key, value)]
    return args


def _kind(value: Any) -> str:
    return type(value).__name__


# Each kind below checks a keyword's value and returns the flag's values (None: a bare flag).


# One wording for every path, bytes or not.
_A_PATH = "a path (str or os.PathLike[str])"


def _path(key: str, value: Any) -> str:
    if isinstance(value, (bytes, bytearray)) or (
        isinstance(value, os.PathLike) and not isinstance(os.fspath(value), str)
    ):
        # A bytes path would reach the binary as its repr ("b'results.db'").
        raise TypeError(f"{key} must be {_A_PATH}, not {_kind(value)}: decode it with os.fsdecode()")
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{key} must be {_A_PATH}, not {_kind(value)}")
    text = os.fspath(value)
    if not text:
        raise ValueError(f"{key} is an empty path")
    if "\0" in text:
        raise ValueError(f"{key} contains a NUL character: {text!r}")
    return text


def _flag(key: str, value: Any) -> List[Optional[str]]:
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be True or False, not {_kind(value)}")
    return [None] if value else []


def _one_path(key: str, value: Any) -> List[Optional[str]]:
    return [_path(key, value)]


def _paths(key: str, value: Any) -> List[Optional[str]]:
    # Not a set (its order is not the user's) and not one str (it would be split into letters).
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{key} must be a list or tuple of paths, not {_kind(value)}")
    return [_path(f"{key}[{i}]", item) for i, item in enumerate(value)]


def _count(key: str, value: Any) -> List[Optional[str]]:
    # bool is an int in Python; True as a count is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an int, not {_kind(value)}")
    return [str(value)]


def _percent(key: str, value: Any) -> List[Optional[str]]:
    # `--max-shrink 50%` and `max_shrink: 50%` in the file: the same here.
    if isinstance(value, str) and value.strip().endswith("%"):
        return _number(key, _float_or(value.strip()[:-1], key, value))
    return _number(key, value)


def _float_or(text: str, key: str, given: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{key} must be a number or a percentage such as '50%', not {given!r}") from None


def _number(key: str, value: Any) -> List[Optional[str]]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{key} must be a number (int or float), not {_kind(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, not {value!r}")
    return [repr(value) if isinstance(value, float) else str(value)]


# What the binary expects of its text options, for the error message.
_TEXT_EXAMPLES = {
    "max_age": "a duration such as '24h'",
    "remote_max_age": "a duration such as '48h'",
    "remote": "a URL such as 's3://bucket/prefix'",
    "min_free": "a size such as '1G'",
    "shared": "'group' or 'umask'",
}


def _text_value(key: str, value: Any) -> List[Optional[str]]:
    if not isinstance(value, str):
        example = _TEXT_EXAMPLES.get(key)
        raise TypeError(f"{key} must be a str{f' ({example})' if example else ''}, not {_kind(value)}")
    if not value or "\0" in value:
        raise ValueError(f"{key} must be a non-empty str without NUL characters, not {value!r}")
    return [value]


def _whole(key: str, value: Any) -> List[Optional[str]]:
    # Seconds are whole to the binary: 0.5 or 2.0 would be refused by it (exit 2).
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an int (whole seconds), not {_kind(value)}")
    return [str(value)]


def _choice(choices: Tuple[str, ...]) -> Callable[[str, Any], List[Optional[str]]]:
    def check(key: str, value: Any) -> List[Optional[str]]:
        # Not a str is the wrong type; a str that is no choice, the wrong value.
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a str, one of {', '.join(map(repr, choices))}, not {_kind(value)}")
        if value not in choices:
            raise ValueError(f"{key} must be one of {', '.join(map(repr, choices))}, not {value!r}")
        return [value]

    return check


def _job_id(key: str, value: Any) -> List[Optional[str]]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a str or int (a SLURM job id), not {_kind(value)}")
    return _text_value(key, value)


def _verbosity(key: str, value: Any) -> List[Optional[str]]:
    # verbose=True is -v; verbose=2 is -vv, as on the command line.
    if isinstance(value, bool):
        return [None] if value else []
    if not isinstance(value, int):
        raise TypeError(f"{key} must be True, False or a count (int) >= 0, not {_kind(value)}")
    if value < 0:
        raise ValueError(f"{key} must be True, False or a count >= 0, not {value!r}")
    return [None] * value


def _any_value(key: str, value: Any) -> List[Optional[str]]:
    # An option this module does not know (a newer binary's): plain scalars only;
    # the binary judges the value.
    if value is True:
        return [None]
    if isinstance(value, (list, tuple)):
        return [text for i, item in enumerate(value) for text in _any_value(f"{key}[{i}]", item)]
    if isinstance(value, (str, os.PathLike, bytes, bytearray)):
        return [_path(key, value)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(key, value)
    raise TypeError(f"{key} must be a str, path, number, bool or list of those, not {_kind(value)}")


# The binary's options by the type of their value (`dbbackup COMMAND --help`).
_KINDS: Dict[str, Callable[[str, Any], List[Optional[str]]]] = {
    "db_path": _one_path,
    "backup_dir": _one_path,
    "config": _one_path,
    "summary_log": _one_path,
    "target": _one_path,
    "mirror_dirs": _paths,
    "compression_level": _count,
    "max_backups": _count,
    "keep_daily": _count,
    "keep_weekly": _count,
    "keep_pre_restore": _count,
    "diff_backups": _count,
    "threads": _count,
    "min_count": _count,
    "min_interval_hours": _number,
    "busy_timeout_seconds": _whole,
    "lock_timeout_seconds": _whole,
    "term_grace_seconds": _whole,
    "max_shrink": _percent,
    "max_age": _text_value,
    "min_free": _text_value,
    "shared": _text_value,
    "remote": _text_value,
    "remote_upload": _choice(("sync", "inline")),
    "remote_max_backups": _count,
    "remote_timeout_seconds": _whole,
    "remote_max_age": _text_value,
    "from_remote": _flag,
    "job": _job_id,
    "before_job": _job_id,
    "force": _flag,
    "if_db_missing": _flag,
    "full_check": _flag,
    "all": _flag,
    "out": _one_path,
    "verbose": _verbosity,
}


class _HeldCtrlC:
    """SIGINT's handler held back while the binary starts. A KeyboardInterrupt
    raised inside ``Popen()`` (the binary already running, its pid not yet
    returned) or before the ``try`` would leave the binary running unsignalled:
    its temp file, its lock, then a backup made after Python gave up on it."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._arrived = False

    def hold(self) -> None:
        # Only the main thread gets KeyboardInterrupt or may set handlers; SIG_IGN,
        # SIG_DFL and handlers set outside Python (not callable here) raise nothing.
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if callable(previous):
            self._previous = previous
            signal.signal(signal.SIGINT, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        self._arrived = True

    def release(self) -> None:
        """Put the handler back and deliver a Ctrl-C that came meanwhile to it."""
        if self._previous is None:
            return
        signal.signal(signal.SIGINT, self._previous)
        self._previous = None
        if self._arrived:
            signal.raise_signal(signal.SIGINT)


def _call(argv: Sequence[str]) -> Tuple[int, str, str]:
    """Run the binary; on Ctrl-C, let it remove its temp files and release its
    lock (it stops within seconds on SIGINT) before the KeyboardInterrupt goes on."""
    ctrl_c = _HeldCtrlC()
    ctrl_c.hold()
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
        )
    except BaseException:
        ctrl_c.release()
        raise
    with process:
        try:
            # From here a Ctrl-C, held back or new, reaches the binary.
            ctrl_c.release()
            stdout, stderr = process.communicate()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            process.communicate()
            raise
    code = process.returncode
    # subprocess reports death by signal N as -N; the shell and the README say 128+N.
    return (128 - code if code < 0 else code), stdout, stderr


def _error_line_at(lines: Sequence[str]) -> Optional[int]:
    """The index of the last ERROR log line: the one a DbBackupError carries."""
    for at in range(len(lines) - 1, -1, -1):
        match = _LOG_LINE.match(lines[at].strip())
        if match and match.group(1) == "ERROR":
            return at
    return None


def _error_line(stderr: str, exit_code: int) -> str:
    lines = stderr.splitlines()
    at = _error_line_at(lines)
    if at is not None:
        match = _LOG_LINE.match(lines[at].strip())
        assert match is not None
        return match.group(3)
    lines = [line.strip() for line in lines if line.strip()]
    for line in lines:
        # Usage errors (exit 2): "error: unexpected argument '--x' found".
        if line.startswith("error: "):
            return line[len("error: ") :]
    if exit_code > 128:
        return f"stopped by signal {exit_code - 128}"
    return lines[-1] if lines else "no error message"
