//! Building the world: segments (hubs or learning switches), hosts, and the links between
//! them, with the per-link parameters `send` reads on every frame.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lvs_core::director::IfaceName;
use lvs_core::Instant;

use crate::client::{Client, ClientSpec};
use crate::director::{Clock, DirectorFactory, ProcessTiming};
use crate::prober::Prober;
use crate::record::TraceEvent;
use crate::rng::{node_rng, process_rng};
use crate::server::{RealServer, RealServerSpec};
use crate::stack::{IfaceSpec, Stack};
use crate::{HostId, SegId};

use super::world::{
    host_u32, DirectorProc, Host, Kind, Life, Link, LinkParams, Model, Node, Segment, Timing,
};
use super::{Ev, Sim, SimError};

impl Sim {
    /// Add an L2 segment; `learn` makes it a learning switch, otherwise it floods like a hub.
    pub fn add_segment(&mut self, name: &str, learn: bool) -> SegId {
        let id = self.segs.len();
        let node = self.graph.add_node(Node::Segment);
        let rng = node_rng(self.seed, node.index() as u64);
        self.segs.push(Segment {
            name: name.to_string(),
            node,
            learn,
            fdb: Vec::new(),
            version: 0,
            rng,
        });
        SegId(id)
    }

    fn add_host(&mut self, name: &str, stack: Stack, model: Model) -> Result<HostId, SimError> {
        if self.hosts.iter().any(|h| h.name == name) {
            return Err(SimError::DuplicateHost(name.to_string()));
        }
        let id = self.hosts.len();
        let node = self.graph.add_node(Node::Host);
        for i in stack.ifaces() {
            self.macs.insert(i.spec.mac, id);
        }
        let rng = node_rng(self.seed, node.index() as u64);
        self.hosts.push(Host {
            name: name.to_string(),
            label: Arc::from(name),
            node,
            stack,
            model,
            rng,
        });
        Ok(HostId(id))
    }

    /// Add a director host running the process `factory` builds, started at time zero.
    pub fn add_director(
        &mut self,
        name: &str,
        ifaces: Vec<IfaceSpec>,
        factory: DirectorFactory,
    ) -> Result<HostId, SimError> {
        self.add_director_at(name, ifaces, factory, Instant::ZERO)
    }

    /// As [`Sim::add_director`], the process first started at `start` (keepalived launched later).
    pub fn add_director_at(
        &mut self,
        name: &str,
        ifaces: Vec<IfaceSpec>,
        factory: DirectorFactory,
        start: Instant,
    ) -> Result<HostId, SimError> {
        let proc = DirectorProc {
            factory,
            proc: None,
            paused: false,
            gen: 0,
            life: Life::Down,
            wake: None,
            asked: None,
            ready: None,
            inbox: Vec::new(),
            term: None,
            exit_logs: None,
            timing: ProcessTiming::INSTANT,
            // Reseeded from the host's node below, once it has one.
            timing_rng: process_rng(self.seed, 0),
            scripts: BTreeMap::new(),
            keep_vips_on_kill: true,
            prober: Prober::default(),
            probing: BTreeMap::new(),
            clock: Clock::default(),
            iface_names: ifaces
                .iter()
                .map(|i| IfaceName::from(i.name.as_str()))
                .collect(),
        };
        let id = self.add_host(name, Stack::new(ifaces), Model::Director(Box::new(proc)))?;
        let node = self.hosts[id.0].node.index() as u64;
        if let Model::Director(d) = &mut self.hosts[id.0].model {
            d.timing_rng = process_rng(self.seed, node);
        }
        self.queue.push(
            start,
            Ev::Start {
                host: host_u32(id.0),
            },
        );
        Ok(id)
    }

    /// Add a real server.
    pub fn add_real_server(
        &mut self,
        name: &str,
        ifaces: Vec<IfaceSpec>,
        spec: RealServerSpec,
    ) -> Result<HostId, SimError> {
        let mut stack = Stack::new(ifaces);
        stack.set_lo(spec.lo_vips.clone());
        stack.arp_ignore = spec.arp_ignore;
        stack.arp_announce = spec.arp_announce;
        stack.decap.extend(spec.tunnel);
        stack.set_gateway(spec.gateway);
        stack.set_gateway6(spec.gateway6);
        let initial: Vec<(u16, bool)> = spec.services.iter().map(|s| (s.port, s.running)).collect();
        let id = self.add_host(
            name,
            stack,
            Model::Server(RealServer::new(name, spec.services)),
        )?;
        for (port, running) in initial {
            self.trace_push(id.0, TraceEvent::Service { port, running });
        }
        Ok(id)
    }

    /// Add a client with one interface and its default gateways.
    pub fn add_client(
        &mut self,
        name: &str,
        iface: IfaceSpec,
        gateway: Option<Ipv4Addr>,
        gateway6: Option<Ipv6Addr>,
        spec: ClientSpec,
    ) -> Result<HostId, SimError> {
        // An IPv6 header takes 20 bytes more of the MTU than an IPv4 one.
        let extra = if spec.target.is_ipv6() {
            lvs_scenarios::IPV6_EXTRA_HEADER
        } else {
            0
        };
        let limits = match (&spec.udp, &spec.sctp) {
            (Some(_), _) => Some((
                "udp",
                lvs_scenarios::MIN_UDP_REQUEST_SIZE,
                lvs_scenarios::MAX_UDP_REQUEST_SIZE - extra,
            )),
            // An SCTP request is its id alone (crate::sctp).
            (None, Some(_)) => None,
            (None, None) => Some(("tcp", 1, lvs_scenarios::MAX_TCP_REQUEST_SIZE - extra)),
        };
        let size = spec.request_size;
        if let Some((protocol, min, max)) = limits.filter(|l| !(l.1..=l.2).contains(&size)) {
            return Err(SimError::RequestSize {
                host: name.to_string(),
                protocol,
                size,
                min,
                max,
            });
        }
        let mut stack = Stack::new(vec![iface]);
        stack.set_gateway(gateway);
        stack.set_gateway6(gateway6);
        let unspecified = match spec.target {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let local = stack.source_for(spec.target.ip()).unwrap_or(unspecified);
        let client = Client::new(spec, local);
        let (at, token) = client.first_timer();
        let id = self.add_host(name, stack, Model::Client(client))?;
        self.queue.push(
            at,
            Ev::Timer {
                host: host_u32(id.0),
                token,
            },
        );
        Ok(id)
    }

    /// Add a router between segments, with an ARP cache of `arp_timeout`.
    pub fn add_gateway(
        &mut self,
        name: &str,
        ifaces: Vec<IfaceSpec>,
        arp_timeout: Duration,
    ) -> Result<HostId, SimError> {
        let mut stack = Stack::new(ifaces);
        stack.forward = true;
        stack.arp_timeout = arp_timeout;
        self.add_host(name, stack, Model::Gateway)
    }

    /// Plug interface `iface` of `host` into `seg`.
    pub fn connect(
        &mut self,
        host: HostId,
        iface: &str,
        seg: SegId,
        params: LinkParams,
    ) -> Result<(), SimError> {
        self.revert_cuts();
        let s = self.segs.get(seg.0).ok_or(SimError::NoSegment(seg.0))?.node;
        let h = self.hosts.get(host.0).ok_or(SimError::NoHost(host.0))?;
        let no_iface = || SimError::NoIface {
            host: h.name.clone(),
            iface: iface.to_string(),
        };
        let idx = h.stack.iface_index(iface).ok_or_else(no_iface)?;
        if h.stack.ifaces()[idx].link.is_some() {
            return Err(SimError::AlreadyConnected {
                host: h.name.clone(),
                iface: iface.to_string(),
            });
        }
        let node = h.node;
        let e = self.graph.add_edge(
            node,
            s,
            Link {
                host: host.0,
                iface: idx,
                seg: seg.0,
                timing: Timing::of(&params),
                params,
                up: true,
                iface_up: h.stack.ifaces()[idx].up,
                kind: match h.model {
                    Model::Director(_) => Kind::Director,
                    Model::Gateway => Kind::Gateway,
                    Model::Server(_) | Model::Client(_) => Kind::Other,
                },
                switched: None,
            },
        );
        self.hosts[host.0].stack.set_link(idx, Some(e));
        Ok(())
    }

    /// Name of a segment.
    pub fn segment_name(&self, seg: SegId) -> Option<&str> {
        self.segs.get(seg.0).map(|s| s.name.as_str())
    }
}
