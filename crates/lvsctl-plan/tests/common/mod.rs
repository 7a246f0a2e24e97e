//! The seed's three experiments, built by hand as desired states, plus small builders.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use lvsctl_model::{
    DestKey, DestSpec, Family, Forward, Fwmark, MarkChain, MarkRule, Persistence, Protocol,
    Scheduler, Service, ServiceKey, ServiceSpec, State, VipState,
};

pub const VIP: &str = "192.168.6.101";
pub const RS1: &str = "192.168.60.101";
pub const RS2: &str = "192.168.60.102";

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn tcp(vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Inet {
        protocol: Protocol::Tcp,
        vip: ip(vip),
        port,
    }
}

pub fn fwmark(mark: u32) -> ServiceKey {
    ServiceKey::Fwmark {
        mark: Fwmark::new(mark).unwrap(),
        family: Family::Inet,
    }
}

pub fn dest(addr: &str, port: u16) -> DestKey {
    DestKey {
        addr: ip(addr),
        port,
    }
}

/// rr, persistent 120 s, /32: what all three experiments use.
pub fn rr_persistent() -> ServiceSpec {
    ServiceSpec {
        scheduler: Scheduler::Rr,
        persistence: Some(Persistence {
            timeout: 120,
            netmask: 32,
        }),
        ..ServiceSpec::default()
    }
}

pub fn dr(weight: u32) -> DestSpec {
    DestSpec {
        forward: Forward::Dr,
        weight,
        ..DestSpec::default()
    }
}

/// A service with DR real servers .101 and .102 on `port`.
pub fn two_rs(port: u16) -> Service {
    Service {
        spec: rr_persistent(),
        dests: BTreeMap::from([(dest(RS1, port), dr(1)), (dest(RS2, port), dr(1))]),
    }
}

pub fn vips(addrs: &[&str]) -> Option<VipState> {
    Some(VipState {
        interface: "lvs0".to_owned(),
        owned: addrs.iter().map(|a| ip(a)).collect(),
        foreign: BTreeSet::new(),
        elsewhere: Default::default(),
    })
}

/// PCC: `ipvsadm -A -t 192.168.6.101:0 -s rr -p 120`, real servers on port 0.
pub fn pcc() -> State {
    State {
        services: BTreeMap::from([(tcp(VIP, 0), two_rs(0))]),
        marks: BTreeMap::new(),
        vips: vips(&[VIP]),
    }
}

/// PPC: one persistent service per port, 80 and 22.
pub fn ppc() -> State {
    State {
        services: BTreeMap::from([(tcp(VIP, 80), two_rs(80)), (tcp(VIP, 22), two_rs(22))]),
        marks: BTreeMap::new(),
        vips: vips(&[VIP]),
    }
}

pub fn web_ssh_rule(mark: u32) -> MarkRule {
    MarkRule {
        vip: ip(VIP),
        protocol: Protocol::Tcp,
        ports: vec![22, 80],
        mark: Fwmark::new(mark).unwrap(),
        service: "web-ssh".to_owned(),
    }
}

/// PNMPP: fwmark 10 fed by a MARK rule for tcp 22 and 80.
pub fn pnmpp() -> State {
    State {
        services: BTreeMap::from([(fwmark(10), two_rs(0))]),
        marks: BTreeMap::from([(
            Family::Inet,
            MarkChain {
                hooked: true,
                rules: vec![web_ssh_rule(10)],
            },
        )]),
        vips: vips(&[VIP]),
    }
}
