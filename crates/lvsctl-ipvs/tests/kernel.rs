//! Real-kernel tests of the IPVS client. They need a kernel with IPVS (ip_vs loaded), root,
//! and `ipvsadm`; they run inside lvsctl's throwaway VM (`tests/vm/run.sh`) with
//! `LVSCTL_IN_VM=1`, each in a fresh network namespace (IPVS state is per namespace). Outside
//! the VM each says loudly that it was skipped, and `kernel_tests_in_vm` boots the VM and runs
//! this very binary inside it (set `LVSCTL_VM=skip` to not boot it).
//!
//! The comparisons go both ways: write with lvsctl and read with `ipvsadm -S -n`; write with
//! `ipvsadm` and observe with lvsctl.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use lvsctl_ipvs::codec::constants::*;
use lvsctl_ipvs::codec::{DaemonRaw, IpvsRequest, TimeoutsRaw};
use lvsctl_ipvs::*;
use lvsctl_model::*;
use lvsctl_plan::{BackendError, Errno, Op, Reason};

// ---------------------------------------------------------------------------------------
// Harness

fn in_vm(test: &str) -> bool {
    if std::env::var_os("LVSCTL_IN_VM").is_some_and(|v| v == "1") {
        return true;
    }
    // Straight to stderr, past libtest's capture: a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: needs the VM: kernel test `{test}` runs only with LVSCTL_IN_VM=1 inside \
         tests/vm/run.sh (kernel_tests_in_vm does that)"
    );
    false
}

/// Moves the calling thread into a new network namespace.
#[allow(unsafe_code)]
fn unshare_net() {
    // SAFETY: unshare(2) takes a flag word and touches no memory of ours; CLONE_NEWNET only
    // changes this thread's network namespace, which is what the test wants.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        r,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
}

/// Runs `f` on a thread of its own in a fresh network namespace with a dummy interface that
/// routes 10.0.0.0/24 and 2001:db8::/64 (new IPv4 real servers must be routable) and `lo` up.
fn vm_test(name: &str, f: impl FnOnce() + Send + 'static) {
    if !in_vm(name) {
        return;
    }
    let r = std::thread::spawn(move || {
        unshare_net();
        sh(
            "ip link set lo up && ip link add d0 type dummy && ip link set d0 up \
            && ip addr add 10.0.0.1/24 dev d0 && ip -6 addr add 2001:db8::1/64 dev d0 nodad",
        );
        f()
    })
    .join();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

/// Runs a shell command line (in the calling thread's namespace); panics when it fails.
fn sh(cmd: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ipvsadm(args: &str) -> String {
    sh(&format!("ipvsadm {args}"))
}

/// `ipvsadm -S -n`, sorted (the kernel lists services in hash order).
fn saved() -> Vec<String> {
    let mut v: Vec<String> = ipvsadm("-S -n").lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn open() -> IpvsSocket {
    IpvsSocket::open().unwrap()
}

// ---------------------------------------------------------------------------------------
// Model helpers

fn key(s: &str) -> ServiceKey {
    s.parse().unwrap()
}

fn dkey(s: &str) -> DestKey {
    s.parse().unwrap()
}

fn spec(s: Scheduler) -> ServiceSpec {
    ServiceSpec {
        scheduler: s,
        ..ServiceSpec::default()
    }
}

fn persistent(s: Scheduler, timeout: u32, netmask: u8) -> ServiceSpec {
    ServiceSpec {
        scheduler: s,
        persistence: Some(Persistence { timeout, netmask }),
        ..ServiceSpec::default()
    }
}

fn dest(forward: Forward, weight: u32) -> DestSpec {
    DestSpec {
        forward,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

fn tunnel(t: TunnelType, csum: bool, remcsum: bool) -> Forward {
    Forward::Tunnel {
        tunnel: t,
        flags: TunnelFlags { csum, remcsum },
    }
}

fn add_service(k: &str, s: ServiceSpec) -> Op {
    Op::AddService {
        key: key(k),
        spec: Box::new(s),
        replaces: None,
    }
}

fn add_dest(service: &str, k: &str, s: DestSpec) -> Op {
    Op::AddDest {
        service: key(service),
        key: dkey(k),
        spec: s,
        replaces: None,
    }
}

fn apply_all(s: &mut IpvsSocket, ops: &[Op]) {
    let results = s.execute_ops(ops, true);
    assert_eq!(results.len(), ops.len());
    for (op, r) in ops.iter().zip(results) {
        if let Err(e) = r {
            panic!("{} failed: {e}", describe_op(op));
        }
    }
}

/// The desired state the ops of [`every_field_ops`] build.
fn every_field_state() -> BTreeMap<ServiceKey, Service> {
    let mut m = BTreeMap::new();
    for op in every_field_ops() {
        match op {
            Op::AddService { key, spec, .. } => {
                m.insert(
                    key,
                    Service {
                        spec: *spec,
                        dests: BTreeMap::new(),
                    },
                );
            }
            Op::AddDest {
                service, key, spec, ..
            } => {
                m.get_mut(&service).unwrap().dests.insert(key, spec);
            }
            _ => unreachable!(),
        }
    }
    m
}

/// Services and real servers covering every field lvsctl writes: IPv4 and IPv6, fwmark (both
/// families), port 0, persistence with netmask, PE, thresholds, every forwarding method and
/// tunnel type, scheduler flags, one-packet, SCTP.
fn every_field_ops() -> Vec<Op> {
    let sh_flags = ServiceSpec {
        scheduler: Scheduler::Sh,
        flags: ServiceFlags {
            one_packet: true,
            sched1: true,
            sched2: true,
            sched3: false,
        },
        ..ServiceSpec::default()
    };
    let mh_port0 = ServiceSpec {
        flags: ServiceFlags {
            sched1: true,
            ..ServiceFlags::default()
        },
        ..persistent(Scheduler::Mh, 360, 32)
    };
    let sip = ServiceSpec {
        pe_name: Some("sip".into()),
        ..persistent(Scheduler::Rr, 60, 32)
    };
    vec![
        add_service("tcp/10.0.0.100:80", spec(Scheduler::Wlc)),
        add_dest("tcp/10.0.0.100:80", "10.0.0.11:80", dest(Forward::Dr, 1)),
        add_dest(
            "tcp/10.0.0.100:80",
            "10.0.0.12:8080",
            DestSpec {
                upper_threshold: 100,
                lower_threshold: 10,
                ..dest(Forward::Nat, 5)
            },
        ),
        add_dest(
            "tcp/10.0.0.100:80",
            "10.0.0.13:80",
            dest(tunnel(TunnelType::Gue { port: 6080 }, true, false), 1),
        ),
        add_dest(
            "tcp/10.0.0.100:80",
            "10.0.0.14:80",
            dest(tunnel(TunnelType::Gre, true, false), 2),
        ),
        add_dest(
            "tcp/10.0.0.100:80",
            "10.0.0.15:80",
            dest(tunnel(TunnelType::Ipip, false, false), 1),
        ),
        add_dest(
            "tcp/10.0.0.100:80",
            "10.0.0.16:80",
            dest(tunnel(TunnelType::Gue { port: 7777 }, false, true), 1),
        ),
        add_service("tcp/10.0.0.100:443", persistent(Scheduler::Rr, 360, 24)),
        add_service("udp/10.0.0.100:53", sh_flags),
        add_service("tcp/10.0.0.100:0", mh_port0),
        add_service("udp/10.0.0.100:5060", sip),
        add_service("sctp/10.0.0.100:9", spec(Scheduler::Rr)),
        add_service("fwmark/10", spec(Scheduler::Rr)),
        add_dest("fwmark/10", "10.0.0.21:0", dest(Forward::Dr, 1)),
        add_service("fwmark/10/ipv6", persistent(Scheduler::Wrr, 100, 64)),
        add_dest("fwmark/10/ipv6", "[2001:db8::11]:0", dest(Forward::Dr, 0)),
        add_service("tcp/[2001:db8::100]:80", spec(Scheduler::Lc)),
        add_dest(
            "tcp/[2001:db8::100]:80",
            "[2001:db8::12]:80",
            dest(Forward::Nat, 3),
        ),
        // An IPv6 real server behind an IPv4 service: tunnel forwarding only.
        add_dest(
            "tcp/10.0.0.100:443",
            "[2001:db8::13]:443",
            dest(tunnel(TunnelType::Ipip, false, false), 1),
        ),
    ]
}

const EVERY_FIELD_SAVED: &[&str] = &[
    "-A -t 10.0.0.100:80 -s wlc",
    "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
    "-a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 5",
    "-a -t 10.0.0.100:80 -r 10.0.0.13:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
    "-a -t 10.0.0.100:80 -r 10.0.0.14:80 -i -w 2 --tun-type gre --tun-csum",
    "-a -t 10.0.0.100:80 -r 10.0.0.15:80 -i -w 1 --tun-type ipip",
    "-a -t 10.0.0.100:80 -r 10.0.0.16:80 -i -w 1 --tun-type gue --tun-port 7777 --tun-remcsum",
    "-A -t 10.0.0.100:443 -s rr -p 360 -M 255.255.255.0",
    "-a -t 10.0.0.100:443 -r [2001:db8::13]:443 -i -w 1 --tun-type ipip",
    "-A -u 10.0.0.100:53 -s sh -o -b sh-fallback,sh-port",
    "-A -t 10.0.0.100:0 -s mh -p 360 -b mh-fallback",
    "-A -u 10.0.0.100:5060 -s rr -p 60 --pe sip",
    "-A --sctp-service 10.0.0.100:9 -s rr",
    "-A -f 10 -s rr",
    "-a -f 10 -r 10.0.0.21:0 -g -w 1",
    "-A -f 10 -6 -s wrr -p 100 -M 64",
    "-a -f 10 -6 -r [2001:db8::11]:0 -g -w 0",
    "-A -t [2001:db8::100]:80 -s lc",
    "-a -t [2001:db8::100]:80 -r [2001:db8::12]:80 -m -w 3",
];

/// `(upper, lower)` thresholds of a real server from `ipvsadm -L -n --thresholds`.
fn thresholds(real_server: &str) -> (u32, u32) {
    let out = ipvsadm("-L -n --thresholds");
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(real_server))
        .unwrap_or_else(|| panic!("{real_server} not listed:\n{out}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    // "->", addr, uthreshold, lthreshold, active, inactive
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn kernel_tests_in_vm() {
    if std::env::var_os("LVSCTL_IN_VM").is_some_and(|v| v == "1") {
        return; // already inside: the other tests run here
    }
    if lvsctl_vmtest::skip_requested("lvsctl-ipvs kernel tests") {
        return;
    }
    // This very test binary, run inside the VM with the kernel tests enabled.
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    let out = lvsctl_vmtest::VmRun::new()
        .timeout(Duration::from_secs(900))
        .copy(&exe)
        .command([
            "LVSCTL_IN_VM=1".to_owned(),
            format!("/opt/{name}"),
            "--test-threads=1".to_owned(),
            "--nocapture".to_owned(),
        ])
        .run();
    out.assert_success();
    assert!(
        out.console.contains("test result: ok."),
        "no test summary from the VM:\n{}",
        out.console
    );
    assert!(
        !out.console.contains("skipped: needs the VM"),
        "a kernel test skipped inside the VM:\n{}",
        out.console
    );
}

#[test]
fn info_reports_the_ipvs_version() {
    vm_test("info_reports_the_ipvs_version", || {
        let mut s = open();
        let info = s.info().unwrap();
        assert_eq!(info.version, IP_VS_VERSION_CODE);
        assert_eq!(info.version_string(), "1.2.1");
        let header = ipvsadm("-L -n");
        assert!(
            header.contains(&format!("version 1.2.1 (size={})", info.conn_tab_size)),
            "{header}"
        );
    });
}

#[test]
fn write_with_lvsctl_read_with_ipvsadm() {
    vm_test("write_with_lvsctl_read_with_ipvsadm", || {
        let mut s = open();
        apply_all(&mut s, &every_field_ops());
        assert_eq!(saved(), sorted(EVERY_FIELD_SAVED));
        assert_eq!(thresholds("10.0.0.12:8080"), (100, 10));
        assert_eq!(thresholds("10.0.0.11:80"), (0, 0));
        // And lvsctl observes exactly what it wrote (HASHED, 16-byte addresses, defaults all
        // normalised away).
        let (services, counters) = s.observe_services().unwrap();
        assert_eq!(services, every_field_state());
        assert_eq!(counters.len(), services.len());
    });
}

#[test]
fn write_with_ipvsadm_observe_with_lvsctl() {
    vm_test("write_with_ipvsadm_observe_with_lvsctl", || {
        for line in EVERY_FIELD_SAVED {
            ipvsadm(line);
        }
        // Thresholds are not part of -S output: set them by hand.
        ipvsadm("-e -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 5 -x 100 -y 10");
        let mut s = open();
        let (services, _) = s.observe_services().unwrap();
        assert_eq!(services, every_field_state());
    });
}

/// Another tool can make an IPVS service lvsctl cannot represent (netlink does not check the
/// protocol): it is left out and reported, and the rest of the table is still read.
#[test]
fn a_service_lvsctl_cannot_represent_does_not_stop_the_read() {
    vm_test(
        "a_service_lvsctl_cannot_represent_does_not_stop_the_read",
        || {
            for line in EVERY_FIELD_SAVED {
                ipvsadm(line);
            }
            ipvsadm("-e -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 5 -x 100 -y 10");
            let mut s = open();
            let mut icmp = service_raw(&key("tcp/10.0.0.200:7"), &spec(Scheduler::Rr));
            icmp.protocol = 1;
            s.new_service(&icmp).unwrap();
            let ((services, _), report) = s.observe_services_reported().unwrap();
            assert_eq!(services, every_field_state());
            assert_eq!(report.unrepresentable.len(), 1, "{report:?}");
            assert!(
                report.unrepresentable[0].contains("10.0.0.200 port 7 with protocol 1"),
                "{report:?}"
            );
        },
    );
}

#[test]
fn in_place_updates_and_deletes() {
    vm_test("in_place_updates_and_deletes", || {
        let mut s = open();
        apply_all(&mut s, &every_field_ops());
        let svc = key("tcp/10.0.0.100:80");
        let before = spec(Scheduler::Wlc);
        let after = ServiceSpec {
            flags: ServiceFlags {
                sched1: true,
                ..ServiceFlags::default()
            },
            ..persistent(Scheduler::Sh, 120, 16)
        };
        let d_before = dest(Forward::Dr, 1);
        let d_after = DestSpec {
            upper_threshold: 50,
            lower_threshold: 5,
            ..dest(Forward::Nat, 9)
        };
        let ops = vec![
            Op::UpdateService {
                key: svc,
                before: Box::new(before.clone()),
                after: Box::new(after.clone()),
                changes: vec![],
            },
            Op::UpdateDest {
                service: svc,
                key: dkey("10.0.0.11:80"),
                before: Box::new(d_before),
                after: Box::new(d_after),
                changes: vec![],
            },
            Op::DrainDest {
                service: svc,
                key: dkey("10.0.0.15:80"),
                before: dest(tunnel(TunnelType::Ipip, false, false), 1),
                active_conns: 0,
            },
            Op::DeleteDest {
                service: svc,
                key: dkey("10.0.0.16:80"),
                spec: dest(tunnel(TunnelType::Gue { port: 7777 }, false, true), 1),
                reason: Box::new(Reason::NotInManifest),
            },
            Op::DeleteService {
                key: key("sctp/10.0.0.100:9"),
                spec: Box::new(spec(Scheduler::Rr)),
                reason: Box::new(Reason::NotInManifest),
            },
            // Back from persistent to not persistent: the kernel must drop the flag.
            Op::UpdateService {
                key: key("tcp/10.0.0.100:443"),
                before: Box::new(persistent(Scheduler::Rr, 360, 24)),
                after: Box::new(spec(Scheduler::Rr)),
                changes: vec![],
            },
        ];
        apply_all(&mut s, &ops);
        let lines = saved();
        for want in [
            "-A -t 10.0.0.100:80 -s sh -p 120 -M 255.255.0.0 -b sh-fallback",
            "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 9",
            "-a -t 10.0.0.100:80 -r 10.0.0.15:80 -i -w 0 --tun-type ipip",
            "-A -t 10.0.0.100:443 -s rr",
        ] {
            assert!(
                lines.iter().any(|l| l == want),
                "missing `{want}` in {lines:#?}"
            );
        }
        assert!(!lines.iter().any(|l| l.contains("10.0.0.16")), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("sctp")), "{lines:#?}");
        assert_eq!(thresholds("10.0.0.11:80"), (50, 5));
        let (services, _) = s.observe_services().unwrap();
        assert_eq!(services[&svc].spec, after);
        assert_eq!(services[&svc].dests[&dkey("10.0.0.11:80")], d_after);
        assert_eq!(
            services[&key("tcp/10.0.0.100:443")].spec,
            spec(Scheduler::Rr)
        );
    });
}

fn kernel_error(r: Result<(), BackendError>) -> (Errno, String) {
    match r {
        Err(BackendError::Kernel { errno, .. }) => {
            let msg = r.unwrap_err().to_string();
            (errno, msg)
        }
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

#[test]
fn kernel_errors_name_the_operation_and_object() {
    vm_test("kernel_errors_name_the_operation_and_object", || {
        let mut s = open();
        apply_all(
            &mut s,
            &[
                add_service("tcp/10.0.0.100:80", spec(Scheduler::Wlc)),
                add_dest("tcp/10.0.0.100:80", "10.0.0.11:80", dest(Forward::Dr, 1)),
            ],
        );
        // Unknown scheduler module.
        let (errno, msg) = kernel_error(s.execute_op(&add_service(
            "tcp/10.0.0.100:81",
            spec(Scheduler::Other("foo".into())),
        )));
        assert_eq!(errno, Errno::NotFound);
        assert!(
            msg.starts_with(
                "add service tcp/10.0.0.100:81: scheduler \"foo\" is not available (ENOENT): \
                 this kernel has no module ip_vs_foo"
            ),
            "{msg}"
        );
        // Duplicate service.
        let (errno, msg) =
            kernel_error(s.execute_op(&add_service("tcp/10.0.0.100:80", spec(Scheduler::Rr))));
        assert_eq!(errno, Errno::Exists);
        assert_eq!(
            msg,
            "add service tcp/10.0.0.100:80: service already exists (EEXIST)"
        );
        // Duplicate real server.
        let (errno, msg) = kernel_error(s.execute_op(&add_dest(
            "tcp/10.0.0.100:80",
            "10.0.0.11:80",
            dest(Forward::Dr, 1),
        )));
        assert_eq!(errno, Errno::Exists);
        assert_eq!(
            msg,
            "add real server 10.0.0.11:80 to tcp/10.0.0.100:80: real server already exists (EEXIST)"
        );
        // Missing real server.
        let upd = Op::UpdateDest {
            service: key("tcp/10.0.0.100:80"),
            key: dkey("10.0.0.99:80"),
            before: Box::new(dest(Forward::Dr, 1)),
            after: Box::new(dest(Forward::Dr, 2)),
            changes: vec![],
        };
        let (errno, msg) = kernel_error(s.execute_op(&upd));
        assert_eq!(errno, Errno::NotFound);
        assert_eq!(
            msg,
            "update real server 10.0.0.99:80 in tcp/10.0.0.100:80: real server not found (ENOENT)"
        );
        let del = Op::DeleteDest {
            service: key("tcp/10.0.0.100:80"),
            key: dkey("10.0.0.99:80"),
            spec: dest(Forward::Dr, 1),
            reason: Box::new(Reason::NotInManifest),
        };
        assert_eq!(kernel_error(s.execute_op(&del)).0, Errno::NotFound);
        // Missing service.
        let (errno, msg) = kernel_error(s.execute_op(&add_dest(
            "udp/10.0.0.100:80",
            "10.0.0.11:80",
            dest(Forward::Dr, 1),
        )));
        assert_eq!(errno, Errno::NoService);
        assert_eq!(
            msg,
            "add real server 10.0.0.11:80 to udp/10.0.0.100:80: service not found (ESRCH)"
        );
        let del_svc = Op::DeleteService {
            key: key("fwmark/77"),
            spec: Box::new(spec(Scheduler::Rr)),
            reason: Box::new(Reason::NotInManifest),
        };
        assert_eq!(
            kernel_error(s.execute_op(&del_svc)).1,
            "delete service fwmark/77: service not found (ESRCH)"
        );
        // GUE without a port: EINVAL.
        let (errno, _) = kernel_error(s.execute_op(&add_dest(
            "tcp/10.0.0.100:80",
            "10.0.0.12:80",
            dest(tunnel(TunnelType::Gue { port: 0 }, false, false), 1),
        )));
        assert_eq!(errno, Errno::Invalid);
        // Lower threshold above the upper one: ERANGE.
        let (errno, msg) = kernel_error(s.execute_op(&add_dest(
            "tcp/10.0.0.100:80",
            "10.0.0.13:80",
            DestSpec {
                upper_threshold: 5,
                lower_threshold: 10,
                ..dest(Forward::Dr, 1)
            },
        )));
        assert_eq!(errno, Errno::Other(libc::ERANGE));
        assert!(msg.contains("lower threshold"), "{msg}");
        // Nothing of the failed ops stuck.
        assert_eq!(
            saved(),
            sorted(&[
                "-A -t 10.0.0.100:80 -s wlc",
                "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
            ])
        );
    });
}

/// Drops every capability of the calling thread (capabilities are per thread).
#[allow(unsafe_code)]
fn drop_thread_capabilities() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset(2) reads one header and two data structs, laid out as the kernel's
    // (repr(C)); both live on this stack for the whole call. pid 0 = this thread.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn without_cap_net_admin_the_error_says_so() {
    vm_test("without_cap_net_admin_the_error_says_so", || {
        // A separate thread so the capabilities of the test's own thread stay intact.
        let err = std::thread::spawn(|| {
            drop_thread_capabilities();
            // Resolving the family needs no privilege; every IPVS command does.
            let mut s = IpvsSocket::open().unwrap();
            s.info().unwrap_err()
        })
        .join()
        .unwrap();
        assert!(matches!(err, IpvsError::Permission), "{err:?}");
        assert_eq!(err.to_string(), "lvsctl needs CAP_NET_ADMIN (run as root)");
    });
}

#[test]
fn pipelined_batches_match_acks_by_sequence() {
    vm_test("pipelined_batches_match_acks_by_sequence", || {
        let mut s = open();
        // 400 services with 5 real servers each, in one batch: many requests per datagram
        // and far more than one window in flight over the batch.
        let mut reqs = Vec::new();
        for i in 0..400u32 {
            let k = ServiceKey::Inet {
                protocol: Protocol::Tcp,
                vip: IpAddr::from([10, 1, (i / 250) as u8, (i % 250) as u8 + 1]),
                port: 80,
            };
            reqs.push(IpvsRequest::NewService(service_raw(
                &k,
                &spec(Scheduler::Rr),
            )));
            for j in 0..5u8 {
                let d = DestKey {
                    addr: IpAddr::from([10, 0, 0, 10 + j]),
                    port: 80,
                };
                reqs.push(IpvsRequest::NewDest {
                    service: service_identity(&k),
                    dest: dest_raw(&d, &dest(Forward::Nat, 1)),
                });
            }
        }
        let results = s.execute_batch(&reqs, false);
        assert_eq!(results.len(), reqs.len());
        assert!(results.iter().all(Result::is_ok));
        let services = s.services().unwrap();
        assert_eq!(services.len(), 400);
        assert_eq!(s.dests(&services[17]).unwrap().len(), 5);

        // Errors interleaved with successes land on the right requests: every third request
        // re-adds an existing service.
        let mut mixed = Vec::new();
        for i in 0..90u32 {
            let k = ServiceKey::Inet {
                protocol: Protocol::Udp,
                vip: IpAddr::from([10, 2, 0, (i + 1) as u8]),
                port: 53,
            };
            let existing = service_raw(
                &ServiceKey::Inet {
                    protocol: Protocol::Tcp,
                    vip: IpAddr::from([10, 1, 0, 1]),
                    port: 80,
                },
                &spec(Scheduler::Rr),
            );
            if i % 3 == 2 {
                mixed.push(IpvsRequest::NewService(existing));
            } else {
                mixed.push(IpvsRequest::NewService(service_raw(
                    &k,
                    &spec(Scheduler::Rr),
                )));
            }
        }
        let results = s.execute_batch(&mixed, false);
        assert_eq!(results.len(), 90);
        for (i, r) in results.iter().enumerate() {
            match r {
                Ok(()) => assert_ne!(i % 3, 2, "request {i} should have failed"),
                Err(e) => {
                    assert_eq!(i % 3, 2, "request {i} failed: {e}");
                    assert_eq!(e.errno(), Some(libc::EEXIST));
                }
            }
        }

        // Stop at the first error, one request in flight: nothing after it is sent.
        s.set_max_in_flight(1);
        let k = |n: u8| ServiceKey::Inet {
            protocol: Protocol::Tcp,
            vip: IpAddr::from([10, 3, 0, n]),
            port: 80,
        };
        let stop = vec![
            IpvsRequest::NewService(service_raw(&k(1), &spec(Scheduler::Rr))),
            IpvsRequest::NewService(service_raw(&k(1), &spec(Scheduler::Rr))),
            IpvsRequest::NewService(service_raw(&k(2), &spec(Scheduler::Rr))),
        ];
        let results = s.execute_batch(&stop, true);
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert_eq!(results[1].as_ref().unwrap_err().errno(), Some(libc::EEXIST));
        assert_eq!(s.service(&service_identity(&k(2))).unwrap(), None);
    });
}

#[test]
fn queries_flush_and_zero() {
    vm_test("queries_flush_and_zero", || {
        let mut s = open();
        apply_all(&mut s, &every_field_ops());
        // GET_SERVICE for one service, and for a missing one.
        let one = s
            .service(&service_identity(&key("fwmark/10/ipv6")))
            .unwrap()
            .unwrap();
        assert_eq!(one.fwmark, 10);
        assert_eq!(one.af, AF_INET6);
        assert_eq!(
            s.service(&service_identity(&key("fwmark/11"))).unwrap(),
            None
        );
        // Real servers of a missing service: an empty dump, not an error.
        assert!(
            s.dests(&service_identity(&key("tcp/10.9.9.9:1")))
                .unwrap()
                .is_empty()
        );
        // Zero all, zero one, zero a missing one.
        s.zero(None).unwrap();
        s.zero(Some(&service_identity(&key("tcp/10.0.0.100:80"))))
            .unwrap();
        assert_eq!(
            s.zero(Some(&service_identity(&key("tcp/10.9.9.9:1"))))
                .unwrap_err()
                .errno(),
            Some(libc::ESRCH)
        );
        s.flush().unwrap();
        assert!(s.services().unwrap().is_empty());
        assert_eq!(ipvsadm("-S -n"), "");
    });
}

#[test]
fn timeouts_get_and_set() {
    vm_test("timeouts_get_and_set", || {
        let mut s = open();
        s.set_timeouts(&TimeoutsRaw {
            tcp: 1000,
            tcp_fin: 100,
            udp: 200,
        })
        .unwrap();
        assert_eq!(
            ipvsadm("-L --timeout").trim(),
            "Timeout (tcp tcpfin udp): 1000 100 200"
        );
        ipvsadm("--set 901 121 301");
        assert_eq!(
            s.timeouts().unwrap(),
            TimeoutsRaw {
                tcp: 901,
                tcp_fin: 121,
                udp: 301
            }
        );
        // 0 leaves a timeout unchanged.
        s.set_timeouts(&TimeoutsRaw {
            tcp: 0,
            tcp_fin: 0,
            udp: 55,
        })
        .unwrap();
        assert_eq!(
            s.timeouts().unwrap(),
            TimeoutsRaw {
                tcp: 901,
                tcp_fin: 121,
                udp: 55
            }
        );
    });
}

#[test]
fn sync_daemon_start_read_stop() {
    vm_test("sync_daemon_start_read_stop", || {
        let mut s = open();
        assert!(s.daemons().unwrap().is_empty());
        s.new_daemon(&DaemonRaw {
            state: IP_VS_STATE_MASTER,
            mcast_ifn: "lo".into(),
            sync_id: 5,
            ..DaemonRaw::default()
        })
        .unwrap();
        let listed = ipvsadm("-L --daemon");
        assert!(
            listed.contains("master sync daemon (mcast=lo, syncid=5"),
            "{listed}"
        );
        ipvsadm("--start-daemon backup --mcast-interface lo --syncid 6");
        let mut ds = s.daemons().unwrap();
        ds.sort_by_key(|d| d.state);
        assert_eq!(ds.len(), 2, "{ds:?}");
        assert_eq!(
            (ds[0].state, ds[0].mcast_ifn.as_str(), ds[0].sync_id),
            (IP_VS_STATE_MASTER, "lo", 5)
        );
        assert_eq!(ds[0].mcast_port, Some(8848), "the kernel's default port");
        assert_eq!(
            (ds[1].state, ds[1].mcast_ifn.as_str(), ds[1].sync_id),
            (IP_VS_STATE_BACKUP, "lo", 6)
        );
        // A second master is refused.
        let err = s
            .new_daemon(&DaemonRaw {
                state: IP_VS_STATE_MASTER,
                mcast_ifn: "lo".into(),
                sync_id: 7,
                ..DaemonRaw::default()
            })
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
        s.del_daemon(IP_VS_STATE_MASTER).unwrap();
        s.del_daemon(IP_VS_STATE_BACKUP).unwrap();
        assert!(s.daemons().unwrap().is_empty());
        assert_eq!(ipvsadm("-L --daemon").trim(), "");
    });
}

#[test]
fn tunnel_read_back_passes_on_a_current_kernel() {
    vm_test("tunnel_read_back_passes_on_a_current_kernel", || {
        // This kernel keeps GUE/GRE settings, so the read-back check must not complain.
        let mut s = open();
        let ops = vec![
            add_service("tcp/10.0.0.100:80", spec(Scheduler::Rr)),
            add_dest(
                "tcp/10.0.0.100:80",
                "10.0.0.13:80",
                dest(tunnel(TunnelType::Gue { port: 6080 }, true, true), 1),
            ),
            add_dest(
                "tcp/10.0.0.100:80",
                "10.0.0.14:80",
                dest(tunnel(TunnelType::Gre, true, false), 1),
            ),
        ];
        apply_all(&mut s, &ops);
        // (ipvsadm 1.31 crashes listing GUE with both checksum flags, so read it ourselves.)
        let (services, _) = s.observe_services().unwrap();
        let dests = &services[&key("tcp/10.0.0.100:80")].dests;
        assert_eq!(
            dests[&dkey("10.0.0.13:80")].forward,
            tunnel(TunnelType::Gue { port: 6080 }, true, true)
        );
        assert_eq!(
            dests[&dkey("10.0.0.14:80")].forward,
            tunnel(TunnelType::Gre, true, false)
        );
    });
}

/// Applies N services x 10 real servers with lvsctl and with `ipvsadm -R`, each in a fresh
/// namespace, observes both, and prints the timings (issue 7). N is LVSCTL_IPVS_SCALE
/// (default 1000; the figure is 10000).
#[test]
fn scale_apply_and_observe_against_ipvsadm() {
    vm_test("scale_apply_and_observe_against_ipvsadm", || {
        let n: u32 = std::env::var("LVSCTL_IPVS_SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let mut ops = Vec::new();
        let mut restore = String::new();
        for i in 0..n {
            let vip = IpAddr::from([
                10,
                100 + (i / 62500) as u8,
                ((i / 250) % 250) as u8,
                (i % 250) as u8 + 1,
            ]);
            let k = ServiceKey::Inet {
                protocol: Protocol::Tcp,
                vip,
                port: 80,
            };
            ops.push(Op::AddService {
                key: k,
                spec: Box::new(spec(Scheduler::Wlc)),
                replaces: None,
            });
            restore.push_str(&format!("-A -t {vip}:80 -s wlc\n"));
            for j in 0..10u8 {
                let d = DestKey {
                    addr: IpAddr::from([10, 0, 0, 10 + j]),
                    port: 8080,
                };
                ops.push(Op::AddDest {
                    service: k,
                    key: d,
                    spec: dest(Forward::Nat, 1),
                    replaces: None,
                });
                restore.push_str(&format!("-a -t {vip}:80 -r {}:8080 -m -w 1\n", d.addr));
            }
        }
        let mut s = open();
        let t = Instant::now();
        apply_all(&mut s, &ops);
        let apply = t.elapsed();
        // The old way (one GET_DEST dump per service), the getsockopt way, and ipvsadm's
        // save, all on this same table.
        let t = Instant::now();
        let by_netlink = s.observe_services_netlink().unwrap();
        let observe_netlink = t.elapsed();
        let t = Instant::now();
        let (observed, report) = s.observe_services_reported().unwrap();
        let observe = t.elapsed();
        // The floor of both: the one GET_SERVICE dump.
        let t = Instant::now();
        assert_eq!(s.services().unwrap().len(), n as usize);
        let service_dump = t.elapsed();
        let t = Instant::now();
        let lines = sh("ipvsadm -S -n | wc -l");
        let save_here = t.elapsed();
        assert_eq!(lines.trim(), (n * 11).to_string());
        assert_eq!(observed, by_netlink);
        assert_eq!(report.sockopt.len(), n as usize, "{:?}", report.netlink);
        let services = observed.0;
        assert_eq!(services.len(), n as usize);
        assert!(services.values().all(|sv| sv.dests.len() == 10));
        let _ = writeln!(
            std::io::stderr(),
            "scale {n} services x 10 real servers, same table: observe netlink-only \
             {observe_netlink:.2?}, observe with getsockopt {observe:.2?} (of which the \
             GET_SERVICE dump alone takes {service_dump:.2?}), ipvsadm -S -n {save_here:.2?}"
        );

        // ipvsadm in another fresh namespace.
        let file = std::env::temp_dir().join(format!("lvsctl-scale-{}.txt", std::process::id()));
        std::fs::write(&file, restore).unwrap();
        let (ipvsadm_restore, ipvsadm_save) = std::thread::spawn({
            let file = file.clone();
            move || {
                unshare_net();
                sh("ip link set lo up");
                let t = Instant::now();
                sh(&format!("ipvsadm -R < {}", file.display()));
                let r = t.elapsed();
                let t = Instant::now();
                let out = sh("ipvsadm -S -n | wc -l");
                let sv = t.elapsed();
                assert_eq!(out.trim(), (n * 11).to_string());
                (r, sv)
            }
        })
        .join()
        .unwrap();
        let _ = std::fs::remove_file(&file);
        let _ = writeln!(
            std::io::stderr(),
            "scale {n} services x 10 real servers: lvsctl apply {:.2?}, observe {:.2?}; \
             ipvsadm -R {:.2?}, ipvsadm -S {:.2?}",
            apply,
            observe,
            ipvsadm_restore,
            ipvsadm_save
        );
        assert!(
            apply < ipvsadm_restore,
            "lvsctl apply ({apply:?}) is not faster than ipvsadm -R ({ipvsadm_restore:?})"
        );
        // Observing is one GET_DEST dump per service for both tools, so the kernel's share is
        // the same; what differs is userspace decoding, which an unoptimised test build does
        // several times slower under the VM's emulation. Compare strictly only when optimised.
        if cfg!(debug_assertions) {
            assert!(
                observe < ipvsadm_save * 3,
                "lvsctl observe ({observe:?}) is far slower than ipvsadm -S ({ipvsadm_save:?}) \
                 even for a debug build"
            );
        } else {
            assert!(
                observe < ipvsadm_save,
                "lvsctl observe ({observe:?}) is not faster than ipvsadm -S ({ipvsadm_save:?})"
            );
        }
    });
}

/// The services [`sockopt_observe_equals_netlink`] adds to [`every_field_ops`]: IPv4 services
/// the getsockopt path reads (TCP, UDP, SCTP, port 0, fwmark, persistence, thresholds,
/// weight 0, one-packet with scheduler flags) and one with an IPv6 tunnel real server next to
/// an IPv4 one (the kernel hides the IPv6 one from getsockopt).
fn sockopt_ops() -> Vec<Op> {
    let nat = |w| dest(Forward::Nat, w);
    let dr = |w| dest(Forward::Dr, w);
    vec![
        add_service("tcp/10.0.0.101:80", spec(Scheduler::Wrr)),
        add_dest("tcp/10.0.0.101:80", "10.0.0.31:8080", nat(0)),
        add_dest(
            "tcp/10.0.0.101:80",
            "10.0.0.32:8080",
            DestSpec {
                upper_threshold: 2_000_000_000,
                lower_threshold: 7,
                ..nat(3)
            },
        ),
        add_dest("tcp/10.0.0.101:80", "10.0.0.33:80", dr(65535)),
        add_service("udp/10.0.0.101:53", spec(Scheduler::Rr)),
        add_dest("udp/10.0.0.101:53", "10.0.0.34:5353", nat(1)),
        add_dest("udp/10.0.0.101:53", "10.0.0.35:53", nat(1)),
        add_dest("udp/10.0.0.100:53", "10.0.0.36:53", nat(2)),
        add_service("sctp/10.0.0.101:9", spec(Scheduler::Lc)),
        add_dest("sctp/10.0.0.101:9", "10.0.0.37:9", dr(1)),
        add_service("tcp/10.0.0.101:0", persistent(Scheduler::Sh, 300, 24)),
        add_dest("tcp/10.0.0.101:0", "10.0.0.38:0", dr(1)),
        add_dest("tcp/10.0.0.101:0", "10.0.0.39:0", nat(0)),
        add_service("fwmark/11", persistent(Scheduler::Rr, 60, 16)),
        add_dest(
            "fwmark/11",
            "10.0.0.40:0",
            DestSpec {
                upper_threshold: 10,
                lower_threshold: 10,
                ..dr(4)
            },
        ),
        add_service("tcp/10.0.0.102:80", spec(Scheduler::Rr)),
        add_dest("tcp/10.0.0.102:80", "10.0.0.41:80", nat(1)),
        add_dest(
            "tcp/10.0.0.102:80",
            "[2001:db8::41]:80",
            dest(tunnel(TunnelType::Ipip, false, false), 1),
        ),
        add_service("tcp/10.0.0.103:80", spec(Scheduler::Rr)),
    ]
}

/// Sends some traffic at the services so counters, connection counts and persistence
/// templates are not all zero: UDP datagrams and TCP connection attempts (the real servers
/// are behind a dummy interface, so nothing answers).
fn poke_services() {
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    for _ in 0..3 {
        udp.send_to(b"hello", "10.0.0.101:53").unwrap();
        udp.send_to(b"hello", "10.0.0.100:53").unwrap();
    }
    for to in ["10.0.0.101:80", "10.0.0.101:5555", "10.0.0.102:80"] {
        let _ =
            std::net::TcpStream::connect_timeout(&to.parse().unwrap(), Duration::from_millis(300));
    }
}

/// The getsockopt path of `observe_services` returns exactly what one netlink dump per
/// service returns (state and every counter), and takes the getsockopt path exactly for the
/// IPv4 services without tunnel or other-family real servers.
#[test]
fn sockopt_observe_equals_netlink() {
    vm_test("sockopt_observe_equals_netlink", || {
        let mut s = open();
        assert!(s.sockopt_reads(), "the getsockopt socket did not open");
        let mut ops = every_field_ops();
        ops.extend(sockopt_ops());
        apply_all(&mut s, &ops);
        poke_services();
        // The kernel folds its per-CPU counters into the totals it reports only when its rate
        // estimator runs (every 2 s on 6.1): wait for the traffic to show.
        let shown = std::time::Instant::now();
        while s
            .observe_services_netlink()
            .unwrap()
            .1
            .values()
            .flat_map(|c| c.dests.values())
            .all(|c| c.conns + c.in_packets == 0)
        {
            assert!(
                shown.elapsed() < Duration::from_secs(20),
                "the traffic never showed in the counters"
            );
            std::thread::sleep(Duration::from_millis(200));
        }

        // Rates move every 2 s (the kernel's estimator): compare a netlink read with two
        // getsockopt reads around it that agree with each other.
        let mut tries = 0;
        let (fast, report, slow) = loop {
            let (a, report) = s.observe_services_reported().unwrap();
            let b = s.observe_services_netlink().unwrap();
            let (c, _) = s.observe_services_reported().unwrap();
            if a == c {
                break (a, report, b);
            }
            tries += 1;
            assert!(tries < 10, "the counters never held still over three reads");
        };
        assert_eq!(fast.0, slow.0, "state differs");
        assert_eq!(fast.1, slow.1, "counters differ");
        let traffic: u64 = fast
            .1
            .values()
            .flat_map(|c| c.dests.values())
            .map(|c| c.conns + c.in_packets)
            .sum();
        assert!(traffic > 0, "the traffic was not counted: {:#?}", fast.1);
        let conns: u32 = fast
            .1
            .values()
            .map(|c| c.service.active_conns + c.service.inactive_conns)
            .sum();
        assert!(conns > 0, "no connection entries: {:#?}", fast.1);

        assert_eq!(report.sockopt_unused, None);
        let want: std::collections::BTreeSet<ServiceKey> = [
            "tcp/10.0.0.101:80",
            "udp/10.0.0.101:53",
            "udp/10.0.0.100:53",
            "sctp/10.0.0.101:9",
            "tcp/10.0.0.101:0",
            "fwmark/11",
            "fwmark/10",
            "tcp/10.0.0.103:80",
            "tcp/10.0.0.100:0",
            "udp/10.0.0.100:5060",
            "sctp/10.0.0.100:9",
        ]
        .iter()
        .map(|k| key(k))
        .collect();
        assert_eq!(report.sockopt, want);
        let reason = |k: &str| report.netlink.get(&key(k)).cloned();
        assert_eq!(reason("tcp/10.0.0.100:80"), Some(NetlinkReason::Tunnel));
        assert_eq!(
            reason("tcp/10.0.0.100:443"),
            Some(NetlinkReason::CountMismatch),
            "only an IPv6 real server, hidden from getsockopt"
        );
        assert_eq!(
            reason("tcp/10.0.0.102:80"),
            Some(NetlinkReason::CountMismatch)
        );
        assert_eq!(reason("fwmark/10/ipv6"), Some(NetlinkReason::Ipv6));
        assert_eq!(reason("tcp/[2001:db8::100]:80"), Some(NetlinkReason::Ipv6));
        assert_eq!(
            report.sockopt.len() + report.netlink.len(),
            fast.0.len(),
            "every service is accounted for once"
        );

        // Turned off: netlink for everything, same answer.
        s.set_sockopt_reads(false);
        let (off, report) = s.observe_services_reported().unwrap();
        assert_eq!(off.0, slow.0);
        assert!(report.sockopt.is_empty());
        assert!(
            report
                .netlink
                .values()
                .all(|r| *r == NetlinkReason::NetlinkOnly)
        );
        assert!(report.sockopt_unused.is_some());
        s.set_sockopt_reads(true);
        assert!(s.sockopt_reads());
    });
}
