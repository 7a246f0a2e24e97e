//! The kernel <-> model mapping, without a kernel: normalisation of what the kernel reports,
//! the requests built from plan ops, and the error messages.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use lvsctl_ipvs::codec::constants::*;
use lvsctl_ipvs::codec::{DestRaw, IpvsRequest, Netmask, ServiceRaw, StatsRaw, addr_to_raw};
use lvsctl_ipvs::*;
use lvsctl_model::*;
use lvsctl_plan::{BackendError, Errno, Op, Reason};
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp80() -> ServiceKey {
    "tcp/10.0.0.100:80".parse().unwrap()
}

fn dk(s: &str) -> DestKey {
    s.parse().unwrap()
}

#[test]
fn kernel_noise_is_normalised() {
    let raw = ServiceRaw {
        af: AF_INET,
        protocol: 6,
        addr: addr_to_raw(ip("10.0.0.100")),
        port: 80,
        sched_name: "sh".into(),
        // HASHED and an unknown future bit are kernel noise.
        flags: IP_VS_SVC_F_HASHED
            | IP_VS_SVC_F_PERSISTENT
            | IP_VS_SVC_F_SCHED1
            | IP_VS_SVC_F_SCHED2
            | 0x4000,
        mask: u32::MAX,
        timeout: 360,
        netmask: Netmask::from_v4_prefix(24),
        pe_name: Some(String::new()),
        stats: Some(StatsRaw {
            conns: 1,
            ..StatsRaw::default()
        }),
        stats64: Some(StatsRaw {
            conns: 5_000_000_000,
            inbytes: 7,
            ..StatsRaw::default()
        }),
        ..ServiceRaw::default()
    };
    let d = DestRaw {
        addr: addr_to_raw(ip("10.0.0.11")),
        port: 80,
        fwd_method: IP_VS_CONN_F_DROUTE,
        weight: 3,
        u_threshold: 100,
        l_threshold: 10,
        addr_family: Some(AF_INET),
        // Tunnel fields reported for a DR real server are dropped.
        tun_type: Some(IP_VS_CONN_F_TUNNEL_TYPE_GUE),
        tun_port: Some(9),
        tun_flags: Some(1),
        active_conns: Some(2),
        inact_conns: Some(3),
        persist_conns: Some(4),
        ..DestRaw::default()
    };
    let (key, svc, ctr) = service_of(&raw, &[d]).unwrap();
    assert_eq!(key, tcp80());
    assert_eq!(
        svc.spec,
        ServiceSpec {
            scheduler: Scheduler::Sh,
            flags: ServiceFlags {
                one_packet: false,
                sched1: true,
                sched2: true,
                sched3: false
            },
            persistence: Some(Persistence {
                timeout: 360,
                netmask: 24
            }),
            pe_name: None,
        }
    );
    assert_eq!(
        svc.dests,
        BTreeMap::from([(
            dk("10.0.0.11:80"),
            DestSpec {
                forward: Forward::Dr,
                weight: 3,
                upper_threshold: 100,
                lower_threshold: 10
            }
        )])
    );
    assert_eq!(ctr.service.conns, 5_000_000_000, "STATS64 preferred");
    assert_eq!(ctr.service.in_bytes, 7);
    assert_eq!(
        (
            ctr.service.active_conns,
            ctr.service.inactive_conns,
            ctr.service.persist_conns
        ),
        (2, 3, 4)
    );
    assert_eq!(ctr.dests[&dk("10.0.0.11:80")].active_conns, 2);
}

#[test]
fn non_persistent_ignores_timeout_and_netmask_and_none_scheduler() {
    let raw = ServiceRaw {
        af: AF_INET6,
        fwmark: 7,
        sched_name: "none".into(),
        flags: IP_VS_SVC_F_HASHED | IP_VS_SVC_F_ONEPACKET,
        mask: u32::MAX,
        timeout: 99,
        netmask: Netmask::from_v6_prefix(64),
        ..ServiceRaw::default()
    };
    let key = service_key_of(&raw).unwrap();
    assert_eq!(key, "fwmark/7/ipv6".parse().unwrap());
    let spec = service_spec_of(&raw);
    assert_eq!(spec.scheduler, Scheduler::None);
    assert!(spec.flags.one_packet);
    assert_eq!(spec.persistence, None);
    // An unknown scheduler name is kept.
    let raw2 = ServiceRaw {
        sched_name: "fancy".into(),
        ..raw
    };
    assert_eq!(
        service_spec_of(&raw2).scheduler,
        Scheduler::Other("fancy".into())
    );
}

#[test]
fn unrepresentable_services_are_errors() {
    let raw = ServiceRaw {
        af: AF_INET,
        protocol: 47,
        addr: addr_to_raw(ip("10.0.0.1")),
        port: 1,
        ..ServiceRaw::default()
    };
    assert!(service_key_of(&raw).unwrap_err().contains("protocol 47"));
    let raw = ServiceRaw {
        af: 3,
        fwmark: 1,
        ..ServiceRaw::default()
    };
    assert!(
        service_key_of(&raw)
            .unwrap_err()
            .contains("address family 3")
    );
}

#[test]
fn tunnel_real_servers_observe_with_their_encapsulation() {
    let mut d = DestRaw {
        addr: addr_to_raw(ip("2001:db8::10")),
        port: 0,
        fwd_method: IP_VS_CONN_F_TUNNEL,
        weight: 1,
        addr_family: Some(AF_INET6),
        tun_type: Some(IP_VS_CONN_F_TUNNEL_TYPE_GUE),
        tun_port: Some(6080),
        tun_flags: Some(IP_VS_TUNNEL_ENCAP_FLAG_CSUM),
        ..DestRaw::default()
    };
    // An IPv6 real server in an IPv4 service: its own family wins.
    let (key, spec) = dest_of(&d, AF_INET).unwrap();
    assert_eq!(key, dk("[2001:db8::10]:0"));
    assert_eq!(
        spec.forward,
        Forward::Tunnel {
            tunnel: TunnelType::Gue { port: 6080 },
            flags: TunnelFlags {
                csum: true,
                remcsum: false
            }
        }
    );
    // A kernel without tunnel attributes: plain IPIP.
    d.tun_type = None;
    d.tun_port = None;
    d.tun_flags = None;
    let (_, spec) = dest_of(&d, AF_INET).unwrap();
    assert_eq!(
        spec.forward,
        Forward::Tunnel {
            tunnel: TunnelType::Ipip,
            flags: TunnelFlags::default()
        }
    );
    d.tun_type = Some(9);
    assert!(dest_of(&d, AF_INET).unwrap_err().contains("tunnel type 9"));
    d.fwd_method = 6;
    assert!(
        dest_of(&d, AF_INET)
            .unwrap_err()
            .contains("forwarding method 6")
    );
}

#[test]
fn service_requests() {
    let spec = ServiceSpec::default();
    let raw = service_raw(&tcp80(), &spec);
    assert_eq!(
        (raw.af, raw.protocol, raw.port, raw.fwmark),
        (AF_INET, 6, 80, 0)
    );
    assert_eq!(raw.addr, addr_to_raw(ip("10.0.0.100")));
    assert_eq!(raw.sched_name, "wlc");
    assert_eq!((raw.flags, raw.mask), (0, IP_VS_SVC_F_CONFIG_MASK));
    assert_eq!(
        raw.mask & IP_VS_SVC_F_HASHED,
        0,
        "HASHED is never in the mask"
    );
    assert_eq!((raw.timeout, raw.netmask), (0, Netmask([255; 4])));
    assert_eq!(raw.pe_name, None);

    let v6: ServiceKey = "udp/[2001:db8::1]:53".parse().unwrap();
    let spec = ServiceSpec {
        scheduler: Scheduler::None,
        flags: ServiceFlags {
            one_packet: true,
            ..ServiceFlags::default()
        },
        persistence: None,
        pe_name: None,
    };
    let raw = service_raw(&v6, &spec);
    assert_eq!(raw.sched_name, "none");
    assert_eq!(
        raw.netmask.prefix(AF_INET6),
        Some(128),
        "IPv6 needs 1..128 even unpersisted"
    );
    assert_eq!(raw.flags, IP_VS_SVC_F_ONEPACKET);

    let fw: ServiceKey = "fwmark/10".parse().unwrap();
    let spec = ServiceSpec {
        scheduler: Scheduler::Mh,
        flags: ServiceFlags {
            sched1: true,
            sched2: true,
            ..ServiceFlags::default()
        },
        persistence: Some(Persistence {
            timeout: 600,
            netmask: 24,
        }),
        pe_name: Some("sip".into()),
    };
    let raw = service_raw(&fw, &spec);
    assert_eq!((raw.fwmark, raw.protocol, raw.port), (10, 0, 0));
    assert_eq!(
        raw.flags,
        IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2
    );
    assert_eq!(raw.timeout, 600);
    assert_eq!(raw.netmask, Netmask([255, 255, 255, 0]));
    assert_eq!(raw.pe_name.as_deref(), Some("sip"));
}

#[test]
fn dest_requests_send_tunnel_attributes_only_for_tunnels() {
    let dr = dest_raw(&dk("10.0.0.11:80"), &DestSpec::default());
    assert_eq!(dr.fwd_method, IP_VS_CONN_F_DROUTE);
    assert_eq!(dr.addr_family, Some(AF_INET));
    assert_eq!((dr.tun_type, dr.tun_port, dr.tun_flags), (None, None, None));
    assert_eq!(
        (dr.active_conns, dr.stats),
        (None, None),
        "nothing output-only is sent"
    );

    let tun = |tunnel, csum| DestSpec {
        forward: Forward::Tunnel {
            tunnel,
            flags: TunnelFlags {
                csum,
                remcsum: false,
            },
        },
        ..DestSpec::default()
    };
    let ipip = dest_raw(&dk("10.0.0.11:80"), &tun(TunnelType::Ipip, false));
    assert_eq!(
        (ipip.tun_type, ipip.tun_port, ipip.tun_flags),
        (Some(0), None, None)
    );
    let gue = dest_raw(
        &dk("10.0.0.11:80"),
        &tun(TunnelType::Gue { port: 6080 }, true),
    );
    assert_eq!(
        (gue.tun_type, gue.tun_port, gue.tun_flags),
        (Some(1), Some(6080), Some(1))
    );
    let gre = dest_raw(&dk("10.0.0.11:80"), &tun(TunnelType::Gre, false));
    assert_eq!(
        (gre.tun_type, gre.tun_port, gre.tun_flags),
        (Some(2), None, Some(0))
    );
}

fn all_ipvs_ops() -> Vec<Op> {
    let svc = tcp80();
    let key = dk("10.0.0.11:80");
    let spec = DestSpec::default();
    vec![
        Op::AddService {
            key: svc,
            spec: Box::new(ServiceSpec::default()),
            replaces: None,
        },
        Op::UpdateService {
            key: svc,
            before: Box::new(ServiceSpec::default()),
            after: Box::new(ServiceSpec {
                scheduler: Scheduler::Rr,
                ..ServiceSpec::default()
            }),
            changes: vec![],
        },
        Op::DeleteService {
            key: svc,
            spec: Box::new(ServiceSpec::default()),
            reason: Box::new(Reason::NotInManifest),
        },
        Op::AddDest {
            service: svc,
            key,
            spec,
            replaces: None,
        },
        Op::UpdateDest {
            service: svc,
            key,
            before: Box::new(spec),
            after: Box::new(DestSpec { weight: 5, ..spec }),
            changes: vec![],
        },
        Op::DeleteDest {
            service: svc,
            key,
            spec,
            reason: Box::new(Reason::NotInManifest),
        },
        Op::DrainDest {
            service: svc,
            key,
            before: DestSpec { weight: 9, ..spec },
            active_conns: 3,
        },
    ]
}

#[test]
fn requests_for_ops() {
    let ops = all_ipvs_ops();
    let reqs: Vec<IpvsRequest> = ops.iter().map(|o| request_for_op(o).unwrap()).collect();
    assert!(matches!(&reqs[0], IpvsRequest::NewService(s) if s.sched_name == "wlc"));
    assert!(matches!(&reqs[1], IpvsRequest::SetService(s) if s.sched_name == "rr"));
    assert!(matches!(&reqs[2], IpvsRequest::DelService(s) if s.port == 80));
    assert!(matches!(&reqs[3], IpvsRequest::NewDest { dest, .. } if dest.weight == 1));
    assert!(matches!(&reqs[4], IpvsRequest::SetDest { dest, .. } if dest.weight == 5));
    assert!(matches!(&reqs[5], IpvsRequest::DelDest { dest, .. } if dest.port == 80));
    assert!(
        matches!(&reqs[6], IpvsRequest::SetDest { dest, .. } if dest.weight == 0 && dest.fwd_method == IP_VS_CONN_F_DROUTE),
        "drain = SET_DEST with weight 0"
    );
    assert!(ops.iter().all(is_ipvs_op));
    let vip = Op::AddVip {
        interface: "lvs0".into(),
        addr: ip("10.0.0.100"),
    };
    assert!(request_for_op(&vip).is_none());
    assert!(!is_ipvs_op(&vip));
}

fn kernel(errno: i32) -> IpvsError {
    // Build through the public error path: an errno answer.
    match errno {
        libc::EPERM => IpvsError::Permission,
        _ => IpvsError::Kernel {
            errno,
            extack: None,
        },
    }
}

#[test]
fn error_messages_name_the_operation_and_object() {
    let ops = all_ipvs_ops();
    let add_dest = &ops[3];
    let e = op_error(add_dest, kernel(libc::ENOENT));
    assert_eq!(
        e.to_string(),
        "add real server 10.0.0.11:80 to tcp/10.0.0.100:80: real server not found (ENOENT)"
    );
    let bad_sched = Op::AddService {
        key: tcp80(),
        spec: Box::new(ServiceSpec {
            scheduler: Scheduler::Other("foo".into()),
            ..ServiceSpec::default()
        }),
        replaces: None,
    };
    let e = op_error(&bad_sched, kernel(libc::ENOENT));
    assert_eq!(
        e,
        BackendError::Kernel {
            op: "add service tcp/10.0.0.100:80".into(),
            errno: Errno::NotFound,
            message: "scheduler \"foo\" is not available (ENOENT): this kernel has no module \
                      ip_vs_foo (check with `modinfo ip_vs_foo`; some schedulers are missing \
                      from older kernels or builds), or modules cannot be loaded here; choose \
                      another scheduler in the manifest"
                .into()
        }
    );
    let e = op_error(&ops[0], kernel(libc::EEXIST));
    assert_eq!(
        e.to_string(),
        "add service tcp/10.0.0.100:80: service already exists (EEXIST)"
    );
    let e = op_error(add_dest, kernel(libc::EEXIST));
    assert!(
        matches!(&e, BackendError::Kernel { errno: Errno::Exists, message, .. } if message == "real server already exists (EEXIST)")
    );
    let e = op_error(&ops[5], kernel(libc::ESRCH));
    assert_eq!(
        e.to_string(),
        "delete real server 10.0.0.11:80 from tcp/10.0.0.100:80: service not found (ESRCH)"
    );
    let e = op_error(&ops[1], kernel(libc::EPERM));
    assert!(matches!(
        e,
        BackendError::Kernel {
            errno: Errno::Permission,
            ..
        }
    ));
    assert!(e.to_string().contains("CAP_NET_ADMIN"));
    let e = op_error(add_dest, kernel(libc::EINVAL));
    assert!(matches!(
        e,
        BackendError::Kernel {
            errno: Errno::Invalid,
            ..
        }
    ));
    let e = op_error(add_dest, kernel(libc::ERANGE));
    assert!(matches!(
        e,
        BackendError::Kernel {
            errno: Errno::Other(34),
            ..
        }
    ));
    assert!(e.to_string().contains("lower threshold"), "{e}");
    let e = op_error(&ops[6], kernel(libc::ENOMEM));
    assert_eq!(
        e.to_string(),
        "drain real server 10.0.0.11:80 in tcp/10.0.0.100:80 (weight 0): cannot allocate memory (ENOMEM)"
    );
    let e = op_error(&ops[0], IpvsError::Unavailable);
    assert!(matches!(e, BackendError::Unavailable(_)));
    let e = op_error(
        &ops[0],
        IpvsError::Kernel {
            errno: libc::EINVAL,
            extack: Some("Unknown attribute".into()),
        },
    );
    assert!(
        e.to_string().ends_with("(kernel: Unknown attribute)"),
        "{e}"
    );
}

#[test]
fn read_back_detects_dropped_tunnel_settings() {
    let spec = DestSpec {
        forward: Forward::Tunnel {
            tunnel: TunnelType::Gue { port: 6080 },
            flags: TunnelFlags::default(),
        },
        ..DestSpec::default()
    };
    let mut got = dest_raw(&dk("10.0.0.11:80"), &spec);
    got.tun_flags = Some(0);
    assert_eq!(tunnel_mismatch(&spec, &got, AF_INET), None);
    // An old kernel: no TUN_* in its answer.
    got.tun_type = None;
    got.tun_port = None;
    got.tun_flags = None;
    assert!(
        tunnel_mismatch(&spec, &got, AF_INET)
            .unwrap()
            .contains("predates")
    );
    // A kernel that knows TUN_TYPE/PORT but not TUN_FLAGS.
    let csum = DestSpec {
        forward: Forward::Tunnel {
            tunnel: TunnelType::Gre,
            flags: TunnelFlags {
                csum: true,
                remcsum: false,
            },
        },
        ..DestSpec::default()
    };
    let mut got = dest_raw(&dk("10.0.0.11:80"), &csum);
    got.tun_flags = Some(0);
    assert!(
        tunnel_mismatch(&csum, &got, AF_INET)
            .unwrap()
            .contains("ignored part")
    );
}

fn arb_service() -> impl Strategy<Value = (ServiceKey, ServiceSpec)> {
    let key = prop_oneof![
        (
            prop_oneof![
                Just(Protocol::Tcp),
                Just(Protocol::Udp),
                Just(Protocol::Sctp)
            ],
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<u16>()
        )
            .prop_map(|(protocol, vip, port)| ServiceKey::Inet {
                protocol,
                vip,
                port
            }),
        (
            prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)],
            any::<[u8; 16]>().prop_map(IpAddr::from),
            any::<u16>()
        )
            .prop_map(|(protocol, vip, port)| ServiceKey::Inet {
                protocol,
                vip,
                port
            }),
        (1u32.., prop_oneof![Just(Family::Inet), Just(Family::Inet6)]).prop_map(|(m, family)| {
            ServiceKey::Fwmark {
                mark: Fwmark::new(m).unwrap(),
                family,
            }
        }),
    ];
    let sched = proptest::sample::select(Scheduler::KNOWN.to_vec())
        .prop_map(|s| Scheduler::known(s).unwrap());
    (
        key,
        sched,
        any::<[bool; 4]>(),
        proptest::option::of((1u32..=2_678_400, any::<u8>())),
        proptest::option::of("[a-z]{1,8}"),
    )
        .prop_map(|(key, scheduler, f, pers, pe_name)| {
            let max = key.family().max_prefix();
            let persistence = pers.map(|(timeout, n)| Persistence {
                timeout,
                netmask: if key.family() == Family::Inet6 {
                    1 + n % max
                } else {
                    n % (max + 1)
                },
            });
            (
                key,
                ServiceSpec {
                    scheduler,
                    flags: ServiceFlags {
                        one_packet: f[0],
                        sched1: f[1],
                        sched2: f[2],
                        sched3: f[3],
                    },
                    persistence,
                    pe_name,
                },
            )
        })
}

fn arb_dest() -> impl Strategy<Value = (DestKey, DestSpec)> {
    let forward = prop_oneof![
        Just(Forward::Dr),
        Just(Forward::Nat),
        (0u8..3, any::<u16>(), any::<bool>(), any::<bool>()).prop_map(
            |(t, port, csum, remcsum)| {
                Forward::Tunnel {
                    tunnel: match t {
                        0 => TunnelType::Ipip,
                        1 => TunnelType::Gue { port },
                        _ => TunnelType::Gre,
                    },
                    flags: TunnelFlags { csum, remcsum },
                }
            }
        ),
    ];
    (
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from)
        ],
        any::<u16>(),
        forward,
        0u32..=65535,
        0u32..=i32::MAX as u32,
        0u32..=i32::MAX as u32,
    )
        .prop_map(|(addr, port, forward, weight, u, l)| {
            (
                DestKey { addr, port },
                DestSpec {
                    forward,
                    weight,
                    upper_threshold: u,
                    lower_threshold: l,
                },
            )
        })
}

proptest! {
    /// What lvsctl writes, read back the way the kernel reports it (HASHED added, mask ~0,
    /// 16-byte addresses, every TUN_* reported), observes as exactly what was desired.
    #[test]
    fn written_then_observed_is_identity((key, spec) in arb_service(), dests in proptest::collection::vec(arb_dest(), 0..5)) {
        let mut raw = service_raw(&key, &spec);
        // The kernel's view of the service.
        raw.flags = (raw.flags & raw.mask) | IP_VS_SVC_F_HASHED;
        raw.mask = u32::MAX;
        let mut kernel_dests = Vec::new();
        let mut want = BTreeMap::new();
        for (dkey, dspec) in &dests {
            let mut d = dest_raw(dkey, dspec);
            d.tun_type = Some(d.tun_type.unwrap_or(0));
            d.tun_port = Some(d.tun_port.unwrap_or(0));
            d.tun_flags = Some(d.tun_flags.unwrap_or(0));
            kernel_dests.push(d);
            want.insert(*dkey, *dspec);
        }
        // Duplicate keys collapse, as in the kernel (later one wins in this model).
        let (k, svc, _) = service_of(&raw, &kernel_dests).unwrap();
        prop_assert_eq!(k, key);
        prop_assert_eq!(svc.spec, spec);
        prop_assert_eq!(svc.dests, want);
    }
}
