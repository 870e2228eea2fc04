//! What SLURM tells a process (`job`: the environment of this job or array task)
//! and what dbbackup remembers across the tasks of one job (`array`: restore-point
//! records, once-per-array claims, the final job's marker), and the job scripts
//! that run dbbackup (`templates`); `supervise` runs a job's work for `dbbackup
//! run`, `time_limit` makes the backup its USR1 warning asks for.

pub(crate) mod array;
pub mod job;
pub(crate) mod supervise;
pub(crate) mod templates;
pub(crate) mod time_limit;
