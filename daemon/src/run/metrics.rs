//! Prometheus metrics (`--metrics ADDR`, `GET /metrics`) under the names keepalived
//! exporter users already chart (mehdy/keepalived-exporter): `keepalived_up`,
//! `keepalived_vrrp_state{iname,intf,vrid,ip_address}` per VIP (keepalived's state numbers:
//! INIT 0, BACKUP 1, MASTER 2, FAULT 3, STOP 98), and per instance the counters of its
//! `vrrp_stats` as `keepalived_*_total{iname,intf,vrid,state}`. Encoded by prometheus-client
//! (OpenMetrics text), served by hyper.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use lvs_core::director::Director;
use lvs_core::vrrp::stats::InstanceStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

/// OpenMetrics' content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    iname: String,
    intf: String,
    vrid: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VipLabels {
    iname: String,
    intf: String,
    vrid: String,
    ip_address: String,
}

/// One counter: its name (without `_total`, which OpenMetrics adds), help, and value.
type CounterOf = (&'static str, &'static str, fn(&InstanceStats) -> u64);

/// The counters, in keepalived-exporter's names.
const COUNTERS: [CounterOf; 14] = [
    (
        "keepalived_advertisements_received",
        "Advertisements received",
        |s| s.advert_rcvd,
    ),
    (
        "keepalived_advertisements_sent",
        "Advertisements sent",
        |s| s.advert_sent,
    ),
    ("keepalived_become_master", "Became master", |s| {
        s.become_master
    }),
    ("keepalived_release_master", "Released master", |s| {
        s.release_master
    }),
    (
        "keepalived_packet_length_errors",
        "Packet length errors",
        |s| s.packet_len_err,
    ),
    (
        "keepalived_advertisements_interval_errors",
        "Advertisement interval errors",
        |s| s.advert_interval_err,
    ),
    ("keepalived_ip_ttl_errors", "TTL errors", |s| s.ip_ttl_err),
    (
        "keepalived_invalid_type_received",
        "Invalid type errors",
        |s| s.invalid_type_rcvd,
    ),
    (
        "keepalived_address_list_errors",
        "Address list errors",
        |s| s.addr_list_err,
    ),
    (
        "keepalived_authentication_invalid",
        "Authentication invalid",
        |s| s.invalid_authtype,
    ),
    (
        "keepalived_authentication_mismatch",
        "Authentication mismatch",
        |s| s.authtype_mismatch,
    ),
    (
        "keepalived_authentication_failure",
        "Authentication failure",
        |s| s.auth_failure,
    ),
    (
        "keepalived_priority_zero_received",
        "Priority zero received",
        |s| s.pri_zero_rcvd,
    ),
    ("keepalived_priority_zero_sent", "Priority zero sent", |s| {
        s.pri_zero_sent
    }),
];

/// The metrics of `d` now, as OpenMetrics text.
pub fn render(d: &Director) -> String {
    let mut registry = Registry::default();
    let up = Gauge::<i64>::default();
    up.set(1);
    registry.register("keepalived_up", "Status", up);
    let state = Family::<VipLabels, Gauge>::default();
    registry.register("keepalived_vrrp_state", "State of vrrp", state.clone());
    let families: Vec<Family<InstanceLabels, Counter>> = COUNTERS
        .iter()
        .map(|(name, help, _)| {
            let f = Family::<InstanceLabels, Counter>::default();
            registry.register(*name, *help, f.clone());
            f
        })
        .collect();
    let stats = d.stats().vrrp;
    if let Some(vrrp) = d.vrrp() {
        for i in vrrp.instances() {
            let cfg = i.config();
            let labels = InstanceLabels {
                iname: i.name().to_string(),
                intf: cfg.iface.clone(),
                vrid: cfg.vrid.to_string(),
                state: i.state().to_string(),
            };
            if let Some(s) = stats.iter().find(|s| s.name == i.name()) {
                for (f, (_, _, value)) in families.iter().zip(COUNTERS.iter()) {
                    f.get_or_create(&labels).inc_by(value(s));
                }
            }
            for v in &cfg.vips {
                let vip = VipLabels {
                    iname: labels.iname.clone(),
                    intf: v.dev.clone().unwrap_or_else(|| cfg.iface.clone()),
                    vrid: labels.vrid.clone(),
                    ip_address: v.addr.to_string(),
                };
                state
                    .get_or_create(&vip)
                    .set(i64::from(i.state().keepalived_number()));
            }
        }
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Serve `GET /metrics` on `addr`, each scrape asked of the event loop through `ask`.
pub async fn serve(
    addr: SocketAddr,
    ask: mpsc::Sender<oneshot::Sender<String>>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let ask = ask.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, ask.clone()));
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(())
}

async fn answer(
    req: Request<Incoming>,
    ask: mpsc::Sender<oneshot::Sender<String>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String, kind: &str| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = kind.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        Ok(r)
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "try /metrics\n".into(), "text/plain");
    }
    let (tx, rx) = oneshot::channel();
    if ask.send(tx).await.is_err() {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping\n".into(),
            "text/plain",
        );
    }
    match rx.await {
        Ok(body) => reply(StatusCode::OK, body, CONTENT_TYPE),
        Err(_) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping\n".into(),
            "text/plain",
        ),
    }
}
