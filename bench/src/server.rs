//! Starting and stopping the servers under test.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub name: String,
}

impl Server {
    /// Starts `plumb serve` on free ports; returns it with (grpc, otlp_http, http) URLs.
    pub fn plumb(
        bin: &Path,
        data_dir: &Path,
        extra: &[&str],
        config: Option<&str>,
    ) -> anyhow::Result<(Server, [String; 3])> {
        let mut cmd = Command::new(bin);
        if let Some(c) = config {
            cmd.args(["--config", c]);
        }
        let mut child = cmd
            .args(["--data-dir", data_dir.to_str().unwrap(), "serve"])
            .args([
                "--otlp-grpc-addr",
                "127.0.0.1:0",
                "--otlp-http-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                // The store is what these benchmarks measure; judges would add their model's
                // memory to the RSS figure.
                "--no-judges",
            ])
            .args(extra)
            .env(
                "PLUMB_LOG",
                std::env::var("PLUMB_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addrs = [String::new(), String::new(), String::new()];
        while addrs.iter().any(|a| a.is_empty()) {
            let line = lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("plumb exited before listening"))??;
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["listening", role, addr] = parts[..] {
                let idx = match role {
                    "otlp-grpc" => 0,
                    "otlp-http" => 1,
                    _ => 2,
                };
                addrs[idx] = format!("http://{addr}");
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Ok((
            Server {
                child,
                name: "plumb".into(),
            },
            addrs,
        ))
    }

    /// Starts rotel's agent with the blackhole exporter (decode and drop).
    pub fn rotel(bin: &Path) -> anyhow::Result<(Server, [String; 2])> {
        let (g, h) = (free_port()?, free_port()?);
        let child = Command::new(bin)
            .args(["start", "--otlp-grpc-endpoint", &format!("127.0.0.1:{g}")])
            .args([
                "--otlp-http-endpoint",
                &format!("127.0.0.1:{h}"),
                "--exporter",
                "blackhole",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Server::ready(child, "rotel", g, h, Duration::from_secs(10))
    }

    /// Starts Arize Phoenix (`python -m phoenix.server.main serve`) with its SQLite database in
    /// `working_dir`; returns it with (grpc, http) URLs.
    pub fn phoenix(python: &Path, working_dir: &Path) -> anyhow::Result<(Server, [String; 2])> {
        let (g, h) = (free_port()?, free_port()?);
        std::fs::create_dir_all(working_dir)?;
        let child = Command::new(python)
            .args(["-m", "phoenix.server.main", "serve"])
            .env("PHOENIX_WORKING_DIR", working_dir)
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", h.to_string())
            .env("PHOENIX_GRPC_PORT", g.to_string())
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Server::ready(child, "phoenix", g, h, Duration::from_secs(120))
    }

    /// Waits until a peer accepts connections on its gRPC and HTTP ports.
    fn ready(
        child: Child,
        name: &str,
        grpc: u16,
        http: u16,
        limit: Duration,
    ) -> anyhow::Result<(Server, [String; 2])> {
        let server = Server {
            child,
            name: name.into(),
        };
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            let up = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(grpc) && up(http) {
                return Ok((
                    server,
                    [
                        format!("http://127.0.0.1:{grpc}"),
                        format!("http://127.0.0.1:{http}"),
                    ],
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("{name} did not start listening within {limit:?}")
    }

    /// Starts `plumb judge serve` on a free port with the models in `models`; returns its URL.
    pub fn judge(bin: &Path, models: &Path) -> anyhow::Result<(Server, String)> {
        let mut child = Command::new(bin)
            .args(["judge", "serve", "--judge-addr", "127.0.0.1:0", "--models"])
            .arg(models)
            .env("PLUMB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening judge ")
            .ok_or_else(|| anyhow::anyhow!("judge server said {line:?}"))?
            .to_string();
        Ok((
            Server {
                child,
                name: "plumb-judge".into(),
            },
            format!("http://{addr}"),
        ))
    }

    /// CPU time the server has used so far (user + system, all threads), in seconds. Unlike a
    /// rate, this does not move when a noisy neighbour takes the cores: divided by the work
    /// done it compares builds on this shared VM.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // Fields are counted from 3 (state) here, so utime (14) is index 11.
        (ticks(11) + ticks(12)) as f64 / CLOCK_TICKS_PER_SECOND
    }

    /// Peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// SIGTERM and wait (Plumb flushes to Parquet on the way out).
    pub fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this benchmark runs on.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Total size of the files under `dir` whose name ends with `suffix`.
pub fn dir_bytes(dir: &Path, suffix: &str) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += dir_bytes(&p, suffix);
            } else if p.to_string_lossy().ends_with(suffix) {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}
