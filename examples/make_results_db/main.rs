//! Make a realistic results database for benchmarks, docs and trying dbbackup out:
//!
//!     cargo run --release --example make_results_db -- PATH [--size-mb 35] [--seed 1] [--wal] [--append]
//!
//! Deterministic for a seed; see generator.rs for the shape of the data.

mod generator;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Make a realistic network-analysis results database (SQLite)")]
struct Args {
    /// The database to create (must not exist)
    path: PathBuf,
    /// Approximate size in MiB
    #[arg(long, default_value_t = 35.0)]
    size_mb: f64,
    /// Seed: the same seed gives the same content
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Leave the database in WAL mode
    #[arg(long)]
    wal: bool,
    /// Grow an existing database to --size-mb by appending runs (use another --seed)
    #[arg(long)]
    append: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = generator::Options {
        size_mb: args.size_mb,
        seed: args.seed,
        wal: args.wal,
    };
    let made = if args.append {
        generator::append(&args.path, options)
    } else {
        generator::make(&args.path, options)
    };
    match made {
        Ok(made) => {
            println!(
                "{}: {} bytes, {} runs",
                args.path.display(),
                made.bytes,
                made.runs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make_results_db: {e}");
            ExitCode::FAILURE
        }
    }
}
