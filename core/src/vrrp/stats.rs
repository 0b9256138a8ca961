//! keepalived's per-instance counters (`vrrp_stats`: what its stats dump, `SIGUSR2` →
//! `/tmp/keepalived.stats`, and `SIGJSON` show), kept by [`super::VrrpRouter`].

use super::wire::DecodeError;

/// The counters of one `vrrp_instance`, named as keepalived's `vrrp_stats` fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InstanceStats {
    /// Instance name.
    pub name: String,
    /// Adverts of the right type, version, length and cast that reached the instance.
    pub advert_rcvd: u64,
    /// Adverts sent (one per send, whatever the number of unicast peers).
    pub advert_sent: u64,
    /// Times it became MASTER.
    pub become_master: u64,
    /// Times it left MASTER.
    pub release_master: u64,
    /// Adverts whose length disagreed with their header.
    pub packet_len_err: u64,
    /// Adverts with a TTL / hop limit other than 255.
    pub ip_ttl_err: u64,
    /// Packets of a type other than advertisement.
    pub invalid_type_rcvd: u64,
    /// Adverts with another advert interval (v2).
    pub advert_interval_err: u64,
    /// Adverts whose address list (count, addresses, multicast vs unicast) was not ours.
    pub addr_list_err: u64,
    /// Adverts with an unknown authentication type.
    pub invalid_authtype: u64,
    /// Adverts with another authentication type than ours.
    pub authtype_mismatch: u64,
    /// Adverts with a wrong password.
    pub auth_failure: u64,
    /// Adverts with another VRRP version (keepalived's `vers_err`).
    pub vers_err: u64,
    /// Adverts with a wrong VRRP checksum (keepalived's `chk_err`).
    pub chk_err: u64,
    /// Priority-0 adverts received.
    pub pri_zero_rcvd: u64,
    /// Priority-0 adverts sent when releasing MASTER (`vrrp_restore_interface` with `advF`).
    pub pri_zero_sent: u64,
    /// State changes (each notify of the instance).
    pub transitions: u64,
}

/// Why a received advert was refused, as the counter it bumps.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RxError {
    /// `packet_len_err`.
    Length,
    /// `ip_ttl_err`.
    Ttl,
    /// `invalid_type_rcvd`.
    InvalidType,
    /// `vers_err`.
    Version,
    /// `chk_err`.
    Checksum,
    /// `advert_interval_err`.
    AdvertInterval,
    /// `addr_list_err`: address count or multicast vs unicast.
    AddrList,
    /// `addr_list_err`: one of our addresses missing (checked after `advert_rcvd` is bumped).
    AddrMissing,
    /// `invalid_authtype`.
    InvalidAuthType,
    /// `authtype_mismatch`.
    AuthTypeMismatch,
    /// `auth_failure`.
    AuthFailure,
}

impl RxError {
    /// The counter a codec refusal bumps; `None` for what the kernel drops before keepalived
    /// sees it (bad IP header or checksum, fragments) or what is not this instance's.
    pub fn of(e: &DecodeError) -> Option<RxError> {
        Some(match e {
            DecodeError::Truncated { .. } | DecodeError::LengthMismatch { .. } => RxError::Length,
            DecodeError::BadTtl(_) => RxError::Ttl,
            DecodeError::WrongType(_) => RxError::InvalidType,
            DecodeError::WrongVersion { .. } => RxError::Version,
            DecodeError::BadChecksum { .. } => RxError::Checksum,
            DecodeError::AdvertIntMismatch { .. } => RxError::AdvertInterval,
            DecodeError::AddrCountMismatch { .. } | DecodeError::CastMismatch { .. } => {
                RxError::AddrList
            }
            DecodeError::AddrMissing(_) => RxError::AddrMissing,
            DecodeError::InvalidAuthType(_) => RxError::InvalidAuthType,
            DecodeError::AuthTypeMismatch { .. } => RxError::AuthTypeMismatch,
            DecodeError::AuthFailure => RxError::AuthFailure,
            DecodeError::NotIp(_)
            | DecodeError::MalformedIp { .. }
            | DecodeError::BadIpChecksum { .. }
            | DecodeError::Fragmented
            | DecodeError::NotVrrp(_)
            | DecodeError::VridNotOurs { .. } => return None,
        })
    }

    /// keepalived counts these as received adverts too (vrrp.c `vrrp_check_packet` checks
    /// the addresses after bumping `advert_rcvd`).
    pub(crate) fn counts_as_received(self) -> bool {
        self == RxError::AddrMissing
    }
}

impl InstanceStats {
    /// Bump the counter for `e`.
    pub(crate) fn count(&mut self, e: RxError) {
        let c = match e {
            RxError::Length => &mut self.packet_len_err,
            RxError::Ttl => &mut self.ip_ttl_err,
            RxError::InvalidType => &mut self.invalid_type_rcvd,
            RxError::Version => &mut self.vers_err,
            RxError::Checksum => &mut self.chk_err,
            RxError::AdvertInterval => &mut self.advert_interval_err,
            RxError::AddrList | RxError::AddrMissing => &mut self.addr_list_err,
            RxError::InvalidAuthType => &mut self.invalid_authtype,
            RxError::AuthTypeMismatch => &mut self.authtype_mismatch,
            RxError::AuthFailure => &mut self.auth_failure,
        };
        *c += 1;
    }
}
