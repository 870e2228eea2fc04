//! Integration tests: the built binary on real databases in temp dirs.

mod common;

mod arrays;
mod attempts;
mod backup;
mod bad_input;
mod cli_ux;
mod config;
mod crash;
mod diff;
mod full_disk;
mod fuzz;
mod hooks;
mod hostile;
mod layering;
mod live_writers;
mod members;
mod metrics;
mod process_edges;
mod remote;
mod remote_faults;
mod restore;
mod restore_points;
mod restore_safety;
mod shared_group;
mod signals;
mod slurm_e2e;
mod slurm_identity;
mod slurm_modes;
mod stress;
mod templates;
mod truth_copies;
mod truth_restore;
mod truth_store;
mod truth_trial;
mod verify_list_prune;
