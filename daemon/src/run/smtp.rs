//! `smtp_alert`: a mail per VRRP transition of an instance or sync group that asks for it,
//! through `smtp_server` as keepalived 2.2.7 sends it (the dialog, headers, subject and
//! body held to a capture against a recording server), on its own task, so a slow or dead
//! server changes nothing but the log: `Remote SMTP server [IP]:PORT connected.`,
//! `SMTP alert successfully sent.`, `smtp fd N returned write error` (refused),
//! `Timeout opening connection to remote SMTP server [IP]:PORT.` (after
//! `smtp_connect_timeout`, default 30 s).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use lvs_core::config::model::Config;
use lvs_core::director::{StateChange, StateChangeKind, VrrpState};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// keepalived's default `smtp_connect_timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one server reply may take once connected.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and to whom alerts go, and who asked for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailer {
    server: SocketAddr,
    timeout: Duration,
    helo: String,
    from: String,
    to: Vec<String>,
    router_id: String,
    /// `(is_group, name)` of each instance and group with `smtp_alert` on.
    alerting: BTreeSet<(bool, String)>,
}

/// One alert, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    subject: String,
    body: String,
}

impl Mailer {
    /// From the configuration: `None` without an `smtp_server` (given as an address),
    /// without recipients, or when nothing asks for alerts. `host` is the local host name
    /// (keepalived's HELO name and default router_id).
    pub fn new(cfg: &Config, host: &str) -> Option<Mailer> {
        let g = &cfg.global_defs;
        let ip: IpAddr = g
            .smtp_server
            .as_ref()?
            .value
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let port = g.smtp_port.as_ref().map_or(25, |p| p.value);
        let to: Vec<String> = g
            .notification_email
            .iter()
            .map(|e| e.value.clone())
            .collect();
        if to.is_empty() {
            return None;
        }
        let global = g.smtp_alert.as_ref().is_some_and(|a| a.value);
        let on =
            |n: &lvs_core::config::model::Notify| n.smtp_alert.as_ref().map_or(global, |a| a.value);
        let alerting: BTreeSet<(bool, String)> = cfg
            .vrrp_instances
            .iter()
            .filter(|i| on(&i.notify))
            .map(|i| (false, i.name.value.clone()))
            .chain(
                cfg.vrrp_sync_groups
                    .iter()
                    .filter(|s| on(&s.notify))
                    .map(|s| (true, s.name.value.clone())),
            )
            .collect();
        if alerting.is_empty() {
            return None;
        }
        Some(Mailer {
            server: SocketAddr::new(ip, port),
            timeout: g
                .smtp_connect_timeout
                .as_ref()
                .map_or(DEFAULT_TIMEOUT, |t| Duration::from_secs(u64::from(t.value))),
            helo: host.to_string(),
            from: g
                .notification_email_from
                .as_ref()
                .map_or_else(|| format!("keepalived@{host}"), |f| f.value.clone()),
            to,
            router_id: g
                .router_id
                .as_ref()
                .map_or_else(|| host.to_string(), |r| r.value.clone()),
            alerting,
        })
    }

    /// The alert a transition sends, if it sends one (keepalived sends none for STOP).
    pub fn alert(&self, change: &StateChange) -> Option<Alert> {
        let group = change.kind == StateChangeKind::Group;
        if !self.alerting.contains(&(group, change.name.clone()))
            || !matches!(
                change.state,
                VrrpState::Master | VrrpState::Backup | VrrpState::Fault
            )
        {
            return None;
        }
        let state = change.state;
        let (what, body) = if group {
            (
                "Group",
                format!("=> All VRRP group instances are now in {state} state <="),
            )
        } else if state == VrrpState::Master {
            (
                "Instance",
                "=> VRRP Instance is now owning VRRP VIPs <=".to_string(),
            )
        } else {
            (
                "Instance",
                "=> VRRP Instance is no longer owning VRRP VIPs <=".to_string(),
            )
        };
        Some(Alert {
            subject: format!(
                "[{}] VRRP {what} {} - Entering {state} state",
                self.router_id, change.name
            ),
            body,
        })
    }

    /// The DATA part of an alert sent at `date` (RFC 2822 form).
    fn data(&self, alert: &Alert, date: &str) -> String {
        format!(
            "Date: {date}\r\nFrom: {}\r\nSubject: {}\r\nX-Mailer: Keepalived\r\nTo: {}\r\n\r\n{}\r\n\r\n.\r\n",
            self.from,
            alert.subject,
            self.to.join(", "),
            alert.body
        )
    }

    /// Send `alert`; what keepalived would log goes to `log`.
    pub async fn send(self, alert: Alert, log: mpsc::Sender<String>) {
        let line = |text: String| {
            let log = log.clone();
            async move {
                let _ = log.send(text).await;
            }
        };
        let socket = match self.server {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let Ok(socket) = socket else { return };
        let fd = socket.as_raw_fd();
        let server = self.server;
        let stream = match tokio::time::timeout(self.timeout, socket.connect(server)).await {
            Err(_) => {
                return line(format!(
                    "Timeout opening connection to remote SMTP server [{}]:{}.",
                    server.ip(),
                    server.port()
                ))
                .await
            }
            Ok(Err(_)) => return line(format!("smtp fd {fd} returned write error")).await,
            Ok(Ok(s)) => s,
        };
        line(format!(
            "Remote SMTP server [{}]:{} connected.",
            server.ip(),
            server.port()
        ))
        .await;
        let date = chrono::Local::now()
            .format("%a, %d %b %Y %H:%M:%S %z")
            .to_string();
        match self.dialog(stream, &alert, &date).await {
            Ok(()) => line("SMTP alert successfully sent.".to_string()).await,
            Err(e) => {
                line(format!(
                    "Error sending SMTP alert to [{}]:{}: {e}",
                    server.ip(),
                    server.port()
                ))
                .await
            }
        }
    }

    async fn dialog(
        &self,
        stream: tokio::net::TcpStream,
        alert: &Alert,
        date: &str,
    ) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut expect = async |code: &str| -> std::io::Result<()> {
            loop {
                let mut reply = String::new();
                let n = tokio::time::timeout(REPLY_TIMEOUT, read.read_line(&mut reply))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
                if n == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
                // A multi-line reply continues while the code is followed by '-'.
                if reply.as_bytes().get(3) == Some(&b'-') {
                    continue;
                }
                return if reply.starts_with(code) {
                    Ok(())
                } else {
                    Err(std::io::Error::other(format!(
                        "server said {}",
                        reply.trim_end()
                    )))
                };
            }
        };
        expect("220").await?;
        write
            .write_all(format!("HELO {}\r\n", self.helo).as_bytes())
            .await?;
        expect("250").await?;
        write
            .write_all(format!("MAIL FROM:<{}>\r\n", self.from).as_bytes())
            .await?;
        expect("250").await?;
        for to in &self.to {
            write
                .write_all(format!("RCPT TO:<{to}>\r\n").as_bytes())
                .await?;
            expect("250").await?;
        }
        write.write_all(b"DATA\r\n").await?;
        expect("354").await?;
        write.write_all(self.data(alert, date).as_bytes()).await?;
        expect("250").await?;
        write.write_all(b"QUIT\r\n").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "global_defs {\n    router_id T\n    notification_email {\n        ops@example.com\n        noc@example.com\n    }\n    notification_email_from lvs@example.com\n    smtp_server 127.0.0.1\n    smtp_connect_timeout 3\n}\nvrrp_sync_group G {\n    group {\n        VI_1\n    }\n    smtp_alert\n}\nvrrp_instance VI_1 {\n    state MASTER\n    interface veth0\n    virtual_router_id 51\n    priority 150\n    advert_int 1\n    smtp_alert\n    virtual_ipaddress {\n        198.18.0.100/24\n    }\n}\nvrrp_instance VI_2 {\n    interface veth0\n    virtual_router_id 52\n    priority 100\n    virtual_ipaddress {\n        198.18.0.101/24\n    }\n}\n";

    fn mailer() -> Mailer {
        let parsed = lvs_core::config::parse_text("k.conf", CONF, &lvs_core::config::NoFiles);
        Mailer::new(&parsed.config.unwrap(), "vm").unwrap()
    }

    fn change(kind: StateChangeKind, name: &str, state: VrrpState) -> StateChange {
        StateChange {
            kind,
            name: name.into(),
            state,
            priority: 150,
        }
    }

    // What keepalived 2.2.7 sent to a recording server for the same config (FAULT by a
    // NIC down), CRLF line ends as on the wire.
    #[test]
    fn alerts_are_worded_as_keepalived_s() {
        let m = mailer();
        let a = m
            .alert(&change(
                StateChangeKind::Instance,
                "VI_1",
                VrrpState::Master,
            ))
            .unwrap();
        assert_eq!(
            m.data(&a, "Tue, 08 Dec 2026 00:12:56 +0000"),
            "Date: Tue, 08 Dec 2026 00:12:56 +0000\r\nFrom: lvs@example.com\r\nSubject: [T] VRRP Instance VI_1 - Entering MASTER state\r\nX-Mailer: Keepalived\r\nTo: ops@example.com, noc@example.com\r\n\r\n=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n.\r\n"
        );
        let a = m
            .alert(&change(StateChangeKind::Instance, "VI_1", VrrpState::Fault))
            .unwrap();
        assert_eq!(a.subject, "[T] VRRP Instance VI_1 - Entering FAULT state");
        assert_eq!(a.body, "=> VRRP Instance is no longer owning VRRP VIPs <=");
        let g = m
            .alert(&change(StateChangeKind::Group, "G", VrrpState::Backup))
            .unwrap();
        assert_eq!(g.subject, "[T] VRRP Group G - Entering BACKUP state");
        assert_eq!(
            g.body,
            "=> All VRRP group instances are now in BACKUP state <="
        );
        // STOP sends nothing; neither does an instance without smtp_alert.
        assert!(m
            .alert(&change(StateChangeKind::Instance, "VI_1", VrrpState::Stop))
            .is_none());
        assert!(m
            .alert(&change(
                StateChangeKind::Instance,
                "VI_2",
                VrrpState::Master
            ))
            .is_none());
    }

    // The dialog against a server on loopback, and a refused connection logged as
    // keepalived logs it.
    #[test]
    fn the_dialog_is_keepalived_s_and_a_refusal_is_logged() {
        super::super::test_runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut m = mailer();
            m.server = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 test\r\n").await.unwrap();
                let mut seen = Vec::new();
                let mut data = false;
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).await.unwrap() == 0 {
                        break;
                    }
                    let l = l.trim_end().to_string();
                    seen.push(l.clone());
                    let reply: &[u8] = if data {
                        if l == "." {
                            data = false;
                            b"250 queued\r\n"
                        } else {
                            continue;
                        }
                    } else if l == "DATA" {
                        data = true;
                        b"354 go\r\n"
                    } else if l == "QUIT" {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    } else {
                        b"250-ok\r\n250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
                seen
            });
            let (tx, mut rx) = mpsc::channel(8);
            let alert = m
                .alert(&change(
                    StateChangeKind::Instance,
                    "VI_1",
                    VrrpState::Backup,
                ))
                .unwrap();
            m.clone().send(alert.clone(), tx.clone()).await;
            let seen = server.await.unwrap();
            assert_eq!(
                seen[..4],
                [
                    "HELO vm",
                    "MAIL FROM:<lvs@example.com>",
                    "RCPT TO:<ops@example.com>",
                    "RCPT TO:<noc@example.com>"
                ]
            );
            assert_eq!(seen[4], "DATA");
            assert!(seen[5].starts_with("Date: "));
            assert_eq!(
                seen[7],
                "Subject: [T] VRRP Instance VI_1 - Entering BACKUP state"
            );
            assert_eq!(seen.last().unwrap(), "QUIT");
            assert!(rx
                .recv()
                .await
                .unwrap()
                .starts_with("Remote SMTP server [127.0.0.1]:"));
            assert_eq!(rx.recv().await.unwrap(), "SMTP alert successfully sent.");

            // Nothing listens there any more.
            m.send(alert, tx).await;
            let refused = rx.recv().await.unwrap();
            assert!(
                refused.starts_with("smtp fd ") && refused.ends_with(" returned write error"),
                "{refused}"
            );
        });
    }
}
