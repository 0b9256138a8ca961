//! systemd's `Type=notify` protocol: state lines sent as datagrams to `$NOTIFY_SOCKET`
//! (a path, or an abstract name after `@`), as sd_notify(3) sends them.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Tells systemd what the daemon is doing; does nothing when not started by systemd.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`, which is then removed from the environment (scripts the
    /// daemon runs must not talk to systemd in its name).
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            std::env::remove_var("NOTIFY_SOCKET");
            let bytes = path.as_bytes();
            let addr = match bytes.strip_prefix(b"@") {
                Some(name) => SocketAddr::from_abstract_name(name).ok()?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        Notifier { target }
    }

    /// Send `state` (`READY=1`, `RELOADING=1`, `STOPPING=1`...).
    pub fn notify(&self, state: &str) {
        if let Some((socket, addr)) = &self.target {
            let _ = socket.send_to_addr(state.as_bytes(), addr);
        }
    }
}
