//! What a driver must run for a checker, and what it reports back.
//!
//! The simulator and the daemon execute [`Probe`]s and answer with [`ProbeResult`]s.

use std::net::SocketAddr;
use std::time::Duration;

/// Identifies one probe attempt; the result carries it back.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ProbeId(pub u64);

/// One probe to run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    /// Echoed back in the result.
    pub id: ProbeId,
    /// What to do.
    pub kind: ProbeKind,
    /// Give up after this long (`connect_timeout`, `misc_timeout`).
    pub timeout: Duration,
}

/// The kinds of probe keepalived runs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ProbeKind {
    /// TCP_CHECK: connect, then close.
    Tcp {
        /// `connect_ip`:`connect_port` (defaults: the real server's).
        target: SocketAddr,
        /// `bindto` source address.
        bind: Option<SocketAddr>,
    },
    /// HTTP_GET / SSL_GET: fetch `path`, report status and body digest.
    Http {
        /// Where to connect.
        target: SocketAddr,
        /// Request path.
        path: String,
        /// `virtualhost` Host header.
        virtualhost: Option<String>,
        /// SSL_GET.
        tls: bool,
    },
    /// MISC_CHECK / vrrp_script: run a command, report its exit status.
    Script {
        /// The command line as configured.
        command: String,
    },
}

/// What happened to a probe.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ProbeResult {
    /// TCP connected.
    Connected,
    /// Connection refused / reset / unreachable.
    ConnectFailed,
    /// No answer within the timeout.
    Timeout,
    /// HTTP answered: status code and MD5 hex digest of the body.
    Http {
        /// Status code.
        status: u16,
        /// Lowercase hex MD5 of the body.
        digest: String,
    },
    /// A script exited with this status (`None`: killed by signal / timeout).
    Exit(Option<i32>),
}
