//! Harness for the end-to-end tests: starts the real `plumb` binary on free ports (port 0, the
//! chosen addresses read from its `listening <role> <addr>` lines), and runs the real clients
//! (the `plumb sql` CLI, the Python and JS OpenTelemetry exporters) against it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const PLUMB: &str = env!("CARGO_BIN_EXE_plumb");

/// The checkout the tests run in. Read when the test runs (cargo sets it), not when it was
/// compiled: a shared target directory keeps test binaries built in another checkout.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub struct Plumb {
    child: Child,
    pub data_dir: PathBuf,
    pub grpc: String,
    pub otlp_http: String,
    pub http: String,
    /// The judge API, when started with [`Plumb::start_with_judges`].
    pub judge: Option<String>,
    pub log: PathBuf,
}

impl Plumb {
    /// Starts `plumb serve` on free loopback ports with `data_dir`, without judges (most tests
    /// do not need the models' load time and memory).
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Plumb {
        Plumb::start_inner(data_dir, extra_args, false)
    }

    /// Starts `plumb serve` with its in-process judges on a free port too.
    pub fn start_with_judges(data_dir: &Path, extra_args: &[&str]) -> Plumb {
        Plumb::start_inner(data_dir, extra_args, true)
    }

    fn start_inner(data_dir: &Path, extra_args: &[&str], judges: bool) -> Plumb {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new(PLUMB)
            .args(["--data-dir", data_dir.to_str().unwrap(), "serve"])
            .args(["--otlp-grpc-addr", "127.0.0.1:0"])
            .args(["--otlp-http-addr", "127.0.0.1:0"])
            .args(["--http-addr", "127.0.0.1:0"])
            .args(match judges {
                true => vec!["--judge-addr", "127.0.0.1:0"],
                false => vec!["--no-judges"],
            })
            .args(extra_args)
            .env("PLUMB_LOG", "info,plumb_store=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start plumb");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Keep draining so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        let (mut grpc, mut otlp_http, mut http, mut judge) = (None, None, None, None);
        while grpc.is_none() || otlp_http.is_none() || http.is_none() || (judges && judge.is_none())
        {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| {
                    panic!(
                        "plumb did not print its addresses; log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                });
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["listening", role, addr] = parts[..] {
                let addr = addr.to_string();
                match role {
                    "otlp-grpc" => grpc = Some(addr),
                    "otlp-http" => otlp_http = Some(addr),
                    "http" => http = Some(addr),
                    "judge" => judge = Some(format!("http://{addr}")),
                    _ => {}
                }
            }
        }
        Plumb {
            child,
            data_dir: data_dir.to_path_buf(),
            grpc: format!("http://{}", grpc.unwrap()),
            otlp_http: format!("http://{}", otlp_http.unwrap()),
            http: format!("http://{}", http.unwrap()),
            judge,
            log,
        }
    }

    /// Runs `plumb sql --url <this server> --format json` and returns (columns, rows).
    pub fn sql(&self, query: &str) -> Rows {
        let out = Command::new(PLUMB)
            .args(["sql", "--url", &self.http, "--format", "json", query])
            .output()
            .expect("run plumb sql");
        assert!(
            out.status.success(),
            "plumb sql failed for {query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Rows::parse(&out.stdout)
    }

    /// Ends the process at once, as a crash would (SIGKILL): no flush, no clean shutdown.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Asks the process to stop (SIGTERM) and waits for its clean shutdown.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap();
        assert!(
            code.success(),
            "plumb exited with {code}; log:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Plumb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query result as the API returns it.
#[derive(Debug, Clone)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    pub fn parse(bytes: &[u8]) -> Rows {
        let v: Value = serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)));
        Rows {
            columns: v["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect(),
            rows: v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().clone())
                .collect(),
        }
    }

    /// The value of `column` in row `i`.
    pub fn get(&self, i: usize, column: &str) -> &Value {
        let c = self
            .columns
            .iter()
            .position(|x| x == column)
            .unwrap_or_else(|| panic!("no column {column} in {:?}", self.columns));
        &self.rows[i][c]
    }

    /// The single value of a one-row, one-column result.
    pub fn scalar(&self) -> &Value {
        assert_eq!(self.rows.len(), 1, "expected one row: {:?}", self.rows);
        &self.rows[0][0]
    }

    /// Row `i` as a column -> value object (handy in assertion messages).
    pub fn row(&self, i: usize) -> serde_json::Map<String, Value> {
        self.columns
            .iter()
            .cloned()
            .zip(self.rows[i].iter().cloned())
            .collect()
    }
}

/// The Python of the project's virtual environment (made by scripts/setup.sh).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PLUMB_TEST_PYTHON") {
        return p.into();
    }
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh (the README's test command does) to install the OpenTelemetry exporters",
        p.display()
    );
    p
}

/// Runs a Python or Node exporter script; returns its JSON summary, failing with its output.
pub fn run_exporter(mut cmd: Command) -> Value {
    let out = cmd.output().expect("run exporter");
    assert!(
        out.status.success(),
        "exporter failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("exporter printed a summary");
    let v: Value = serde_json::from_str(last).expect("summary is JSON");
    assert_eq!(v["result"], "SUCCESS", "{v}");
    v
}

pub fn python_exporter(protocol: &str, endpoint: &str, run: &str, convention: &str) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("tests/python/export_spans.py"))
        .args([
            "--protocol",
            protocol,
            "--endpoint",
            endpoint,
            "--run",
            run,
            "--convention",
            convention,
        ]);
    run_exporter(cmd)
}

pub fn node_exporter(protocol: &str, endpoint: &str, run: &str) -> Value {
    let js = repo_root().join("tests/js");
    assert!(
        js.join("node_modules/@opentelemetry/sdk-trace").exists(),
        "tests/js/node_modules is missing: run scripts/setup.sh to install the OpenTelemetry JS exporters"
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(&js)
        .arg("export_spans.cjs")
        .args([protocol, endpoint, run]);
    run_exporter(cmd)
}

/// A fresh temporary directory for one test's data.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("plumb-e2e-")
        .tempdir()
        .unwrap()
}

/// Polls `query` until `done` holds (at most a minute), returning the last result.
pub fn wait_for(plumb: &Plumb, query: &str, done: impl Fn(&Rows) -> bool) -> Rows {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = plumb.sql(query);
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Writes `text` as `plumb.toml` in `dir` and returns its path.
pub fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("plumb.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}
