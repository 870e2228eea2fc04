//! The work of a job under test: a real program (Python's `sqlite3`, another
//! process than the test and than dbbackup) writing to the ledger database.

use std::path::Path;

/// A Python program that appends balanced pairs to the ledger of the database
/// named by its first argument, one transaction each, `pause` seconds apart,
/// for `seconds` (until killed if `None`); with `pid_file`, it first writes its
/// pid there (for a test that checks it was stopped).
pub(crate) fn python_ledger_writer(
    pause: f64,
    seconds: Option<u32>,
    pid_file: Option<&Path>,
) -> String {
    let record_pid = pid_file.map_or(String::new(), |path| {
        format!(
            "open({:?}, \"w\").write(str(os.getpid()))\n",
            path.display().to_string()
        )
    });
    let until = seconds.map_or("True".to_string(), |s| format!("time.time() < start + {s}"));
    format!(
        r#"import os, sqlite3, sys, time
{record_pid}start = time.time()
con = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)
while {until}:
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO ledger (amount, note) VALUES (1, 'w')")
    con.execute("INSERT INTO ledger (amount, note) VALUES (-1, 'balance')")
    con.execute("UPDATE counter SET n = n + 2")
    con.execute("COMMIT")
    time.sleep({pause})
"#
    )
}
