//! The control side (`ip_vs_ctl.c`): the `ipvsadm` verbs on services and destinations.

use std::net::IpAddr;

use super::{Counters, Ipvs};
use crate::ipvs::conn::DestId;
use crate::ipvs::service::{Dest, DestSpec, IpvsError, Service, ServiceSpec};
use crate::ipvs::stats::IpvsStats;
use crate::ipvs::{IpvsChange, ServiceKey, SockAddr};

impl Ipvs {
    /// `ipvsadm --set tcp tcpfin udp` (0 keeps a value).
    pub fn set_timeouts(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        self.timeouts.set(tcp, tcpfin, udp);
    }

    /// Apply an `ipvsadm` verb.
    pub fn apply(&mut self, change: &IpvsChange) -> Result<(), IpvsError> {
        match change {
            IpvsChange::AddService(s) => self.add_service(s.clone()),
            IpvsChange::EditService(s) => self.edit_service(s.clone()),
            IpvsChange::DelService(k) => self.del_service(k),
            IpvsChange::AddDest(k, d) => self.add_dest(k, d),
            IpvsChange::EditDest(k, d) => self.edit_dest(k, d),
            IpvsChange::DelDest(k, a) => self.del_dest(k, a.0, a.1),
        }
    }

    /// `ipvsadm -A`.
    pub fn add_service(&mut self, spec: ServiceSpec) -> Result<(), IpvsError> {
        if self.services.contains_key(&spec.key) {
            return Err(IpvsError::ServiceExists);
        }
        let key = spec.key;
        let svc = Service::new(spec);
        self.services.insert(key, svc);
        // A new service object: new estimators, for it and whatever it will hold.
        self.estimators.forget(&key, None);
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -E`: see [`Service::edit`]; destinations and counters stay.
    pub fn edit_service(&mut self, spec: ServiceSpec) -> Result<(), IpvsError> {
        let svc = self
            .services
            .get_mut(&spec.key)
            .ok_or(IpvsError::NoSuchService)?;
        svc.edit(spec);
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -D`. Connections stay until they expire; their destinations are kept aside.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        let svc = self.services.remove(key).ok_or(IpvsError::NoSuchService)?;
        for d in svc.dests() {
            // __ip_vs_update_dest zeroes the stats of a destination that comes back into
            // another service object, as any service added again under this key is.
            let d = Dest {
                stats: IpvsStats::default(),
                ..d.clone()
            };
            self.save_counters(*key, &d);
        }
        self.refresh_weights();
        Ok(())
    }

    fn save_counters(&mut self, key: ServiceKey, d: &Dest) {
        let c = Counters::of(d);
        for s in self.slots.iter_mut() {
            if s.refs > 0 && s.svc == key && s.addr == d.addr && s.port == d.port {
                s.saved = Some(c);
            }
        }
    }

    /// `ipvsadm -a`.
    pub fn add_dest(&mut self, key: &ServiceKey, spec: &DestSpec) -> Result<(), IpvsError> {
        if spec.weight < 0 {
            return Err(IpvsError::BadWeight(spec.weight));
        }
        let svc = self.services.get_mut(key).ok_or(IpvsError::NoSuchService)?;
        svc.add_dest(spec)?;
        // A destination coming back from the trash brings its counters.
        let mut restored = None;
        for s in self.slots.iter_mut() {
            if s.svc == *key && s.addr == spec.addr && s.port == spec.port {
                if let Some(c) = s.saved.take() {
                    restored = Some(c);
                }
            }
        }
        if restored.is_none() {
            // A new destination object starts a new estimator; one back from the trash
            // keeps its own, which did not run meanwhile.
            let at = SockAddr(spec.addr, spec.port);
            self.estimators.forget(key, Some(at));
        }
        let svc = self.services.get_mut(key).ok_or(IpvsError::NoSuchService)?;
        if let (Some(c), Some(d)) = (restored, svc.dest_mut(spec.addr, spec.port)) {
            d.activeconns = c.active;
            d.inactconns = c.inact;
            d.persistconns = c.persist;
            d.stats = c.stats;
            // __ip_vs_update_dest on the destination the trash kept: the flag and thresholds
            // it had, then the new thresholds.
            d.overloaded = c.overloaded;
            (d.u_threshold, d.l_threshold) = (c.u_threshold, c.l_threshold);
            d.set_thresholds(spec.u_threshold, spec.l_threshold);
        }
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -e`.
    pub fn edit_dest(&mut self, key: &ServiceKey, spec: &DestSpec) -> Result<(), IpvsError> {
        if spec.weight < 0 {
            return Err(IpvsError::BadWeight(spec.weight));
        }
        let svc = self.services.get_mut(key).ok_or(IpvsError::NoSuchService)?;
        svc.edit_dest(spec)?;
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -d`.
    pub fn del_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), IpvsError> {
        let svc = self.services.get_mut(key).ok_or(IpvsError::NoSuchService)?;
        let d = svc.del_dest(addr, port)?;
        self.save_counters(*key, &d);
        self.refresh_weights();
        Ok(())
    }

    /// `ipvsadm -C`: every service goes; connections expire on their own.
    pub fn clear(&mut self) {
        let keys: Vec<ServiceKey> = self.services.keys().copied().collect();
        for k in keys {
            let _ = self.del_service(&k);
        }
    }

    fn refresh_weights(&mut self) {
        for id in 0..self.slots.len() {
            self.slots[id].weight = self.lookup_weight(id as DestId);
        }
    }
}
