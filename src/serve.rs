//! `plumb serve`: every role in one process.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use plumb_collector::{grpc, http as otlp_http, Ingest, PriceTable};
use plumb_evaluators::online::RunnerStatus;
use plumb_serving::Judges;
use plumb_store::{QueryLimits, Store, StoreConfig, DEFAULT_PROJECT};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::FileConfig;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Host to listen on for every role whose address is not given explicitly
    /// (e.g. 0.0.0.0 to accept remote connections; the default is loopback only).
    #[arg(long, env = "PLUMB_LISTEN")]
    listen: Option<String>,
    /// OTLP/gRPC address (port 0 picks a free port).
    #[arg(long, env = "PLUMB_OTLP_GRPC_ADDR")]
    otlp_grpc_addr: Option<String>,
    /// OTLP/HTTP address.
    #[arg(long, env = "PLUMB_OTLP_HTTP_ADDR")]
    otlp_http_addr: Option<String>,
    /// Web UI and JSON API address.
    #[arg(long, env = "PLUMB_HTTP_ADDR")]
    http_addr: Option<String>,
    /// Object store for Parquet files: s3://bucket/prefix, file:///path or memory://.
    #[arg(long, env = "PLUMB_OBJECT_STORE")]
    object_store: Option<String>,
    /// Catalog database (postgres://...); SQLite in the data dir by default.
    #[arg(long, env = "PLUMB_CATALOG")]
    catalog: Option<String>,
    /// Flush buffered rows to Parquet once the oldest is this many seconds old.
    #[arg(long, env = "PLUMB_FLUSH_AGE_SECS")]
    flush_age_secs: Option<u64>,
    /// Largest OTLP request accepted, in bytes (after decompression).
    #[arg(long, env = "PLUMB_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Judge API address.
    #[arg(long, env = "PLUMB_JUDGE_ADDR")]
    judge_addr: Option<String>,
    /// Directory of judge models (each subdirectory with a plumb-judge.json).
    #[arg(long, env = "PLUMB_JUDGE_MODELS")]
    judge_models: Option<PathBuf>,
    /// Do not load the judge models in this process (e.g. when judges run on a GPU node with
    /// `plumb judge serve`).
    #[arg(long, env = "PLUMB_NO_JUDGES")]
    no_judges: bool,
}

fn address(
    explicit: Option<String>,
    configured: &str,
    listen: Option<&str>,
) -> anyhow::Result<SocketAddr> {
    let text = match (explicit, listen) {
        (Some(a), _) => a,
        (None, Some(host)) => {
            let port = configured.rsplit(':').next().unwrap_or("0");
            format!("{host}:{port}")
        }
        (None, None) => configured.to_string(),
    };
    text.parse().with_context(|| {
        format!("{text:?} is not a socket address (expected host:port, e.g. 127.0.0.1:4317)")
    })
}

pub async fn bind(role: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {role} to {addr}: is another process using the port?"))?;
    // Scripts and tests read these lines to find the ports.
    println!("listening {role} {}", listener.local_addr()?);
    Ok(listener)
}

pub async fn run(data_dir: PathBuf, cfg: FileConfig, args: ServeArgs) -> anyhow::Result<()> {
    let listen = args.listen.as_deref();
    let grpc_addr = address(args.otlp_grpc_addr, &cfg.server.otlp_grpc_addr, listen)?;
    let otlp_http_addr = address(args.otlp_http_addr, &cfg.server.otlp_http_addr, listen)?;
    let http_addr = address(args.http_addr, &cfg.server.http_addr, listen)?;
    let judge_addr = address(args.judge_addr, &cfg.server.judge_addr, listen)?;
    let max_body = args.max_body_bytes.unwrap_or(cfg.collector.max_body_bytes);

    let store_config = StoreConfig {
        object_store_url: args.object_store.or(cfg.storage.object_store.clone()),
        catalog_url: args.catalog.or(cfg.storage.catalog.clone()),
        flush_bytes: cfg.storage.flush_bytes,
        flush_age: Duration::from_secs(args.flush_age_secs.unwrap_or(cfg.storage.flush_age_secs)),
        max_buffered_bytes: cfg.storage.max_buffered_bytes,
        admission_wait: Duration::from_millis(cfg.storage.admission_wait_ms),
        query_limits: QueryLimits {
            memory_bytes: cfg.query.memory_limit_bytes,
            timeout: Duration::from_secs(cfg.query.timeout_secs),
        },
        ..StoreConfig::new(&data_dir)
    };
    let (store, replay) = Store::open(store_config)
        .await
        .context("opening the store")?;
    if replay.rows > 0 {
        tracing::info!(
            rows = replay.rows,
            segments = replay.segments,
            "replayed the write-ahead log"
        );
    }
    let flusher = store.spawn_flusher(Duration::from_millis(500));
    let ingest = Ingest::new(
        store.clone(),
        PriceTable::with_overrides(&cfg.pricing.models),
    );

    let grpc_listener = bind("otlp-grpc", grpc_addr).await?;
    let otlp_http_listener = bind("otlp-http", otlp_http_addr).await?;
    let otlp_http_local = otlp_http_listener.local_addr()?;
    let http_listener = bind("http", http_addr).await?;
    let judge_config = crate::judge_cmd::judge_config(&cfg, args.judge_models, None);
    let judges = if args.no_judges {
        None
    } else {
        match tokio::task::spawn_blocking(move || Judges::load(judge_config)).await? {
            Ok(j) => Some(Arc::new(j)),
            Err(e) => {
                // The store and the API are useful without judges; say how to get them.
                tracing::warn!(error = %e, "judges are off: run ./scripts/setup.sh to install ONNX Runtime and the judge models");
                None
            }
        }
    };
    let judge_listener = match &judges {
        Some(_) => Some(bind("judge", judge_addr).await?),
        None => None,
    };
    use std::io::Write;
    std::io::stdout().flush()?;

    let judge_url = match &judge_listener {
        Some(l) => Some(format!("http://{}", l.local_addr()?)),
        None => None,
    };
    let (eval_tasks, runner) = start_online_evals(&store, &cfg, judge_url)?;
    let alerts = plumb_evaluators::alerts::AlertEngine::new(
        store.clone(),
        plumb_evaluators::alerts::AlertEngineConfig {
            interval: Duration::from_secs_f64(cfg.alerts.interval_secs.max(0.1)),
            webhook_secret: cfg.alerts.webhook_secret.clone(),
            ui_url: Some(format!("http://{}", http_listener.local_addr()?)),
        },
    );
    let alert_tasks = alerts.spawn();

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let grpc_routes = grpc::router(ingest.clone(), DEFAULT_PROJECT, max_body);
    let grpc_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(grpc_routes)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
                stopped(stop_rx.clone()),
            ),
    );
    let otlp_http_app = otlp_http::router(ingest, DEFAULT_PROJECT, max_body);
    let otlp_http_task = tokio::spawn(
        axum::serve(otlp_http_listener, otlp_http_app)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    let api = plumb_web::router(plumb_web::ApiState {
        store: store.clone(),
        project: DEFAULT_PROJECT.to_string(),
        runner,
    });
    let http_task = tokio::spawn(
        axum::serve(http_listener, api)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    // The judges report their own metrics into this same Plumb, over OTLP like any service.
    let judge_telemetry = judges.clone().map(|j| {
        let interval = Duration::from_secs(j.config().telemetry_interval_secs.max(1));
        plumb_serving::telemetry::spawn_exporter(j, format!("http://{otlp_http_local}"), interval)
    });
    let judge_task = judges.zip(judge_listener).map(|(judges, listener)| {
        tokio::spawn(
            axum::serve(listener, plumb_serving::api::router(judges))
                .with_graceful_shutdown(stopped(stop_rx.clone()))
                .into_future(),
        )
    });
    tracing::info!(data_dir = %data_dir.display(), "plumb is running");

    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight, then flushing");
    let _ = stop_tx.send(true);
    let _ = grpc_task.await;
    let _ = otlp_http_task.await;
    let _ = http_task.await;
    if let Some(t) = judge_task {
        let _ = t.await;
    }
    if let Some(t) = judge_telemetry {
        t.abort();
    }
    for t in eval_tasks.into_iter().chain(alert_tasks) {
        t.abort();
    }
    // A flush under way finishes on its own task (see `Store::flush`); the final one waits for it.
    flusher.abort();
    store.shutdown().await.context("final flush")?;
    Ok(())
}

/// Builds the enabled evaluators and starts the online runner. Judge-backed evaluators are
/// left out, with a note, when no judge is reachable.
fn start_online_evals(
    store: &Store,
    cfg: &FileConfig,
    judge_url: Option<String>,
) -> anyhow::Result<(Vec<tokio::task::JoinHandle<()>>, Option<RunnerStatus>)> {
    let has_judge = judge_url.is_some() || cfg.evals.judge_url.is_some();
    let settings = cfg.evals.settings(judge_url)?;
    let mut evaluators = Vec::new();
    for name in &cfg.evals.enabled {
        let evaluator = plumb_evaluators::registry::build(name, &settings)
            .with_context(|| format!("[evals] enabled lists {name:?}"));
        let evaluator = match evaluator {
            Ok(e) => e,
            Err(e) if !has_judge => {
                tracing::info!(evaluator = %name, "not evaluating online without a judge: {e:#}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let selection = cfg.evals.selection(name, evaluator.uses_judge());
        evaluators.push(plumb_evaluators::registry::Configured {
            evaluator,
            selection,
        });
    }
    if evaluators.is_empty() {
        return Ok((Vec::new(), None));
    }
    let (tasks, status) = plumb_evaluators::online::spawn(
        store.clone(),
        evaluators,
        plumb_evaluators::online::OnlineConfig {
            interval: Duration::from_millis(cfg.evals.interval_ms.max(10)),
            max_spans_per_pass: cfg.evals.max_spans_per_pass,
            max_lateness: Duration::from_secs(cfg.evals.max_lateness_secs),
            concurrency: cfg.evals.concurrency,
        },
    );
    Ok((tasks, Some(status)))
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
