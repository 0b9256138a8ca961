//! The kernel's SCTP association states, its chunk events and its transition table.
//!
//! Reference: Linux 6.1 `ip_vs_proto_sctp.c` (`sctp_events`, `sctp_states`,
//! `sctp_timeouts`, `sctp_state_name_table`, `set_sctp_state`). The states are the
//! association as the real server sees it; INIT1 / REJECTED hold a dropped or refused INIT
//! only briefly.

use super::dir::TableDir;
use crate::wire::sctp::chunk;

/// The kernel's SCTP connection states (`IP_VS_SCTP_S_*`), in table order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum SctpState {
    /// NONE.
    None = 0,
    /// INIT1: the client's first INIT, no INIT ACK yet.
    Init1 = 1,
    /// INIT: a further INIT from the client.
    Init = 2,
    /// COOKIE_SENT: the server's INIT ACK passed.
    CookieSent = 3,
    /// COOKIE_REPLIED: the client's COOKIE ECHO passed.
    CookieReplied = 4,
    /// COOKIE_WAIT: the server sent an INIT.
    CookieWait = 5,
    /// COOKIE: the client answered the server's INIT with an INIT ACK.
    Cookie = 6,
    /// COOKIE_ECHOED: the server's COOKIE ECHO passed.
    CookieEchoed = 7,
    /// ESTABLISHED.
    Established = 8,
    /// SHUTDOWN_SENT.
    ShutdownSent = 9,
    /// SHUTDOWN_RECEIVED.
    ShutdownReceived = 10,
    /// SHUTDOWN_ACK_SENT.
    ShutdownAckSent = 11,
    /// REJECTED: the INIT was answered with an ABORT.
    Rejected = 12,
    /// CLOSED.
    Closed = 13,
}

/// Number of SCTP states (`IP_VS_SCTP_S_LAST`).
pub const SCTP_STATES: usize = 14;

const ALL_SCTP: [SctpState; SCTP_STATES] = [
    SctpState::None,
    SctpState::Init1,
    SctpState::Init,
    SctpState::CookieSent,
    SctpState::CookieReplied,
    SctpState::CookieWait,
    SctpState::Cookie,
    SctpState::CookieEchoed,
    SctpState::Established,
    SctpState::ShutdownSent,
    SctpState::ShutdownReceived,
    SctpState::ShutdownAckSent,
    SctpState::Rejected,
    SctpState::Closed,
];

impl SctpState {
    /// The state with kernel number `n`.
    pub fn from_u8(n: u8) -> Option<SctpState> {
        ALL_SCTP.get(usize::from(n)).copied()
    }

    /// The name `ipvsadm -L -c` prints (`sctp_state_name_table`).
    pub fn name(self) -> &'static str {
        match self {
            SctpState::None => "NONE",
            SctpState::Init1 => "INIT1",
            SctpState::Init => "INIT",
            SctpState::CookieSent => "C-SENT",
            SctpState::CookieReplied => "C-REPLIED",
            SctpState::CookieWait => "C-WAIT",
            SctpState::Cookie => "COOKIE",
            SctpState::CookieEchoed => "C-ECHOED",
            SctpState::Established => "ESTABLISHED",
            SctpState::ShutdownSent => "S-SENT",
            SctpState::ShutdownReceived => "S-RECEIVED",
            SctpState::ShutdownAckSent => "S-ACK-SENT",
            SctpState::Rejected => "REJECTED",
            SctpState::Closed => "CLOSED",
        }
    }
}

/// What a packet does to the state (`enum ipvs_sctp_event_t`), in table order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SctpEvent {
    /// DATA, SACK, HEARTBEAT, HEARTBEAT ACK, ECNE, CWR and every unknown chunk type.
    Data = 0,
    /// INIT.
    Init = 1,
    /// INIT ACK.
    InitAck = 2,
    /// COOKIE ECHO.
    CookieEcho = 3,
    /// COOKIE ACK.
    CookieAck = 4,
    /// SHUTDOWN.
    Shutdown = 5,
    /// SHUTDOWN ACK.
    ShutdownAck = 6,
    /// SHUTDOWN COMPLETE.
    ShutdownComplete = 7,
    /// ERROR.
    Error = 8,
    /// ABORT.
    Abort = 9,
}

impl SctpEvent {
    /// The event of a chunk type (`sctp_events`; a type past SHUTDOWN COMPLETE is DATA).
    pub fn of_chunk(kind: u8) -> SctpEvent {
        match kind {
            chunk::INIT => SctpEvent::Init,
            chunk::INIT_ACK => SctpEvent::InitAck,
            chunk::ABORT => SctpEvent::Abort,
            chunk::SHUTDOWN => SctpEvent::Shutdown,
            chunk::SHUTDOWN_ACK => SctpEvent::ShutdownAck,
            chunk::ERROR => SctpEvent::Error,
            chunk::COOKIE_ECHO => SctpEvent::CookieEcho,
            chunk::COOKIE_ACK => SctpEvent::CookieAck,
            chunk::SHUTDOWN_COMPLETE => SctpEvent::ShutdownComplete,
            _ => SctpEvent::Data,
        }
    }
}

use SctpState::{
    Closed as CL, Cookie as CO, CookieEchoed as CE, CookieReplied as CR, CookieSent as CS,
    CookieWait as CW, Established as ES, Init as IN, Init1 as I1, Rejected as RJ,
    ShutdownAckSent as SA, ShutdownReceived as SR, ShutdownSent as SS,
};

type Row = [SctpState; SCTP_STATES];

/// `sctp_states`: per direction (INPUT, OUTPUT, INPUT-ONLY) one row per event, one column
/// per current state (NO I1 IN CS CR CW CO CE ES SS SR SA RJ CL).
const SCTP_TABLE: [[Row; 10]; 3] = [
    // INPUT
    [
        [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL], // DATA
        [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN], // INIT
        [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL], // INIT ACK
        [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL], // COOKIE ECHO
        [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL], // COOKIE ACK
        [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL], // SHUTDOWN
        [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL], // SHUTDOWN ACK
        [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL], // SHUTDOWN COMPLETE
        [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL], // ERROR
        [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL], // ABORT
    ],
    // OUTPUT
    [
        [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
        [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
        [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
        [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
        [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
        [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
        [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
        [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

/// The next SCTP state (`set_sctp_state`'s table lookup).
pub fn sctp_next_state(state: SctpState, dir: TableDir, event: SctpEvent) -> SctpState {
    let d = match dir {
        TableDir::Input => 0,
        TableDir::Output => 1,
        TableDir::InputOnly => 2,
    };
    SCTP_TABLE[d][event as usize][state as usize]
}

/// `sctp_timeouts` in seconds, indexed by [`SctpState`] number: `IP_VS_SCTP_MAX_RTO`
/// (61 s) for the handshake and shutdown states, 4 s for INIT1 and REJECTED, 15 minutes
/// ESTABLISHED, 2 s NONE.
pub const SCTP_TIMEOUTS: [u32; SCTP_STATES] =
    [2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::sctp::chunk;
    use proptest::prelude::*;

    #[test]
    fn names_and_numbers_are_the_kernels() {
        for n in 0..SCTP_STATES as u8 {
            assert_eq!(SctpState::from_u8(n).map(|s| s as u8), Some(n));
        }
        assert_eq!(SctpState::from_u8(14), None);
        assert_eq!(SctpState::CookieReplied.name(), "C-REPLIED");
        assert_eq!(SctpState::ShutdownAckSent.name(), "S-ACK-SENT");
        // Every type IPVS does not name (AUTH 15, FORWARD TSN 0xc0, ASCONF 0xc1) is DATA.
        for (t, e) in [
            (chunk::SACK, SctpEvent::Data),
            (chunk::HEARTBEAT, SctpEvent::Data),
            (chunk::HEARTBEAT_ACK, SctpEvent::Data),
            (chunk::ECNE, SctpEvent::Data),
            (chunk::CWR, SctpEvent::Data),
            (15, SctpEvent::Data),
            (0xc0, SctpEvent::Data),
            (0xc1, SctpEvent::Data),
            (chunk::SHUTDOWN_COMPLETE, SctpEvent::ShutdownComplete),
            (chunk::ERROR, SctpEvent::Error),
        ] {
            assert_eq!(SctpEvent::of_chunk(t), e, "{t}");
        }
    }

    /// The kernel's table as its source prints it, one string per row of state
    /// abbreviations, read into states by name.
    fn kernel_table() -> Vec<Vec<Vec<SctpState>>> {
        let by_abbr = |a: &str| match a {
            "sNO" => SctpState::None,
            "sI1" => I1,
            "sIN" => IN,
            "sCS" => CS,
            "sCR" => CR,
            "sCW" => CW,
            "sCO" => CO,
            "sCE" => CE,
            "sES" => ES,
            "sSS" => SS,
            "sSR" => SR,
            "sSA" => SA,
            "sRJ" => RJ,
            "sCL" => CL,
            _ => panic!("{a}"),
        };
        let rows: [&[&str]; 3] = [
            &[
                "sES sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL",
                "sI1 sIN sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sIN sIN",
                "sCW sCW sCW sCS sCR sCO sCO sCE sES sSS sSR sSA sRJ sCL",
                "sCR sIN sIN sCR sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL",
                "sES sI1 sIN sCS sCR sCW sCO sES sES sSS sSR sSA sRJ sCL",
                "sSR sI1 sIN sCS sCR sCW sCO sCE sSR sSS sSR sSA sRJ sCL",
                "sCL sIN sIN sCS sCR sCW sCO sCE sES sCL sSR sCL sRJ sCL",
                "sCL sCL sCL sCS sCR sCW sCO sCE sES sSS sSR sCL sRJ sCL",
                "sCL sI1 sIN sCS sCR sCW sCO sCL sES sSS sSR sSA sRJ sCL",
                "sCL sCL sCL sCL sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL",
            ],
            &[
                "sES sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL",
                "sCW sCW sCW sCW sCW sCW sCW sCW sES sCW sCW sCW sCW sCW",
                "sCS sCS sCS sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL",
                "sCE sCE sCE sCE sCE sCE sCE sCE sES sSS sSR sSA sRJ sCL",
                "sES sES sES sES sES sES sES sES sES sSS sSR sSA sRJ sCL",
                "sSS sSS sSS sSS sSS sSS sSS sSS sSS sSS sSR sSA sRJ sCL",
                "sSA sSA sSA sSA sSA sCW sCO sCE sES sSA sSA sSA sRJ sCL",
                "sCL sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL",
                "sCL sCL sCL sCL sCL sCW sCO sCE sES sSS sSR sSA sRJ sCL",
                "sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL",
            ],
            &[
                "sES sI1 sIN sCS sCR sES sCO sCE sES sSS sSR sSA sRJ sCL",
                "sI1 sIN sIN sIN sIN sIN sCO sCE sES sSS sSR sSA sIN sIN",
                "sCE sCE sCE sCE sCE sCE sCO sCE sES sSS sSR sSA sRJ sCL",
                "sES sES sES sES sES sES sCO sCE sES sSS sSR sSA sRJ sCL",
                "sES sI1 sIN sES sES sCW sES sES sES sSS sSR sSA sRJ sCL",
                "sSR sI1 sIN sCS sCR sCW sCO sCE sSR sSS sSR sSA sRJ sCL",
                "sCL sIN sIN sCS sCR sCW sCO sCE sCL sCL sSR sCL sRJ sCL",
                "sCL sCL sCL sCL sCL sCW sCO sCE sES sSS sCL sCL sRJ sCL",
                "sCL sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL",
                "sCL sCL sCL sCL sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL",
            ],
        ];
        rows.iter()
            .map(|dir| {
                dir.iter()
                    .map(|r| r.split_whitespace().map(by_abbr).collect())
                    .collect()
            })
            .collect()
    }

    /// The reference model's chunk → event mapping, straight from `sctp_events`.
    fn kernel_event(kind: u8) -> usize {
        let events: [usize; 15] = [0, 1, 2, 0, 0, 0, 9, 5, 6, 8, 3, 4, 0, 0, 7];
        events.get(usize::from(kind)).copied().unwrap_or(0)
    }

    proptest! {
        #[test]
        fn the_table_is_the_kernels(state in 0u8..14, dir in 0usize..3, kind: u8) {
            let t = kernel_table();
            let s = SctpState::from_u8(state).unwrap();
            let d = [TableDir::Input, TableDir::Output, TableDir::InputOnly][dir];
            let want = t[dir][kernel_event(kind)][usize::from(state)];
            prop_assert_eq!(sctp_next_state(s, d, SctpEvent::of_chunk(kind)), want);
        }
    }
}
