//! The kernel's TCP state tables (`tcp_states`, `tcp_states_dos`) and the per-state
//! timeouts of every protocol.
//!
//! Reference: Linux 6.1 `ip_vs_proto_tcp.c` / `ip_vs_proto_udp.c` / `ip_vs_proto_sctp.c`.

/// The kernel's TCP connection states (`IP_VS_TCP_S_*`), in table order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum TcpState {
    /// NONE.
    None = 0,
    /// ESTABLISHED.
    Established = 1,
    /// SYN_SENT.
    SynSent = 2,
    /// SYN_RECV.
    SynRecv = 3,
    /// FIN_WAIT.
    FinWait = 4,
    /// TIME_WAIT.
    TimeWait = 5,
    /// CLOSE.
    Close = 6,
    /// CLOSE_WAIT.
    CloseWait = 7,
    /// LAST_ACK.
    LastAck = 8,
    /// LISTEN.
    Listen = 9,
    /// SYNACK.
    SynAck = 10,
}

/// Number of TCP states (`IP_VS_TCP_S_LAST`).
pub const TCP_STATES: usize = 11;

const ALL_TCP: [TcpState; TCP_STATES] = [
    TcpState::None,
    TcpState::Established,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::FinWait,
    TcpState::TimeWait,
    TcpState::Close,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::Listen,
    TcpState::SynAck,
];

impl TcpState {
    /// The state with kernel number `n`.
    pub fn from_u8(n: u8) -> Option<TcpState> {
        ALL_TCP.get(usize::from(n)).copied()
    }

    /// The name `ipvsadm -L -c` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }
}

/// The TCP header bits the state machine reads.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// FIN.
    pub fin: bool,
    /// ACK.
    pub ack: bool,
    /// RST.
    pub rst: bool,
}

impl TcpFlags {
    /// A bare SYN.
    pub const SYN: TcpFlags = TcpFlags {
        syn: true,
        fin: false,
        ack: false,
        rst: false,
    };
    /// SYN+ACK.
    pub const SYN_ACK: TcpFlags = TcpFlags {
        syn: true,
        fin: false,
        ack: true,
        rst: false,
    };
    /// A bare ACK.
    pub const ACK: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        ack: true,
        rst: false,
    };
    /// FIN+ACK.
    pub const FIN_ACK: TcpFlags = TcpFlags {
        syn: false,
        fin: true,
        ack: true,
        rst: false,
    };
    /// RST.
    pub const RST: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        ack: false,
        rst: true,
    };

    /// Row in the state table (`tcp_state_idx`): RST beats SYN beats FIN beats ACK.
    fn row(self) -> Option<usize> {
        if self.rst {
            Some(3)
        } else if self.syn {
            Some(0)
        } else if self.fin {
            Some(1)
        } else if self.ack {
            Some(2)
        } else {
            None
        }
    }
}

use super::dir::TableDir;
use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

type StateRow = [TcpState; TCP_STATES];

/// `tcp_states`: rows syn/fin/ack/rst for INPUT, then OUTPUT, then INPUT-ONLY.
const TCP_STATES_NORMAL: [StateRow; 12] = [
    // INPUT
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    // OUTPUT
    [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    // INPUT-ONLY
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// `tcp_states_dos`: the table `secure_tcp` switches to.
const TCP_STATES_SECURE: [StateRow; 12] = [
    // INPUT
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
    [CL, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    // OUTPUT
    [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    // INPUT-ONLY
    [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// The next TCP state (`set_tcp_state`), for the normal or the `secure_tcp` table.
/// A segment without SYN/FIN/ACK/RST moves the connection to CLOSE, as the kernel does.
pub fn tcp_next_state(state: TcpState, dir: TableDir, flags: TcpFlags, secure: bool) -> TcpState {
    let Some(row) = flags.row() else {
        return TcpState::Close;
    };
    let off = match dir {
        TableDir::Input => 0,
        TableDir::Output => 4,
        TableDir::InputOnly => 8,
    };
    let table = if secure {
        &TCP_STATES_SECURE
    } else {
        &TCP_STATES_NORMAL
    };
    table[off + row][state as usize]
}

/// Per-state timeouts in seconds (`tcp_timeouts`, `udp_timeouts`, `sctp_timeouts`); `ipvsadm
/// --set` changes the TCP and UDP ones.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Timeouts {
    /// TCP, indexed by [`TcpState`] number.
    pub tcp: [u32; TCP_STATES],
    /// UDP (`IP_VS_UDP_S_NORMAL`).
    pub udp: u32,
    /// SCTP, indexed by [`super::SctpState`] number.
    pub sctp: [u32; super::SCTP_STATES],
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            // NONE, ES, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, SYNACK
            tcp: [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            udp: 300,
            sctp: super::SCTP_TIMEOUTS,
        }
    }
}

impl Timeouts {
    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP timeouts; 0 leaves one unchanged.
    pub fn set(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if tcpfin != 0 {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }

    /// What `ipvsadm -L --timeout` prints: (tcp, tcpfin, udp).
    pub fn get(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established as usize],
            self.tcp[TcpState::FinWait as usize],
            self.udp,
        )
    }

    /// Timeout of a connection of protocol `proto` in `state` (a state past the table's
    /// is the kernel's `[IP_VS_*_S_LAST]` entry, 2 s); any other protocol has UDP's.
    pub fn for_state(&self, proto: u8, state: u8) -> u32 {
        match proto {
            6 => self.tcp.get(usize::from(state)).copied().unwrap_or(2),
            132 => self.sctp.get(usize::from(state)).copied().unwrap_or(2),
            _ => self.udp,
        }
    }
}
