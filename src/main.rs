//! The `memsweep` command line: parse flags, call the library, map errors to
//! exit codes (2 for bad input, 1 for failures while running).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::backend::gpu::{self, Gpu, Selection};
use memsweep::backend::Executor;
use memsweep::bench;
use memsweep::model::circuit::SolverChoice;
use memsweep::run::{self, RunOptions};
use memsweep::shard::{self, Shard};
use memsweep::slurm::{self, SlurmOptions};
use memsweep::status::{self, Inventory};
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
    /// A hardware GPU adapter if there is one, else the CPU (a software
    /// Vulkan driver such as lavapipe does not count).
    Auto,
    Cpu,
    /// The first suitable GPU adapter, software drivers included.
    Gpu,
    /// Both, side by side (bench only).
    All,
}

#[derive(Subcommand)]
enum Command {
    /// Train every instance of a sweep and write Parquet results.
    Run {
        /// The sweep file (TOML).
        spec: PathBuf,
        /// Results directory (default: results/<sweep name>); a rerun resumes it.
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Worker threads (default: SLURM_CPUS_PER_TASK, else all cores).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
        /// Nodal solve: `dense` (split and dense L D L^T), `sparse`
        /// (conjugate gradients) or `auto` (per boundary, the cheaper by
        /// estimate). It never changes the model.
        #[arg(long, default_value = "auto", value_name = "auto|dense|sparse")]
        solver: SolverChoice,
        /// Instances simulated and written per chunk (default: 1024 on the
        /// CPU, 65536 on a GPU, which needs many instances in flight).
        #[arg(long)]
        batch_size: Option<usize>,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
        /// Run only shard I of N (0-based): instances k with k mod N = I
        /// (default: from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Ignore the SLURM_* environment variables.
        #[arg(long)]
        no_slurm: bool,
    },
    /// Write an sbatch script that runs a sweep as a Slurm array job, one shard per task.
    Slurm {
        /// The sweep file (TOML).
        spec: PathBuf,
        /// Array tasks, one shard of the sweep each.
        #[arg(long)]
        shards: usize,
        /// Results directory shared by every task (default: results/<sweep name>).
        #[arg(short, long)]
        out: Option<PathBuf>,
        #[arg(long)]
        partition: Option<String>,
        /// Wall-clock limit per task (sbatch --time).
        #[arg(long)]
        time: Option<String>,
        /// GPUs per task, [type:]count (sbatch --gpus-per-task).
        #[arg(long)]
        gpus_per_task: Option<String>,
        /// Cores per task, each a worker thread.
        #[arg(long, default_value_t = 1)]
        cpus_per_task: usize,
        /// Instances simulated and written per chunk (default: as `run`).
        #[arg(long)]
        batch_size: Option<usize>,
    },
    /// Count the complete and missing instances of a results directory, per shard.
    Status {
        /// The results directory (holding sweep.toml).
        dir: PathBuf,
        /// Shard count to report by (default: read from the chunk file names).
        #[arg(long)]
        shards: Option<usize>,
    },
    /// Print the grid, the instance count and a bound on the work, without running.
    Plan { spec: PathBuf },
    /// Write one instance as an ngspice netlist: every memristor in its
    /// state, and one read, punish and normalize of pattern 0.
    ExportSpice {
        /// The sweep file (TOML).
        spec: PathBuf,
        /// Grid point index.
        #[arg(long)]
        point: usize,
        /// Replica within the grid point.
        #[arg(long)]
        replica: usize,
        /// Export the state after this many eras of training (default: the
        /// initial state).
        #[arg(long)]
        era: Option<usize>,
        /// The netlist file to write.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Write one instance's wiring: edges and nodes (CSV or Parquet) with
    /// every per-edge value, and GraphML, for networkx, Gephi or a graph sweep.
    ExportGraph {
        /// The sweep file (TOML).
        spec: PathBuf,
        /// Grid point index.
        #[arg(long)]
        point: usize,
        /// Replica within the grid point.
        #[arg(long)]
        replica: usize,
        /// The `r` column after this many eras of training (0, the
        /// default: the initial state).
        #[arg(long, default_value_t = 0)]
        era: usize,
        /// The directory to write edges, nodes and graph.graphml into.
        #[arg(short, long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = TableFormat::Csv)]
        format: TableFormat,
    },
    /// Summarise a results directory: tables, fits and figures in DIR/report/.
    Report {
        /// The results directory (holding instances/ and eras/).
        dir: PathBuf,
    },
    /// Structure of every grid point without training: nodes, edges,
    /// cycle-space dimension, initial controllability.
    Analyze {
        spec: PathBuf,
        /// Replicas averaged per grid point (default: the sweep's).
        #[arg(long)]
        replicas: Option<usize>,
    },
    /// Every sweep-file field: its default and meaning, as a Markdown
    /// table (the README's reference).
    Fields,
    /// List the GPU adapters wgpu sees, and which one --backend auto picks.
    Devices,
    /// Time fixed configurations (2-4-2, 8-16-8, 16-64-16, 8-[32,32,32]-8,
    /// bulk-1040, 32-128-32, 64-256-64).
    Bench {
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
        /// Nodal solves of the CPU backend, comma-separated, each timed as
        /// a backend of its own (`cpu` for auto, `cpu-dense`, `cpu-sparse`):
        /// `--solver auto,dense` compares them side by side.
        #[arg(
            long,
            default_value = "auto",
            value_delimiter = ',',
            value_name = "auto|dense|sparse"
        )]
        solver: Vec<SolverChoice>,
        /// Instances of every configuration on the GPU (default: as on the
        /// CPU); rates are per second, and a GPU needs many in flight.
        #[arg(long)]
        gpu_instances: Option<usize>,
        /// Only these configurations (by name, e.g. 8-16-8; repeatable).
        #[arg(long = "config", value_name = "NAME")]
        configs: Vec<String>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TableFormat {
    Csv,
    Parquet,
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
    // Mesa's device-select Vulkan layer opens a Wayland connection to rank
    // GPUs and, on a headless machine (a cluster node, CI), prints
    // "error: XDG_RUNTIME_DIR is invalid" on every start. memsweep ranks
    // adapters itself, so the layer is turned off, before any thread starts.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
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
            solver,
            spec,
            out,
            threads,
            backend,
            batch_size,
            quiet,
            shard,
            no_slurm,
        } => {
            let spec = Spec::from_file(&spec).map_err(Failure::input)?;
            if batch_size == Some(0) {
                return Err(Failure::input("--batch-size: must be at least 1"));
            }
            if backend == BackendChoice::All {
                return Err(Failure::input(
                    "--backend all: only `memsweep bench` runs both backends",
                ));
            }
            let shard = match shard {
                Some(text) => text
                    .parse::<Shard>()
                    .map_err(|e| Failure::input(format!("--shard: {e}")))?,
                None if no_slurm => Shard::ALL,
                None => shard::shard_from_env(shard::env_var)
                    .map_err(Failure::input)?
                    .unwrap_or(Shard::ALL),
            };
            let threads = match threads {
                None if !no_slurm => {
                    shard::threads_from_env(shard::env_var).map_err(Failure::input)?
                }
                given => given,
            };
            if shard.count() > spec.n_instances() {
                return Err(Failure::input(format!(
                    "--shard: {} shards of a sweep of {} instances would leave some with nothing to run; use at most {}",
                    shard.count(),
                    spec.n_instances(),
                    spec.n_instances()
                )));
            }
            let out_dir = out.unwrap_or_else(|| PathBuf::from("results").join(&spec.name));
            run::check_out_dir(&spec, &out_dir).map_err(Failure::input)?;
            sweep::check_wiring(&spec, spec.replicas, |k| shard.owns(k)).map_err(Failure::input)?;
            let pool = thread_pool(threads)?;
            let points: Vec<_> = spec.points().into_iter().map(|p| p.params).collect();
            let executor = executors(backend, &points, solver)?.remove(0);
            let batch_size = batch_size.unwrap_or(match executor.name() {
                "gpu" => 65536,
                _ => 1024,
            });
            // Refusals (another sweep's directory or files, a live run of
            // this shard) are input errors: nothing ran.
            let refused = |e: std::io::Error| match e.kind() {
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                    Failure::input(e)
                }
                _ => Failure::runtime(e),
            };
            let opened = run::ShardDir::open(&spec, &out_dir, shard).map_err(refused)?;
            if !quiet {
                let part = match shard.count() {
                    1 => String::new(),
                    _ => format!(" (shard {shard} of {})", spec.n_instances()),
                };
                eprintln!(
                    "memsweep: {} instances{part} of sweep '{}' on {} ({} threads) -> {}",
                    shard.len(spec.n_instances()),
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
                shard,
            };
            let summary = pool
                .install(|| run::run_opened(&spec, executor.as_ref(), &opts, opened))
                .map_err(Failure::runtime)?;
            print!("{}", run::summary_table(&spec, &summary));
            Ok(())
        }
        Command::Slurm {
            spec,
            shards,
            out,
            partition,
            time,
            gpus_per_task,
            cpus_per_task,
            batch_size,
        } => {
            let spec = Spec::from_file(&spec).map_err(Failure::input)?;
            let opts = SlurmOptions {
                shards,
                partition,
                time,
                gpus_per_task,
                cpus_per_task,
                batch_size,
            };
            slurm::check(&spec, &opts).map_err(Failure::input)?;
            let out_dir = out.unwrap_or_else(|| PathBuf::from("results").join(&spec.name));
            run::prepare_out_dir(&spec, &out_dir).map_err(Failure::input)?;
            let dir = out_dir
                .canonicalize()
                .map_err(|e| Failure::runtime(format!("{}: {e}", out_dir.display())))?;
            let script = slurm::write_script(&spec, &dir, &opts).map_err(Failure::input)?;
            println!(
                "wrote {}: {} instances of sweep '{}' in {shards} array tasks",
                script.display(),
                spec.n_instances(),
                spec.name
            );
            println!("submit:    sbatch {}", script.display());
            println!(
                "progress:  memsweep status {}   (and squeue --me)",
                dir.display()
            );
            println!(
                "resume:    resubmit unfinished tasks, e.g. sbatch --array={} {}",
                slurm::example_array(shards),
                script.display()
            );
            Ok(())
        }
        Command::Status { dir, shards } => {
            if shards == Some(0) {
                return Err(Failure::input("--shards: must be at least 1"));
            }
            let spec = Spec::from_results(&dir).map_err(Failure::input)?;
            let most = spec.n_instances().min(status::MAX_SHARDS);
            if let Some(n) = shards.filter(|&n| n > most) {
                return Err(Failure::input(format!(
                    "--shards: {n} is more than {most} (the sweep has {} instances; status reports at most {} shards)",
                    spec.n_instances(),
                    status::MAX_SHARDS
                )));
            }
            let inventory = Inventory::scan(&spec, &dir).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => Failure::input(e),
                _ => Failure::runtime(e),
            })?;
            print!("{}", status::report(&spec, &dir, &inventory, shards));
            Ok(())
        }
        Command::ExportSpice {
            spec,
            point,
            replica,
            era,
            out,
        } => {
            let spec = Spec::from_file(&spec).map_err(Failure::input)?;
            let export = export_instance(&spec, point, replica, era)?;
            std::fs::write(&out, export.netlist(export.default_max_step_s()))
                .map_err(|e| Failure::runtime(format!("{}: {e}", out.display())))?;
            eprintln!(
                "memsweep: wrote {}; run it with: ngspice -b {}",
                out.display(),
                out.display()
            );
            Ok(())
        }
        Command::ExportGraph {
            spec,
            point,
            replica,
            era,
            out,
            format,
        } => {
            let spec = Spec::from_file(&spec).map_err(Failure::input)?;
            let export = export_instance(&spec, point, replica, Some(era))?;
            let (inst, state) = (&export.instance, &export.state);
            let graph = memsweep::wiring::Export {
                network: &inst.network,
                devices: &inst.devices,
                r: &state.r,
                alive: &state.alive,
            };
            let format = match format {
                TableFormat::Csv => memsweep::wiring::Format::Csv,
                TableFormat::Parquet => memsweep::wiring::Format::Parquet,
            };
            let graphml = out.join("graph.graphml");
            std::fs::create_dir_all(&out)
                .and_then(|()| graph.write_tables(&out, format))
                .and_then(|()| std::fs::write(&graphml, graph.graphml()))
                .map_err(|e| Failure::runtime(format!("{}: {e}", out.display())))?;
            eprintln!(
                "memsweep: wrote edges.{ext}, nodes.{ext} and graph.graphml to {} ({} nodes, {} edges)",
                out.display(),
                inst.network.n_nodes(),
                inst.network.n_edges(),
                ext = format.extension()
            );
            Ok(())
        }
        Command::Plan { spec } => {
            let spec = Spec::from_file(&spec).map_err(Failure::input)?;
            print!("{}", sweep::describe(&spec));
            Ok(())
        }
        Command::Report { dir } => {
            if !dir.join("instances").is_dir() {
                return Err(Failure::input(format!(
                    "{}: not a results directory (no instances/)",
                    dir.display()
                )));
            }
            status::check_whole(&dir).map_err(Failure::input)?;
            let report = memsweep::report::report(&dir).map_err(Failure::runtime)?;
            print!("{}", report.text);
            eprintln!(
                "memsweep: wrote {} and {} figures (SVG and PNG)",
                report.out_dir.join("report.md").display(),
                report.figures.len()
            );
            Ok(())
        }
        Command::Analyze { spec, replicas } => {
            let spec = Spec::from_file(&spec).map_err(Failure::input)?;
            if replicas == Some(0) {
                return Err(Failure::input("--replicas: must be at least 1"));
            }
            let replicas = replicas.unwrap_or(spec.replicas);
            sweep::check_wiring(&spec, replicas, |_| true).map_err(Failure::input)?;
            let rows = memsweep::analyze::analyze(&spec, replicas);
            print!("{}", memsweep::analyze::table(&rows));
            Ok(())
        }
        Command::Fields => {
            print!("{}", sweep::fields::markdown_table());
            Ok(())
        }
        Command::Devices => {
            print!("{}", devices_table());
            Ok(())
        }
        Command::Bench {
            backend,
            solver,
            gpu_instances,
            configs,
            threads,
            scale,
            json,
        } => {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(Failure::input(format!(
                    "--scale: must be a positive number (got {scale})"
                )));
            }
            if gpu_instances == Some(0) {
                return Err(Failure::input("--gpu-instances: must be at least 1"));
            }
            let pool = thread_pool(threads)?;
            let standard = bench::standard_configs(scale);
            if let Some(unknown) = configs
                .iter()
                .find(|c| !standard.iter().any(|s| &s.name == *c))
            {
                let names: Vec<&str> = standard.iter().map(|s| s.name.as_str()).collect();
                return Err(Failure::input(format!(
                    "--config {unknown}: not a bench configuration (one of {})",
                    names.join(", ")
                )));
            }
            // Configurations an executor refuses are skipped, not fatal.
            let mut solvers = solver;
            solvers.dedup();
            // One CPU executor per solver, each with its label.
            let executors: Vec<(Box<dyn Executor>, String)> =
                executors(backend, &[], SolverChoice::Auto)?
                    .into_iter()
                    .flat_map(|e| match e.name() {
                        "cpu" => solvers
                            .iter()
                            .map(|&solver| {
                                let cpu: Box<dyn Executor> = Box::new(Cpu {
                                    precision: Precision::F64,
                                    solver,
                                });
                                let label = match solver {
                                    SolverChoice::Auto => "cpu".to_string(),
                                    other => format!("cpu-{}", other.name()),
                                };
                                (cpu, label)
                            })
                            .collect::<Vec<_>>(),
                        name => {
                            let label = name.to_string();
                            vec![(e, label)]
                        }
                    })
                    .collect();
            let mut results = Vec::new();
            for config in standard
                .into_iter()
                .filter(|c| configs.is_empty() || configs.contains(&c.name))
            {
                for (executor, label) in &executors {
                    if let Err(why) = executor.check(&config.params()) {
                        eprintln!("{} on {}: skipped: {why}", config.name, executor.name());
                        continue;
                    }
                    let mut config = config.clone();
                    let on_gpu = executor.name() == "gpu";
                    if on_gpu {
                        config.instances = gpu_instances.unwrap_or(config.instances);
                    }
                    let mut r = pool.install(|| bench::run_config(&config, executor.as_ref(), 1));
                    r.backend = label.clone();
                    if json {
                        println!("{}", r.to_json());
                    } else {
                        eprintln!(
                            "{} on {}: {} instances/s",
                            r.config,
                            r.backend,
                            bench::per_second(r.instances_per_s)
                        );
                    }
                    results.push(r);
                }
            }
            if !json {
                println!("threads: {}", pool.current_num_threads());
                print!("{}", bench::table(&results));
            }
            match memsweep::spice::bench_2_4_2() {
                Ok(t) if json => println!("{}", t.to_json()),
                Ok(t) => println!("{}", t.line()),
                Err(note) => eprintln!("{note}"),
            }
            Ok(())
        }
    }
}

/// One instance of a sweep as `export-spice` and `export-graph` write it,
/// after `era` eras (`None`: the initial state); a nanowire instance
/// without enough wires for its terminals is an input error.
fn export_instance(
    spec: &Spec,
    point: usize,
    replica: usize,
    era: Option<usize>,
) -> Result<memsweep::spice::Export, Failure> {
    sweep::check_wiring(spec, spec.replicas, |k| {
        k == point * spec.replicas + replica
    })
    .map_err(Failure::input)?;
    memsweep::spice::Export::from_spec(spec, point, replica, era).map_err(Failure::input)
}

/// The executors `choice` names (two for `all`, CPU first), checked against
/// the grid points they must run (bench passes none and checks per
/// configuration). A GPU choice says in one stderr line which adapter it
/// took; `--backend gpu` (and `all`) without a usable adapter, or with a
/// network too large for it, is an input error (exit 2); `auto` then falls
/// back to the CPU and says why.
fn executors(
    choice: BackendChoice,
    points: &[memsweep::params::Params],
    solver: SolverChoice,
) -> Result<Vec<Box<dyn Executor>>, Failure> {
    let cpu = || -> Box<dyn Executor> {
        Box::new(Cpu {
            precision: Precision::F64,
            solver,
        })
    };
    let fits = |g: &Gpu| points.iter().try_for_each(|p| g.check(p));
    match choice {
        BackendChoice::Cpu => Ok(vec![cpu()]),
        // The GPU kernels have a nodal solve of their own.
        BackendChoice::Gpu if solver != SolverChoice::Auto => Err(Failure::input(format!(
            "--solver {}: chooses the CPU backend's nodal solve; --backend gpu has its own",
            solver.name()
        ))),
        BackendChoice::Auto if solver != SolverChoice::Auto => Ok(vec![cpu()]),
        BackendChoice::Gpu | BackendChoice::All => {
            let flag = if choice == BackendChoice::Gpu {
                "gpu"
            } else {
                "all"
            };
            let g = Gpu::new(Selection::Any)
                .map_err(|e| Failure::input(format!("--backend {flag}: {e}")))?;
            fits(&g).map_err(|e| Failure::input(format!("--backend {flag}: {e}")))?;
            eprintln!(
                "memsweep: backend gpu on adapter {}",
                g.adapter().describe()
            );
            let g: Box<dyn Executor> = Box::new(g);
            Ok(match choice {
                BackendChoice::All => vec![cpu(), g],
                _ => vec![g],
            })
        }
        BackendChoice::Auto => match Gpu::new(Selection::Hardware) {
            Ok(g) => match fits(&g) {
                Ok(()) => {
                    eprintln!(
                        "memsweep: backend auto chose the GPU adapter {}",
                        g.adapter().describe()
                    );
                    Ok(vec![Box::new(g)])
                }
                Err(e) => {
                    eprintln!("memsweep: backend auto chose the CPU: {e}");
                    Ok(vec![cpu()])
                }
            },
            Err(e) => {
                eprintln!(
                    "memsweep: backend auto chose the CPU: {e}{}",
                    if e.0.contains("software") {
                        "; --backend gpu would use it"
                    } else {
                        ""
                    }
                );
                Ok(vec![cpu()])
            }
        },
    }
}

/// `memsweep devices`: every adapter, and the one `auto` picks.
fn devices_table() -> String {
    let adapters = gpu::adapters();
    let mut out = format!(
        "{:>3}  {:<40} {:<8} {:<14} {}\n",
        "#", "adapter", "backend", "type", "usable"
    );
    for (i, a) in adapters.iter().enumerate() {
        let usable = match (a.suitable, a.hardware) {
            (false, _) => "no (no compute shaders)",
            (true, true) => "gpu, auto",
            (true, false) => "gpu only (software)",
        };
        out.push_str(&format!(
            "{i:>3}  {:<40} {:<8} {:<14} {usable}\n",
            a.name, a.backend, a.device_type
        ));
    }
    if adapters.is_empty() {
        out.push_str("     (wgpu sees no adapter)\n");
    }
    let name = |i: Option<usize>| match i {
        Some(i) => format!("#{i} {}", adapters[i].describe()),
        None => "the CPU".to_string(),
    };
    out.push_str(&format!(
        "--backend auto uses {}\n--backend gpu uses {}\n",
        name(gpu::pick(&adapters, Selection::Hardware)),
        match gpu::pick(&adapters, Selection::Any) {
            Some(i) => name(Some(i)),
            None => "nothing (it fails)".to_string(),
        }
    ));
    out
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
