//! What SLURM tells a process (`job`: the environment of this job or array task;
//! `identity`: whether it really is an array task, as SLURM says), the one
//! runner of the scheduler's commands (`scheduler`), what dbbackup remembers
//! across the tasks of one job (`array`), the pre-job and final-job protocols
//! (`prejob`, `final_job`), undoing a job (`undo`), jobs that may be writing a database restored over
//! (`writers`), the job scripts that run
//! dbbackup (`templates`); `supervise` runs a job's work for `dbbackup run`,
//! `time_limit` makes the backup its USR1 warning asks for; `steps`: the job's
//! `srun` steps still running after a termination signal.

pub(crate) mod array;
pub(crate) mod descendants;
pub(crate) mod final_job;
pub(crate) mod identity;
pub mod job;
pub(crate) mod pins;
pub(crate) mod prejob;
pub(crate) mod scheduler;
pub(crate) mod steps;
pub(crate) mod supervise;
pub(crate) mod templates;
pub(crate) mod time_limit;
pub(crate) mod undo;
pub(crate) mod writers;
