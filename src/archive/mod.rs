//! gzip in and out: parallel block compression into several gzip members, and a
//! bounded, checked decompression.

pub mod compress;
pub mod decompress;

/// The cores this process may really use: affinity and cgroup quota (both honoured
/// by `available_parallelism`) and `SLURM_CPUS_PER_TASK`, capped by `requested`
/// when it is not 0.
pub fn worker_threads(requested: u32) -> usize {
    if requested > 0 {
        return requested as usize;
    }
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slurm = std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    slurm.map_or(available, |n| n.min(available))
}
