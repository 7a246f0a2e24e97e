//! What a check does against one real server, and how it fails.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpStream;

use lvsctl_model::DestKey;

use crate::monitor::{CheckConfig, Target};

/// An HTTP/1.1 `GET` probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpProbe {
    /// Port to connect to; `None` = the real server's own port.
    pub port: Option<u16>,
    /// Request target, e.g. `/.health.html`.
    pub path: String,
    /// `Host` header; `None` = the real server's address (and port when not 80).
    pub host: Option<String>,
    /// Accepted status codes; empty = any 2xx.
    pub status: Vec<u16>,
    /// Text the body must contain, e.g. `OK`.
    pub expect: Option<String>,
    /// The most response bytes read (headers and body) before the check gives up.
    pub max_response_bytes: usize,
    /// Limit for connecting and for each single read, inside the total deadline; `None` = only
    /// the total deadline applies.
    pub io_timeout: Option<Duration>,
    /// Keep the connection open between checks (HTTP/1.1 keep-alive), as Envoy's HTTP health
    /// checker does by default: a check then costs a request and a response instead of a TCP
    /// handshake and teardown. `false` opens and closes a connection per check.
    pub reuse_connection: bool,
}

impl HttpProbe {
    /// Default bound on the response: enough for any health page, small enough that a server
    /// streaming garbage costs nothing.
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

    /// A probe of `path` expecting any 2xx, with the defaults for everything else.
    pub fn get(path: impl Into<String>) -> Self {
        HttpProbe {
            port: None,
            path: path.into(),
            host: None,
            status: Vec::new(),
            expect: None,
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
            io_timeout: None,
            reuse_connection: true,
        }
    }
}

/// A TCP connect probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpProbe {
    /// Port to connect to; `None` = the real server's own port.
    pub port: Option<u16>,
}

/// A command probe: `argv[0]` is run directly (looked up in `PATH`, never through a shell) with
/// `LVSCTL_RS_ADDR`, `LVSCTL_RS_PORT` and `LVSCTL_SERVICE` in its environment. Exit status 0
/// passes; the command (and its process group) is killed at the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecProbe {
    pub argv: Vec<String>,
}

/// One kind of check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Probe {
    Http(HttpProbe),
    Tcp(TcpProbe),
    Exec(ExecProbe),
}

impl Probe {
    /// `http`, `tcp` or `exec`.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Tcp(_) => "tcp",
            Probe::Exec(_) => "exec",
        }
    }
}

/// Why a check failed. Messages are short and say what was seen, for logs and `lvsctl status`.
#[derive(Debug, Error)]
pub enum CheckError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{during}: {source}")]
    Io {
        during: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The total deadline passed; `during` says what the check was waiting for.
    #[error("no answer within {after:?} ({during})")]
    Timeout { after: Duration, during: String },
    #[error("unexpected http status {got} (expected {expected})")]
    Status { got: u16, expected: String },
    #[error("{0}")]
    Body(String),
    #[error("invalid http response: {0}")]
    Protocol(String),
    #[error("{0}")]
    Exec(String),
    /// The check itself is unusable (e.g. a header with a line break); fails every time.
    #[error("invalid check: {0}")]
    Config(String),
    /// A failure reported by a prober outside this crate.
    #[error("{0}")]
    Other(String),
    /// The director could not run the check (out of file descriptors, memory, local ports or
    /// processes). Says nothing about the real server, so it counts neither way: a director
    /// short of sockets must not take healthy real servers out of service.
    #[error("check not run: {during}: {source} (director short of resources; result ignored)")]
    Local {
        during: String,
        #[source]
        source: std::io::Error,
    },
}

impl CheckError {
    /// A connect that failed: [`CheckError::Local`] when the error is the director's own
    /// shortage, [`CheckError::Connect`] otherwise.
    pub(crate) fn connect(addr: SocketAddr, source: std::io::Error) -> CheckError {
        if is_local_shortage(&source) {
            CheckError::Local {
                during: format!("connecting to {addr}"),
                source,
            }
        } else {
            CheckError::Connect { addr, source }
        }
    }

    /// True when the check did not really run (see [`CheckError::Local`]).
    pub fn is_inconclusive(&self) -> bool {
        matches!(self, CheckError::Local { .. })
    }
}

/// Errors that come from the director's own limits, not from the real server: no file
/// descriptor (EMFILE, ENFILE), no memory or buffer (ENOMEM, ENOBUFS), no free local port
/// (EADDRNOTAVAIL), no process slot (EAGAIN from fork).
pub(crate) fn is_local_shortage(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOMEM
                | libc::ENOBUFS
                | libc::EADDRNOTAVAIL
                | libc::EAGAIN
        )
    )
}

/// A boxed probe future, so [`Prober`] can be used as a trait object.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), CheckError>> + Send + 'static>>;

/// A probe future that also hands back the connection it left open for the next check.
pub type KeepingFuture = Pin<
    Box<dyn Future<Output = (Result<(), CheckError>, Option<IdleConnection>)> + Send + 'static>,
>;

/// An HTTP check's connection kept open (idle, its last response read completely) for the next
/// check of the same real server. The monitor keeps at most one per check, inside the check's
/// task, so it is closed when the server stops being checked or its check changes. Dropping it
/// closes the connection with RST, like every check connection.
#[derive(Debug)]
pub struct IdleConnection {
    pub(crate) stream: TcpStream,
    /// Where it is connected to; a check of another address never uses it.
    pub(crate) peer: SocketAddr,
}

impl Drop for IdleConnection {
    fn drop(&mut self) {
        let _ = self.stream.set_zero_linger();
    }
}

/// Runs one check of one real server. The real one is [`NetProber`]; tests substitute their own.
pub trait Prober: Send + Sync + 'static {
    /// Checks `target` once; the future must finish within about `config.timeout` (the monitor
    /// also cuts it off there).
    fn probe(&self, target: &Target, config: &CheckConfig) -> ProbeFuture;

    /// Checks `target` once, given the connection the previous check of the same check config
    /// left open, and returns the one to keep for the next check. The monitor calls this one;
    /// probers that keep nothing need not implement it.
    fn probe_keeping(
        &self,
        target: &Target,
        config: &CheckConfig,
        idle: Option<IdleConnection>,
    ) -> KeepingFuture {
        drop(idle);
        let check = self.probe(target, config);
        Box::pin(async move { (check.await, None) })
    }
}

/// Probes real servers over the network and by running commands.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetProber;

impl Prober for NetProber {
    fn probe(&self, target: &Target, config: &CheckConfig) -> ProbeFuture {
        let check = self.probe_keeping(target, config, None);
        Box::pin(async move { check.await.0 })
    }

    fn probe_keeping(
        &self,
        target: &Target,
        config: &CheckConfig,
        idle: Option<IdleConnection>,
    ) -> KeepingFuture {
        let target = *target;
        let probe = config.probe.clone();
        let deadline = config.timeout;
        Box::pin(async move { run_probe_keeping(&probe, &target, deadline, idle).await })
    }
}

/// Runs `probe` against `target` once; everything (connect, request, response, process) must
/// finish within `deadline`.
pub async fn run_probe(
    probe: &Probe,
    target: &Target,
    deadline: Duration,
) -> Result<(), CheckError> {
    run_probe_keeping(probe, target, deadline, None).await.0
}

/// Where a check on `port` (default: the real server's) of `server` connects.
fn endpoint(server: &DestKey, port: Option<u16>) -> SocketAddr {
    SocketAddr::new(server.addr, port.unwrap_or(server.port))
}

impl Probe {
    /// Where an http or tcp check of `server` connects: besides its own settings, all its
    /// result depends on. `None` for exec checks, which are told the service as well.
    pub fn endpoint(&self, server: &DestKey) -> Option<SocketAddr> {
        match self {
            Probe::Http(p) => Some(endpoint(server, p.port)),
            Probe::Tcp(p) => Some(endpoint(server, p.port)),
            Probe::Exec(_) => None,
        }
    }
}

/// [`run_probe`] that reuses `idle` when the probe allows it (an HTTP check with
/// `reuse_connection`) and returns the connection to keep for the next check, if any.
pub async fn run_probe_keeping(
    probe: &Probe,
    target: &Target,
    deadline: Duration,
    idle: Option<IdleConnection>,
) -> (Result<(), CheckError>, Option<IdleConnection>) {
    let addr = |port: Option<u16>| endpoint(&target.server, port);
    match probe {
        Probe::Http(p) => crate::http::check(p, addr(p.port), deadline, idle).await,
        Probe::Tcp(p) => (crate::tcp::check(addr(p.port), deadline).await, None),
        Probe::Exec(p) => (crate::exec::check(p, target, deadline).await, None),
    }
}
