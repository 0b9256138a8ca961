//! The timeline's colours and patterns, and the legend that explains them.

use lvs_core::director::VrrpState;

/// How a stretch of a lane is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Style {
    /// A colour or `url(#pattern)`.
    pub fill: &'static str,
    /// A pattern drawn over the fill (a host condition: NIC down, partitioned).
    pub overlay: Option<&'static str>,
    /// White text on it.
    pub dark: bool,
    /// Which wins when stretches share a pixel (higher: more worth seeing).
    pub rank: u8,
}

const fn s(fill: &'static str, dark: bool, rank: u8) -> Style {
    Style {
        fill,
        overlay: None,
        dark,
        rank,
    }
}

/// Two live holders of a VIP at once.
pub(super) const SPLIT: &str = "#ff8c00";

pub(super) const MASTER: Style = s("#2e8b57", true, 3);
pub(super) const BACKUP: Style = s("#b0c4de", false, 2);
pub(super) const FAULT: Style = s("#cd5c5c", false, 7);
pub(super) const INIT: Style = s("#e0e0e0", false, 1);
pub(super) const STOP: Style = s("#c8c8c8", false, 4);
pub(super) const NOT_STARTED: Style = s("#f7f7f7", false, 0);
pub(super) const KILLED: Style = s("url(#p-killed)", false, 6);
pub(super) const STOPPED: Style = s("#a9a9a9", false, 5);
pub(super) const PAUSED: Style = s("url(#p-paused)", false, 5);
pub(super) const UP: Style = s("#3cb371", false, 2);
pub(super) const SERVING: Style = UP;
pub(super) const DOWN: Style = s("#cd5c5c", false, 7);
pub(super) const NO_CHECKER: Style = s("url(#p-nochk)", false, 4);
pub(super) const NO_HOLDER: Style = s("#f4cccc", false, 7);
pub(super) const LEFTOVER: Style = s("url(#p-leftover)", false, 7);
pub(super) const SPLIT_BRAIN: Style = s(SPLIT, false, 9);
pub(super) const UNKNOWN_MAC: Style = s("#999999", false, 6);
/// Overlay: an interface of the host is down.
pub(super) const NIC_DOWN: &str = "url(#p-nic)";
/// Overlay: a gateway sends the VIP to a host that does not serve it.
pub(super) const STALE: &str = "#cc0000";
/// Overlay: the host is cut off from some others.
pub(super) const PARTITIONED: &str = "url(#p-part)";

/// Request panels.
pub(super) const REQ_OK: &str = "#7a9cc6";
pub(super) const REQ_FAILED: &str = "#cc0000";
pub(super) const P50: &str = "#1f5fa8";
pub(super) const P99: &str = "#a0307a";

/// Directors, in scenario order: colours used for nothing else.
const DIRECTORS: [&str; 6] = [
    "#4682b4", "#8a6bbe", "#2a9d8f", "#b5838d", "#6d8b3a", "#5f6f94",
];

/// The colour of the `i`-th director.
pub(super) fn director(i: Option<usize>) -> Style {
    let fill = DIRECTORS[i.unwrap_or(0) % DIRECTORS.len()];
    s(fill, true, 3)
}

/// The colour of a VRRP state.
pub(super) fn vrrp(state: VrrpState) -> Style {
    match state {
        VrrpState::Master => MASTER,
        VrrpState::Backup => BACKUP,
        VrrpState::Fault => FAULT,
        VrrpState::Init => INIT,
        VrrpState::Stop => STOP,
    }
}

/// The patterns the styles name.
pub(super) const DEFS: &str = r##"<defs>
<pattern id="p-killed" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#e3e3e3"/><rect width="2" height="6" fill="#8c8c8c"/></pattern>
<pattern id="p-paused" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="6" height="6" fill="#e6d8f0"/><rect width="2" height="6" fill="#9370db"/></pattern>
<pattern id="p-nochk" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#f2f2f2"/><rect width="2" height="8" fill="#c4c4c4"/></pattern>
<pattern id="p-leftover" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#f4cccc"/><rect width="2" height="8" fill="#a9a9a9"/></pattern>
<pattern id="p-nic" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="2" height="6" fill="#8b0000"/></pattern>
<pattern id="p-part" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#ffffff"/><rect width="3" height="6" fill="#222222"/></pattern>
</defs>
"##;

/// The legend's entries: (fill, overlay, words), grouped.
pub(super) fn legend() -> Vec<(&'static str, Vec<(Style, &'static str)>)> {
    let over = |o: &'static str| Style {
        overlay: Some(o),
        ..s("#ffffff", false, 0)
    };
    vec![
        (
            "VRRP",
            vec![
                (MASTER, "MASTER"),
                (BACKUP, "BACKUP"),
                (FAULT, "FAULT"),
                (INIT, "INIT / starting"),
                (STOP, "STOP"),
            ],
        ),
        (
            "keepalived",
            vec![
                (NOT_STARTED, "not started"),
                (STOPPED, "STOPPED (SIGTERM)"),
                (KILLED, "killed (SIGKILL)"),
                (PAUSED, "paused (SIGSTOP)"),
            ],
        ),
        (
            "host",
            vec![
                (over(NIC_DOWN), "NIC down"),
                (over(PARTITIONED), "partitioned"),
            ],
        ),
        (
            "VIP",
            vec![
                (director(Some(0)), "held by (colour per director)"),
                (SPLIT_BRAIN, "SPLIT BRAIN"),
                (NO_HOLDER, "no holder"),
                (
                    Style {
                        overlay: Some(STALE),
                        ..director(Some(1))
                    },
                    "gateway ARP stale",
                ),
            ],
        ),
        (
            "real server",
            vec![
                (UP, "up / serving"),
                (DOWN, "down"),
                (NO_CHECKER, "no checker (director not running)"),
            ],
        ),
        (
            "requests",
            vec![
                (s(REQ_OK, false, 0), "answered"),
                (s(REQ_FAILED, false, 0), "failed"),
                (s(P50, false, 0), "p50 latency"),
                (s(P99, false, 0), "p99 latency"),
            ],
        ),
    ]
}
