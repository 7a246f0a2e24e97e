//! Shared by the end-to-end tests that run the real `lvsctl` binary in the VM (seed.rs and
//! lvsctl_*.rs): booting a director with lvsctl, the examples and the guest helpers
//! (tests/vm/scenarios/lvsctl.sh) copied in; reading the sections those helpers print; the
//! seed experiments' traffic expectations; and normalising `ipvsadm -S -n` and
//! `iptables-save -t mangle` so dumps can be compared exactly.
// Each test crate includes this module and uses a different part of it.
#![allow(dead_code)]

use std::{collections::BTreeSet, fs, time::Duration};

use lvsctl_vmtest::{VmOutput, VmRun, repo_root, workspace_bin};

/// Boot + topology take 10-20 s under TCG on a quiet machine and up to a minute when both
/// cores are busy compiling; the scenarios add a few seconds per lvsctl call.
pub const VM_TIMEOUT: Duration = Duration::from_secs(420);

/// Where the guest finds lvsctl.
pub const LVSCTL: &str = "/opt/lvsctl";

/// A seed-topology VM with lvsctl (built for the host, at /opt/lvsctl), examples/ (at
/// /opt/examples), the seed's commands (/opt/seed) and the guest helpers sourced, running
/// `body`.
pub fn director(name: &str, body: &str) -> VmRun {
    let lvsctl = workspace_bin("lvsctl").unwrap_or_else(|e| panic!("cannot build lvsctl: {e}"));
    let root = repo_root();
    VmRun::new()
        .topology_seed()
        .timeout(VM_TIMEOUT)
        .copy_to(lvsctl, LVSCTL)
        .copy_to(root.join("examples"), "/opt/examples")
        .copy_to(root.join("tests/vm/seed"), "/opt/seed")
        .copy_to(root.join("tests/vm/scenarios"), "/opt/scenarios")
        .named_script(name, &format!(". /opt/scenarios/lvsctl.sh\n{body}\n"))
}

/// Runs `body` on a fresh director and returns what it printed; the script must exit 0.
pub fn run_director(name: &str, body: &str) -> Run {
    let out = director(name, body).run();
    out.assert_success();
    Run(out)
}

/// A finished VM run, read through the sections of tests/vm/scenarios/lvsctl.sh.
pub struct Run(pub VmOutput);

impl Run {
    /// A framed section; panics when the script did not print it.
    pub fn section(&self, name: &str) -> String {
        self.0.section(name).unwrap_or_else(|| {
            panic!("no section `{name}` on the vm console (see the console above)")
        })
    }

    /// Stdout of `cmd NAME ...`.
    pub fn stdout(&self, name: &str) -> String {
        self.section(&format!("{name}.out"))
    }

    /// Stderr of `cmd NAME ...`.
    pub fn stderr(&self, name: &str) -> String {
        self.section(&format!("{name}.err"))
    }

    /// Exit status of `cmd NAME ...`.
    pub fn status(&self, name: &str) -> i32 {
        let s = self.section(&format!("{name}.rc"));
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("`{name}.rc` is not a status: {s:?}"))
    }

    /// Asserts that `cmd NAME ...` exited with `want`, showing its output otherwise.
    pub fn expect_status(&self, name: &str, want: i32) {
        let got = self.status(name);
        assert_eq!(
            got,
            want,
            "`{name}` exited {got}, expected {want}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout(name),
            self.stderr(name)
        );
    }

    /// Asserts that `cmd NAME lvsctl apply|plan ...` exited 0 and found nothing to change.
    pub fn expect_no_changes(&self, name: &str) {
        self.expect_status(name, 0);
        let out = self.stdout(name);
        assert!(
            out.starts_with("No changes.") && out.lines().count() == 1,
            "`{name}` should print only `No changes. ...` on stdout, got:\n{out}"
        );
    }

    /// `ipvsadm -S -n` from `snap NAME`.
    pub fn ipvsadm(&self, name: &str) -> String {
        self.section(&format!("{name}.ipvsadm"))
    }

    /// `iptables-save -t mangle` from `snap NAME`.
    pub fn mangle(&self, name: &str) -> String {
        self.section(&format!("{name}.mangle"))
    }

    pub fn probes(&self) -> Vec<Probe> {
        probes(&self.0)
    }
}

/// tests/vm/expected/<exp>.<kind>: the seed commands' state, recorded in the VM.
pub fn expected(exp: Experiment, kind: &str) -> String {
    let path = repo_root().join(format!("tests/vm/expected/{}.{kind}", exp.name()));
    fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it with LVSCTL_VM_BLESS=1 cargo test -p lvsctl-vmtest --test seed seed_commands",
            path.display()
        )
    })
}

/// The seed document's three experiments, each an example manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Experiment {
    Pcc,
    Ppc,
    Pnmpp,
}

impl Experiment {
    pub const ALL: [Experiment; 3] = [Experiment::Pcc, Experiment::Ppc, Experiment::Pnmpp];

    pub fn name(self) -> &'static str {
        match self {
            Experiment::Pcc => "pcc",
            Experiment::Ppc => "ppc",
            Experiment::Pnmpp => "pnmpp",
        }
    }

    /// The request order (for `probe_rounds`) whose answers show the experiment's behaviour.
    /// Persistence templates are made by each client's first request and rr hands out real
    /// servers in request order, so the order matters: for PPC, c1 takes the first real
    /// server of :80 and c2 the first of :22, so c1's (and c2's) two ports land on different
    /// real servers; the same order cannot split a client's ports under PNMPP's one fwmark
    /// service.
    pub fn traffic(self) -> &'static str {
        match self {
            Experiment::Pcc => "c1:80 c2:80 c1:22 c2:22",
            Experiment::Ppc | Experiment::Pnmpp => "c1:80 c2:80 c2:22 c1:22",
        }
    }

    /// Guest lines: `phase PHASE` and `rounds` rounds of [`Experiment::traffic`].
    pub fn traffic_script(self, phase: &str, rounds: usize) -> String {
        format!(
            "phase {phase}\nprobe_rounds {rounds} {} || echo 'some probes failed'\n",
            self.traffic()
        )
    }

    /// Asserts the experiment's behaviour on the probes of `phase` (each client:port probed
    /// `rounds` times). `fresh`: the services were just created with no persistence templates
    /// left from earlier services of the same identity, so rr spreads the two clients' first
    /// requests over both real servers.
    pub fn check_traffic(self, all: &[Probe], phase: &str, rounds: usize, fresh: bool) {
        let c1_80 = sticky(all, phase, "c1", 80, rounds);
        let c2_80 = sticky(all, phase, "c2", 80, rounds);
        let c1_22 = sticky(all, phase, "c1", 22, rounds);
        let c2_22 = sticky(all, phase, "c2", 22, rounds);
        match self {
            // One real server per client, whatever the port: PCC's port-0 service and
            // PNMPP's fwmark service both persist per client.
            Experiment::Pcc | Experiment::Pnmpp => {
                let what = self.name().to_uppercase();
                assert_eq!(c1_22, c1_80, "{phase}: {what}: c1's :22 left its RS");
                assert_eq!(c2_22, c2_80, "{phase}: {what}: c2's :22 left its RS");
                if fresh {
                    assert_ne!(
                        c1_80, c2_80,
                        "{phase}: both clients on {c1_80}: rr did not spread them"
                    );
                }
            }
            // Per-port services schedule independently.
            Experiment::Ppc => {
                assert_ne!(
                    c1_80, c1_22,
                    "{phase}: PPC: c1's :80 and :22 should differ in this order"
                );
                assert_ne!(
                    c2_80, c2_22,
                    "{phase}: PPC: c2's :80 and :22 should differ in this order"
                );
            }
        }
    }
}

/// One `probe <client> <port> <server> <body>` line, with the `phase <name>` it came after.
#[derive(Debug, Clone)]
pub struct Probe {
    pub phase: String,
    pub client: String,
    pub port: u16,
    pub server: String,
    pub body: String,
}

pub fn probes(out: &VmOutput) -> Vec<Probe> {
    let mut phase = String::new();
    let mut found = Vec::new();
    for line in out.console.lines() {
        if let Some(p) = line.strip_prefix("phase ") {
            phase = p.to_string();
        } else if let Some(rest) = line.strip_prefix("probe ") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(f.len(), 4, "malformed probe line {line:?}");
            found.push(Probe {
                phase: phase.clone(),
                client: f[0].to_string(),
                port: f[1]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad port in {line:?}")),
                server: f[2].to_string(),
                body: f[3].to_string(),
            });
        }
    }
    found
}

/// The one real server that answered every request of `client` to `port` in `phase`;
/// panics unless there were exactly `count` such requests, all answered by one RS.
pub fn sticky<'a>(all: &'a [Probe], phase: &str, client: &str, port: u16, count: usize) -> &'a str {
    let matching: Vec<&Probe> = all
        .iter()
        .filter(|p| p.phase == phase && p.client == client && p.port == port)
        .collect();
    for p in &matching {
        // The :22 service answers `RS1-22`: the request reached the RS's :22 server.
        let want = if port == 22 {
            format!("{}-22", p.server)
        } else {
            p.server.clone()
        };
        assert!(
            p.server == "FAILED" || p.body == want,
            "{phase}: unexpected answer {p:?}"
        );
    }
    let seen: Vec<&str> = matching.iter().map(|p| p.server.as_str()).collect();
    assert_eq!(
        seen.len(),
        count,
        "{phase}: expected {count} requests {client} -> :{port}, got {seen:?}\nall: {all:#?}"
    );
    let distinct: BTreeSet<&str> = seen.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        1,
        "{phase}: {client} -> :{port} did not stay on one real server: {seen:?}"
    );
    let server = seen[0];
    assert!(
        server == "RS1" || server == "RS2",
        "{phase}: {client} -> :{port} answered by {server:?}\nall: {all:#?}"
    );
    server
}

/// Both clients, on both ports (80 and 22), stuck to `server` in `phase` (`count` requests
/// each); `when` says which moment of the test this is.
pub fn both_clients_on(all: &[Probe], phase: &str, count: usize, server: &str, when: &str) {
    for c in ["c1", "c2"] {
        for port in [80, 22] {
            assert_eq!(
                sticky(all, phase, c, port, count),
                server,
                "{c}:{port} {when}"
            );
        }
    }
}

/// The addresses (`ADDR/PREFIX`) of `kind` (`inet` or `inet6`) in `ip -o addr show` output,
/// sorted.
pub fn ip_addrs(ip_o_addr: &str, kind: &str) -> Vec<String> {
    let mut addrs: Vec<String> = ip_o_addr
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == kind)?;
            w.get(i + 1).map(|s| s.to_string())
        })
        .collect();
    addrs.sort();
    addrs
}

// --- ipvsadm -S -n ---------------------------------------------------------------------------

/// `ipvsadm -S -n` cut into services: each `-A` line with the `-a` lines after it.
pub fn ipvsadm_blocks(dump: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in dump.lines() {
        if line.starts_with("-A ") || blocks.is_empty() {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
}

/// Asserts that every service block of `foreign` is in `dump` byte for byte, and returns the
/// rest of `dump` (in its order): what lvsctl manages.
pub fn without_foreign(dump: &str, foreign: &str, context: &str) -> String {
    let blocks = ipvsadm_blocks(dump);
    let foreign = ipvsadm_blocks(foreign);
    for f in &foreign {
        assert!(
            blocks.contains(f),
            "{context}: the foreign IPVS service\n{f}is gone or changed:\n{dump}"
        );
    }
    blocks
        .into_iter()
        .filter(|b| !foreign.contains(b))
        .collect()
}

// --- iptables-save -t mangle -----------------------------------------------------------------

/// lvsctl's chain.
pub const CHAIN: &str = "LVSCTL-MARK";

/// `iptables-save` output without comments (they carry a date) and with chain counters
/// (`:PREROUTING ACCEPT [12:345]`) zeroed, so two dumps compare byte for byte.
pub fn save_lines(save: &str) -> Vec<String> {
    save.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            if l.starts_with(':')
                && let Some(i) = l.rfind(" [")
                && l.ends_with(']')
            {
                format!("{} [0:0]", &l[..i])
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// The lines of a mangle dump that have nothing to do with lvsctl's chain.
pub fn outside_lvsctl(save: &str) -> Vec<String> {
    save_lines(save)
        .into_iter()
        .filter(|l| !l.contains(CHAIN))
        .collect()
}

/// The jumps into lvsctl's chain, as `-A HOOK -j LVSCTL-MARK` lines.
pub fn lvsctl_jumps(save: &str) -> Vec<String> {
    save_lines(save)
        .into_iter()
        .filter(|l| l.contains(CHAIN))
        .filter(|l| {
            !l.starts_with(&format!(":{CHAIN} ")) && !l.starts_with(&format!("-A {CHAIN} "))
        })
        .collect()
}

/// True when the dump declares lvsctl's chain.
pub fn has_lvsctl_chain(save: &str) -> bool {
    save_lines(save)
        .iter()
        .any(|l| l.starts_with(&format!(":{CHAIN} ")))
}

/// What a MARK rule does, whatever its spelling (`--dport 80` twice or `-m multiport
/// --dports 80,22` once; `--set-mark 10` or `--set-xmark 0xa/0xffffffff`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark {
    pub dst: String,
    pub proto: String,
    pub port: u16,
    pub mark: u32,
}

fn parse_number(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The (destination, protocol, port, mark) tuples set by the MARK rules of `chain` in a
/// mangle dump (either `iptables-save` output or just its `-A` lines). Panics on a rule of
/// that chain this does not understand, so nothing is silently left out of a comparison.
pub fn mark_rules(save: &str, chain: &str) -> BTreeSet<Mark> {
    let prefix = format!("-A {chain} ");
    let mut out = BTreeSet::new();
    for line in save.lines().filter(|l| l.starts_with(&prefix)) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let value = |flag: &str| {
            words
                .iter()
                .position(|w| *w == flag)
                .and_then(|i| words.get(i + 1).copied())
        };
        assert_eq!(value("-j"), Some("MARK"), "not a MARK rule: {line}");
        let dst = value("-d").unwrap_or("0.0.0.0/0").to_string();
        let proto = value("-p")
            .unwrap_or_else(|| panic!("no protocol in {line}"))
            .to_string();
        let ports: Vec<u16> = match (value("--dport"), value("--dports")) {
            (Some(p), None) => vec![p.parse().unwrap_or_else(|_| panic!("port in {line}"))],
            (None, Some(list)) => list
                .split(',')
                .map(|p| p.parse().unwrap_or_else(|_| panic!("ports in {line}")))
                .collect(),
            _ => panic!("expected one --dport or --dports in {line}"),
        };
        let mark = match (value("--set-xmark"), value("--set-mark")) {
            (Some(xmark), None) => {
                let (v, mask) = xmark
                    .split_once('/')
                    .unwrap_or_else(|| panic!("--set-xmark without mask in {line}"));
                assert_eq!(mask, "0xffffffff", "a partial mark mask in {line}");
                parse_number(v).unwrap_or_else(|| panic!("mark in {line}"))
            }
            (None, Some(v)) => parse_number(v).unwrap_or_else(|| panic!("mark in {line}")),
            _ => panic!("expected one --set-xmark or --set-mark in {line}"),
        };
        for port in ports {
            out.insert(Mark {
                dst: dst.clone(),
                proto: proto.clone(),
                port,
                mark,
            });
        }
    }
    out
}

/// Asserts that the mangle table `after` an lvsctl apply marks exactly what the seed's
/// commands for `exp` mark (tests/vm/expected/<exp>.mangle, rules in PREROUTING) through
/// lvsctl's chain, reached from PREROUTING and OUTPUT, and that everything outside lvsctl's
/// chain equals `before` byte for byte (counters and dates aside).
pub fn check_marks(exp: Experiment, before: &str, after: &str, context: &str) {
    let seed = mark_rules(&expected(exp, "mangle"), "PREROUTING");
    let ours = mark_rules(after, CHAIN);
    assert_eq!(
        ours,
        seed,
        "{context}: lvsctl's MARK rules differ from the seed's for {}:\n{after}",
        exp.name()
    );
    let jumps = lvsctl_jumps(after);
    if seed.is_empty() {
        assert!(
            jumps.is_empty() && !has_lvsctl_chain(after),
            "{context}: {} needs no MARK rules, but lvsctl's chain or a jump to it is left:\n{after}",
            exp.name()
        );
    } else {
        assert_eq!(
            jumps,
            [
                format!("-A PREROUTING -j {CHAIN}"),
                format!("-A OUTPUT -j {CHAIN}")
            ],
            "{context}: the jumps into lvsctl's chain:\n{after}"
        );
    }
    assert_eq!(
        outside_lvsctl(after),
        save_lines(before),
        "{context}: the mangle table outside lvsctl's chain changed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_PNMPP: &str = "-A PREROUTING -d 192.168.6.101/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0xa/0xffffffff\n\
        -A PREROUTING -d 192.168.6.101/32 -p tcp -m tcp --dport 22 -j MARK --set-xmark 0xa/0xffffffff\n";
    const LVSCTL_PNMPP: &str = "# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 16:45:44 2026\n\
        *mangle\n:PREROUTING ACCEPT [12:340]\n:OUTPUT ACCEPT [0:0]\n:LVSCTL-MARK - [0:0]\n\
        -A PREROUTING -j LVSCTL-MARK\n-A OUTPUT -j LVSCTL-MARK\n\
        -A LVSCTL-MARK -d 192.168.6.101/32 -p tcp -m multiport --dports 22,80 -m comment --comment \"lvsctl:web-ssh\" -j MARK --set-xmark 0xa/0xffffffff\n\
        COMMIT\n";

    #[test]
    fn seed_and_lvsctl_spellings_mean_the_same_marks() {
        let seed = mark_rules(SEED_PNMPP, "PREROUTING");
        assert_eq!(seed.len(), 2);
        assert_eq!(seed, mark_rules(LVSCTL_PNMPP, CHAIN));
        assert_eq!(
            mark_rules("-A X -p udp --dport 53 -j MARK --set-mark 99\n", "X")
                .into_iter()
                .next()
                .map(|m| (m.port, m.mark)),
            Some((53, 99))
        );
    }

    #[test]
    fn mangle_dumps_split_into_ours_and_the_rest() {
        assert_eq!(
            lvsctl_jumps(LVSCTL_PNMPP),
            ["-A PREROUTING -j LVSCTL-MARK", "-A OUTPUT -j LVSCTL-MARK"]
        );
        assert_eq!(
            outside_lvsctl(LVSCTL_PNMPP),
            [
                "*mangle",
                ":PREROUTING ACCEPT [0:0]",
                ":OUTPUT ACCEPT [0:0]",
                "COMMIT"
            ]
        );
        assert!(has_lvsctl_chain(LVSCTL_PNMPP));
    }

    #[test]
    fn foreign_ipvs_services_are_cut_out() {
        let dump = "-A -f 99 -s sh\n-a -f 99 -r 10.0.0.1:0 -g -w 1\n-A -t 1.2.3.4:80 -s rr\n-a -t 1.2.3.4:80 -r 10.0.0.1:80 -g -w 1\n";
        let foreign = "-A -f 99 -s sh\n-a -f 99 -r 10.0.0.1:0 -g -w 1\n";
        assert_eq!(
            without_foreign(dump, foreign, "t"),
            "-A -t 1.2.3.4:80 -s rr\n-a -t 1.2.3.4:80 -r 10.0.0.1:80 -g -w 1\n"
        );
    }

    #[test]
    #[should_panic(expected = "is gone or changed")]
    fn a_changed_foreign_service_is_caught() {
        without_foreign("-A -f 99 -s rr\n", "-A -f 99 -s sh\n", "t");
    }
}
