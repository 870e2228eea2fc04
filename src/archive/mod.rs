//! gzip in and out: parallel block compression into several gzip members, and a
//! bounded, checked decompression.

pub(crate) mod compress;
pub(crate) mod decompress;
pub(crate) mod inflate;
pub(crate) mod members;

/// Compression threads: `requested` when not 0, else the cores this process may
/// really use — affinity and cgroup quota (both honoured by
/// `available_parallelism`), capped by `slurm_cpus` (`SLURM_CPUS_PER_TASK`) when
/// SLURM set it, so a backup never takes more cores than the job was given on a
/// shared node.
pub(crate) fn worker_threads(requested: u32, slurm_cpus: Option<usize>) -> usize {
    let available = assumed_cores()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    threads_for(requested, available, slurm_cpus)
}

/// The most threads one compression or inflation pipeline uses, whatever the
/// thread count: its buffers (blocks of 1 MiB with their gzip members, a
/// libdeflate state per thread) must keep any backup, restore or verify under
/// 64 MiB of peak RSS on a 64-core node (`members::a_64_core_node_stays_under_64_mib`).
/// More would not be faster: eight libdeflate threads outrun the one thread
/// that reads the snapshot (or hashes and writes what they inflate).
pub(crate) const MAX_PIPELINE_THREADS: usize = 8;

/// Workers and block buffers of one pipeline asked to use `threads` threads:
/// a block per worker, one being filled or written, and slack for members
/// finished out of order (`2 × threads + 2` up to 2 threads, `threads + 4`
/// beyond: at 8, 12 blocks rather than 18).
pub(crate) fn pipeline(threads: usize) -> (usize, usize) {
    let workers = threads.clamp(1, MAX_PIPELINE_THREADS);
    (workers, (2 * workers + 2).min(workers + 4))
}

/// Set to a number of cores to size threads and buffers as on a node with that
/// many (tests and benchmarks of a 64-core node's memory on a small machine);
/// unset or not a positive number, the cores this process may use.
pub(crate) const CORES_ENV: &str = "DBBACKUP_ASSUME_CORES";

fn assumed_cores() -> Option<usize> {
    std::env::var(CORES_ENV)
        .ok()?
        .parse()
        .ok()
        .filter(|&n: &usize| n > 0)
}

fn threads_for(requested: u32, available: usize, slurm_cpus: Option<usize>) -> usize {
    // More threads than cores only add buffers in flight (memory), never speed.
    if requested > 0 {
        return (requested as usize).min(available).max(1);
    }
    slurm_cpus.map_or(available, |n| n.min(available)).max(1)
}

#[cfg(test)]
mod tests {
    use super::threads_for;

    #[test]
    fn threads_follow_flag_then_slurm_then_cores() {
        assert_eq!(threads_for(3, 8, Some(2)), 3, "the flag wins");
        assert_eq!(threads_for(0, 8, Some(2)), 2, "SLURM's allocation caps");
        assert_eq!(
            threads_for(0, 2, Some(16)),
            2,
            "never more than usable cores"
        );
        assert_eq!(threads_for(0, 4, None), 4);
        assert_eq!(threads_for(0, 0, None), 1);
        assert_eq!(
            threads_for(64, 2, None),
            2,
            "the flag is capped at the cores"
        );
    }
}
