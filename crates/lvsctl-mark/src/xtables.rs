//! Running `*-save` and `*-restore`: the only I/O in this crate. Every change is one
//! `iptables-restore --noflush` transaction, so the chain and its jumps change together or not
//! at all, and nothing outside the chain is flushed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lvsctl_model::{Family, MarkRule};
use tracing::warn;

use crate::backend::{Detected, IptablesBackend, find_program};
use crate::cache::{self, Stamp};
use crate::edit::{edit_input, normalized};
use crate::rule::rule_spec_in;
use crate::save::{HOOKS, ObservedChain, parse_save};
use crate::{CHAIN, MarkError};

/// How lvsctl runs iptables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub backend: IptablesBackend,
    /// How long `-restore` waits for the xtables lock (legacy) before failing. Rounded up to
    /// whole seconds, at least 1.
    pub wait: Duration,
    /// Lock file for iptables-legacy (`XTABLES_LOCKFILE`); `None` = its default
    /// `/run/xtables.lock`. For tests and systems that moved the lock.
    pub lock_file: Option<PathBuf>,
    /// A folder of lvsctl's own (e.g. `/run/lvsctl`) where, with the nft backend, each
    /// family's last `*-save` output is kept with the nf_tables ruleset generation it was read
    /// at; while the generation stays, reads use it instead of running `*-save`. `None`: always
    /// run `*-save`.
    pub cache_dir: Option<PathBuf>,
}

impl Config {
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

    pub fn new(backend: IptablesBackend) -> Self {
        Config {
            backend,
            wait: Self::DEFAULT_WAIT,
            lock_file: None,
            cache_dir: None,
        }
    }

    fn wait_secs(&self) -> u64 {
        let s = self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0);
        s.max(1)
    }

    /// How long one iptables program may run: [`RUN_TIMEOUT`], or longer for a long `-w`.
    fn run_timeout(&self) -> Duration {
        RUN_TIMEOUT.max(Duration::from_secs(self.wait_secs()) + LOCK_WAIT_MARGIN)
    }
}

/// The longest an iptables program may run before it is killed: it may block on the kernel or
/// (iptables-nft ignores `-w`) on nothing lvsctl can bound otherwise, and a hung one would
/// stop `apply` and every daemon pass for good. At least [`LOCK_WAIT_MARGIN`] past `-w`.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Slack past the `-w` lock wait before a program is taken for hung.
const LOCK_WAIT_MARGIN: Duration = Duration::from_secs(30);

/// How long a killed program is waited for; one stuck in the kernel does not die at once, and
/// is then left to a thread of its own to reap.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// lvsctl's mangle chain in one network namespace (the caller's).
#[derive(Debug, Clone)]
pub struct Xtables {
    config: Config,
}

impl Xtables {
    pub fn new(config: Config) -> Self {
        Xtables { config }
    }

    /// Detects the backend ([`IptablesBackend::detect`]) and uses the default wait.
    pub fn detect() -> Result<(Self, Detected), MarkError> {
        let d = IptablesBackend::detect()?;
        Ok((Xtables::new(Config::new(d.backend)), d))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn backend(&self) -> IptablesBackend {
        self.config.backend
    }

    /// The family's mangle table as `iptables-save -t mangle` prints it.
    pub fn save_mangle(&self, family: Family) -> Result<String, MarkError> {
        self.run(
            self.config.backend.save_program(family),
            &["-t", "mangle"],
            None,
        )
    }

    /// lvsctl's chain for `family`, or `None` when it does not exist. Rules lvsctl cannot read
    /// are in [`ObservedChain::unparsed`], not dropped.
    /// Asks the kernel first whether the chain can exist (no process for a family without it),
    /// and uses the kept copy of the last `*-save` while the ruleset has not changed since.
    pub fn observe(&self, family: Family) -> Result<Option<ObservedChain>, MarkError> {
        let stamp = self.stamp();
        if let (Some(dir), Some(stamp)) = (&self.config.cache_dir, &stamp)
            && let Some(text) = cache::load(dir, family, stamp)
        {
            return Ok(parse_save(&text));
        }
        if self.chain_exists(family) == Some(false) {
            return Ok(None);
        }
        self.read_saved(family, stamp)
    }

    /// Where the ruleset stands, when a copy of `*-save` may be kept (nft, a cache folder).
    fn stamp(&self) -> Option<Stamp> {
        match (&self.config.cache_dir, self.config.backend) {
            (Some(_), IptablesBackend::Nft) => Stamp::now(),
            _ => None,
        }
    }

    /// Runs `*-save`; keeps its output when the ruleset stood still at `before` throughout.
    fn read_saved(
        &self,
        family: Family,
        before: Option<Stamp>,
    ) -> Result<Option<ObservedChain>, MarkError> {
        let text = self.save_mangle(family)?;
        if let (Some(dir), Some(before)) = (&self.config.cache_dir, before)
            && self.stamp().as_ref() == Some(&before)
        {
            cache::store(dir, family, &before, &text);
        }
        Ok(parse_save(&text))
    }

    /// Whether the family's mangle table has lvsctl's chain, asked of the kernel without a
    /// process (nf_tables over netlink; for legacy only "no table, so no chain"). `None` when
    /// that cannot be told this way; [`Xtables::observe`] then runs `*-save`.
    pub fn chain_exists(&self, family: Family) -> Option<bool> {
        crate::probe::chain_exists(self.config.backend, family)
    }

    /// The chain as `*-save` shows it, without asking the kernel first (after a write).
    fn read_back(&self, family: Family) -> Result<Option<ObservedChain>, MarkError> {
        self.read_saved(family, self.stamp())
    }

    /// Makes the chain hold exactly `rules` (in this order) and PREROUTING and OUTPUT each
    /// jump to it exactly once, in one `-restore --noflush` transaction; then reads it back.
    /// Returns the chain as read back.
    pub fn write_chain(
        &self,
        family: Family,
        rules: &[MarkRule],
    ) -> Result<ObservedChain, MarkError> {
        let current = self.observe(family)?;
        self.write_chain_over(family, rules, current.as_ref())
    }

    /// [`Xtables::write_chain`] from a chain the caller has just read (`None`: it did not
    /// exist), saving one `iptables-save` of the whole mangle table.
    ///
    /// When that chain is clean (one jump per hook, every rule readable) and a few rules
    /// differ, they are edited in place by rule number ([`edit_input`]): the other rules keep
    /// their counters. Rule numbers are only right for the chain as read, so if the edit is
    /// refused or the read-back finds anything but `rules`, the chain is read afresh and
    /// rewritten whole. Otherwise the chain is flushed and rewritten; only the jump counts are
    /// taken from `current`, and if they changed since, the transaction's `-D` fails and
    /// nothing is applied, or the read-back finds the extra or missing jump: a stale `current`
    /// causes an error, never wrong marks. (A jump another writer inserted meanwhile is not
    /// seen by the transaction and leaves two jumps until the next write; the chain only sets
    /// marks, so running it twice marks the same.) Returns the chain as read back.
    pub fn write_chain_over(
        &self,
        family: Family,
        rules: &[MarkRule],
        current: Option<&ObservedChain>,
    ) -> Result<ObservedChain, MarkError> {
        if let Some(cur) = current
            && let Some(input) = edit_input(family, rules, cur)?
        {
            let edited = self
                .restore(family, &input)
                .and_then(|_| check_written(family, rules, self.read_back(family)?));
            match edited {
                Ok(after) => return Ok(after),
                // Waiting for the lock again, for a program that cannot start or for one that
                // hangs, would fail the same way (and take as long).
                Err(
                    e @ (MarkError::LockTimeout { .. }
                    | MarkError::Spawn { .. }
                    | MarkError::Hung { .. }),
                ) => {
                    return Err(e);
                }
                Err(e) => warn!(
                    "editing the {family} {CHAIN} chain in place failed ({e}), most likely \
                     because it changed since it was read; reading it again and rewriting it whole"
                ),
            }
            let fresh = self.observe(family)?;
            return self.rewrite(family, rules, fresh.as_ref());
        }
        self.rewrite(family, rules, current)
    }

    /// Flushes the chain and writes `rules`, fixing the jumps counted in `current`; then reads
    /// it back and checks it.
    fn rewrite(
        &self,
        family: Family,
        rules: &[MarkRule],
        current: Option<&ObservedChain>,
    ) -> Result<ObservedChain, MarkError> {
        let input = write_input(family, rules, current)?;
        self.restore(family, &input)?;
        check_written(family, rules, self.read_back(family)?)
    }

    /// Deletes the jumps (every copy), then flushes and deletes the chain, in one transaction.
    /// Nothing to do when the chain does not exist. Refuses, changing nothing, when a rule lvsctl
    /// did not add still refers to the chain.
    pub fn remove_chain(&self, family: Family) -> Result<(), MarkError> {
        let Some(current) = self.observe(family)? else {
            return Ok(());
        };
        let input = remove_input(family, &current)?;
        self.restore(family, &input).map(drop)
    }

    fn restore(&self, family: Family, input: &str) -> Result<String, MarkError> {
        let wait = self.config.wait_secs().to_string();
        self.run(
            self.config.backend.restore_program(family),
            &["-w", &wait, "--noflush"],
            Some(input),
        )
    }

    fn run(&self, program: &str, args: &[&str], input: Option<&str>) -> Result<String, MarkError> {
        self.run_for(program, args, input, self.config.run_timeout())
    }

    fn run_for(
        &self,
        program: &str,
        args: &[&str],
        input: Option<&str>,
        timeout: Duration,
    ) -> Result<String, MarkError> {
        let path = find_program(program).ok_or_else(|| MarkError::Spawn {
            program: program.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not found on PATH"),
        })?;
        let command = format!("{program} {}", args.join(" "));
        let mut cmd = Command::new(&path);
        cmd.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(lock) = &self.config.lock_file {
            cmd.env("XTABLES_LOCKFILE", lock);
        }
        let spawn_err = |e| MarkError::Spawn {
            program: path.display().to_string(),
            source: e,
        };
        let output = run_bounded(&mut cmd, input, timeout)
            .map_err(spawn_err)?
            .ok_or(MarkError::Hung {
                command: command.clone(),
                timeout,
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        // iptables exits 4 (RESOURCE_PROBLEM) when it gave up waiting for the lock.
        if output.status.code() == Some(4) && stderr.contains("xtables lock") {
            return Err(MarkError::LockTimeout {
                command,
                wait: Duration::from_secs(self.config.wait_secs()),
                stderr,
            });
        }
        let status = match output.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_owned(),
        };
        let hint = hint_for(&stderr, input);
        Err(MarkError::Failed {
            command,
            status,
            stderr,
            hint,
        })
    }
}

/// What a program that ended left.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `cmd` (stdout and stderr piped, stdin piped when there is `input`) for at most
/// `timeout`; `None` if it did not end by then (it is killed). The pipes are fed and read by
/// threads of their own, left behind if something keeps them open past the timeout.
fn run_bounded(
    cmd: &mut Command,
    input: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Option<Output>> {
    let end = Instant::now() + timeout;
    let mut child = cmd.spawn()?;
    if let (Some(mut w), Some(text)) = (child.stdin.take(), input) {
        let text = text.to_owned();
        // A write error means the child exited early; its status says why.
        std::thread::spawn(move || drop(w.write_all(text.as_bytes())));
    }
    let (tx, rx) = mpsc::channel();
    for (which, pipe) in [
        (
            0,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            1,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            let _ = tx.send((which, buf));
        });
    }
    drop(tx);
    // Both pipes at end of file: the program has (almost always) exited.
    let mut out = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok((which, buf)) => out[which] = buf,
            Err(_) => return kill(child).map(|()| None),
        }
    }
    let [stdout, stderr] = out;
    match wait_until(&mut child, end)? {
        Some(status) => Ok(Some(Output {
            status,
            stdout,
            stderr,
        })),
        None => kill(child).map(|()| None),
    }
}

/// The child's exit status, if it ends before `end`.
fn wait_until(child: &mut Child, end: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Kills `child` and reaps it, or leaves that to a thread if it does not die at once.
fn kill(mut child: Child) -> std::io::Result<()> {
    child.kill()?;
    if wait_until(&mut child, Instant::now() + KILL_WAIT)?.is_none() {
        std::thread::spawn(move || drop(child.wait()));
    }
    Ok(())
}

/// The `-restore --noflush` input that rewrites the chain to `rules` and leaves exactly one
/// jump per hook, given the chain as observed just before. Jumps are fixed inside the same
/// transaction: a missing one is inserted first in its hook, extra copies are deleted. (A plain
/// `-A PREROUTING -j LVSCTL-MARK` here would add a copy on every write: `--noflush` keeps the
/// hook's existing rules.) If another writer changed the hooks in between, a `-D` fails and
/// the whole transaction is refused, never half-applied.
pub fn write_input(
    family: Family,
    rules: &[MarkRule],
    current: Option<&ObservedChain>,
) -> Result<String, MarkError> {
    let mut out = format!("*mangle\n:{CHAIN} - [0:0]\n-F {CHAIN}\n");
    for rule in rules {
        out.push_str(&format!("-A {CHAIN} {}\n", rule_spec_in(family, rule)?));
    }
    for hook in HOOKS {
        let have = current.map_or(0, |c| jumps(c, hook));
        if have == 0 {
            out.push_str(&format!("-I {hook} 1 -j {CHAIN}\n"));
        }
        for _ in 1..have {
            out.push_str(&format!("-D {hook} -j {CHAIN}\n"));
        }
    }
    out.push_str("COMMIT\n");
    Ok(out)
}

/// The input that removes the jumps (all copies) and the chain.
pub fn remove_input(family: Family, current: &ObservedChain) -> Result<String, MarkError> {
    if !current.foreign_references.is_empty() {
        return Err(MarkError::ForeignReference {
            family,
            chain: CHAIN,
            rules: current.foreign_references.clone(),
        });
    }
    let mut out = String::from("*mangle\n");
    for hook in HOOKS {
        for _ in 0..jumps(current, hook) {
            out.push_str(&format!("-D {hook} -j {CHAIN}\n"));
        }
    }
    out.push_str(&format!("-F {CHAIN}\n-X {CHAIN}\nCOMMIT\n"));
    Ok(out)
}

fn jumps(c: &ObservedChain, hook: &str) -> usize {
    match hook {
        "PREROUTING" => c.prerouting_jumps,
        _ => c.output_jumps,
    }
}

/// Compares what reads back with what was written (ports compared as sets, as iptables does);
/// returns the chain read back.
fn check_written(
    family: Family,
    rules: &[MarkRule],
    after: Option<ObservedChain>,
) -> Result<ObservedChain, MarkError> {
    let fail = |detail: String| MarkError::ReadBack {
        family,
        chain: CHAIN,
        detail,
    };
    let after = after.ok_or_else(|| fail("the chain does not exist".into()))?;
    if !after.is_clean() {
        return Err(fail(after.warnings().join("; ")));
    }
    let want: Vec<MarkRule> = rules.iter().map(normalized).collect();
    if after.rules != want {
        return Err(fail(format!(
            "expected {} rule(s), found [{}]",
            want.len(),
            after
                .rules
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    Ok(after)
}

/// What to tell the operator for a failed command, from its stderr. For a `-restore` input the
/// offending line is quoted (iptables reports only its number).
fn hint_for(stderr: &str, input: Option<&str>) -> String {
    let mut hints = Vec::new();
    if let (Some(input), Some(n)) = (input, error_line(stderr))
        && let Some(line) = input.lines().nth(n.saturating_sub(1))
    {
        hints.push(format!("input line {n} was `{line}`"));
    }
    let lower = stderr.to_lowercase();
    if lower.contains("permission denied") || lower.contains("must be root") {
        hints.push("run lvsctl as root (it needs CAP_NET_ADMIN)".into());
    } else if lower.contains("table does not exist") || lower.contains("can't initialize") {
        hints.push(
            "the kernel lacks the mangle table (load iptable_mangle/ip6table_mangle, or nf_tables \
             for the nft backend)"
                .into(),
        );
    } else if lower.contains("couldn't load match") || lower.contains("couldn't load target") {
        hints.push(
            "the kernel or iptables lacks an extension lvsctl uses (xt_multiport, xt_comment, \
             xt_MARK)"
                .into(),
        );
    } else if lower.contains("too many ports") {
        hints.push("a rule has more than 15 ports".into());
    }
    if hints.is_empty() {
        hints.push("see the iptables message above".into());
    }
    hints.join("; ")
}

fn error_line(stderr: &str) -> Option<usize> {
    let tail = stderr.split("Error occurred at line:").nth(1)?;
    tail.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use lvsctl_model::{Fwmark, Protocol};

    use super::*;

    /// A stand-in for an iptables program: a shell script at a path of its own.
    fn fake_program(name: &str, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lvsctl-mark-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("iptables-nft-restore");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_hung_program_is_killed_at_its_timeout_and_named() {
        // Reads its input, then hangs with its output still open (as a stuck restore does).
        let fake = fake_program("hung", "cat >/dev/null; exec sleep 600");
        let xt = Xtables::new(Config::new(IptablesBackend::Nft));
        let program = fake.to_str().unwrap();
        let started = Instant::now();
        let err = xt
            .run_for(
                program,
                &["-w", "5", "--noflush"],
                Some("*mangle\nCOMMIT\n"),
                Duration::from_millis(300),
            )
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert!(matches!(err, MarkError::Hung { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("{program} -w 5 --noflush")), "{msg}");
        assert!(msg.contains("still running after 0 s, killed"), "{msg}");

        // One that ends in time is judged as before.
        let quick = fake_program("quick", "cat; echo oops >&2; exit 2");
        let err = xt
            .run_for(
                quick.to_str().unwrap(),
                &[],
                Some("in\n"),
                Duration::from_secs(30),
            )
            .unwrap_err();
        assert!(matches!(err, MarkError::Failed { .. }), "{err}");
        assert!(err.to_string().contains("(exit status 2): oops"), "{err}");
        let fine = fake_program("fine", "cat");
        let out = xt
            .run_for(
                fine.to_str().unwrap(),
                &[],
                Some("echoed\n"),
                Duration::from_secs(30),
            )
            .unwrap();
        assert_eq!(out, "echoed\n");
        for p in [fake, quick, fine] {
            let _ = std::fs::remove_dir_all(p.parent().unwrap());
        }
    }

    #[test]
    fn the_run_timeout_stays_well_past_the_lock_wait() {
        let mut c = Config::new(IptablesBackend::Legacy);
        assert_eq!(c.run_timeout(), RUN_TIMEOUT);
        c.wait = Duration::from_secs(120);
        assert_eq!(c.run_timeout(), Duration::from_secs(120) + LOCK_WAIT_MARGIN);
    }

    fn rule(vip: &str, ports: &[u16], mark: u32) -> MarkRule {
        MarkRule {
            vip: vip.parse().unwrap(),
            protocol: Protocol::Tcp,
            ports: ports.to_vec(),
            mark: Fwmark::new(mark).unwrap(),
            service: "web".into(),
        }
    }

    #[test]
    fn write_input_fresh_inserts_both_jumps() {
        let text = write_input(Family::Inet, &[rule("10.0.0.1", &[80], 1)], None).unwrap();
        assert_eq!(
            text,
            "*mangle\n:LVSCTL-MARK - [0:0]\n-F LVSCTL-MARK\n\
             -A LVSCTL-MARK -d 10.0.0.1/32 -p tcp -m multiport --dports 80 -m comment \
             --comment lvsctl:web -j MARK --set-mark 1\n\
             -I PREROUTING 1 -j LVSCTL-MARK\n-I OUTPUT 1 -j LVSCTL-MARK\nCOMMIT\n"
        );
    }

    #[test]
    fn write_input_keeps_one_jump_and_drops_copies() {
        let cur = ObservedChain {
            prerouting_jumps: 3,
            output_jumps: 1,
            ..Default::default()
        };
        let text = write_input(Family::Inet, &[], Some(&cur)).unwrap();
        assert_eq!(
            text,
            "*mangle\n:LVSCTL-MARK - [0:0]\n-F LVSCTL-MARK\n\
             -D PREROUTING -j LVSCTL-MARK\n-D PREROUTING -j LVSCTL-MARK\nCOMMIT\n"
        );
    }

    #[test]
    fn write_input_refuses_the_other_family() {
        let e = write_input(Family::Inet6, &[rule("10.0.0.1", &[80], 1)], None).unwrap_err();
        assert!(e.to_string().contains("is not ipv6"), "{e}");
    }

    #[test]
    fn remove_input_deletes_every_jump_or_refuses() {
        let mut cur = ObservedChain {
            prerouting_jumps: 2,
            output_jumps: 1,
            ..Default::default()
        };
        assert_eq!(
            remove_input(Family::Inet, &cur).unwrap(),
            "*mangle\n-D PREROUTING -j LVSCTL-MARK\n-D PREROUTING -j LVSCTL-MARK\n\
             -D OUTPUT -j LVSCTL-MARK\n-F LVSCTL-MARK\n-X LVSCTL-MARK\nCOMMIT\n"
        );
        cur.foreign_references = vec!["-A FORWARD -i lo -j LVSCTL-MARK".into()];
        let e = remove_input(Family::Inet, &cur).unwrap_err().to_string();
        assert!(e.contains("-A FORWARD -i lo -j LVSCTL-MARK"), "{e}");
    }

    #[test]
    fn hints_quote_the_failing_line() {
        let stderr = "iptables-nft-restore v1.8.9 (nf_tables): too many ports specified\n\
                      Error occurred at line: 2\nTry `iptables-nft-restore -h'";
        let h = hint_for(stderr, Some("*mangle\n-A X -j Y\nCOMMIT\n"));
        assert!(h.contains("input line 2 was `-A X -j Y`"), "{h}");
        assert!(h.contains("more than 15 ports"), "{h}");
    }

    #[test]
    fn wait_rounds_up() {
        let mut c = Config::new(IptablesBackend::Nft);
        c.wait = Duration::from_millis(1500);
        assert_eq!(c.wait_secs(), 2);
        c.wait = Duration::ZERO;
        assert_eq!(c.wait_secs(), 1);
    }
}
