//! What SLURM tells a process (`job`: the environment of this job or array task)
//! and what dbbackup remembers across the tasks of one job (`array`: restore-point
//! records, once-per-array claims, the final job's marker), and the job scripts
//! that run dbbackup (`templates`).

pub(crate) mod array;
pub mod job;
pub(crate) mod templates;
