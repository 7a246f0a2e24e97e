//! "Every kernel EINVAL has a validation rule" (issue 8, "Bad input"), as a table.
//!
//! Each row is one situation in which the kernel refuses an IPVS write (the EINVAL, ERANGE
//! and ENOENT rows of `/work/shared/docs/ipvs-netlink-and-crates.md` A.11, plus the attribute
//! policy limits), with:
//! - `bad`: a manifest asking for exactly that, and the validation error it gets instead;
//! - `corrupt`: the state that manifest would mean, made by hand from the `good` one (the
//!   validator cannot produce it), and the errno the kernel answers when it is applied anyway;
//! - `good`: the same manifest at the edge of what is allowed, which validates and which the
//!   kernel accepts (so the rule is not stricter than the kernel where that matters).
//!
//! On the host the validation half runs, and the fake kernel must agree with the real one
//! wherever it models the check. `einval_table_in_vm` boots the VM and runs this binary there,
//! where the kernel half runs too: every `corrupt` state is written with the real backend
//! (`lvsctl-kernel`) and must fail with the row's errno; every `good` one must apply.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use lvsctl_model::manifest;
use lvsctl_model::{DestKey, DestSpec, Forward, Scheduler, State, TunnelType};
use lvsctl_plan::fake::FakeKernel;
use lvsctl_plan::{Backend, BackendError, Errno};

const ERANGE: i32 = 34;

fn in_vm() -> bool {
    std::env::var_os("LVSCTL_IN_VM").is_some_and(|v| v == "1")
}

struct Row {
    /// The kernel's situation (A.11 wording) and its errno.
    cause: &'static str,
    errno: Errno,
    /// A manifest asking for it, and a fragment of the validation error it must get.
    bad: &'static str,
    message: &'static str,
    /// Makes the good manifest's state into the one `bad` would mean.
    corrupt: fn(&mut State),
    /// The same manifest at the allowed edge.
    good: &'static str,
    /// Whether the fake kernel models this check (it must then answer the same errno).
    fake_models: bool,
}

/// The only service of a state.
fn service(state: &mut State) -> &mut lvsctl_model::Service {
    state.services.values_mut().next().unwrap()
}

/// Replaces the only real server's address (the key changes, the spec stays).
fn set_dest_addr(state: &mut State, addr: &str) {
    let s = service(state);
    let (key, spec) = s.dests.pop_first().unwrap();
    let addr: IpAddr = addr.parse().unwrap();
    s.dests.insert(
        DestKey {
            addr,
            port: key.port,
        },
        spec,
    );
}

fn dest_spec(state: &mut State) -> &mut DestSpec {
    service(state).dests.values_mut().next().unwrap()
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            cause: "IPv6 service with persistence netmask 0 (outside 1..128)",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: '2001:db8::100', port: 80, persistence: {timeout: 120, netmask: 0}}\n",
            message: "0 is out of range 1..=128",
            corrupt: |s| service(s).spec.persistence.as_mut().unwrap().netmask = 0,
            good: "services:\n- {name: t, vip: '2001:db8::100', port: 80, persistence: {timeout: 120, netmask: 1}}\n",
            fake_models: true,
        },
        Row {
            cause: "IPv6 service with persistence netmask 129 (outside 1..128)",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: '2001:db8::100', port: 80, persistence: {timeout: 120, netmask: 129}}\n",
            message: "129 is out of range 1..=128",
            corrupt: |s| service(s).spec.persistence.as_mut().unwrap().netmask = 129,
            good: "services:\n- {name: t, vip: '2001:db8::100', port: 80, persistence: {timeout: 120, netmask: 128}}\n",
            fake_models: true,
        },
        Row {
            cause: "real server of the other address family with dr forwarding",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: '2001:db8::11'}]}\n",
            message: "only tunnel real servers may be of the other family",
            corrupt: |s| {
                set_dest_addr(s, "2001:db8::11");
                dest_spec(s).forward = Forward::Dr;
            },
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: '2001:db8::11', forward: tunnel}]}\n",
            fake_models: true,
        },
        Row {
            cause: "real server of the other address family with nat forwarding",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: 10.0.0.11, forward: nat}]}\n",
            message: "only tunnel real servers may be of the other family",
            corrupt: |s| {
                set_dest_addr(s, "10.0.0.11");
                dest_spec(s).forward = Forward::Nat;
            },
            good: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: 10.0.0.11, forward: tunnel}]}\n",
            fake_models: true,
        },
        Row {
            cause: "upper threshold above INT_MAX",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, upper_threshold: 2147483648}]}\n",
            message: "2147483648 is out of range 0..=2147483647",
            corrupt: |s| dest_spec(s).upper_threshold = 1 << 31,
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, upper_threshold: 2147483647}]}\n",
            fake_models: true,
        },
        Row {
            cause: "lower threshold above the upper one (ERANGE)",
            errno: Errno::Other(ERANGE),
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, upper_threshold: 100, lower_threshold: 101}]}\n",
            message: "lower_threshold 101 is above the upper threshold",
            corrupt: |s| dest_spec(s).lower_threshold = 101,
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, upper_threshold: 100, lower_threshold: 100}]}\n",
            fake_models: true,
        },
        Row {
            cause: "lower threshold set, upper 0 (no limit) (ERANGE)",
            errno: Errno::Other(ERANGE),
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, lower_threshold: 10}]}\n",
            message: "upper_threshold is 0 (no limit); set upper_threshold too",
            corrupt: |s| {
                let d = dest_spec(s);
                d.upper_threshold = 0;
                d.lower_threshold = 10;
            },
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, upper_threshold: 10, lower_threshold: 10}]}\n",
            fake_models: true,
        },
        Row {
            cause: "weight negative as the kernel's int (ERANGE)",
            errno: Errno::Other(ERANGE),
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, weight: 2147483648}]}\n",
            message: "2147483648 is out of range 0..=65535",
            corrupt: |s| dest_spec(s).weight = 1 << 31,
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, weight: 65535}]}\n",
            fake_models: true,
        },
        Row {
            cause: "gue tunnel with port 0",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, forward: tunnel, tunnel: {type: gue, port: 0}}]}\n",
            message: "a gue tunnel needs a port 1..=65535",
            corrupt: |s| {
                if let Forward::Tunnel { tunnel, .. } = &mut dest_spec(s).forward {
                    *tunnel = TunnelType::Gue { port: 0 };
                }
            },
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11, forward: tunnel, tunnel: {type: gue, port: 1}}]}\n",
            fake_models: true,
        },
        Row {
            cause: "IPv4 real server that is multicast (not RTN_UNICAST/RTN_LOCAL)",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 224.0.0.5}]}\n",
            message: "224.0.0.5 is a multicast address",
            corrupt: |s| set_dest_addr(s, "224.0.0.5"),
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 223.255.255.254}]}\n",
            fake_models: true,
        },
        Row {
            cause: "IPv4 real server that is the limited broadcast address",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 255.255.255.255}]}\n",
            message: "255.255.255.255",
            corrupt: |s| set_dest_addr(s, "255.255.255.255"),
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.11}]}\n",
            fake_models: true,
        },
        Row {
            cause: "IPv4 real server 0.0.0.0",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 0.0.0.0}]}\n",
            message: "0.0.0.0 is the unspecified address",
            corrupt: |s| set_dest_addr(s, "0.0.0.0"),
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 1.0.0.1}]}\n",
            fake_models: true,
        },
        Row {
            cause: "IPv6 real server that is multicast (not unicast)",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: 'ff02::1'}]}\n",
            message: "ff02::1",
            corrupt: |s| set_dest_addr(s, "ff02::1"),
            good: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: '2001:db8::11'}]}\n",
            fake_models: true,
        },
        Row {
            cause: "IPv6 real server that is link-local (and not local)",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: 'fe80::11'}]}\n",
            message: "fe80::11 is link-local",
            corrupt: |s| set_dest_addr(s, "fe80::11"),
            good: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: 'fec0::11'}]}\n",
            fake_models: true,
        },
        Row {
            cause: "IPv6 real server :: (unspecified, not unicast)",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: '::'}]}\n",
            message: "::",
            corrupt: |s| set_dest_addr(s, "::"),
            good: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: '2001:db8::12'}]}\n",
            fake_models: true,
        },
        Row {
            cause: "IPv6 real server that is IPv4-mapped (not unicast to ipv6_addr_type)",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: '::ffff:10.0.0.11'}]}\n",
            message: "is an IPv4-mapped IPv6 address",
            corrupt: |s| set_dest_addr(s, "::ffff:10.0.0.11"),
            good: "services:\n- {name: t, vip: '2001:db8::100', port: 80, real_servers: [{address: '2001:db8::13'}]}\n",
            fake_models: true,
        },
        Row {
            cause: "scheduler module that does not exist (ENOENT after request_module)",
            errno: Errno::NotFound,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, scheduler: roundrobin}\n",
            message: "unknown scheduler \"roundrobin\"",
            corrupt: |s| service(s).spec.scheduler = Scheduler::Other("roundrobin".to_owned()),
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, scheduler: mh}\n",
            fake_models: true,
        },
        Row {
            cause: "scheduler name longer than IP_VS_SCHEDNAME_MAXLEN - 1 (attribute policy)",
            errno: Errno::Invalid,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 80, scheduler: weighted-round-robin}\n",
            message: "unknown scheduler \"weighted-round-robin\"",
            corrupt: |s| {
                service(s).spec.scheduler = Scheduler::Other("weighted-round-robin".to_owned())
            },
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 80, scheduler: lblcr}\n",
            fake_models: true,
        },
        Row {
            cause: "persistence engine that does not exist (ENOENT)",
            errno: Errno::NotFound,
            bad: "services:\n- {name: t, vip: 10.0.0.100, port: 5060, protocol: udp, persistence: {timeout: 60, engine: h323}}\n",
            message: "unknown persistence engine \"h323\"",
            corrupt: |s| service(s).spec.pe_name = Some("h323".to_owned()),
            good: "services:\n- {name: t, vip: 10.0.0.100, port: 5060, protocol: udp, persistence: {timeout: 60, engine: sip}}\n",
            fake_models: true,
        },
    ]
}

/// The good manifest's desired state, or a panic naming the row.
fn good_state(row: &Row) -> State {
    manifest::parse("good.yaml", row.good)
        .unwrap_or_else(|d| panic!("{}: the good manifest does not validate:\n{d}", row.cause))
        .desired_state()
}

fn corrupt_state(row: &Row) -> State {
    let mut s = good_state(row);
    (row.corrupt)(&mut s);
    assert_ne!(
        s,
        good_state(row),
        "{}: corrupt() changed nothing",
        row.cause
    );
    s
}

/// Writes `state` (from empty) with `backend`: the errno of the first refused op, if any.
fn apply(backend: &mut dyn Backend, state: &State) -> Result<(), (String, BackendError)> {
    let plan = lvsctl_plan::plan(state, &State::default());
    for op in &plan.ops {
        backend.execute(op).map_err(|e| (op.to_string(), e))?;
    }
    Ok(())
}

fn errno_of(e: &BackendError) -> Option<Errno> {
    match e {
        BackendError::Kernel { errno, .. } => Some(*errno),
        _ => None,
    }
}

#[test]
fn every_kernel_refusal_has_a_validation_rule() {
    let rows = rows();
    let mut failures = Vec::new();
    for row in &rows {
        match manifest::parse("bad.yaml", row.bad) {
            Ok(_) => failures.push(format!("{}: the bad manifest validates", row.cause)),
            Err(d) => {
                if !d.to_string().contains(row.message) {
                    failures.push(format!(
                        "{}: expected a validation error containing {:?}, got\n{d}",
                        row.cause, row.message
                    ));
                }
            }
        }
        // The bad manifest differs from the good one only where the row says.
        let _ = corrupt_state(row);
        // The fake kernel (behind every CLI and daemon test) refuses like the real one.
        if row.fake_models {
            let mut fake = FakeKernel::default();
            match apply(&mut fake, &corrupt_state(row)) {
                Err((_, e)) if errno_of(&e) == Some(row.errno) => {}
                other => failures.push(format!(
                    "{}: the fake kernel answers {other:?}, the kernel {:?}",
                    row.cause, row.errno
                )),
            }
            let mut fake = FakeKernel::default();
            if let Err((op, e)) = apply(&mut fake, &good_state(row)) {
                failures.push(format!(
                    "{}: the fake kernel refuses the good state at {op}: {e}",
                    row.cause
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "einval table: {} kernel refusals, each caught by validation ({} also modelled by the fake kernel)",
        rows.len(),
        rows.iter().filter(|r| r.fake_models).count()
    );
}

/// Inside the VM: the real kernel refuses every corrupt state with the row's errno and accepts
/// every good one. The VM script sets up `d0` (10.0.0.1/24, 2001:db8::1/64).
#[test]
fn kernel_refuses_each_row_and_accepts_each_edge() {
    if !in_vm() {
        eprintln!("kernel half of the einval table: runs inside the VM (einval_table_in_vm)");
        return;
    }
    let flush = || {
        let out = Command::new("ipvsadm").arg("-C").output().unwrap();
        assert!(out.status.success(), "ipvsadm -C: {out:?}");
    };
    let mut backend = lvsctl_kernel::KernelBackend::open(lvsctl_kernel::Config::default()).unwrap();
    let mut failures = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows() {
        flush();
        match apply(&mut backend, &corrupt_state(&row)) {
            Err((_, e)) if errno_of(&e) == Some(row.errno) => {
                println!("kernel: {} -> {e}", row.cause);
                *seen.entry(format!("{:?}", row.errno)).or_default() += 1;
            }
            Err((op, e)) => failures.push(format!(
                "{}: expected {:?}, the kernel answered {op}: {e}",
                row.cause, row.errno
            )),
            Ok(()) => failures.push(format!("{}: the kernel accepted it", row.cause)),
        }
        flush();
        if let Err((op, e)) = apply(&mut backend, &good_state(&row)) {
            failures.push(format!(
                "{}: the kernel refuses the good state at {op}: {e}",
                row.cause
            ));
        }
    }
    flush();
    // Not every refusal can be validated: whether an address is a subnet's broadcast address
    // depends on the director's routes at apply time. Show that it is refused with a clear
    // message naming the address, and that validation (rightly) cannot know.
    let known_gap = "services:\n- {name: t, vip: 10.0.0.100, port: 80, real_servers: [{address: 10.0.0.255}]}\n";
    let m = manifest::parse("gap.yaml", known_gap).unwrap();
    match apply(&mut backend, &m.desired_state()) {
        Err((op, e)) => {
            let text = format!("{e} (at {op})");
            assert_eq!(errno_of(&e), Some(Errno::Invalid), "{text}");
            assert!(text.contains("10.0.0.255"), "{text}");
            println!("kernel (not validatable): subnet broadcast real server -> {text}");
        }
        Ok(()) => failures.push("10.0.0.255 on 10.0.0.0/24 was accepted".to_owned()),
    }
    flush();
    // Nor can validation know which scheduler modules the running kernel ships: `twos` is in
    // Linux 6.2 and later. An older kernel refuses it with a message naming it.
    let m = manifest::parse(
        "twos.yaml",
        "services:\n- {name: t, vip: 10.0.0.100, port: 80, scheduler: twos}\n",
    )
    .unwrap();
    match apply(&mut backend, &m.desired_state()) {
        Err((op, e)) => {
            let text = format!("{e} (at {op})");
            assert_eq!(errno_of(&e), Some(Errno::NotFound), "{text}");
            assert!(text.contains("\"twos\" is not available"), "{text}");
            println!("kernel (not validatable): scheduler missing from this kernel -> {text}");
        }
        Ok(()) => println!("kernel: this kernel has the twos scheduler"),
    }
    flush();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("kernel: every row refused as expected: {seen:?}");
}

#[test]
fn einval_table_in_vm() {
    if in_vm() || lvsctl_vmtest::skip_requested("einval table (kernel half)") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    let script = format!(
        "set -e\nip link add d0 type dummy\nip link set d0 up\nip addr add 10.0.0.1/24 dev d0\n\
         ip -6 addr add 2001:db8::1/64 dev d0 nodad\n\
         LVSCTL_IN_VM=1 /opt/{name} --exact kernel_refuses_each_row_and_accepts_each_edge \
         --nocapture --test-threads=1\n"
    );
    let out = lvsctl_vmtest::VmRun::new()
        .timeout(Duration::from_secs(300))
        .copy(&exe)
        .named_script("einval", &script)
        .run();
    out.assert_success();
    assert!(
        out.console
            .contains("kernel: every row refused as expected"),
        "the kernel half did not finish:\n{}",
        out.console
    );
}
