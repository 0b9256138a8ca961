//! Where the daemon's lines go, as keepalived sends them: syslog (`/dev/log`, ident
//! `Keepalived` / `Keepalived_vrrp` / `Keepalived_healthcheckers`, facility LOG_DAEMON or
//! `-S`'s LOG_LOCALn), the console with `-l` (standard error, `Mon Dec  7 23:16:07 2026: `
//! before each line), and a file with `-g` (the console's format).

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use lvs_core::director::LogSource;

/// syslog's LOG_DAEMON and LOG_LOCAL0, as facility numbers.
const LOG_DAEMON: u8 = 3;
const LOG_LOCAL0: u8 = 16;
/// LOG_INFO: keepalived logs its state lines at this severity.
const LOG_INFO: u8 = 6;

/// The daemon's log sinks.
pub struct Logger {
    console: bool,
    file: Option<std::fs::File>,
    syslog: Option<UnixDatagram>,
    facility: u8,
    pid: u32,
}

impl Logger {
    /// Sinks as keepalived's flags ask: `console` (`-l`), `file` (`-g`), syslog unless
    /// `no_syslog` (`-G`), with `-S`'s local facility.
    pub fn new(
        console: bool,
        file: Option<&Path>,
        no_syslog: bool,
        local_facility: Option<u8>,
    ) -> std::io::Result<Logger> {
        let file = file
            .map(|f| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(f)
            })
            .transpose()?;
        // Like openlog(3): no syslog daemon listening is no error, the lines just go nowhere.
        let syslog = (!no_syslog)
            .then(|| {
                let s = UnixDatagram::unbound().ok()?;
                s.connect("/dev/log").ok()?;
                s.set_nonblocking(true).ok()?;
                Some(s)
            })
            .flatten();
        Ok(Logger {
            console,
            file,
            syslog,
            facility: local_facility.map_or(LOG_DAEMON, |n| LOG_LOCAL0 + n),
            pid: std::process::id(),
        })
    }

    /// Log one line as `source`'s keepalived process would.
    pub fn line(&mut self, source: LogSource, text: &str) {
        let now = chrono::Local::now();
        if self.console || self.file.is_some() {
            let line = console_line(&now.format("%a %b %e %H:%M:%S %Y").to_string(), text);
            if self.console {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            if let Some(f) = &mut self.file {
                let _ = f.write_all(line.as_bytes());
            }
        }
        if let Some(s) = &self.syslog {
            let stamp = now.format("%b %e %H:%M:%S").to_string();
            let msg = syslog_line(self.facility, &stamp, ident(source), self.pid, text);
            let _ = s.send(msg.as_bytes());
        }
    }
}

/// The program name keepalived's process logs under.
fn ident(source: LogSource) -> &'static str {
    match source {
        LogSource::Main => "Keepalived",
        LogSource::Vrrp => "Keepalived_vrrp",
        LogSource::Healthcheckers => "Keepalived_healthcheckers",
    }
}

/// One console / file line.
fn console_line(stamp: &str, text: &str) -> String {
    format!("{stamp}: {text}\n")
}

/// One syslog datagram as glibc's syslog(3) sends it to `/dev/log`.
fn syslog_line(facility: u8, stamp: &str, ident: &str, pid: u32, text: &str) -> String {
    let pri = u16::from(facility) * 8 + u16::from(LOG_INFO);
    format!("<{pri}>{stamp} {ident}[{pid}]: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_are_keepalived_s() {
        assert_eq!(
            console_line("Mon Dec  7 23:16:07 2026", "(VI_1) Entering MASTER STATE"),
            "Mon Dec  7 23:16:07 2026: (VI_1) Entering MASTER STATE\n"
        );
    }

    #[test]
    fn syslog_datagrams_carry_facility_ident_and_pid() {
        assert_eq!(
            syslog_line(
                LOG_DAEMON,
                "Dec  7 23:16:07",
                ident(LogSource::Vrrp),
                42,
                "x"
            ),
            "<30>Dec  7 23:16:07 Keepalived_vrrp[42]: x"
        );
        assert_eq!(
            syslog_line(
                LOG_LOCAL0 + 7,
                "Dec  7 23:16:07",
                ident(LogSource::Main),
                1,
                "y"
            ),
            "<190>Dec  7 23:16:07 Keepalived[1]: y"
        );
    }
}
