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
    let available = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    threads_for(requested, available, slurm_cpus)
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
