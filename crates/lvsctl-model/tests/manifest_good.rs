//! Valid manifests: the examples resolve to exactly the state the seed's commands build, and
//! every default is filled in once, here.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use lvsctl_model::manifest::{
    self, CheckKind, HealthCheck, HttpCheck, Manifest, OnFailure, Selector, Source,
};
use lvsctl_model::{
    DestKey, DestSpec, Family, Forward, Fwmark, MarkChain, MarkRule, Persistence, Protocol,
    Scheduler, Service, ServiceFlags, ServiceKey, ServiceSpec, State, TunnelFlags, TunnelType,
    VipState,
};

fn repo_file(rel: &str) -> Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let text = std::fs::read(&path).unwrap();
    match manifest::parse(rel, &text) {
        Ok(m) => m,
        Err(d) => panic!("{rel} does not validate:\n{d}"),
    }
}

fn ok(text: &str) -> Manifest {
    match manifest::parse("test.yaml", text) {
        Ok(m) => m,
        Err(d) => panic!("manifest does not validate:\n{d}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn inet(protocol: Protocol, vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Inet {
        protocol,
        vip: ip(vip),
        port,
    }
}

fn fwmark(mark: u32, family: Family) -> ServiceKey {
    ServiceKey::Fwmark {
        mark: Fwmark::new(mark).unwrap(),
        family,
    }
}

fn seed_service(rs_port: u16) -> Service {
    let dests = ["192.168.60.101", "192.168.60.102"]
        .into_iter()
        .map(|a| {
            (
                DestKey {
                    addr: ip(a),
                    port: rs_port,
                },
                DestSpec {
                    forward: Forward::Dr,
                    weight: 1,
                    upper_threshold: 0,
                    lower_threshold: 0,
                },
            )
        })
        .collect();
    Service {
        spec: ServiceSpec {
            scheduler: Scheduler::Rr,
            flags: ServiceFlags::default(),
            persistence: Some(Persistence {
                timeout: 120,
                netmask: 32,
            }),
            pe_name: None,
        },
        dests,
    }
}

/// `ipvsadm -A -t 192.168.6.101:0 -s rr -p 120` + two `-a ... -g`.
#[test]
fn pcc_example_is_the_seeds_port_zero_service() {
    let m = repo_file("examples/pcc.yaml");
    let want = State {
        services: BTreeMap::from([(inet(Protocol::Tcp, "192.168.6.101", 0), seed_service(0))]),
        marks: BTreeMap::new(),
        vips: None,
    };
    assert_eq!(m.desired_state(), want);
    let rs = m.realserver.as_ref().unwrap();
    assert_eq!(rs.vips, BTreeSet::from([ip("192.168.6.101")]));
    assert_eq!((rs.interface.as_str(), rs.arp), ("lo", true));
}

#[test]
fn ppc_example_is_two_persistent_services() {
    let m = repo_file("examples/ppc.yaml");
    let want = State {
        services: BTreeMap::from([
            (inet(Protocol::Tcp, "192.168.6.101", 80), seed_service(80)),
            (inet(Protocol::Tcp, "192.168.6.101", 22), seed_service(22)),
        ]),
        marks: BTreeMap::new(),
        vips: None,
    };
    assert_eq!(m.desired_state(), want);
    assert_eq!(m.services[0].name, "http");
    assert_eq!(m.services[1].name, "ssh");
}

#[test]
fn pnmpp_example_is_one_fwmark_service_fed_by_one_mark_rule() {
    let m = repo_file("examples/pnmpp.yaml");
    let want = State {
        services: BTreeMap::from([(fwmark(10, Family::Inet), seed_service(0))]),
        marks: BTreeMap::from([(
            Family::Inet,
            MarkChain {
                hooked: true,
                rules: vec![MarkRule {
                    vip: ip("192.168.6.101"),
                    protocol: Protocol::Tcp,
                    ports: vec![22, 80],
                    mark: Fwmark::new(10).unwrap(),
                    service: "web-ssh".to_owned(),
                }],
            },
        )]),
        vips: None,
    };
    assert_eq!(m.desired_state(), want);

    // The seed's health.sh, resolved with every default.
    let check = HealthCheck {
        kind: CheckKind::Http(HttpCheck {
            port: 80,
            path: "/.health.html".to_owned(),
            status: 200,
            expect: Some("OK".to_owned()),
            host: None,
            deadline: Duration::from_secs(2),
            reuse_connection: true,
        }),
        interval: Duration::from_secs(3),
        timeout: Duration::from_secs(2),
        rise: 2,
        fall: 3,
        on_failure: OnFailure::Remove,
    };
    for rs in &m.services[0].real_servers {
        assert_eq!(rs.health.as_deref(), Some(&check), "{}", rs.key);
    }
    assert_eq!(m.services[0].drain_timeout, Duration::from_secs(30));
}

#[test]
fn production_manifest_resolves() {
    let m = repo_file("manifests/production.yaml");
    let state = m.desired_state();
    assert_eq!(state.services.len(), 7);

    // Every VIP, fwmark services' match VIPs included, lives on lvs0.
    let vips = state.vips.as_ref().unwrap();
    assert_eq!(vips.interface, "lvs0");
    let want: BTreeSet<IpAddr> = [
        "203.0.113.10",
        "2001:db8:10::10",
        "203.0.113.53",
        "203.0.113.25",
        "2001:db8:10::30",
        "203.0.113.30",
    ]
    .into_iter()
    .map(ip)
    .collect();
    assert_eq!(vips.owned, want);
    assert!(vips.foreign.is_empty());

    // One chain per family that has rules.
    assert_eq!(
        state.marks.keys().copied().collect::<Vec<_>>(),
        vec![Family::Inet, Family::Inet6]
    );
    assert_eq!(
        state.marks[&Family::Inet].rules[0].ports,
        vec![25, 465, 587, 993]
    );

    let https = &state.services[&inet(Protocol::Tcp, "203.0.113.10", 443)];
    assert_eq!(https.spec.scheduler, Scheduler::Wlc);
    assert_eq!(
        https.spec.persistence,
        Some(Persistence {
            timeout: 300,
            netmask: 24
        })
    );
    let rs = &https.dests[&DestKey {
        addr: ip("192.0.2.11"),
        port: 443,
    }];
    assert_eq!(
        (rs.weight, rs.upper_threshold, rs.lower_threshold),
        (100, 20000, 15000)
    );

    let dns = &state.services[&inet(Protocol::Udp, "203.0.113.53", 53)];
    assert_eq!(
        dns.spec.flags,
        ServiceFlags {
            one_packet: true,
            sched1: true,
            sched2: true,
            sched3: false
        }
    );

    let downloads = &state.services[&inet(Protocol::Tcp, "203.0.113.30", 443)];
    assert_eq!(
        downloads.dests[&DestKey {
            addr: ip("2001:db8:99::40"),
            port: 443
        }]
            .forward,
        Forward::Tunnel {
            tunnel: TunnelType::Gue { port: 6080 },
            flags: TunnelFlags {
                csum: true,
                remcsum: false
            }
        }
    );

    // A real server's own check replaces the kind whole and inherits the timing.
    let api = m.service_by_name("api-v6").unwrap();
    let third = api.real_servers[2].health.as_ref().unwrap();
    assert_eq!(
        third.kind,
        CheckKind::Http(HttpCheck {
            port: 9090,
            path: "/ready".to_owned(),
            status: 200,
            expect: None,
            host: None,
            deadline: Duration::from_secs(2),
            reuse_connection: true,
        })
    );
    assert_eq!(
        (third.interval, third.rise, third.fall, third.on_failure),
        (Duration::from_secs(5), 3, 3, OnFailure::Quiesce)
    );
    let sorry = api.sorry_server.as_ref().unwrap();
    assert_eq!(sorry.key.to_string(), "[2001:db8:20::99]:8080");
    assert_eq!(sorry.spec.forward, Forward::Nat);
    assert_eq!(api.drain_timeout, Duration::from_secs(600));

    // A null `tcp:` is a tcp check on each real server's own port.
    let dl = m.service_by_name("downloads").unwrap();
    assert_eq!(
        dl.real_servers[0].health.as_ref().unwrap().kind,
        CheckKind::Tcp { port: 443 }
    );

    let dns_def = m.service_by_name("dns").unwrap();
    assert!(matches!(
        &dns_def.real_servers[0].health.as_ref().unwrap().kind,
        CheckKind::Exec { command } if command[0] == "/usr/local/lib/lvsctl/check-dns"
    ));

    assert_eq!(m.director.sysctl.expire_nodest_conn, Some(true));
    assert_eq!(m.director.timeouts.tcp, Some(Duration::from_secs(900)));
    assert_eq!(m.director.timeouts.udp, Some(Duration::from_secs(300)));

    // Unmanaged selectors.
    assert!(!m.is_managed(&inet(Protocol::Tcp, "10.100.0.1", 443)));
    assert!(!m.is_managed(&fwmark(1500, Family::Inet6)));
    assert!(m.is_managed(&fwmark(2000, Family::Inet)));
    assert!(m.is_managed(&inet(Protocol::Tcp, "203.0.113.10", 443)));
}

#[test]
fn defaults_are_resolved_once_in_the_model() {
    let m = ok("services:
  - name: web
    vip: 192.168.6.101
    port: 80
    real_servers:
      - address: 192.168.60.101
  - name: v6
    vip: 2001:db8::1
    port: 443
    persistence: 600
    real_servers:
      - address: 2001:db8::10
        forward: nat
        port: 8443
");
    let state = m.desired_state();
    let web = &state.services[&inet(Protocol::Tcp, "192.168.6.101", 80)];
    assert_eq!(web.spec, ServiceSpec::default());
    assert_eq!(web.spec.scheduler, Scheduler::Wlc);
    assert_eq!(
        web.dests[&DestKey {
            addr: ip("192.168.60.101"),
            port: 80
        }],
        DestSpec::default()
    );
    let v6 = &state.services[&inet(Protocol::Tcp, "2001:db8::1", 443)];
    assert_eq!(
        v6.spec.persistence,
        Some(Persistence {
            timeout: 600,
            netmask: 128
        })
    );
    assert_eq!(state.marks, BTreeMap::new());
    assert_eq!(state.vips, None);
    assert!(m.declares_services);
    assert!(m.realserver.is_none());
    assert!(m.services[0].real_servers[0].health.is_none());
}

#[test]
fn persistence_forms() {
    let m = ok("services:
  - {name: a, vip: 10.0.0.1, port: 1, persistence: 2m}
  - {name: b, vip: 10.0.0.1, port: 2, persistence: {netmask: 255.255.0.0}}
  - {name: c, vip: 10.0.0.1, port: 3, persistence: {timeout: 1h, netmask: 16}}
  - {name: d, vip: 10.0.0.1, port: 5060, protocol: udp, persistence: {timeout: 60, engine: sip}}
  - {name: e, vip: 10.0.0.1, port: 4, persistence: {timeout: 2678400, netmask: 0.0.0.0}}
");
    let p: Vec<(Option<Persistence>, Option<String>)> = m
        .services
        .iter()
        .map(|s| (s.spec.persistence, s.spec.pe_name.clone()))
        .collect();
    let ps = |timeout, netmask| Some(Persistence { timeout, netmask });
    assert_eq!(
        p,
        vec![
            (ps(120, 32), None),
            (ps(360, 16), None),
            (ps(3600, 16), None),
            (ps(60, 32), Some("sip".to_owned())),
            (ps(2_678_400, 0), None),
        ]
    );
}

#[test]
fn udp_only_settings_on_fwmark_services_that_may_receive_udp() {
    // One-packet acts on the udp part of what a fwmark service receives: kept when its MARK
    // rules mark udp among others. The sip engine drops everything not udp: kept when the
    // rules mark udp only. Both are kept with no rules (what feeds the service is unknown).
    let m = ok("services:
  - name: mixed
    fwmark: 7
    one_packet: true
    match: [{vip: 10.0.0.1, protocol: tcp, port: 5060}, {vip: 10.0.0.1, protocol: udp, port: 5060}]
  - name: udp
    fwmark: 9
    one_packet: true
    persistence: {timeout: 60, engine: sip}
    match: [{vip: 10.0.0.2, protocol: udp, port: 5060}]
  - {name: unknown, fwmark: 8, one_packet: true, persistence: {timeout: 60, engine: sip}}
");
    for s in &m.services {
        assert!(s.spec.flags.one_packet, "{}", s.name);
        let sip = s.name != "mixed";
        assert_eq!(s.spec.pe_name.as_deref() == Some("sip"), sip, "{}", s.name);
    }
}

#[test]
fn long_port_lists_are_split_into_multiport_sized_rules() {
    let ports: Vec<String> = (1000..1020).map(|p| p.to_string()).collect();
    let m = ok(&format!(
        "services:
  - name: many
    fwmark: 7
    match:
      - {{vip: 10.0.0.1, protocol: udp, ports: [{}]}}
",
        ports.join(", ")
    ));
    let rules = &m.desired_state().marks[&Family::Inet].rules;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].ports, (1000..1015).collect::<Vec<u16>>());
    assert_eq!(rules[1].ports, (1015..1020).collect::<Vec<u16>>());
    assert!(rules.iter().all(|r| r.ports.len() <= MarkRule::MAX_PORTS));
    assert!(
        rules
            .iter()
            .all(|r| r.protocol == Protocol::Udp && r.service == "many")
    );
}

#[test]
fn mark_chains_are_sorted_and_per_family() {
    let m = ok(r#"services:
  - name: z
    fwmark: 2
    match:
      - {vip: 10.0.0.9, ports: [443, 80]}
      - {vip: 10.0.0.1, port: 22}
  - name: six
    fwmark: 2
    family: ipv6
    match:
      - {vip: "2001:db8::5", ports: [53], protocol: udp}
"#);
    let s = m.desired_state();
    let v4 = &s.marks[&Family::Inet];
    assert!(v4.hooked);
    let shown: Vec<String> = v4.rules.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "tcp 10.0.0.1:22 -> mark 2 (z)",
            "tcp 10.0.0.9:80,443 -> mark 2 (z)"
        ]
    );
    assert_eq!(
        s.marks[&Family::Inet6].rules[0].to_string(),
        "udp [2001:db8::5]:53 -> mark 2 (six)"
    );
    assert!(s.services.contains_key(&fwmark(2, Family::Inet6)));
}

#[test]
fn several_files_merge_into_one_state() {
    let sources = [
        Source::new(
            "director.yaml",
            "director:\n  vip_interface: lvs0\n  unmanaged: [{cidr: 10.96.0.0/12}]\n",
        ),
        Source::new(
            "web.yaml",
            "director:\n  vip_interface: lvs0\nservices:\n  - {name: web, vip: 192.168.6.101, port: 80}\n",
        ),
        Source::new(
            "mail.yaml",
            "services:\n  - name: mail\n    fwmark: 20\n    match: [{vip: 192.168.6.25, ports: [25, 587]}]\n",
        ),
    ];
    let m = manifest::load(&sources).unwrap();
    let s = m.desired_state();
    assert_eq!(s.services.len(), 2);
    assert_eq!(
        s.vips,
        Some(VipState {
            interface: "lvs0".to_owned(),
            owned: BTreeSet::from([ip("192.168.6.101"), ip("192.168.6.25")]),
            foreign: BTreeSet::new(),
            elsewhere: Default::default(),
        })
    );
    assert_eq!(
        m.director.unmanaged,
        vec![Selector::Cidr {
            addr: ip("10.96.0.0"),
            prefix: 12,
            protocol: None,
            port: None
        }]
    );
    // Locations point into the right file.
    assert_eq!(m.services[0].location.to_string(), "web.yaml:4:5");
    assert_eq!(&*m.services[1].location.file, "mail.yaml");
}

#[test]
fn locations_point_at_services_and_real_servers() {
    let m = ok("services:
  - name: web
    vip: 192.168.6.101
    port: 80
    real_servers:
      - {address: 192.168.60.101}
      - address: 192.168.60.102
");
    let svc = &m.services[0];
    assert_eq!((svc.location.line, svc.location.column), (2, 5));
    let rs: Vec<(usize, usize)> = svc
        .real_servers
        .iter()
        .map(|r| (r.location.line, r.location.column))
        .collect();
    assert_eq!(rs, vec![(6, 9), (7, 9)]);
}

#[test]
fn anchors_and_merge_keys_work() {
    let m = ok("services:
  - name: web
    vip: 192.168.6.101
    port: 80
    real_servers:
      - &rs {address: 192.168.60.101, forward: nat, weight: 5}
      - {<<: *rs, address: 192.168.60.102}
    health: &check
      http: {path: /healthz}
  - name: api
    vip: 192.168.6.101
    port: 8080
    health: *check
");
    let web = &m.services[0];
    assert_eq!(web.real_servers[1].spec.weight, 5);
    assert_eq!(web.real_servers[1].spec.forward, Forward::Nat);
    assert_eq!(web.real_servers[1].key.addr, ip("192.168.60.102"));
    assert!(m.services[1].real_servers.is_empty());
}

#[test]
fn realserver_only_manifest_and_default_vips() {
    let m = ok("realserver: {arp: false}\n");
    assert!(!m.declares_services);
    let rs = m.realserver.unwrap();
    assert!(rs.vips.is_empty());
    assert!(!rs.arp);

    // Without vips: the VIP of every service with a dr or tunnel real server.
    let m = ok("services:
  - {name: dr, vip: 10.0.0.1, port: 80, real_servers: [{address: 10.1.0.1}]}
  - {name: nat, vip: 10.0.0.2, port: 80, real_servers: [{address: 10.1.0.1, forward: nat}]}
  - name: marked
    fwmark: 3
    match: [{vip: 10.0.0.3, ports: [80]}]
    real_servers: [{address: 10.1.0.1}]
realserver: {}
");
    assert_eq!(
        m.realserver.unwrap().vips,
        BTreeSet::from([ip("10.0.0.1"), ip("10.0.0.3")])
    );
}

#[test]
fn health_checks_inherit_and_override() {
    let m = ok("services:
  - name: web
    vip: 192.168.6.101
    port: 80
    health:
      http: {path: /ok, expect: fine, host: web.example, deadline: 2500ms, reuse_connection: false}
      interval: 5s
      timeout: 1s
      fall: 1
    real_servers:
      - address: 10.1.0.1
      - address: 10.1.0.2
        health: {rise: 5, on_failure: quiesce}
      - address: 10.1.0.3
        health: false
      - address: 10.1.0.4
        health: {tcp: {port: 22}, interval: 10s}
      - address: 10.1.0.5
        health: {exec: {command: [/bin/check, --strict]}}
");
    let rs = &m.services[0].real_servers;
    let base = rs[0].health.as_deref().cloned().unwrap();
    assert_eq!(
        base,
        HealthCheck {
            kind: CheckKind::Http(HttpCheck {
                port: 80,
                path: "/ok".to_owned(),
                status: 200,
                expect: Some("fine".to_owned()),
                host: Some("web.example".to_owned()),
                deadline: Duration::from_millis(2500),
                reuse_connection: false,
            }),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 1,
            on_failure: OnFailure::Remove,
        }
    );
    let second = rs[1].health.as_deref().cloned().unwrap();
    assert_eq!(
        (second.rise, second.on_failure, second.kind == base.kind),
        (5, OnFailure::Quiesce, true)
    );
    assert_eq!(rs[2].health, None);
    let fourth = rs[3].health.as_deref().cloned().unwrap();
    assert_eq!(fourth.kind, CheckKind::Tcp { port: 22 });
    assert_eq!(
        (fourth.interval, fourth.timeout),
        (Duration::from_secs(10), Duration::from_secs(1))
    );
    assert_eq!(
        rs[4].health.as_ref().unwrap().kind,
        CheckKind::Exec {
            command: vec!["/bin/check".to_owned(), "--strict".to_owned()]
        }
    );
}

#[test]
fn real_servers_with_the_same_check_share_it() {
    let m = ok("services:
  - name: web
    vip: 192.168.6.101
    port: 80
    health: {http: {path: /ok}}
    real_servers:
      - {address: 10.1.0.1, forward: nat}
      - {address: 10.1.0.2, forward: nat}
      - {address: 10.1.0.3, forward: nat, port: 8080}
      - {address: 10.1.0.4, forward: nat, health: {rise: 2}}
      - {address: 10.1.0.5, forward: nat, health: {rise: 5}}
  - name: api
    vip: 192.168.6.102
    port: 80
    health: {http: {path: /ok}}
    real_servers: [{address: 10.1.0.1}]
");
    let rs = &m.services[0].real_servers;
    let check = |i: usize| rs[i].health.as_ref().unwrap();
    let port = |i: usize| match &check(i).kind {
        CheckKind::Http(h) => h.port,
        other => panic!("{other:?}"),
    };
    // Same resolved check, written or inherited: one allocation.
    assert!(std::sync::Arc::ptr_eq(check(0), check(1)));
    assert!(std::sync::Arc::ptr_eq(check(0), check(3)));
    // The check follows the real server's port, and overrides stay per real server.
    assert_eq!((port(0), port(2)), (80, 8080));
    assert!(!std::sync::Arc::ptr_eq(check(0), check(2)));
    assert_eq!((check(4).rise, check(0).rise), (5, 2));
    // Equal checks of two services are still equal, whether shared or not.
    assert_eq!(
        m.services[1].real_servers[0].health.as_deref(),
        Some(&**check(0))
    );
}

/// The sizes of the structs a 10,000-service manifest holds 100,000 of; a change that grows
/// them grows the daemon's memory by that much per real server.
#[test]
fn hot_structs_stay_small() {
    use std::mem::size_of;
    // key 20 + spec 20 + shared check 8 + location 32.
    assert_eq!(size_of::<manifest::RealServerDef>(), 80);
    assert_eq!(size_of::<DestKey>(), 20);
    assert_eq!(size_of::<DestSpec>(), 20);
}

#[test]
fn short_interval_caps_the_default_timeout() {
    let m = ok("services:
  - name: web
    vip: 192.168.6.101
    port: 80
    real_servers: [{address: 10.1.0.1}]
    health: {tcp: {}, interval: 500ms}
");
    let h = m.services[0].real_servers[0]
        .health
        .as_deref()
        .cloned()
        .unwrap();
    assert_eq!(h.timeout, Duration::from_millis(500));
}

#[test]
fn every_example_and_manifest_round_trips_through_export() {
    for rel in [
        "examples/pcc.yaml",
        "examples/ppc.yaml",
        "examples/pnmpp.yaml",
        "manifests/production.yaml",
    ] {
        let state = repo_file(rel).desired_state();
        let text = manifest::manifest_from_state(&state);
        let back = match manifest::parse("exported.yaml", &text) {
            Ok(m) => m.desired_state(),
            Err(d) => panic!("export of {rel} does not validate:\n{d}\n{text}"),
        };
        assert_eq!(back, state, "{rel}:\n{text}");
    }
}

#[test]
fn export_keeps_fwmark_names_and_skips_what_it_cannot_express() {
    let mut state = repo_file("examples/pnmpp.yaml").desired_state();
    let text = manifest::manifest_from_state(&state);
    assert!(
        text.contains("  - name: web-ssh\n    fwmark: 10\n"),
        "{text}"
    );
    assert!(
        text.contains("      - {vip: 192.168.6.101, protocol: tcp, ports: [22, 80]}"),
        "{text}"
    );

    // A kernel-only forwarding method and an orphan MARK rule.
    let svc = state.services.get_mut(&fwmark(10, Family::Inet)).unwrap();
    svc.dests.insert(
        DestKey {
            addr: ip("127.0.0.1"),
            port: 0,
        },
        DestSpec {
            forward: Forward::Local,
            ..DestSpec::default()
        },
    );
    state
        .marks
        .get_mut(&Family::Inet)
        .unwrap()
        .rules
        .push(MarkRule {
            vip: ip("192.168.6.200"),
            protocol: Protocol::Tcp,
            ports: vec![80],
            mark: Fwmark::new(99).unwrap(),
            service: "gone".to_owned(),
        });
    let text = manifest::manifest_from_state(&state);
    assert!(
        text.contains("# skipped: fwmark/10: real server 127.0.0.1:0 uses forwarding method local"),
        "{text}"
    );
    assert!(
        text.contains(
            "# skipped: MARK rule tcp 192.168.6.200:80 -> mark 99 (gone): no fwmark/99 service"
        ),
        "{text}"
    );
    manifest::parse("exported.yaml", &text).unwrap();
}

#[test]
fn empty_services_list_is_an_explicit_empty_director() {
    let m = ok("services: []\n");
    assert!(m.declares_services);
    assert_eq!(m.desired_state(), State::default());
    let text = manifest::manifest_from_state(&State::default());
    assert_eq!(ok(&text).desired_state(), State::default());
}

#[test]
fn a_large_manifest_parses() {
    // 10,000 services x 10 real servers in flow style stays under the size limit.
    let mut text = String::with_capacity(3 << 20);
    text.push_str("services:\n");
    for i in 0..10_000u32 {
        let vip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        text.push_str(&format!(
            "  - name: s{i}\n    vip: {vip}\n    port: 80\n    real_servers:\n"
        ));
        for r in 1..=10 {
            text.push_str(&format!("      - {{address: 172.16.{}.{r}}}\n", i % 250));
        }
    }
    assert!(text.len() < 4 << 20, "{} bytes", text.len());
    let m = ok(&text);
    assert_eq!(m.desired_state().services.len(), 10_000);
}

/// `Manifest::warnings`: one per persistent service that quiesces failed real servers while
/// `expire_quiescent_template` is not on; `on_failure: remove` (whose deleted server's
/// templates the kernel expires), a real server's own `remove`, no persistence or the sysctl
/// on say nothing. The examples and the production manifest say nothing.
#[test]
fn warnings_name_persistent_services_that_quiesce() {
    let service = |name: &str, port: u16, persistence: &str, on_failure: &str| {
        format!(
            "  - name: {name}\n    vip: 10.0.0.1\n    port: {port}\n{persistence}    \
             real_servers: [{{address: 10.0.1.1}}]\n    health: {{tcp: {{port: 80}}, \
             on_failure: {on_failure}}}\n"
        )
    };
    let m = ok(&format!(
        "services:\n{}{}{}",
        service("sticky", 80, "    persistence: 300\n", "quiesce"),
        service("removes", 81, "    persistence: 300\n", "remove"),
        service("plain", 82, "", "quiesce"),
    ));
    let w = m.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("test.yaml:2:5: service sticky: "), "{w:?}");
    let on = ok(&format!(
        "director:\n  sysctl: {{expire_quiescent_template: true}}\nservices:\n{}",
        service("sticky", 80, "    persistence: 300\n", "quiesce"),
    ));
    assert!(on.warnings().is_empty());
    for file in [
        "examples/pcc.yaml",
        "examples/ppc.yaml",
        "examples/pnmpp.yaml",
        "manifests/production.yaml",
    ] {
        assert!(repo_file(file).warnings().is_empty(), "{file}");
    }
}
