"""The Python API against the real dbbackup binary and real SQLite databases.

Run against an installed wheel (packaging/ci-wheel.sh does):
    venv/bin/python -m unittest discover -s python/tests -v
or against a development build:
    PATH=$PWD/target/debug:$PATH PYTHONPATH=$PWD/python python3 -m unittest discover -s python/tests -v
DBBACKUP_EXPECT_WHEEL=1 makes the checks that need the installed wheel fail
instead of skip.
"""

import contextlib
import datetime
import gzip
import hashlib
import inspect
import io
import logging
import math
import os
import pathlib
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
import unittest
from typing import Any, Callable, Dict, List, Tuple
from unittest import mock

import dbbackup

EXPECT_WHEEL = os.environ.get("DBBACKUP_EXPECT_WHEEL") == "1"
DISTRIBUTION = "dbbackup-sqlite"
README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def make_database(path: pathlib.Path, rows: int = 500, wal: bool = False) -> None:
    connection = sqlite3.connect(str(path))
    with connection:
        if wal:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE results (id INTEGER PRIMARY KEY, run TEXT, value REAL)")
        connection.executemany(
            "INSERT INTO results (run, value) VALUES (?, ?)",
            [(f"run-{i % 17}", i * 0.5) for i in range(rows)],
        )
    connection.close()


def make_large_database(path: pathlib.Path) -> None:
    """300 MB, incompressible: a backup of it is still running when interrupted."""
    connection = sqlite3.connect(str(path))
    with connection:
        connection.execute("CREATE TABLE results (id INTEGER PRIMARY KEY, run TEXT, value REAL)")
        connection.execute("CREATE TABLE blobs (b BLOB)")
        connection.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
            "INSERT INTO blobs SELECT randomblob(100000) FROM n"
        )
    connection.close()


def rows_of(path: pathlib.Path) -> List[Tuple[Any, ...]]:
    connection = sqlite3.connect(str(path))
    try:
        return connection.execute("SELECT id, run, value FROM results ORDER BY id").fetchall()
    finally:
        connection.close()


def integrity(path: pathlib.Path) -> str:
    connection = sqlite3.connect(str(path))
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


class ApiTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="dbbackup-py-")
        self.addCleanup(self._tmp.cleanup)
        self.dir = pathlib.Path(self._tmp.name)
        # No DBBACKUP_* settings from the caller's environment, no ./dbbackup.yaml.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBBACKUP_")}
        patcher = mock.patch.dict(os.environ, env, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        cwd = os.getcwd()
        os.chdir(str(self.dir))
        self.addCleanup(os.chdir, cwd)
        # The expected errors reach the tests as exceptions; keep them off the test log.
        quiet = logging.NullHandler()
        logging.getLogger("dbbackup").addHandler(quiet)
        self.addCleanup(logging.getLogger("dbbackup").removeHandler, quiet)
        self.db = self.dir / "results.db"
        self.backups = self.dir / "backups"
        self.opts: Dict[str, Any] = {"backup_dir": self.backups, "summary_log": self.dir / "summary.log"}

    def test_a_backup_made_by_the_api_restores_to_equal_content(self) -> None:
        make_database(self.db, wal=True)
        made = dbbackup.backup(force=True, db_path=self.db, **self.opts)
        self.assertEqual(made["status"], "ok")
        self.assertEqual(made["check"], "ok")
        archive = self.backups / made["name"]
        self.assertTrue(archive.is_file())
        with gzip.open(str(archive), "rb") as f:
            self.assertEqual("sha256:" + hashlib.sha256(f.read()).hexdigest(), made["checksum"])

        listed = dbbackup.list_backups(db_path=self.db, **self.opts)
        self.assertEqual([b["name"] for b in listed], [made["name"]])
        self.assertEqual(listed[0]["checksum"], made["checksum"])
        self.assertEqual(listed[0]["kind"], "manual")

        target = self.dir / "restored.db"
        restored = dbbackup.restore(self.db, name=made["name"], target=target, **self.opts)
        self.assertEqual(restored["status"], "ok")
        self.assertEqual(restored["name"], made["name"])
        self.assertEqual(rows_of(target), rows_of(self.db))
        self.assertEqual(len(rows_of(target)), 500)
        self.assertEqual(integrity(target), "ok")
        # A pathlib.Path to the backup names it, as the CLI takes a path (T23 #8).
        again = self.dir / "again.db"
        dbbackup.restore(self.db, name=archive, target=again, **self.opts)
        self.assertEqual(rows_of(again), rows_of(self.db))
        self.assertEqual(dbbackup.verify(self.db, names=[archive], **self.opts)[0]["name"], made["name"])

    def test_restore_latest_over_the_database_brings_back_the_rows_and_keeps_the_damaged_one(self) -> None:
        make_database(self.db)
        good = rows_of(self.db)
        dbbackup.backup(force=True, db_path=self.db, **self.opts)
        connection = sqlite3.connect(str(self.db))
        with connection:
            connection.execute("DELETE FROM results WHERE id > 10")
        connection.close()
        self.assertEqual(len(rows_of(self.db)), 10)

        restored = dbbackup.restore(db_path=self.db, name="latest", **self.opts)
        self.assertEqual(rows_of(self.db), good)
        saved = restored["pre_restore_backup"]
        self.assertIsNotNone(saved)
        # Changed since its backup: a copy made now, named in both fields.
        self.assertEqual(restored["pre_restore_copy"], saved)
        kinds = {b["name"]: b["kind"] for b in dbbackup.list_backups(db_path=self.db, **self.opts)}
        self.assertEqual(kinds[saved], "pre-restore")

    def test_a_restore_refused_for_the_callers_own_connection_says_so(self) -> None:
        # T27 F-K: not "stop pid N" of the script itself.
        make_database(self.db)
        dbbackup.backup(db_path=self.db, **self.opts)
        connection = sqlite3.connect(str(self.db))
        try:
            connection.execute("SELECT count(*) FROM results").fetchone()
            with self.assertRaises(dbbackup.DbBackupError) as caught:
                dbbackup.restore(db_path=self.db, name="latest", **self.opts)
        finally:
            connection.close()
        self.assertIn(
            f"in use by pid {os.getpid()}, the process that ran this dbbackup, which has it open; "
            "close its own connections to the database before restoring",
            str(caught.exception),
        )

    def test_backup_without_force_skips_an_unchanged_database(self) -> None:
        make_database(self.db)
        self.assertEqual(dbbackup.backup(db_path=self.db, **self.opts)["status"], "ok")
        again = dbbackup.backup(db_path=self.db, **self.opts)
        self.assertEqual(again["status"], "skipped")
        self.assertEqual(len(dbbackup.list_backups(db_path=self.db, **self.opts)), 1)

    def test_auto_backs_up_when_due_and_skips_inside_the_interval(self) -> None:
        make_database(self.db)
        first = dbbackup.auto(self.db, **self.opts)
        self.assertEqual(first["status"], "ok")
        self.assertEqual(first["kind"], "auto")
        make_database(self.dir / "other.db")  # unrelated; results.db itself is unchanged
        self.assertEqual(dbbackup.auto(self.db, **self.opts)["status"], "skipped")
        connection = sqlite3.connect(str(self.db))
        with connection:
            connection.execute("INSERT INTO results (run, value) VALUES ('new', 1.0)")
        connection.close()
        # Changed, but inside the default 1-hour interval: still skipped ...
        self.assertEqual(dbbackup.auto(self.db, **self.opts)["status"], "skipped")
        # ... and made once the interval (a flag from a keyword) allows it.
        due = dbbackup.auto(self.db, min_interval_hours=0, **self.opts)
        self.assertEqual(due["status"], "ok")
        self.assertEqual(len(dbbackup.list_backups(db_path=self.db, **self.opts)), 2)

    def test_keyword_options_become_the_documented_flags(self) -> None:
        make_database(self.db)
        mirrors: List[dbbackup.PathLike] = [self.dir / "mirror-a", str(self.dir / "mirror-b")]
        for _ in range(3):
            made = dbbackup.backup(
                force=True, db_path=self.db, max_backups=2, mirror_dirs=mirrors, compression_level=9, **self.opts
            )
            self.assertEqual([m["ok"] for m in made["mirrors"]], [True, True])
        names = [b["name"] for b in dbbackup.list_backups(db_path=self.db, **self.opts)]
        self.assertEqual(len(names), 2, "max_backups=2 applied by retention")
        for mirror in mirrors:
            self.assertIn(made["name"], os.listdir(str(mirror)))

    def test_db_path_none_takes_the_database_from_the_environment_as_the_cli_does(self) -> None:
        make_database(self.db)
        with mock.patch.dict(os.environ, {"DBBACKUP_DB_PATH": str(self.db)}):
            made = dbbackup.backup(force=True, **self.opts)
        self.assertEqual(made["status"], "ok")
        self.assertEqual(dbbackup.list_backups(**self.opts)[0]["source"], str(self.db.resolve()))

    def test_a_missing_database_raises_a_clear_one_line_error_with_exit_code_1(self) -> None:
        missing = self.dir / "gone.db"
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.backup(force=True, db_path=missing, **self.opts)
        error = caught.exception
        self.assertEqual(error.exit_code, 1)
        self.assertEqual(error.command, "backup")
        self.assertIn("gone.db", error.message)
        self.assertIn("does not exist", error.message)
        self.assertEqual(str(error), f"dbbackup backup failed (exit 1): {error.message}")
        self.assertNotIn("\n", str(error))
        self.assertFalse(any(self.backups.glob("backup_*")), "nothing published")
        # A worker pool sends it back pickled: every field survives.
        copy = pickle.loads(pickle.dumps(error))
        self.assertIs(type(copy), dbbackup.DbBackupError)
        self.assertEqual(str(copy), str(error))
        for field in ("command", "argv", "exit_code", "message", "stderr", "result"):
            self.assertEqual(getattr(copy, field), getattr(error, field), field)

    def test_a_failure_is_shown_once_when_logging_is_not_configured(self) -> None:
        # A script that prints the error, with no logging set up: Python's
        # last-resort handler must not print the same line before it.
        script = (
            "import dbbackup\n"
            "try:\n"
            "    dbbackup.backup('gone.db', backup_dir='b')\n"
            "except dbbackup.DbBackupError as error:\n"
            "    print(error)\n"
        )
        package = os.path.dirname(os.path.dirname(os.path.abspath(dbbackup.__file__)))
        env = dict(os.environ, PYTHONPATH=package, PATH=os.path.dirname(dbbackup.binary()) + os.pathsep + os.environ.get("PATH", ""))
        run = subprocess.run(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env
        )
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout, "dbbackup backup failed (exit 1): database gone.db does not exist\n")
        self.assertNotIn("gone.db", run.stderr)
        # Configured logging still gets the line, at DEBUG: the exception carries it.
        with self.assertLogs("dbbackup", logging.DEBUG) as logs, self.assertRaises(dbbackup.DbBackupError):
            dbbackup.backup(self.dir / "gone.db", **self.opts)
        carried = [r for r in logs.records if "gone.db does not exist" in r.getMessage()]
        self.assertEqual([r.levelno for r in carried], [logging.DEBUG], logs.output)

    def test_a_directory_or_a_non_sqlite_file_as_database_raises_naming_it(self) -> None:
        (self.dir / "adir").mkdir()
        (self.dir / "notes.db").write_text("not a database\n")
        for path, words in ((self.dir / "adir", "is a directory"), (self.dir / "notes.db", "not an SQLite database")):
            with self.subTest(path=path.name):
                with self.assertRaises(dbbackup.DbBackupError) as caught:
                    dbbackup.auto(path, **self.opts)
                self.assertEqual(caught.exception.exit_code, 1)
                self.assertIn(path.name, caught.exception.message)
                self.assertIn(words, caught.exception.message)

    def test_usage_and_configuration_errors_raise_with_exit_code_2(self) -> None:
        make_database(self.db)
        cases: Tuple[Tuple[Dict[str, Any], str], ...] = (
            ({"compression_level": 12}, "'12'"),
            ({"no_such_option": 1}, "--no-such-option"),
        )
        for options, words in cases:
            with self.subTest(options=options):
                with self.assertRaises(dbbackup.DbBackupError) as caught:
                    dbbackup.backup(force=True, db_path=self.db, **options, **self.opts)
                self.assertEqual(caught.exception.exit_code, 2)
                self.assertIn(words, caught.exception.message)
                self.assertNotIn("\n", str(caught.exception))
        config = self.dir / "dbbackup.yaml"
        config.write_text("max_backupz: 3\n")
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.backup(db_path=self.db, config=config, **self.opts)
        self.assertEqual(caught.exception.exit_code, 2)
        self.assertIn("max_backupz", caught.exception.message)

    def test_error_messages_name_the_python_keywords_of_the_flags(self) -> None:
        make_database(self.db)
        cases: List[Tuple[Dict[str, Any], str]] = [
            ({"max_backups": 0}, "invalid value '0' for '--max-backups <N>'"),
            ({"mirror": "m"}, "unexpected argument '--mirror' found; did you mean '--mirror-dir'?"),
            ({"frobnicate": 3}, "unexpected argument '--frobnicate' found (see 'dbbackup backup --help')"),
        ]
        for options, words in cases:
            with self.subTest(options=options), self.assertRaises(dbbackup.DbBackupError) as caught:
                dbbackup.backup(self.db, **options, **self.opts)
            message = caught.exception.message
            self.assertIn(words, message)
            keywords = {"max_backups": "(keyword max_backups=)", "mirror": "(keywords mirror=, mirror_dirs=)"}
            self.assertTrue(message.endswith(keywords.get(next(iter(options)), "(keyword frobnicate=)")), message)
            # A flag the API refuses is not suggested.
            self.assertNotIn("--format", message)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.backup(**self.opts)
        self.assertTrue(caught.exception.message.startswith("no database given: use --db-path PATH"))
        self.assertTrue(caught.exception.message.endswith("(keyword db_path=)"), caught.exception.message)

    def test_a_value_that_looks_like_a_flag_gets_no_keyword_hint(self) -> None:
        # T28 F1: "no backup named '--force'" got "(keyword force=)" appended.
        make_database(self.db)
        dbbackup.backup(self.db, **self.opts)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.restore(self.db, name="--force", target=self.dir / "x.db", **self.opts)
        self.assertIn("no backup named '--force'", caught.exception.message)
        self.assertNotIn("keyword", caught.exception.message)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.backup("--force", **self.opts)
        self.assertNotIn("keyword", caught.exception.message)

    def test_export_without_out_raises_type_error(self) -> None:
        # T28 F2: out=None reached the binary as a usage error.
        with self.assertRaisesRegex(TypeError, r"^out must be a path \(str or os.PathLike\[str\]\), not NoneType$"):
            dbbackup.export(self.db, out=None, **self.opts)  # type: ignore[arg-type]

    def test_sync_without_a_remote_raises_with_exit_code_2_and_passes_the_remote_flags(self) -> None:
        make_database(self.db)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.sync(self.db, **self.opts)
        self.assertEqual(caught.exception.exit_code, 2)
        self.assertIn("no remote configured", caught.exception.message)
        with mock.patch.object(dbbackup, "_call", return_value=(0, "{}", "")) as call:
            dbbackup.sync(self.db, remote="s3://b/p", remote_max_backups=2, remote_timeout_seconds=5, **self.opts)
        argv = call.call_args[0][0]
        self.assertEqual(argv[1], "sync")
        for flag in ("--remote=s3://b/p", "--remote-max-backups=2", "--remote-timeout-seconds=5"):
            self.assertIn(flag, argv)

    def test_restore_of_an_unknown_or_path_like_name_raises(self) -> None:
        make_database(self.db)
        dbbackup.backup(force=True, db_path=self.db, **self.opts)
        before = rows_of(self.db)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.restore(self.db, name="backup_19990101_000000.db.gz", **self.opts)
        self.assertEqual(caught.exception.exit_code, 1)
        self.assertIn("backup_19990101_000000.db.gz", caught.exception.message)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.restore(self.db, name="../results.db", **self.opts)
        self.assertEqual(caught.exception.exit_code, 2)
        self.assertIn("not a path", caught.exception.message)
        # A name that looks like a flag is a name, not an option.
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.restore(self.db, name="--help", **self.opts)
        self.assertIn("'--help'", caught.exception.message)
        self.assertEqual(rows_of(self.db), before, "database untouched")

    def test_verify_reads_backups_whole_and_raises_for_a_damaged_one(self) -> None:
        make_database(self.db, rows=20000)
        first = dbbackup.backup(self.db, force=True, **self.opts)
        newest = dbbackup.backup(self.db, force=True, **self.opts)
        self.assertEqual([r["name"] for r in dbbackup.verify(self.db, **self.opts)], [newest["name"]])
        verified = dbbackup.verify(self.db, all=True, **self.opts)
        self.assertEqual({r["name"] for r in verified}, {first["name"], newest["name"]})
        self.assertTrue(all(r["ok"] for r in verified), verified)
        named = dbbackup.verify(self.db, names=[first["name"]], **self.opts)
        self.assertEqual([(r["name"], r["ok"]) for r in named], [(first["name"], True)])
        # One byte flipped in the middle: list_backups and check see nothing (cheap
        # tests); verify reads it whole and raises, the report in error.result.
        archive = self.backups / newest["name"]
        data = bytearray(archive.read_bytes())
        data[len(data) // 2] ^= 0xFF
        archive.write_bytes(bytes(data))
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.verify(self.db, names=[newest["name"]], **self.opts)
        error = caught.exception
        self.assertEqual(error.exit_code, 1)
        self.assertIn(f"{newest['name']}: FAILED: damaged", str(error))
        self.assertEqual([(r["name"], r["ok"]) for r in error.result], [(newest["name"], False)])
        with self.assertRaises(TypeError):
            dbbackup.verify(self.db, names=newest["name"], **self.opts)
        with self.assertRaises(ValueError):
            dbbackup.verify(self.db, names=[first["name"]], all=True, **self.opts)

    def test_export_writes_a_full_backup_equal_to_the_database(self) -> None:
        make_database(self.db)
        made = dbbackup.backup(self.db, force=True, **self.opts)
        out = self.dir / "copy.db.gz"
        exported = dbbackup.export(self.db, out=out, **self.opts)
        self.assertEqual((exported["status"], exported["name"]), ("ok", made["name"]))
        self.assertEqual(exported["checksum"], made["checksum"])
        with gzip.open(str(out), "rb") as f:
            self.assertEqual("sha256:" + hashlib.sha256(f.read()).hexdigest(), made["checksum"])
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.export(self.db, out=out, name=made["name"], **self.opts)
        self.assertEqual(caught.exception.exit_code, 1)
        with self.assertRaises(TypeError):
            dbbackup.export(self.db, out=out, name=3, **self.opts)  # type: ignore[arg-type]

    def test_an_error_names_only_keywords_the_function_takes(self) -> None:
        # export's hint is about restore's --target, which export() does not take.
        make_database(self.db)
        dbbackup.backup(self.db, **self.opts)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.export(self.db, out=self.dir / "e.db", **self.opts)
        self.assertEqual(caught.exception.exit_code, 2)
        target = str(self.dir / "e.db")
        self.assertIn("export writes a gzip file", caught.exception.message)
        # The hint as the Python call, not as restore's command line.
        self.assertIn(f"use `dbbackup.restore(..., name='latest', target={target!r})`", caught.exception.message)
        self.assertTrue(caught.exception.message.endswith(" (keyword out=)"), caught.exception.message)
        self.assertNotIn("--target", caught.exception.message)
        # A suggestion this module cannot say as a call stays the binary's.
        for kept in ("`dbbackup lock status`", "`dbbackup sync --forget-missing`", "`dbbackup restore NAME|latest`"):
            self.assertEqual(dbbackup._in_python_terms(f"use {kept}"), f"use {kept}")
        self.assertEqual(
            dbbackup._in_python_terms("`dbbackup --mirror-dir a --mirror-dir b verify x.db.gz`"),
            "`dbbackup.verify(..., names=['x.db.gz'], mirror_dirs=['a', 'b'])`",
        )

    def test_no_keyword_hint_for_a_flag_the_message_says_does_not_help(self) -> None:
        # T23 #3: "refusing ..., even with --force" then "(keyword force=)".
        make_database(self.db)
        dbbackup.backup(self.db, **self.opts)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.restore(self.db, name="latest", target=f"{self.db}-wal", **self.opts)
        self.assertEqual(caught.exception.exit_code, 2)
        self.assertIn("even with --force", caught.exception.message)
        self.assertNotIn("force=", caught.exception.message)

    def test_list_backups_of_a_directory_that_does_not_exist_raises_naming_it(self) -> None:
        make_database(self.db)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.list_backups(self.db, backup_dir="no/such/dir")
        self.assertEqual(caught.exception.exit_code, 1)
        self.assertIn("backup directory no/such/dir does not exist", str(caught.exception))
        self.backups.mkdir()
        self.assertEqual(dbbackup.list_backups(self.db, **self.opts), [])

    def test_created_parses_with_fromisoformat_on_every_supported_python(self) -> None:
        make_database(self.db)
        made = dbbackup.backup(self.db, force=True, **self.opts)
        [row] = dbbackup.list_backups(self.db, **self.opts)
        self.assertRegex(row["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
        created = datetime.datetime.fromisoformat(row["created"])
        self.assertEqual(created.utcoffset(), datetime.timedelta(0))
        self.assertEqual(created.strftime("%Y%m%d_%H%M%S"), made["name"][len("backup_") : -len(".db.gz")])
        self.assertEqual(dbbackup._iso_time("2025-09-09T07:37:08Z"), "2025-09-09T07:37:08+00:00")
        self.assertEqual(dbbackup._iso_time("2026-12-06T07:12:56.999999999Z"), "2026-12-06T07:12:56.999999+00:00")

    def test_a_failed_mirror_raises_saying_the_backup_was_made(self) -> None:
        make_database(self.db)
        (self.dir / "notadir").write_text("x")
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.backup(self.db, mirror_dirs=[self.dir / "notadir" / "m"], force=True, **self.opts)
        error = caught.exception
        self.assertEqual((error.exit_code, error.result["status"]), (1, "ok"))
        self.assertTrue((self.backups / error.result["name"]).is_file())
        self.assertIn(f"backup {error.result['name']} exists; its copy to mirror {self.dir / 'notadir' / 'm'} failed:", error.message)

    def test_restore_before_job_restores_that_jobs_restore_point(self) -> None:
        make_database(self.db)
        # SLURM as it answers for a job it has forgotten (ended long ago): this
        # machine's own SLURM, configured or not, must not decide the test.
        fake_bin = self.dir / "fake-slurm-bin"
        fake_bin.mkdir()
        scontrol = fake_bin / "scontrol"
        scontrol.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n")
        scontrol.chmod(0o755)
        path = f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}"
        stack = contextlib.ExitStack()
        self.addCleanup(stack.close)
        stack.enter_context(mock.patch.dict(os.environ, {"PATH": path}))
        env = dict(os.environ, SLURM_JOB_ID="264")
        # The job ran and ended (a job that has not is not undone without force).
        for step in (["pre-job"], ["post-job", "--status", "0"]):
            subprocess.run(
                [dbbackup.binary(), "--db-path", str(self.db), "--backup-dir", str(self.backups), *step],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
            )
        pre_job = dbbackup.list_backups(self.db, **self.opts)[0]["name"]
        dbbackup.backup(self.db, force=True, **self.opts)
        target = self.dir / "t2.db"
        restored = dbbackup.restore(self.db, before_job=264, target=target, **self.opts)
        self.assertEqual(restored["name"], pre_job)
        self.assertEqual(rows_of(target), rows_of(self.db))
        # Without before_job the default is still the newest.
        newest = dbbackup.list_backups(self.db, **self.opts)[0]["name"]
        self.assertNotEqual(newest, pre_job)
        latest = dbbackup.restore(self.db, name="latest", target=self.dir / "t3.db", **self.opts)
        self.assertEqual(latest["name"], newest)

    def test_check_reports_an_unhealthy_set_instead_of_raising(self) -> None:
        make_database(self.db)
        empty = dbbackup.check(db_path=self.db, **self.opts)
        self.assertFalse(empty["healthy"])
        failing = {c["name"] for c in empty["criteria"] if not c["ok"]}
        self.assertEqual(failing, {"age", "count"})
        dbbackup.backup(force=True, db_path=self.db, **self.opts)
        self.assertTrue(dbbackup.check(db_path=self.db, max_age="1h", **self.opts)["healthy"])
        self.assertFalse(dbbackup.check(db_path=self.db, min_count=2, **self.opts)["healthy"])
        # `if dbbackup.check(db):` means healthy (T19 #12): the report is false when not.
        self.assertTrue(dbbackup.check(db_path=self.db, max_age="1h", **self.opts))
        self.assertFalse(dbbackup.check(db_path=self.db, min_count=2, **self.opts))
        # A percentage, as `--max-shrink 50%` and the file take it (T23 #10).
        self.assertTrue(dbbackup.check(db_path=self.db, max_age="1h", max_shrink="50%", **self.opts))
        with self.assertRaises(ValueError):
            dbbackup.check(db_path=self.db, max_shrink="half%", **self.opts)
        with self.assertRaises(dbbackup.DbBackupError) as caught:
            dbbackup.check(db_path=self.db, max_age="soon", **self.opts)
        self.assertEqual(caught.exception.exit_code, 2)

    def test_every_function_takes_the_database_as_its_one_positional(self) -> None:
        make_database(self.db)
        made = dbbackup.backup(str(self.db), **self.opts)
        self.assertEqual(made["status"], "ok")
        self.assertEqual(dbbackup.auto(self.db, **self.opts)["status"], "skipped")
        self.assertEqual([b["name"] for b in dbbackup.list_backups(self.db, **self.opts)], [made["name"]])
        self.assertIn("healthy", dbbackup.check(self.db, **self.opts))
        target = self.dir / "restored.db"
        self.assertEqual(dbbackup.restore(self.db, name="latest", target=target, **self.opts)["name"], made["name"])
        self.assertEqual(rows_of(target), rows_of(self.db))
        # Options are keyword-only: a second positional is refused by Python itself.
        # (mypy --strict refuses these calls too; Callable[..., Any] lets them run.)
        functions: List[Callable[..., Any]] = [
            dbbackup.auto,
            dbbackup.backup,
            dbbackup.restore,
            dbbackup.check,
            dbbackup.list_backups,
            dbbackup.verify,
            dbbackup.export,
        ]
        for function in functions:
            with self.subTest(function=function.__name__), self.assertRaises(TypeError):
                function(self.db, True)
        # restore's old first positional (a backup's name) is named, not restored over.
        with self.assertRaises(ValueError) as caught:
            dbbackup.restore(made["name"], **self.opts)
        self.assertIn(f"name={made['name']!r}", str(caught.exception))
        self.assertFalse((self.dir / made["name"]).exists())

    def test_arguments_of_the_wrong_type_are_refused_before_the_binary_runs(self) -> None:
        make_database(self.db)
        mirror = str(self.dir / "x")
        cases: List[Tuple[str, Dict[str, Any], "type[Exception]", str]] = [
            ("backup", {"db_path": self.db, "mirror_dirs": {mirror}}, TypeError, "mirror_dirs must be a list or tuple"),
            ("backup", {"db_path": self.db, "mirror_dirs": mirror}, TypeError, "mirror_dirs must be a list or tuple"),
            ("backup", {"db_path": self.db, "mirror_dirs": [mirror, 3]}, TypeError, "mirror_dirs[1] must be a path"),
            ("backup", {"db_path": b"results.db"}, TypeError, "db_path must be a path (str or os.PathLike[str]), not bytes"),
            ("backup", {"db_path": self.db, "config": b"dbbackup.yaml"}, TypeError, "config must be a path (str or os.PathLike[str]), not bytes"),
            ("backup", {"db_path": ""}, ValueError, "db_path is an empty path"),
            ("backup", {"db_path": "results\0.db"}, ValueError, "db_path contains a NUL character"),
            ("backup", {"db_path": self.db, "force": "yes"}, TypeError, "force must be True or False, not str"),
            ("backup", {"db_path": self.db, "max_backups": True}, TypeError, "max_backups must be an int, not bool"),
            ("backup", {"db_path": self.db, "max_backups": 2.5}, TypeError, "max_backups must be an int, not float"),
            ("backup", {"db_path": self.db, "max_backups": "3"}, TypeError, "max_backups must be an int, not str"),
            ("auto", {"db_path": self.db, "min_interval_hours": math.nan}, ValueError, "must be a finite number"),
            ("auto", {"db_path": self.db, "min_interval_hours": "1"}, TypeError, "min_interval_hours must be a number"),
            ("auto", {"db_path": 5}, TypeError, "db_path must be a path (str or os.PathLike[str]), not int"),
            ("restore", {"db_path": 5}, TypeError, "db_path must be a path"),
            ("restore", {"db_path": self.db, "name": 5}, TypeError, "name must be a str"),
            ("restore", {"db_path": self.db, "name": "latest", "before_job": 264}, ValueError, "or before_job, not both"),
            ("restore", {"db_path": "backup_20250909_093708_002.diff.gz"}, ValueError, "is a backup, not a database"),
            ("restore", {"db_path": "latest"}, ValueError, "restore(db_path, name='latest')"),
            ("backup", {"db_path": self.db, "lock_timeout_seconds": 0.5}, TypeError, "lock_timeout_seconds must be an int"),
            ("backup", {"db_path": self.db, "busy_timeout_seconds": 2.0}, TypeError, "busy_timeout_seconds must be an int"),
            ("backup", {"db_path": self.db, "term_grace_seconds": "5"}, TypeError, "term_grace_seconds must be an int"),
            ("list_backups", {"db_path": self.db, "job": 2.5}, TypeError, "job must be a str or int"),
            ("restore", {"db_path": self.db, "before_job": 2.5}, TypeError, "before_job must be a str or int"),
            ("restore", {"db_path": self.db, "name": ""}, ValueError, "name must be a backup file name or 'latest'"),
            # T25 #4: as `dbbackup restore` needs NAME, replacing a database is never a default.
            ("restore", {"db_path": self.db}, ValueError, "restore() needs name= (a backup file name from list_backups(), or 'latest') or before_job=JOB"),
            ("restore", {"db_path": self.db, "name": "a\0b"}, ValueError, "name must be a backup file name"),
            ("restore", {"db_path": self.db, "target": 1}, TypeError, "target must be a path"),
            # T27 F-F: a filter that matched nothing is not "the newest".
            ("verify", {"db_path": self.db, "names": []}, ValueError, "names is empty"),
            ("check", {"db_path": self.db, "max_age": 24}, TypeError, "a duration such as '24h'"),
            ("check", {"db_path": self.db, "remote_max_age": True}, TypeError, "remote_max_age must be a str"),
            ("check", {"db_path": self.db, "remote_max_age": 48}, TypeError, "a duration such as '48h'"),
            ("restore", {"db_path": self.db, "from_remote": 1}, TypeError, "from_remote must be True or False"),
            ("backup", {"db_path": self.db, "remote_timeout_seconds": 0.5}, TypeError, "remote_timeout_seconds must be"),
            ("backup", {"db_path": self.db, "remote_max_backups": True}, TypeError, "remote_max_backups must be an int"),
            ("backup", {"db_path": self.db, "remote": 5}, TypeError, "remote must be a str"),
            ("backup", {"db_path": self.db, "remote_upload": "always"}, ValueError, "remote_upload must be one of"),
            ("sync", {"db_path": self.db, "remote_upload": True}, TypeError, "remote_upload must be a str, one of"),
            ("sync", {"db_path": self.db, "remote_upload": ["sync"]}, TypeError, "remote_upload must be a str, one of"),
            ("check", {"db_path": self.db, "min_count": None, "max_shrink": True}, TypeError, "max_shrink must be"),
            ("list_backups", {"db_path": self.db, "verbose": "yes"}, TypeError, "verbose must be True, False or"),
            ("list_backups", {"db_path": self.db, "verbose": -1}, ValueError, "verbose must be True, False or a count >= 0, not -1"),
            ("list_backups", {"db_path": self.db, "config": ["a.yaml"]}, TypeError, "config must be a path"),
            ("list_backups", {"db_path": self.db, "no_such_option": {"a": 1}}, TypeError, "no_such_option must be"),
            # A misspelled option is Python's TypeError naming it and the close one.
            ("backup", {"db_path": self.db, "max_bakups": 3}, TypeError,
             "unexpected keyword argument 'max_bakups'; did you mean 'max_backups'?"),
            ("check", {"db_path": self.db, "max_shrnk": 5}, TypeError, "did you mean 'max_shrink'?"),
            # Another function's option is named as such, not passed to the binary.
            ("auto", {"db_path": self.db, "force": True}, TypeError,
             "auto() got an unexpected keyword argument 'force' (only backup() and restore() take it)"),
            ("backup", {"db_path": self.db, "target": self.db}, TypeError,
             "backup() got an unexpected keyword argument 'target' (only restore() takes it)"),
            ("backup", {"db_path": self.db, "name": "latest"}, TypeError,
             "backup() got an unexpected keyword argument 'name'"),
            ("list_backups", {"db_path": self.db, "before_job": 3}, TypeError,
             "list_backups() got an unexpected keyword argument 'before_job'"),
            ("sync", {"db_path": self.db, "max_age": "1h"}, TypeError,
             "sync() got an unexpected keyword argument 'max_age' (only check() takes it)"),
        ]
        for function, arguments, error, words in cases:
            with self.subTest(function=function, arguments=arguments):
                with mock.patch.object(dbbackup, "_call", side_effect=AssertionError("the binary ran")):
                    with self.assertRaises(error) as caught:
                        getattr(dbbackup, function)(**arguments, **self.opts)
                self.assertIn(words, str(caught.exception))
        self.assertEqual(sorted(os.listdir(str(self.dir))), ["results.db"], "nothing created")

    def test_the_type_hints_refuse_what_the_api_refuses_at_run_time(self) -> None:
        # Each call is refused twice: here at run time, and by `mypy --strict`
        # (packaging/ci-wheel.sh), whose warn_unused_ignores fails the check if
        # the hints let the call through and its `type: ignore` is not needed.
        calls: List[Tuple[Callable[[], Any], "type[Exception]", str]] = [
            (lambda: dbbackup.backup(self.db, max_bakups=3), TypeError, "did you mean 'max_backups'?"),  # type: ignore[call-arg]
            (lambda: dbbackup.backup(self.db, mirror_dirs={"a"}), TypeError, "mirror_dirs must be a list"),  # type: ignore[arg-type]
            (lambda: dbbackup.backup(self.db, mirror_dirs="a"), TypeError, "mirror_dirs must be a list"),  # type: ignore[arg-type]
            (lambda: dbbackup.backup(self.db, max_backups="3"), TypeError, "max_backups must be an int"),  # type: ignore[arg-type]
            (lambda: dbbackup.backup(self.db, config=b"x.yaml"), TypeError, "config must be a path"),  # type: ignore[arg-type]
            (lambda: dbbackup.check(self.db, max_age=24), TypeError, "max_age must be a str"),  # type: ignore[arg-type]
            (lambda: dbbackup.auto(self.db, force=True), TypeError, "only backup() and restore() take it"),  # type: ignore[call-arg]
            (lambda: dbbackup.sync(self.db, remote_upload="always"), ValueError, "remote_upload must be one of"),  # type: ignore[arg-type]
            (lambda: dbbackup.list_backups(self.db, job=2.5), TypeError, "job must be a str or int"),  # type: ignore[arg-type]
            (lambda: dbbackup.verify(self.db, max_age="1h"), TypeError, "only check() takes it"),  # type: ignore[call-arg]
        ]
        for call, error, words in calls:
            with self.subTest(words=words):
                with mock.patch.object(dbbackup, "_call", side_effect=AssertionError("the binary ran")):
                    with self.assertRaises(error) as caught:
                        call()
                self.assertIn(words, str(caught.exception))

    def test_the_typed_options_are_the_options_each_function_takes(self) -> None:
        # The hints and the run-time table say the same: no option typed for a
        # function that refuses it, none it takes left untyped.
        own = dbbackup._OWN_OPTIONS
        shared = set(dbbackup._KINDS) - {key for keys in own.values() for key in keys} - {"db_path"}
        typed = {
            "auto": dbbackup.Options,
            "backup": dbbackup.Options,
            "restore": dbbackup.RestoreOptions,
            "check": dbbackup.CheckOptions,
            "list": dbbackup.ListOptions,
            "sync": dbbackup.Options,
            "verify": dbbackup.RemoteOptions,
            "export": dbbackup.RemoteOptions,
        }
        for command, options in typed.items():
            function = getattr(dbbackup, dbbackup._FUNCTIONS.get(command, command))
            keywords = {
                name
                for name, parameter in inspect.signature(function).parameters.items()
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "names"
            }
            with self.subTest(command=command):
                self.assertEqual(set(options.__annotations__) | keywords, shared | set(own[command]))

    def test_the_option_table_names_real_flags_of_the_binary(self) -> None:
        # Each option the module types is a flag of some command the API runs, or a
        # global one (in `dbbackup --help`).
        helps = "".join(
            subprocess.run(
                [dbbackup.binary(), *command, "--help"], stdout=subprocess.PIPE, check=True, universal_newlines=True
            ).stdout
            for command in ([], ["auto"], ["backup"], ["restore"], ["check"], ["list"], ["sync"], ["verify"], ["export"])
        )
        for key in dbbackup._KINDS:
            flag = "--" + dbbackup._FLAG_NAMES.get(key, key.replace("_", "-"))
            with self.subTest(key=key):
                self.assertRegex(helps, re.escape(flag) + r"\b")

    def test_a_verbosity_count_and_job_ids_become_flags(self) -> None:
        make_database(self.db)
        dbbackup.backup(self.db, **self.opts)
        with mock.patch.object(dbbackup, "_call", return_value=(0, "[]", "")) as call:
            dbbackup.list_backups(self.db, verbose=2, job=264, **self.opts)
        argv = call.call_args[0][0]
        self.assertEqual(argv.count("--verbose"), 2)
        self.assertIn("--job=264", argv)
        # The binary takes them: no backup of job 99999, one of this (non-SLURM) run.
        self.assertEqual(dbbackup.list_backups(self.db, verbose=2, job=99999, **self.opts), [])

    def test_options_that_would_hide_the_json_are_refused(self) -> None:
        for option in ("quiet", "format"):
            with self.subTest(option=option), self.assertRaises(TypeError):
                refused: Dict[str, Any] = {option: True}
                dbbackup.list_backups(db_path=self.db, **refused)

    def test_the_binary_log_lines_go_to_the_dbbackup_logger(self) -> None:
        make_database(self.db)
        with self.assertLogs("dbbackup", logging.INFO) as logs:
            made = dbbackup.backup(force=True, db_path=self.db, **self.opts)
        published = [r for r in logs.records if made["name"] in r.getMessage()]
        self.assertTrue(published, logs.output)
        self.assertEqual(published[0].levelno, logging.INFO)
        self.assertRegex(published[0].getMessage(), r"^job=local host=\S+: published backup_")

    def test_help_lists_every_option_and_no_inherited_dict_methods(self) -> None:
        # T25 #10: help(dbbackup) was 1212 lines, six times dict's methods, and the
        # option names were cut off in the TypedDicts' annotations.
        import pydoc

        text = pydoc.render_doc(dbbackup, renderer=pydoc.TextDoc())
        self.assertNotIn("Methods inherited from builtins.dict", text)
        self.assertLess(len(text.splitlines()), 500, text)
        doc = " ".join((dbbackup.__doc__ or "").split())
        kinds = (dbbackup.Options, dbbackup.RestoreOptions, dbbackup.CheckOptions,
                 dbbackup.ListOptions, dbbackup.RemoteOptions)
        for kind in kinds:
            for key in kind.__annotations__:
                with self.subTest(option=key):
                    self.assertIn(f"``{key}``", doc)

    def test_the_readme_and_docs_give_the_signatures_the_functions_have(self) -> None:
        docs = README.parent / "docs" / "python.md"
        for name in dbbackup.__all__:
            function = getattr(dbbackup, name)
            if not inspect.isfunction(function) or "db_path" not in inspect.signature(function).parameters:
                continue
            default = inspect.signature(function).parameters["db_path"].default
            for path in (README, docs):
                with self.subTest(function=name, file=path.name):
                    signature = f"`{name}(db_path={default!r}"
                    self.assertTrue(signature in path.read_text(encoding="utf-8"), f"{path.name} lacks {signature}")

    def test_the_readme_snippet_backs_up_before_plotting_and_after_the_analysis(self) -> None:
        blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
        [snippet] = [block for block in blocks if "import dbbackup" in block]
        make_database(self.db)  # results.db in the working directory, as in the snippet

        def run_analysis() -> None:
            connection = sqlite3.connect(str(self.db))
            with connection:
                connection.execute("INSERT INTO results (run, value) VALUES ('analysis', 2.0)")
            connection.close()

        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        self.addCleanup(setattr, root, "handlers", handlers)
        self.addCleanup(root.setLevel, level)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(snippet, {"make_plots": lambda: None, "run_analysis": run_analysis})
        self.assertRegex(printed.getvalue(), r"backup: ok backup_\d{8}_\d{6}(_\d{3})?\.db\.gz")
        made = dbbackup.list_backups(backup_dir="outputs/db_backups")
        self.assertEqual([b["kind"] for b in made], ["manual", "auto"])
        restored = self.dir / "check.db"
        dbbackup.restore(name=made[0]["name"], target=restored, backup_dir="outputs/db_backups")
        self.assertEqual(rows_of(restored), rows_of(self.db))

    def test_ctrl_c_lets_the_binary_clean_up_before_keyboardinterrupt(self) -> None:
        make_large_database(self.db)
        script = (
            "import signal, sys\n"
            "# A terminal's Ctrl-C, also when started where SIGINT is ignored (a background job).\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "sys.path.insert(0, sys.argv[3])  # the dbbackup under test, installed or not\n"
            "import dbbackup\n"
            "try:\n"
            "    dbbackup.backup(force=True, db_path=sys.argv[1], backup_dir=sys.argv[2], threads=1)\n"
            "except KeyboardInterrupt:\n"
            "    sys.exit(42)\n"
            "sys.exit(0)\n"
        )
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(dbbackup.__file__)))
        child = subprocess.Popen([sys.executable, "-c", script, str(self.db), str(self.backups), package_parent])
        deadline = time.monotonic() + 30
        while not list(self.backups.glob(".dbbackup-tmp-*")) and child.poll() is None:
            self.assertLess(time.monotonic(), deadline, "the backup never started")
            time.sleep(0.005)
        self.assertIsNone(child.poll(), "the backup ended before it could be interrupted")
        child.send_signal(signal.SIGINT)  # to Python only, as a terminal's Ctrl-C reaches it
        self.assertEqual(child.wait(timeout=60), 42)
        self.assertEqual(list(self.backups.glob(".dbbackup-tmp-*")), [], "temp files removed")
        self.assertEqual(list(self.backups.glob("backup_*")), [], "nothing half-done published")
        # The lock was released: the next backup does not wait for it.
        started = time.monotonic()
        dbbackup.backup(force=True, db_path=self.db, backup_dir=self.backups, lock_timeout_seconds=1)
        self.assertLess(time.monotonic() - started, 30)

    def test_ctrl_c_while_the_binary_starts_still_reaches_it(self) -> None:
        # A Ctrl-C between the binary's start and Popen() returning its pid (a busy
        # machine deschedules Python there: the old wrapper failed 1 run in 20)
        # raised KeyboardInterrupt with no process to pass it to: the binary went
        # on with its temp file and lock, and published a backup afterwards. Here
        # the SIGINT is sent exactly there: when Popen.__init__ returns, once the
        # binary has made its temp file.
        make_large_database(self.db)
        script = (
            "import glob, os, signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "sys.path.insert(0, sys.argv[3])\n"
            "import dbbackup\n"
            "def ctrl_c_as_popen_returns(frame, event, arg):\n"
            "    if event == 'return' and frame.f_code is subprocess.Popen.__init__.__code__:\n"
            "        sys.setprofile(None)\n"
            "        deadline = time.monotonic() + 30\n"
            "        while not glob.glob(os.path.join(sys.argv[2], '.dbbackup-tmp-*')):\n"
            "            if time.monotonic() > deadline:\n"
            "                sys.exit(3)\n"
            "            time.sleep(0.005)\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "sys.setprofile(ctrl_c_as_popen_returns)\n"
            "try:\n"
            "    dbbackup.backup(force=True, db_path=sys.argv[1], backup_dir=sys.argv[2], threads=1)\n"
            "except KeyboardInterrupt:\n"
            "    sys.exit(42)\n"
            "sys.exit(0)\n"
        )
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(dbbackup.__file__)))
        child = subprocess.run(
            [sys.executable, "-c", script, str(self.db), str(self.backups), package_parent], timeout=60
        )
        self.assertEqual(child.returncode, 42)
        self.assertEqual(list(self.backups.glob(".dbbackup-tmp-*")), [], "temp files removed")
        self.assertEqual(list(self.backups.glob("backup_*")), [], "nothing half-done published")
        # The binary has ended: its lock does not make the next backup wait.
        started = time.monotonic()
        dbbackup.backup(force=True, db_path=self.db, backup_dir=self.backups, lock_timeout_seconds=1)
        self.assertLess(time.monotonic() - started, 30)


class MainTest(unittest.TestCase):
    def test_python_dash_m_without_a_binary_says_one_line(self) -> None:
        import dbbackup.__main__ as entry

        stderr = io.StringIO()
        missing = FileNotFoundError("the dbbackup executable is neither installed with this package nor on PATH")
        with mock.patch.object(entry, "binary", side_effect=missing), contextlib.redirect_stderr(stderr):
            with self.assertRaises(SystemExit) as caught:
                entry.main()
        self.assertEqual(caught.exception.code, 127)
        self.assertEqual(stderr.getvalue(), f"error: {missing}\n")


class InstallTest(unittest.TestCase):
    """What the wheel installs: the binary beside the package, `python -m dbbackup`."""

    def setUp(self) -> None:
        try:
            from importlib.metadata import PackageNotFoundError, version
        except ImportError:  # pragma: no cover - Python < 3.8 is not supported
            self.skipTest("importlib.metadata missing")
        try:
            self.version = version(DISTRIBUTION)
        except PackageNotFoundError:
            if EXPECT_WHEEL:
                self.fail(f"DBBACKUP_EXPECT_WHEEL=1 but {DISTRIBUTION} is not installed")
            self.skipTest(f"{DISTRIBUTION} not installed (development run)")

    def test_the_bundled_binary_is_the_one_installed_with_the_package(self) -> None:
        path = dbbackup.binary()
        self.assertEqual(os.path.dirname(path), sysconfig.get_path("scripts"))
        self.assertTrue(os.path.dirname(dbbackup.__file__).startswith(sysconfig.get_path("purelib")))
        out = subprocess.run([path, "--version"], stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertEqual(out.strip(), f"dbbackup {self.version}")

    def test_pip_show_has_an_author_and_the_licence(self) -> None:
        from importlib.metadata import metadata

        info = metadata(DISTRIBUTION)
        # pip show prints Author; older pips print License only from the old field.
        self.assertEqual(info["Author"], "The dbbackup maintainers")
        self.assertEqual(info["License-Expression"], "MIT OR Apache-2.0")

    def test_python_dash_m_dbbackup_runs_the_binary(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "dbbackup", "--version"], stdout=subprocess.PIPE, check=True
        ).stdout.decode()
        self.assertEqual(out.strip(), f"dbbackup {self.version}")
        failed = subprocess.run(
            [sys.executable, "-m", "dbbackup", "--compression-level", "0", "list"], stderr=subprocess.PIPE, check=False
        )
        self.assertEqual(failed.returncode, 2, "exit code passed through")
        self.assertIn(b"invalid value '0' for '--compression-level", failed.stderr)


if __name__ == "__main__":
    unittest.main()
