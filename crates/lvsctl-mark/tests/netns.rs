//! The mangle chain against the real kernel, each case in a fresh network namespace, each case
//! run with both iptables backends (`nft` and `legacy`). Run as root:
//! `cargo test -p lvsctl-mark --test netns`.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lvsctl_mark::{CHAIN, Config, IptablesBackend, MarkError, Xtables};
use lvsctl_model::{Family, Fwmark, MarkRule, Protocol};
use support::in_netns;

const BACKENDS: [IptablesBackend; 2] = [IptablesBackend::Nft, IptablesBackend::Legacy];

/// A lock file of the test's own (under cargo's scratch dir for tests), so legacy runs never
/// contend for the host's `/run/xtables.lock`: the lock is a file, shared across namespaces.
fn private_lock() -> PathBuf {
    let p = scratch("lock");
    std::fs::write(&p, b"").unwrap();
    p
}

/// A path of this test process's own under cargo's scratch dir for tests; nothing there yet.
fn scratch(kind: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "lvsctl-mark-test-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// As lvsctl runs it: with a cache folder (used by the nft backend), so every case below also
/// checks that a kept `*-save` copy is never used once the ruleset moved.
fn xt(backend: IptablesBackend) -> Xtables {
    xt_in(backend, Some(private_dir()))
}

fn xt_in(backend: IptablesBackend, cache_dir: Option<PathBuf>) -> Xtables {
    Xtables::new(Config {
        backend,
        wait: Duration::from_secs(5),
        lock_file: Some(private_lock()),
        cache_dir,
    })
}

fn private_dir() -> PathBuf {
    scratch("cache")
}

/// Runs `body` once per backend, each in its own namespace.
fn each_backend(name: &str, body: fn(IptablesBackend)) {
    for b in BACKENDS {
        in_netns(&format!("{name}-{b}"), move || body(b));
    }
}

fn program(backend: IptablesBackend, family: Family, suffix: &str) -> String {
    let base = match family {
        Family::Inet => "iptables",
        Family::Inet6 => "ip6tables",
    };
    format!("{base}-{backend}{suffix}")
}

/// Runs `iptables-<backend> -w 5 ARGS` (the tests' own hand-made rules).
fn ipt(backend: IptablesBackend, family: Family, args: &[&str]) {
    let out = Command::new(program(backend, family, ""))
        .arg("-w")
        .arg("5")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `iptables-save ARGS` prints.
fn save_text(backend: IptablesBackend, family: Family, args: &[&str]) -> String {
    let out = Command::new(program(backend, family, "-save"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Every table as `iptables-save` prints it, without comment lines (they hold timestamps).
fn save_all(backend: IptablesBackend, family: Family) -> Vec<String> {
    save_text(backend, family, &[])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `save_all` minus every line about lvsctl's chain: what lvsctl must never change.
fn foreign(backend: IptablesBackend, family: Family) -> Vec<String> {
    save_all(backend, family)
        .into_iter()
        .filter(|l| !l.contains(CHAIN))
        .collect()
}

fn count(lines: &[String], wanted: &str) -> usize {
    lines.iter().filter(|l| *l == wanted).count()
}

fn rule(vip: &str, protocol: Protocol, ports: &[u16], mark: u32, service: &str) -> MarkRule {
    MarkRule {
        vip: vip.parse().unwrap(),
        protocol,
        ports: ports.to_vec(),
        mark: Fwmark::new(mark).unwrap(),
        service: service.into(),
    }
}

fn seed_rules() -> Vec<MarkRule> {
    vec![
        rule("192.168.6.101", Protocol::Tcp, &[22, 80], 10, "web-ssh"),
        rule("192.168.6.102", Protocol::Udp, &[53], 0x20, "dns"),
        rule("192.168.6.103", Protocol::Sctp, &[3868], 7, "diameter"),
    ]
}

#[test]
fn write_then_observe_round_trips() {
    each_backend("round-trip", |b| {
        let x = xt(b);
        assert_eq!(x.observe(Family::Inet).unwrap(), None);
        x.write_chain(Family::Inet, &seed_rules()).unwrap();
        let obs = x.observe(Family::Inet).unwrap().unwrap();
        assert_eq!(obs.rules, seed_rules());
        assert!(obs.is_clean(), "{:?}", obs.warnings());
        assert!(obs.to_mark_chain().hooked);
        let saved = save_all(b, Family::Inet);
        assert_eq!(count(&saved, "-A PREROUTING -j LVSCTL-MARK"), 1);
        assert_eq!(count(&saved, "-A OUTPUT -j LVSCTL-MARK"), 1);
        // The kernel lists --set-mark 10 back as --set-xmark; observe read it as mark 10.
        assert!(
            saved
                .iter()
                .any(|l| l.ends_with("--set-xmark 0xa/0xffffffff")),
            "{saved:#?}"
        );
        // The IPv6 table was not touched.
        assert_eq!(x.observe(Family::Inet6).unwrap(), None);
    });
}

#[test]
fn rewrite_replaces_exactly() {
    each_backend("rewrite", |b| {
        let x = xt(b);
        x.write_chain(Family::Inet, &seed_rules()).unwrap();
        let second = vec![
            rule("10.0.0.1", Protocol::Tcp, &[443], 11, "tls"),
            rule(
                "192.168.6.101",
                Protocol::Tcp,
                &[22, 80, 8080],
                10,
                "web-ssh",
            ),
        ];
        x.write_chain(Family::Inet, &second).unwrap();
        let obs = x.observe(Family::Inet).unwrap().unwrap();
        assert_eq!(obs.rules, second);
        let ours: Vec<String> = save_all(b, Family::Inet)
            .into_iter()
            .filter(|l| l.starts_with("-A LVSCTL-MARK"))
            .collect();
        assert_eq!(ours.len(), 2, "{ours:#?}");
        assert!(ours.iter().all(|l| !l.contains("192.168.6.102")));
        // An empty list empties the chain but keeps it hooked.
        x.write_chain(Family::Inet, &[]).unwrap();
        let obs = x.observe(Family::Inet).unwrap().unwrap();
        assert!(obs.rules.is_empty() && obs.is_clean());
    });
}

#[test]
fn foreign_rules_survive_write_rewrite_and_remove() {
    each_backend("foreign", |b| {
        let f = Family::Inet;
        ipt(
            b,
            f,
            &[
                "-t",
                "mangle",
                "-A",
                "PREROUTING",
                "-s",
                "1.2.3.4",
                "-j",
                "ACCEPT",
            ],
        );
        ipt(
            b,
            f,
            &[
                "-t",
                "mangle",
                "-A",
                "OUTPUT",
                "-p",
                "udp",
                "-j",
                "MARK",
                "--set-mark",
                "3",
            ],
        );
        ipt(b, f, &["-t", "mangle", "-N", "FOREIGN"]);
        ipt(
            b,
            f,
            &[
                "-t",
                "mangle",
                "-A",
                "FOREIGN",
                "-j",
                "MARK",
                "--set-mark",
                "5",
            ],
        );
        ipt(b, f, &["-t", "mangle", "-A", "PREROUTING", "-j", "FOREIGN"]);
        ipt(
            b,
            f,
            &[
                "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT",
            ],
        );
        let before = foreign(b, f);
        let x = xt(b);
        x.write_chain(f, &seed_rules()).unwrap();
        assert_eq!(foreign(b, f), before);
        // The jumps come first in their hooks, ahead of the operator's rules.
        let saved = save_all(b, f);
        let first_pre = saved
            .iter()
            .find(|l| l.starts_with("-A PREROUTING"))
            .unwrap();
        assert_eq!(first_pre, "-A PREROUTING -j LVSCTL-MARK");
        x.write_chain(f, &seed_rules()[..1]).unwrap();
        assert_eq!(foreign(b, f), before);
        x.remove_chain(f).unwrap();
        assert_eq!(foreign(b, f), before);
        assert_eq!(save_all(b, f), before, "nothing of lvsctl's is left");
        assert_eq!(x.observe(f).unwrap(), None);
        // Removing what is not there is fine.
        x.remove_chain(f).unwrap();
    });
}

#[test]
fn jumps_are_never_duplicated_and_get_repaired() {
    each_backend("jumps", |b| {
        let f = Family::Inet;
        let x = xt(b);
        for _ in 0..5 {
            x.write_chain(f, &seed_rules()).unwrap();
        }
        let saved = save_all(b, f);
        assert_eq!(count(&saved, "-A PREROUTING -j LVSCTL-MARK"), 1);
        assert_eq!(count(&saved, "-A OUTPUT -j LVSCTL-MARK"), 1);

        // Someone adds copies of a jump and deletes the other: observe flags it, write repairs.
        ipt(b, f, &["-t", "mangle", "-A", "PREROUTING", "-j", CHAIN]);
        ipt(b, f, &["-t", "mangle", "-A", "PREROUTING", "-j", CHAIN]);
        ipt(b, f, &["-t", "mangle", "-D", "OUTPUT", "-j", CHAIN]);
        let obs = x.observe(f).unwrap().unwrap();
        assert_eq!((obs.prerouting_jumps, obs.output_jumps), (3, 0));
        assert!(!obs.to_mark_chain().hooked);
        assert_eq!(obs.warnings().len(), 2, "{:?}", obs.warnings());
        x.write_chain(f, &seed_rules()).unwrap();
        let saved = save_all(b, f);
        assert_eq!(count(&saved, "-A PREROUTING -j LVSCTL-MARK"), 1);
        assert_eq!(count(&saved, "-A OUTPUT -j LVSCTL-MARK"), 1);
        assert!(x.observe(f).unwrap().unwrap().is_clean());
    });
}

/// Writing over a chain read earlier skips one save; a stale earlier read can make the write
/// fail, never leave a wrong table, and a normal write repairs it.
#[test]
fn writes_over_an_earlier_read_never_leave_a_wrong_table() {
    each_backend("over", |b| {
        let f = Family::Inet;
        let x = xt(b);
        // From nothing (known absent), then over what the first write read back.
        let first = x.write_chain_over(f, &seed_rules(), None).unwrap();
        assert!(first.is_clean() && first.hooks_exact(), "{first:?}");
        let mut fewer = seed_rules();
        fewer.pop();
        let second = x.write_chain_over(f, &fewer, Some(&first)).unwrap();
        assert_eq!(second.rules.len(), fewer.len());
        assert_eq!(x.observe(f).unwrap().as_ref(), Some(&second));

        // Stale: someone removed the OUTPUT jump after our read. The in-place edit trusts the
        // read, so it does not re-add the jump; its read-back finds the jump missing, and the
        // chain is read again and rewritten, jump included.
        ipt(b, f, &["-t", "mangle", "-D", "OUTPUT", "-j", CHAIN]);
        let third = x.write_chain_over(f, &seed_rules(), Some(&second)).unwrap();
        assert!(third.is_clean(), "{third:?}");
        assert_eq!(count(&save_all(b, f), "-A OUTPUT -j LVSCTL-MARK"), 1);
        assert_eq!(x.observe(f).unwrap().unwrap().rules, seed_rules());
        // Stale the other way: it thinks there is no chain, adds jumps: duplicates refused.
        let err = x.write_chain_over(f, &seed_rules(), None).unwrap_err();
        assert!(matches!(err, MarkError::ReadBack { .. }), "{err}");
        // A normal write (which reads first) repairs both.
        x.write_chain(f, &seed_rules()).unwrap();
        let saved = save_all(b, f);
        assert_eq!(count(&saved, "-A PREROUTING -j LVSCTL-MARK"), 1);
        assert_eq!(count(&saved, "-A OUTPUT -j LVSCTL-MARK"), 1);
        assert!(x.observe(f).unwrap().unwrap().is_clean());
    });
}

#[test]
fn remove_refuses_while_a_foreign_rule_refers_to_the_chain() {
    each_backend("foreign-ref", |b| {
        let f = Family::Inet;
        let x = xt(b);
        x.write_chain(f, &seed_rules()).unwrap();
        ipt(
            b,
            f,
            &["-t", "mangle", "-A", "FORWARD", "-i", "lo", "-j", CHAIN],
        );
        let before = save_all(b, f);
        let err = x.remove_chain(f).unwrap_err();
        assert!(matches!(err, MarkError::ForeignReference { .. }), "{err}");
        assert!(
            err.to_string().contains("-A FORWARD -i lo -j LVSCTL-MARK"),
            "{err}"
        );
        assert_eq!(save_all(b, f), before, "a refused remove changes nothing");
        // Writing still works and leaves the foreign reference alone.
        x.write_chain(f, &seed_rules()[..1]).unwrap();
        assert_eq!(count(&save_all(b, f), "-A FORWARD -i lo -j LVSCTL-MARK"), 1);
    });
}

#[test]
fn hand_written_rules_in_the_chain_are_read_or_reported() {
    each_backend("hand-written", |b| {
        let f = Family::Inet;
        let x = xt(b);
        x.write_chain(f, &[]).unwrap();
        // The seed's form: --dport and --set-mark, added by hand with lvsctl's comment.
        ipt(
            b,
            f,
            &[
                "-t",
                "mangle",
                "-A",
                CHAIN,
                "-d",
                "192.168.6.101",
                "-p",
                "tcp",
                "--dport",
                "80",
                "-m",
                "comment",
                "--comment",
                "lvsctl:web-ssh",
                "-j",
                "MARK",
                "--set-mark",
                "10",
            ],
        );
        // Something lvsctl would never write.
        ipt(
            b,
            f,
            &[
                "-t", "mangle", "-A", CHAIN, "-s", "10.9.9.9", "-j", "ACCEPT",
            ],
        );
        let obs = x.observe(f).unwrap().unwrap();
        assert_eq!(
            obs.rules,
            vec![rule("192.168.6.101", Protocol::Tcp, &[80], 10, "web-ssh")]
        );
        assert_eq!(obs.unparsed.len(), 1, "{:?}", obs.unparsed);
        assert!(obs.unparsed[0].line.contains("-s 10.9.9.9"));
        assert!(
            !obs.to_mark_chain().hooked,
            "unreadable rules force a rewrite"
        );
        x.write_chain(f, &seed_rules()).unwrap();
        let obs = x.observe(f).unwrap().unwrap();
        assert!(obs.unparsed.is_empty());
        assert_eq!(obs.rules, seed_rules());
    });
}

/// The kernel's answer on the chain (when it gives one) agrees with what `*-save` shows.
fn probe_agrees(x: &Xtables, b: IptablesBackend, family: Family, expect: bool) {
    let probed = x.chain_exists(family);
    if b == IptablesBackend::Nft {
        assert_eq!(probed, Some(expect), "{b} {family}: nf_tables must answer");
    }
    if let Some(p) = probed {
        assert_eq!(p, expect, "{b} {family}");
    }
    let saved = lvsctl_mark::parse_save(&x.save_mangle(family).unwrap()).is_some();
    assert_eq!(saved, expect, "{b} {family}: what iptables-save shows");
    assert_eq!(x.observe(family).unwrap().is_some(), expect);
}

#[test]
fn the_kernel_is_asked_whether_the_chain_exists_before_any_save() {
    each_backend("probe", |b| {
        let x = xt(b);
        for family in [Family::Inet, Family::Inet6] {
            // No mangle table yet, then a table with only someone else's chain.
            probe_agrees(&x, b, family, false);
            ipt(b, family, &["-t", "mangle", "-N", "OTHER"]);
            probe_agrees(&x, b, family, false);
        }
        x.write_chain(Family::Inet, &seed_rules()).unwrap();
        probe_agrees(&x, b, Family::Inet, true);
        probe_agrees(&x, b, Family::Inet6, false);
        let v6 = vec![rule("2001:db8::1", Protocol::Tcp, &[80], 10, "web")];
        x.write_chain(Family::Inet6, &v6).unwrap();
        probe_agrees(&x, b, Family::Inet6, true);
        // An empty chain of ours still exists (and still holds the jumps).
        x.write_chain(Family::Inet, &[]).unwrap();
        probe_agrees(&x, b, Family::Inet, true);
        x.remove_chain(Family::Inet).unwrap();
        probe_agrees(&x, b, Family::Inet, false);
        probe_agrees(&x, b, Family::Inet6, true);
    });
}

#[test]
fn ipv6_goes_through_ip6tables() {
    each_backend("ipv6", |b| {
        let x = xt(b);
        let v6 = vec![
            rule("2001:db8::1", Protocol::Tcp, &[22, 80], 10, "web-ssh"),
            rule("2001:db8::2", Protocol::Udp, &[53], 11, "dns"),
        ];
        x.write_chain(Family::Inet6, &v6).unwrap();
        x.write_chain(Family::Inet, &seed_rules()).unwrap();
        assert_eq!(x.observe(Family::Inet6).unwrap().unwrap().rules, v6);
        assert_eq!(
            x.observe(Family::Inet).unwrap().unwrap().rules,
            seed_rules()
        );
        let saved6 = save_all(b, Family::Inet6);
        assert!(
            saved6
                .iter()
                .any(|l| l.starts_with("-A LVSCTL-MARK -d 2001:db8::1/128")),
            "{saved6:#?}"
        );
        // An IPv4 rule cannot go into the IPv6 chain.
        assert!(x.write_chain(Family::Inet6, &seed_rules()).is_err());
        x.remove_chain(Family::Inet6).unwrap();
        assert_eq!(x.observe(Family::Inet6).unwrap(), None);
        assert_eq!(
            x.observe(Family::Inet).unwrap().unwrap().rules,
            seed_rules()
        );
    });
}

#[test]
fn multiport_takes_fifteen_ports_and_sixteen_is_refused_up_front() {
    each_backend("multiport", |b| {
        let x = xt(b);
        let ports: Vec<u16> = (1..=15).map(|i| 1000 + i).collect();
        let fifteen = vec![rule("10.1.1.1", Protocol::Tcp, &ports, 99, "many")];
        x.write_chain(Family::Inet, &fifteen).unwrap();
        assert_eq!(x.observe(Family::Inet).unwrap().unwrap().rules, fifteen);
        let mut sixteen = ports.clone();
        sixteen.push(2000);
        let bad = vec![rule("10.1.1.1", Protocol::Tcp, &sixteen, 99, "many")];
        let err = x.write_chain(Family::Inet, &bad).unwrap_err();
        assert!(matches!(err, MarkError::InvalidRule { .. }), "{err}");
        assert_eq!(
            x.observe(Family::Inet).unwrap().unwrap().rules,
            fifteen,
            "a refused write changes nothing"
        );
    });
}

/// Takes `lock` the way iptables does (flock(2), exclusive) from this process; dropping the
/// file releases it. No helper process is left behind.
fn hold_lock(lock: &PathBuf) -> std::fs::File {
    let f = std::fs::File::options().write(true).open(lock).unwrap();
    f.lock().unwrap();
    f
}

#[test]
fn held_xtables_lock_means_bounded_wait_then_clear_error() {
    in_netns("lock-legacy", || {
        let lock = private_lock();
        let x = Xtables::new(Config {
            backend: IptablesBackend::Legacy,
            wait: Duration::from_secs(1),
            lock_file: Some(lock.clone()),
            cache_dir: None,
        });
        let holder = hold_lock(&lock);
        let start = Instant::now();
        let err = x.write_chain(Family::Inet, &seed_rules()).unwrap_err();
        let took = start.elapsed();
        drop(holder);
        assert!(matches!(err, MarkError::LockTimeout { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("xtables lock for more than 1 s"), "{msg}");
        assert!(msg.contains("iptables-legacy-restore"), "{msg}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{took:?}"
        );
        // Nothing was written; once the lock is free the same call succeeds.
        assert_eq!(x.observe(Family::Inet).unwrap(), None);
        x.write_chain(Family::Inet, &seed_rules()).unwrap();
    });
    // nf_tables serialises in the kernel: iptables-nft ignores the xtables lock entirely.
    in_netns("lock-nft", || {
        let lock = private_lock();
        let x = Xtables::new(Config {
            backend: IptablesBackend::Nft,
            wait: Duration::from_secs(1),
            lock_file: Some(lock.clone()),
            cache_dir: None,
        });
        let holder = hold_lock(&lock);
        let res = x.write_chain(Family::Inet, &seed_rules());
        drop(holder);
        res.unwrap();
    });
}

#[test]
fn detect_picks_a_backend_that_works_here() {
    in_netns("detect", || {
        let (x, detected) = Xtables::detect().unwrap();
        assert!(!detected.reason.is_empty());
        x.write_chain(Family::Inet, &seed_rules()).unwrap();
        assert_eq!(
            x.observe(Family::Inet).unwrap().unwrap().rules,
            seed_rules()
        );
    });
}

#[test]
fn a_stale_write_is_refused_whole() {
    each_backend("stale", |b| {
        let f = Family::Inet;
        let x = xt(b);
        x.write_chain(f, &seed_rules()).unwrap();
        ipt(b, f, &["-t", "mangle", "-A", "PREROUTING", "-j", CHAIN]);
        // Input planned while PREROUTING held two jumps...
        let stale = x.observe(f).unwrap().unwrap();
        assert_eq!(stale.prerouting_jumps, 2);
        let input = lvsctl_mark::write_input(f, &seed_rules()[..1], Some(&stale)).unwrap();
        // ...but someone removes both before it runs.
        ipt(b, f, &["-t", "mangle", "-D", "PREROUTING", "-j", CHAIN]);
        ipt(b, f, &["-t", "mangle", "-D", "PREROUTING", "-j", CHAIN]);
        let before = save_all(b, f);
        let mut child = Command::new(program(b, f, "-restore"))
            .args(["-w", "5", "--noflush"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(!child.wait().unwrap().success(), "the -D must fail");
        // Nothing changed: not even the chain's rules, which came earlier in the input.
        assert_eq!(save_all(b, f), before);
        // The next write_chain observes afresh and repairs.
        x.write_chain(f, &seed_rules()[..1]).unwrap();
        assert!(x.observe(f).unwrap().unwrap().is_clean());
    });
}

/// With nf_tables, a read while the ruleset stood still uses the copy of the last `*-save`
/// (proved by doctoring the copy), and any change to any table, by anybody, is seen at once.
#[test]
fn an_unchanged_nftables_ruleset_is_not_saved_again() {
    in_netns("cache-nft", || {
        let dir = private_dir();
        let x = xt_in(IptablesBackend::Nft, Some(dir.clone()));
        x.write_chain(Family::Inet, &seed_rules()).unwrap();
        let file = dir.join("mark-cache-ipv4");
        let kept = std::fs::read_to_string(&file).expect("the write's read-back is kept");
        assert!(kept.starts_with("lvsctl mark cache v1 boot="), "{kept}");
        assert_eq!(
            x.observe(Family::Inet).unwrap().unwrap().rules,
            seed_rules()
        );

        // Proof that the copy is what a read uses while nothing changed.
        let doctored = kept.replace("--set-xmark 0xa/", "--set-xmark 0xb/");
        assert_ne!(doctored, kept, "{kept}");
        std::fs::write(&file, &doctored).unwrap();
        assert_eq!(
            x.observe(Family::Inet).unwrap().unwrap().rules[0].mark,
            Fwmark::new(11).unwrap()
        );

        // A change anywhere in nf_tables (here another table) moves the generation: saved again.
        ipt(
            IptablesBackend::Nft,
            Family::Inet,
            &[
                "-t", "filter", "-A", "INPUT", "-s", "10.9.9.9", "-j", "ACCEPT",
            ],
        );
        assert_eq!(
            x.observe(Family::Inet).unwrap().unwrap().rules,
            seed_rules()
        );
        // A rule added behind lvsctl's back to its own chain is seen.
        ipt(
            IptablesBackend::Nft,
            Family::Inet,
            &[
                "-t", "mangle", "-A", CHAIN, "-s", "10.9.9.8", "-j", "ACCEPT",
            ],
        );
        let obs = x.observe(Family::Inet).unwrap().unwrap();
        assert_eq!(obs.unparsed.len(), 1, "{obs:?}");
        // The chain deleted by hand: gone, even though the copy said otherwise a moment ago.
        x.observe(Family::Inet).unwrap();
        for args in [
            &["-t", "mangle", "-D", "PREROUTING", "-j", CHAIN][..],
            &["-t", "mangle", "-D", "OUTPUT", "-j", CHAIN],
            &["-t", "mangle", "-F", CHAIN],
            &["-t", "mangle", "-X", CHAIN],
        ] {
            ipt(IptablesBackend::Nft, Family::Inet, args);
        }
        assert_eq!(x.observe(Family::Inet).unwrap(), None);
        // Without a cache folder nothing is kept.
        let plain = xt_in(IptablesBackend::Nft, None);
        plain
            .write_chain(
                Family::Inet6,
                &[rule("2001:db8::1", Protocol::Tcp, &[80], 10, "web")],
            )
            .unwrap();
        assert!(!dir.join("mark-cache-ipv6").exists());
    });
}

/// The legacy backend has no ruleset generation: it never keeps a copy.
#[test]
fn legacy_iptables_is_always_saved() {
    in_netns("cache-legacy", || {
        let dir = private_dir();
        let x = xt_in(IptablesBackend::Legacy, Some(dir.clone()));
        x.write_chain(Family::Inet, &seed_rules()).unwrap();
        assert_eq!(
            x.observe(Family::Inet).unwrap().unwrap().rules,
            seed_rules()
        );
        assert!(!dir.join("mark-cache-ipv4").exists());
    });
}

/// Counters of the chain's rules, in chain order, from `iptables-save -c`.
fn counters(backend: IptablesBackend, family: Family) -> Vec<(u64, String)> {
    save_text(backend, family, &["-c", "-t", "mangle"])
        .lines()
        .filter_map(|l| {
            let (c, rule) = l.strip_prefix('[')?.split_once("] ")?;
            let rule = rule.strip_prefix(&format!("-A {CHAIN} "))?;
            Some((c.split(':').next()?.parse().unwrap(), rule.to_owned()))
        })
        .collect()
}

/// A TCP SYN from this namespace to 127.0.0.1:`port` (refused: nobody listens), which passes
/// the mangle OUTPUT hook and so counts on a rule for that address and port.
fn syn_to_loopback(port: u16) {
    let out = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let _ = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2));
}

/// A few changed rules are edited in place: the rules left alone keep their counters (a
/// rewrite, which a duplicated jump forces, resets them, so the check can tell the two apart).
#[test]
fn small_changes_are_edited_in_place_and_keep_counters() {
    each_backend("in-place", |b| {
        let f = Family::Inet;
        let x = xt(b);
        let mut rules = seed_rules();
        rules.insert(0, rule("127.0.0.1", Protocol::Tcp, &[9], 0x99, "loopback"));
        let first = x.write_chain_over(f, &rules, None).unwrap();
        syn_to_loopback(9);
        let hits = counters(b, f);
        assert_eq!(hits.len(), 4, "{hits:?}");
        assert!(
            hits[0].0 >= 1,
            "the loopback rule counted nothing: {hits:?}"
        );

        // Change the second rule's mark, drop the third, add one at the end.
        let mut edited = rules.clone();
        edited[1].mark = Fwmark::new(11).unwrap();
        edited.remove(2);
        edited.push(rule("192.168.6.104", Protocol::Tcp, &[443], 12, "tls"));
        let second = x.write_chain_over(f, &edited, Some(&first)).unwrap();
        assert_eq!(second.rules, edited);
        assert_eq!(x.observe(f).unwrap().unwrap().rules, edited);
        let after = counters(b, f);
        assert_eq!(after.len(), 4, "{after:?}");
        assert_eq!(after[0], hits[0], "the untouched rule lost its counters");
        assert!(after[1].1.contains("--set-xmark 0xb/"), "{after:?}");

        // A duplicated jump makes the chain unclean: that write rewrites, counters restart.
        ipt(b, f, &["-t", "mangle", "-A", "PREROUTING", "-j", CHAIN]);
        let dirty = x.observe(f).unwrap().unwrap();
        let third = x.write_chain_over(f, &rules, Some(&dirty)).unwrap();
        assert!(third.is_clean(), "{third:?}");
        assert_eq!(counters(b, f)[0].0, 0, "a rewrite keeps no counters");
    });
}

/// Rule numbers computed from a chain someone edited since: the in-place edit lands on the
/// wrong rules, the read-back sees it, and the chain is rewritten to exactly the wanted rules.
/// Nothing outside the chain is touched.
#[test]
fn an_in_place_edit_of_a_chain_changed_since_it_was_read_is_redone_whole() {
    each_backend("in-place-stale", |b| {
        let f = Family::Inet;
        let x = xt(b);
        ipt(
            b,
            f,
            &[
                "-t",
                "mangle",
                "-A",
                "PREROUTING",
                "-p",
                "udp",
                "-j",
                "ACCEPT",
            ],
        );
        let read = x.write_chain_over(f, &seed_rules(), None).unwrap();
        let outside = foreign(b, f);
        // Behind lvsctl's back: a rule pushed in at the top of its chain.
        ipt(
            b,
            f,
            &[
                "-t",
                "mangle",
                "-I",
                CHAIN,
                "1",
                "-d",
                "10.9.9.9/32",
                "-j",
                "MARK",
                "--set-mark",
                "5",
            ],
        );
        let mut wanted = seed_rules();
        wanted[1].mark = Fwmark::new(0x21).unwrap();
        let written = x.write_chain_over(f, &wanted, Some(&read)).unwrap();
        assert_eq!(written.rules, wanted);
        let now = x.observe(f).unwrap().unwrap();
        assert!(now.is_clean(), "{now:?}");
        assert_eq!(now.rules, wanted);
        assert_eq!(foreign(b, f), outside);
        // The hand-made rule inside lvsctl's chain is gone with the rewrite: the chain is lvsctl's.
        assert!(save_all(b, f).iter().all(|l| !l.contains("10.9.9.9")));
    });
}
