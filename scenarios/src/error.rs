//! Errors from loading a scenario: each names the file, and for a bad value its line, column and key.

use std::path::PathBuf;

use crate::duration::DurationError;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file could not be read.
    #[error("{}: cannot read the scenario: {source}", file.display())]
    Read {
        /// The scenario file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML, or not the shape of a scenario (toml's message keeps its line and column).
    #[error("{}: {source}", file.display())]
    Parse {
        /// The scenario file.
        file: PathBuf,
        /// toml's error, with its line, column and excerpt.
        source: toml::de::Error,
    },
    /// Well-formed TOML, but a value is wrong.
    #[error("{}:{line}:{column}: {key}: {problem}", file.display())]
    Invalid {
        /// The scenario file.
        file: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column (in characters) of the offending value.
        column: usize,
        /// Path of the key, e.g. `fault[2].host` (array indices count from 0).
        key: String,
        /// What is wrong (boxed: keeps `Result`s small on the happy path).
        problem: Box<Problem>,
    },
}

impl ScenarioError {
    /// The validation problem, when the error is one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ScenarioError::Invalid { problem, .. } => Some(problem.as_ref()),
            _ => None,
        }
    }
}

/// What is wrong with a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// A duration string that does not parse.
    #[error("{0}")]
    Duration(#[from] DurationError),
    /// A `"LO..HI"` range whose LO is above its HI.
    #[error("{text:?}: the first duration is longer than the second")]
    BackwardsSpan {
        /// The text written.
        text: String,
    },
    /// A scenario the simulator would not finish in reasonable time.
    #[error("{what}")]
    TooMuchWork {
        /// What, how much, and the cap.
        what: String,
    },
    /// A duration that must be positive is zero.
    #[error("must be longer than 0s")]
    ZeroDuration,
    /// An event scheduled after the scenario ends.
    #[error("at = {at} is after the end of the scenario (duration = {duration})")]
    AfterEnd {
        /// The event's time as written.
        at: String,
        /// The scenario's duration as written.
        duration: String,
    },
    /// Two segments, hosts, interfaces or services with one name.
    #[error("duplicate {what} {name:?}")]
    Duplicate {
        /// "segment", "host", ...
        what: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A host name that no `[[host]]` defines.
    #[error("unknown host {name:?} (hosts: {known})")]
    UnknownHost {
        /// The name written.
        name: String,
        /// The defined names, comma-separated.
        known: String,
    },
    /// A segment name that no `[[segment]]` defines.
    #[error("unknown segment {name:?} (segments: {known})")]
    UnknownSegment {
        /// The name written.
        name: String,
        /// The defined names, comma-separated.
        known: String,
    },
    /// An interface name the host does not have.
    #[error("host {host:?} has no interface {name:?} (interfaces: {known})")]
    UnknownIface {
        /// The host.
        host: String,
        /// The name written.
        name: String,
        /// The host's interfaces, comma-separated.
        known: String,
    },
    /// Not `ADDRESS/LEN`.
    #[error("bad interface address {text:?}: write an address and prefix length, e.g. \"223.202.22.114/24\" (ip) or \"2001:db8:22::114/64\" (ip6)")]
    BadCidr {
        /// The text written.
        text: String,
    },
    /// Not an address of the family the key takes.
    #[error("bad {family} address {text:?}")]
    BadIp {
        /// The text written.
        text: String,
        /// "IPv4" (`gateway`), "IPv6" (`gateway6`) or "IP".
        family: &'static str,
    },
    /// Not `ADDRESS:PORT`.
    #[error("bad address {text:?}: write ADDRESS:PORT, e.g. \"223.202.22.118:80\" or \"[2001:db8:22::118]:80\"")]
    BadSocketAddr {
        /// The text written.
        text: String,
    },
    /// Something the simulator cannot run yet, refused rather than run differently.
    #[error("{what}: the simulator cannot run this yet")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// Two interfaces with one address.
    #[error("address {addr} is already used by {other}")]
    DuplicateAddress {
        /// The address.
        addr: String,
        /// Key of the first use.
        other: String,
    },
    /// Not `xx:xx:xx:xx:xx:xx`.
    #[error("bad MAC address {text:?}: write six hex bytes, e.g. \"02:00:00:00:00:01\"")]
    BadMac {
        /// The text written.
        text: String,
    },
    /// A group address given to an interface.
    #[error("MAC address {mac} is a multicast address")]
    MulticastMac {
        /// The address.
        mac: String,
    },
    /// Two interfaces with one MAC (given or derived).
    #[error("MAC address {mac} is already used by {other}")]
    DuplicateMac {
        /// The address.
        mac: String,
        /// Key of the first use.
        other: String,
    },
    /// A default route not reachable through any interface.
    #[error("gateway {addr} is not on any of the host's subnets")]
    GatewayOffLink {
        /// The gateway address.
        addr: String,
    },
    /// A role-specific key on a host of another role.
    #[error("only a {key_role} host takes this key (this host is a {role})")]
    WrongRoleKey {
        /// The role the key belongs to.
        key_role: &'static str,
        /// The host's role.
        role: &'static str,
    },
    /// A key the role (or fault kind) requires is absent.
    #[error("missing key `{key}`")]
    Missing {
        /// The missing key.
        key: &'static str,
    },
    /// Two keys that exclude each other.
    #[error("give either `{a}` or `{b}`, not both")]
    Conflict {
        /// First key.
        a: &'static str,
        /// Second key.
        b: &'static str,
    },
    /// Neither of two alternative keys.
    #[error("give `{a}` or `{b}`")]
    NeedOneOf {
        /// First key.
        a: &'static str,
        /// Second key.
        b: &'static str,
    },
    /// A key that only the other alternative takes.
    #[error("only applies with `{needs}`")]
    OnlyWith {
        /// The key it depends on.
        needs: &'static str,
    },
    /// The keepalived.conf file cannot be read.
    #[error("cannot read keepalived.conf {path}: {error}")]
    ConfRead {
        /// The resolved path.
        path: String,
        /// The I/O error's text.
        error: String,
    },
    /// A number outside its allowed range.
    #[error("{value} is out of range ({range})")]
    OutOfRange {
        /// The value written.
        value: String,
        /// The allowed range, in words.
        range: &'static str,
    },
    /// A snapshot command that is none of those a snapshot can print.
    #[error("cannot show {text:?}: write one of \"ipvsadm -L -n\", \"ipvsadm -L -n --stats\", \"ipvsadm -L -n --rate\", \"ipvsadm -L -n -c\", \"ip addr\"")]
    BadShow {
        /// The text written.
        text: String,
    },
    /// A real server's tunnel receiver that is none of the three.
    #[error("bad tunnel {text:?}: write \"ipip\" (tunl0), \"gre\" (gre0) or \"gue:PORT\" (ip fou add port PORT gue)")]
    BadTunnel {
        /// The text written.
        text: String,
    },
    /// A host without interfaces.
    #[error("a host needs at least one interface")]
    NoInterfaces,
    /// A fault key the fault's kind does not take.
    #[error("does not apply to kind {kind:?}")]
    NotForKind {
        /// The fault kind.
        kind: &'static str,
    },
    /// A fault key the fault's kind needs.
    #[error("kind {kind:?} needs key `{key}`")]
    KindNeeds {
        /// The fault kind.
        kind: &'static str,
        /// The missing key.
        key: &'static str,
    },
    /// A host of the wrong role for the key.
    #[error("host {host:?} is a {actual}, not a {expected}")]
    WrongRole {
        /// The host.
        host: String,
        /// The role(s) expected.
        expected: &'static str,
        /// Its role.
        actual: &'static str,
    },
    /// A port with no service on the real server.
    #[error("host {host:?} has no service on port {port}")]
    UnknownPort {
        /// The real server.
        host: String,
        /// The port.
        port: u16,
    },
    /// Fewer than two non-empty partition groups.
    #[error("a partition needs at least two non-empty groups of hosts")]
    PartitionGroups,
    /// A one-way partition with other than two groups.
    #[error("a one-way partition needs exactly two groups: [from, to]")]
    OneWayGroups,
    /// A script the director's keepalived.conf does not run.
    #[error("{host:?}'s keepalived.conf runs no script {script:?} (its scripts: {known})")]
    UnknownScript {
        /// The director.
        host: String,
        /// The command line asked for.
        script: String,
        /// The scripts it does run, comma-separated (or "none").
        known: String,
    },
    /// One host in two partition groups.
    #[error("host {host:?} is in more than one group")]
    HostInTwoGroups {
        /// The host.
        host: String,
    },
    /// Not a VRRP state name.
    #[error("unknown VRRP state {text:?} (MASTER, BACKUP, FAULT or STOPPED)")]
    BadState {
        /// The text written.
        text: String,
    },
    /// Not `[low, high]` within 0..=1.
    #[error("a share is [low, high] with 0 <= low <= high <= 1")]
    BadShare,
    /// A workload that stops before it starts.
    #[error("start ({start}) is after stop ({stop})")]
    StartAfterStop {
        /// Start as formatted.
        start: String,
        /// Stop as formatted.
        stop: String,
    },
}
