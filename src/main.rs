//! The `memsweep` command line: parse flags, call the library, map errors to
//! exit codes (2 for bad input, 1 for failures while running).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::backend::Executor;
use memsweep::bench;
use memsweep::run::{self, RunOptions};
use memsweep::sweep::{self, Spec};

#[derive(Parser)]
#[command(
    name = "memsweep",
    version,
    about = "Train thousands of simulated memristive networks with learning from mistakes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    /// The best available: the CPU until a GPU backend is built in.
    Auto,
    Cpu,
}

#[derive(Subcommand)]
enum Command {
    /// Train every instance of a sweep and write Parquet results.
    Run {
        /// The sweep file (TOML).
        spec: PathBuf,
        /// Results directory (default: results/<sweep name>).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
        /// Instances simulated and written per chunk.
        #[arg(long, default_value_t = 1024)]
        batch_size: usize,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
    },
    /// Print the grid, the instance count and a bound on the work, without running.
    Plan { spec: PathBuf },
    /// Time fixed configurations (2-4-2, 8-16-8, 16-64-16, 8-[32,32,32]-8).
    Bench {
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Multiply every configuration's instance count.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// One JSON object per configuration instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// An error with the exit status it maps to.
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    fn input(message: impl ToString) -> Self {
        Failure {
            status: 2,
            message: message.to_string(),
        }
    }

    fn runtime(message: impl ToString) -> Self {
        Failure {
            status: 1,
            message: message.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}

fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run {
            spec,
            out,
            threads,
            backend,
            batch_size,
            quiet,
        } => {
            let spec = Spec::from_file(&spec).map_err(Failure::input)?;
            if batch_size == 0 {
                return Err(Failure::input("--batch-size: must be at least 1"));
            }
            let pool = thread_pool(threads)?;
            let executor = executor(backend);
            let out_dir = out.unwrap_or_else(|| PathBuf::from("results").join(&spec.name));
            run::check_out_dir(&out_dir).map_err(Failure::input)?;
            if !quiet {
                eprintln!(
                    "memsweep: {} instances of sweep '{}' on {} ({} threads) -> {}",
                    spec.n_instances(),
                    spec.name,
                    executor.name(),
                    pool.current_num_threads(),
                    out_dir.display()
                );
            }
            let opts = RunOptions {
                out_dir: out_dir.clone(),
                batch_size,
                progress: !quiet,
            };
            let summary = pool
                .install(|| run::run(&spec, executor.as_ref(), &opts))
                .map_err(|e| Failure::runtime(format!("{}: {e}", out_dir.display())))?;
            print!("{}", run::summary_table(&spec, &summary));
            Ok(())
        }
        Command::Plan { spec } => {
            let spec = Spec::from_file(&spec).map_err(Failure::input)?;
            print!("{}", sweep::describe(&spec));
            Ok(())
        }
        Command::Bench {
            backend,
            threads,
            scale,
            json,
        } => {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(Failure::input(format!(
                    "--scale: must be a positive number (got {scale})"
                )));
            }
            let pool = thread_pool(threads)?;
            let executor = executor(backend);
            let mut results = Vec::new();
            for config in bench::standard_configs(scale) {
                let r = pool.install(|| bench::run_config(&config, executor.as_ref(), 1));
                if json {
                    println!("{}", r.to_json());
                } else {
                    eprintln!("{}: {:.1} instances/s", r.config, r.instances_per_s);
                }
                results.push(r);
            }
            if !json {
                println!("threads: {}", pool.current_num_threads());
                print!("{}", bench::table(&results));
            }
            Ok(())
        }
    }
}

fn executor(choice: BackendChoice) -> Box<dyn Executor> {
    match choice {
        BackendChoice::Auto | BackendChoice::Cpu => Box::new(Cpu {
            precision: Precision::F64,
        }),
    }
}

fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, Failure> {
    if threads == Some(0) {
        return Err(Failure::input("--threads: must be at least 1"));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start worker threads: {e}")))
}
