//! The control socket `lvsd status` asks: a Unix stream socket, mode 0600, whose peers
//! must be root or the daemon's own user (SO_PEERCRED). One request line per connection
//! (`status`, `stats`, with ` json` for machines), one answer, then the daemon closes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Where the daemon listens unless `--control` says otherwise.
pub const DEFAULT_PATH: &str = "/run/lvsd.sock";

/// The longest a request may be, and how long a client may take to send it.
const MAX_REQUEST: u64 = 256;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What a client asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// `stats` (counters) rather than `status` (states).
    pub stats: bool,
    /// JSON rather than text.
    pub json: bool,
}

impl Request {
    /// The request line for this.
    pub fn line(&self) -> String {
        let what = if self.stats { "stats" } else { "status" };
        if self.json {
            format!("{what} json\n")
        } else {
            format!("{what}\n")
        }
    }

    /// Parse a request line.
    pub fn parse(line: &str) -> Option<Request> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (stats, rest) = match words.split_first()? {
            (&"status", rest) => (false, rest),
            (&"stats", rest) => (true, rest),
            _ => return None,
        };
        match rest {
            [] => Some(Request { stats, json: false }),
            ["json"] => Some(Request { stats, json: true }),
            _ => None,
        }
    }
}

/// A request waiting for the event loop's answer.
pub struct Asked {
    /// What.
    pub request: Request,
    /// Where the answer goes.
    pub reply: oneshot::Sender<String>,
}

/// The listening socket; its file is removed when dropped.
pub struct Control {
    path: PathBuf,
}

impl Control {
    /// Listen on `path` (a stale socket file left by a dead daemon is replaced; one a live
    /// daemon answers on is an error) and hand each request to `asked`.
    pub fn start(path: &Path, asked: mpsc::Sender<Asked>) -> std::io::Result<Control> {
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{}: another daemon answers there", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let me = nix::unistd::geteuid().as_raw();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let allowed = stream
                    .peer_cred()
                    .is_ok_and(|c| c.uid() == 0 || c.uid() == me);
                if allowed {
                    tokio::spawn(serve(stream, asked.clone()));
                }
            }
        });
        Ok(Control {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve(stream: UnixStream, asked: mpsc::Sender<Asked>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    let got = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await;
    let answer = match (got, Request::parse(&line)) {
        (Ok(Ok(_)), Some(request)) => {
            let (reply, answer) = oneshot::channel();
            if asked.send(Asked { request, reply }).await.is_err() {
                return;
            }
            answer.await.unwrap_or_default()
        }
        _ => "error: unknown request (status | stats, optionally followed by json)\n".into(),
    };
    let _ = write.write_all(answer.as_bytes()).await;
    let _ = write.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_nonsense_is_refused() {
        for stats in [false, true] {
            for json in [false, true] {
                let r = Request { stats, json };
                assert_eq!(Request::parse(&r.line()), Some(r));
            }
        }
        assert_eq!(Request::parse("status xml"), None);
        assert_eq!(Request::parse(""), None);
        assert_eq!(Request::parse("reload"), None);
    }
}
