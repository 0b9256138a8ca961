//! The checkers inside a `real_server`: TCP_CHECK, HTTP_GET / SSL_GET (with `url`), MISC_CHECK
//! (keepalived's `check_tcp.c`, `check_http.c`, `check_misc.c` parsers).

use super::{joined, Builder};
use crate::config::diagnostic::Spanned;
use crate::config::model::*;
use crate::config::tree::Block;

const CHECK_COMMON: &[&str] = &[
    "connect_ip",
    "connect_port",
    "bindto",
    "connect_timeout",
    "retry",
    "delay_before_retry",
    "warmup",
];
const CHECK_COMMON_OTHER: &[&str] = &[
    "bind_port",
    "bind_if",
    "fwmark",
    "delay_loop",
    "alpha",
    "log_all_failures",
];
const HTTP: &[&str] = &["url", "nb_get_retry", "virtualhost"];
const HTTP_OTHER: &[&str] = &["http_protocol", "enable_sni", "fast_recovery"];
const MISC: &[&str] = &["misc_path", "misc_timeout", "misc_dynamic"];
const MISC_OTHER: &[&str] = &[
    "user",
    "retry",
    "delay_before_retry",
    "warmup",
    "delay_loop",
    "alpha",
    "log_all_failures",
];
const URL: &[&str] = &["path", "digest", "status_code"];
const URL_OTHER: &[&str] = &[
    "virtualhost",
    "regex",
    "regex_no_match",
    "regex_options",
    "regex_min_offset",
    "regex_max_offset",
    "regex_stack",
];

/// keepalived's HTTP_STATUS_CODE_MIN / _MAX.
const STATUS_MIN: u16 = 100;
const STATUS_MAX: u16 = 599;

/// A `status_code` word: `N` or `LOW-HIGH`, both within 100-599 and LOW <= HIGH, as
/// check_http.c's `status_code_handler` reads it (strtoul: an optional `+`, digits).
fn status_range(word: &str) -> Option<(u16, u16)> {
    let num = |t: &str| -> Option<u16> {
        let d = t.strip_prefix('+').unwrap_or(t);
        if d.is_empty() || !d.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        d.parse::<u16>().ok()
    };
    let (min, max) = match word.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(word)?, num(word)?),
    };
    let ok = (STATUS_MIN..=STATUS_MAX).contains(&min)
        && (STATUS_MIN..=STATUS_MAX).contains(&max)
        && min <= max;
    ok.then_some((min, max))
}

impl Builder<'_> {
    pub(super) fn checker(&mut self, kind: Spanned<CheckerKind>, b: &Block) -> Checker {
        let mut c = Checker {
            kind: kind.clone(),
            connect_timeout: None,
            connect_port: None,
            connect_ip: None,
            bindto: None,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            urls: Vec::new(),
            misc_path: None,
            misc_timeout: None,
            misc_dynamic: None,
            other: Vec::new(),
        };
        let context = match kind.value {
            CheckerKind::Tcp => "TCP_CHECK",
            CheckerKind::Http => "HTTP_GET",
            CheckerKind::Ssl => "SSL_GET",
            CheckerKind::Misc => "MISC_CHECK",
        };
        let http = matches!(kind.value, CheckerKind::Http | CheckerKind::Ssl);
        let misc = kind.value == CheckerKind::Misc;
        for n in &b.nodes {
            let k = n.keyword().text.as_str();
            let connecting = !misc && CHECK_COMMON.contains(&k);
            match k {
                "connect_timeout" if connecting => {
                    c.connect_timeout = self.secs_arg(n, 1, u64::MAX / 2)
                }
                "connect_port" if connecting => {
                    if let Some(w) = self.arg(n, 1) {
                        c.connect_port = self.port(w);
                    }
                }
                "connect_ip" if connecting => c.connect_ip = self.ip_arg(n),
                "bindto" if connecting => c.bindto = self.ip_arg(n),
                "retry" => c.retry = self.int_arg(n, 0, i64::from(u32::MAX)),
                "nb_get_retry" if http => {
                    // keepalived 2.2: "nb_get_retry is deprecated - please use 'retry'".
                    self.s.warn_as_keepalived(
                        &n.keyword().span,
                        "nb_get_retry is deprecated - please use 'retry'",
                    );
                    c.retry = self.int_arg(n, 0, i64::from(u32::MAX));
                }
                "delay_before_retry" => c.delay_before_retry = self.secs_arg(n, 0, u64::MAX / 2),
                "warmup" => c.warmup = self.secs_arg(n, 0, u64::MAX / 2),
                "url" if http => {
                    if let Some(b) = self.need_block(n) {
                        let u = self.url(b);
                        c.urls.push(u);
                    }
                }
                "misc_path" if misc => c.misc_path = self.cmd_arg(n),
                "misc_timeout" if misc => c.misc_timeout = self.secs_arg(n, 1, u64::MAX / 2),
                "misc_dynamic" if misc => c.misc_dynamic = Some(self.flag(n)),
                _ => {
                    let others: &[&str] = if misc {
                        MISC_OTHER
                    } else if http {
                        HTTP_OTHER
                    } else {
                        &[]
                    };
                    let common_other: &[&str] = if misc { &[] } else { CHECK_COMMON_OTHER };
                    let is_other = others.contains(&k)
                        || common_other.contains(&k)
                        || (http && k == "virtualhost");
                    if is_other {
                        if let Some(j) = joined(&n.words) {
                            c.other.push(j);
                        }
                    } else {
                        let known: &[&[&str]] = if misc {
                            &[MISC, MISC_OTHER]
                        } else if http {
                            &[CHECK_COMMON, CHECK_COMMON_OTHER, HTTP, HTTP_OTHER]
                        } else {
                            &[CHECK_COMMON, CHECK_COMMON_OTHER]
                        };
                        self.unknown(n, context, known);
                    }
                }
            }
        }
        c
    }

    fn url(&mut self, b: &Block) -> Url {
        let mut u = Url::default();
        for n in &b.nodes {
            match n.keyword().text.as_str() {
                "path" => u.path = self.str_arg(n),
                "digest" => {
                    u.digest = self.str_arg(n);
                    if let Some(d) = &u.digest {
                        if d.value.len() != 32 || !d.value.chars().all(|c| c.is_ascii_hexdigit()) {
                            self.s.error(
                                &d.span,
                                format!("digest '{}' is not 32 hex digits (an MD5 sum)", d.value),
                            );
                        }
                    }
                }
                "status_code" => {
                    for w in n.args() {
                        match status_range(&w.text) {
                            Some(r) => u.status_codes.push(Spanned::new(r, w.span.clone())),
                            // keepalived skips the word and keeps the others.
                            None => self.s.warn_as_keepalived(
                                &w.span,
                                format!("Invalid HTTP_GET status code '{}'", w.text),
                            ),
                        }
                    }
                }
                k if URL_OTHER.contains(&k) => {}
                _ => self.unknown(n, "url", &[URL, URL_OTHER]),
            }
        }
        u
    }
}
