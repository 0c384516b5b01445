//! `plumb`: the binary. Parses the command line, loads configuration and runs a command:
//! `serve` wires the store, the OTLP receivers and the HTTP API together; `sql` queries a data
//! directory or a running server; `judge` serves or runs the judge models; `eval` runs and
//! compares evaluations offline; `alerts` manages alert rules.

mod alerts_cmd;
mod config;
mod eval_cmd;
mod judge_cmd;
mod serve;
mod sql_cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc returns freed memory to the OS far better than glibc's per-thread arenas did under
/// ingest load (measured: peak RSS roughly halved; see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (the Rust bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed memory before returning it to the OS. Its default (10 ms) hands
/// back the buffers of one ingest request or flush just before the next needs them again, and
/// the kernel then zeroes every page anew (8–12 % of the server's CPU under ingest load in
/// `perf`). At 1 s the same memory is reused: 29 % fewer page faults at about the same peak RSS
/// (docs/benchmarks.md). An explicit `MIMALLOC_PURGE_DELAY` still wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; mimalloc reads it on every purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "plumb",
    version,
    about = "Observability and evaluation for LLM and agent systems: OTLP in, Parquet on object storage, SQL out."
)]
pub struct Cli {
    /// Where the WAL, the catalog and (by default) the Parquet files live.
    #[arg(
        long,
        global = true,
        env = "PLUMB_DATA_DIR",
        default_value = "./plumb-data"
    )]
    data_dir: PathBuf,
    /// Configuration file (TOML); flags and PLUMB_* variables override it.
    #[arg(long, global = true, env = "PLUMB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every role in one process: OTLP receivers, storage, query API.
    Serve(serve::ServeArgs),
    /// Run one read-only SQL query and print the result.
    Sql(sql_cmd::SqlArgs),
    /// Judge models: serve them (`judge serve`) or score one item (`judge score`).
    Judge(judge_cmd::JudgeArgs),
    /// Offline evaluation: run an evaluator over stored spans, or compare two cohorts.
    Eval(eval_cmd::EvalArgs),
    /// Alert rules: list, add, delete; alert events.
    Alerts(alerts_cmd::AlertsArgs),
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLUMB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ort=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let file_config = config::FileConfig::load(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(cli.data_dir, file_config, args).await,
            Command::Sql(args) => sql_cmd::run(cli.data_dir, file_config, args).await,
            Command::Judge(args) => judge_cmd::run(file_config, args).await,
            Command::Eval(args) => eval_cmd::run(cli.data_dir, file_config, args).await,
            Command::Alerts(args) => alerts_cmd::run(cli.data_dir, file_config, args).await,
        }
    })
}
