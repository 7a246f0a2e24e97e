//! Faults against the fake kernel (issue 8, "Faults"):
//!
//! - a kernel error on step k of n, for every k of realistic plans and every kind of error: the
//!   k steps before are done (and reported done), the failed step changed nothing, the plan
//!   stopped, every service kept by both manifests stayed up at every step, and the next pass
//!   converges (also when that next pass fails once more);
//! - the same through the binary (`LVSCTL_FAKE_FAIL_AT=k`): exit status, the message naming the
//!   step and listing what was done, the kernel file, and the next `apply`;
//! - `kill -9` of `lvsctl apply` at random moments: the kernel file is always whole, the lock is
//!   free again, the next apply converges;
//! - two `lvsctl apply` at once on the same kernel, 20 pairs: one waits (or, with a zero lock
//!   timeout, fails saying why); the table is always exactly one manifest's.
//!
//! Each test prints its figures (`faults: ...`); RELIABILITY.md quotes them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lvsctl_model::manifest::{self, Manifest};
use lvsctl_model::{Fwmark, Observed, Protocol, State};
use lvsctl_plan::fake::FakeKernel;
use lvsctl_plan::{Backend, BackendError, Errno, Op, Plan};

const BIN: &str = env!("CARGO_BIN_EXE_lvsctl");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read_repo(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap()
}

/// The production manifest as it was "last week": other weights, a real server since
/// replaced, another scheduler, one mail port fewer, the downloads service not yet there and a
/// legacy service since retired. Going from it to `manifests/production.yaml` needs every kind
/// of operation (VIPs, services, real servers, MARK rules; adds, updates, deletes).
fn production_prev() -> String {
    let text = read_repo("manifests/production.yaml");
    let edits = [
        // weights and thresholds (UpdateDest)
        (
            "{address: 192.0.2.13, weight: 50}",
            "{address: 192.0.2.13, weight: 25}",
        ),
        (
            "{address: \"2001:db8:20::32\", weight: 2}",
            "{address: \"2001:db8:20::32\", weight: 5}",
        ),
        // a real server replaced (AddDest + DeleteDest)
        ("- {address: 192.0.2.54}", "- {address: 192.0.2.55}"),
        // scheduler (UpdateService)
        (
            "    port: 80\n    scheduler: rr",
            "    port: 80\n    scheduler: wrr",
        ),
        // MARK rule ports (WriteMarkChain)
        ("ports: [25, 465, 587, 993]", "ports: [25, 465, 587]"),
    ];
    let mut out = text.clone();
    for (from, to) in edits {
        assert!(
            out.contains(from),
            "production.yaml no longer contains {from:?}"
        );
        out = out.replacen(from, to, 1);
    }
    // The downloads service (a VIP of its own) did not exist yet; a legacy one did.
    let cut = out
        .find("  # Downloads:")
        .expect("downloads service in production.yaml");
    out.truncate(cut);
    out.push_str(
        "  - name: legacy-ftp\n    protocol: tcp\n    vip: 203.0.113.21\n    port: 21\n    \
         scheduler: rr\n    real_servers:\n      - {address: 192.0.2.21, forward: nat}\n",
    );
    out
}

fn parse(name: &str, text: &str) -> Manifest {
    manifest::parse(name, text).unwrap_or_else(|d| panic!("{name} does not validate:\n{d}"))
}

/// Every manifest the library tests move between.
fn manifests() -> Vec<(&'static str, Manifest)> {
    vec![
        (
            "production",
            parse("production", &read_repo("manifests/production.yaml")),
        ),
        (
            "production-prev",
            parse("production-prev", &production_prev()),
        ),
        ("pcc", parse("pcc", &read_repo("examples/pcc.yaml"))),
        ("ppc", parse("ppc", &read_repo("examples/ppc.yaml"))),
        ("pnmpp", parse("pnmpp", &read_repo("examples/pnmpp.yaml"))),
        ("empty", parse("empty", "services: []\n")),
    ]
}

/// One kind of failure of each shape the kernel backends produce.
fn errors() -> Vec<BackendError> {
    let kernel = |errno, message: &str| BackendError::Kernel {
        op: "injected".to_owned(),
        errno,
        message: message.to_owned(),
    };
    vec![
        kernel(Errno::Invalid, "injected (EINVAL)"),
        kernel(Errno::Exists, "injected (EEXIST)"),
        kernel(Errno::NoService, "injected (ESRCH)"),
        kernel(Errno::NotFound, "injected (ENOENT)"),
        kernel(Errno::Permission, "injected (EPERM)"),
        kernel(Errno::Other(libc::EBUSY), "injected (EBUSY)"),
        kernel(Errno::Other(libc::ENOMEM), "injected (ENOMEM)"),
        BackendError::Unavailable("injected: netlink socket closed".to_owned()),
        BackendError::Other("injected: iptables-restore exited with status 4".to_owned()),
    ]
}

/// Who gets marked how: (vip, protocol, port, mark) for every port of every rule.
fn marked(state: &State) -> BTreeSet<(IpAddr, Protocol, u16, Fwmark)> {
    let mut out = BTreeSet::new();
    for chain in state.marks.values() {
        if !chain.hooked {
            continue;
        }
        for r in &chain.rules {
            for p in &r.ports {
                out.insert((r.vip, r.protocol, *p, r.mark));
            }
        }
    }
    out
}

fn vips(state: &State) -> BTreeSet<IpAddr> {
    state
        .vips
        .as_ref()
        .map(|v| v.owned.iter().chain(&v.foreign).copied().collect())
        .unwrap_or_default()
}

/// What a client of a service kept by both `from` and `to` relies on, which must hold at every
/// step between them: the service exists, its MARK rules still mark (fwmark services), and its
/// VIP stays on the director (when both manage the VIP interface).
fn check_kept_services_stay(from: &State, to: &State, now: &State, what: &str) {
    for key in from.services.keys().filter(|k| to.services.contains_key(k)) {
        assert!(
            now.services.contains_key(key),
            "{what}: service {key} is in both manifests but disappeared"
        );
    }
    let kept_marks: BTreeSet<_> = marked(from).intersection(&marked(to)).copied().collect();
    let now_marks = marked(now);
    for m in &kept_marks {
        assert!(
            now_marks.contains(m),
            "{what}: {m:?} is marked by both manifests but not now"
        );
    }
    let kept_vips: BTreeSet<_> = vips(from).intersection(&vips(to)).copied().collect();
    let now_vips = vips(now);
    for v in &kept_vips {
        assert!(
            now_vips.contains(v),
            "{what}: VIP {v} is in both manifests but was removed"
        );
    }
}

/// The services of `observed` the manifest manages (what `lvsctl apply` plans against).
fn managed(m: &Manifest, state: &State) -> State {
    let mut s = state.clone();
    s.services.retain(|k, _| m.is_managed(k));
    s
}

/// Runs `ops` on a fresh fake kernel in state `from` and returns the state after them.
fn state_after(from: &State, ops: &[Op]) -> State {
    let mut k = FakeKernel::from_state(from.clone());
    k.apply(&Plan { ops: ops.to_vec() }).unwrap();
    k.state().clone()
}

#[test]
fn a_kernel_error_at_any_step_stops_the_plan_and_the_next_pass_converges() {
    let ms = manifests();
    let errs = errors();
    let (mut transitions, mut faults, mut longest) = (0, 0, 0);
    for (from_name, from) in &ms {
        for (to_name, to) in &ms {
            if from_name == to_name {
                continue;
            }
            transitions += 1;
            let start = from.desired_state();
            let desired = to.desired_state();
            let p = lvsctl_plan::plan(&desired, &managed(to, &start));
            let n = p.ops.len();
            assert!(n > 0, "{from_name} -> {to_name}: empty plan");
            longest = longest.max(n);
            // The plan itself, step by step, never drops a kept service.
            let mut k = FakeKernel::from_state(start.clone());
            for (i, op) in p.ops.iter().enumerate() {
                k.execute(op).unwrap();
                check_kept_services_stay(
                    &start,
                    &desired,
                    k.state(),
                    &format!("{from_name} -> {to_name} after step {}/{n}", i + 1),
                );
            }
            for fail_at in 0..n {
                for (e, err) in errs.iter().enumerate() {
                    let what = format!(
                        "{from_name} -> {to_name}, step {}/{n} fails with {err}",
                        fail_at + 1
                    );
                    let mut kernel = FakeKernel::from_state(start.clone());
                    kernel.fail_on(fail_at, err.clone());
                    faults += 1;
                    let (done, got) = kernel.apply(&p).unwrap_err();
                    // The steps before are done and reported done; the failed one did nothing;
                    // nothing after it ran.
                    assert_eq!(done, fail_at, "{what}");
                    assert_eq!(&got, err, "{what}");
                    assert_eq!(kernel.executed(), &p.ops[..fail_at], "{what}");
                    assert_eq!(
                        kernel.attempts(),
                        fail_at + 1,
                        "{what}: ran past the failure"
                    );
                    assert_eq!(
                        kernel.state(),
                        &state_after(&start, &p.ops[..fail_at]),
                        "{what}"
                    );
                    check_kept_services_stay(&start, &desired, kernel.state(), &what);

                    // The next pass plans from whatever was left. Every other such pass also
                    // fails once more, somewhere; the one after that converges.
                    let mut passes = 0;
                    let mut second_fault = e % 2 == 0;
                    loop {
                        passes += 1;
                        assert!(passes <= 3, "{what}: no convergence after {passes} passes");
                        let before = kernel.state().clone();
                        let next = lvsctl_plan::plan(&desired, &managed(to, &before));
                        if next.is_empty() {
                            break;
                        }
                        if second_fault {
                            second_fault = false;
                            let j = (fail_at * 7 + 3) % next.ops.len();
                            kernel.fail_on(kernel.attempts() + j, errs[j % errs.len()].clone());
                            faults += 1;
                            let (done, _) = kernel.apply(&next).unwrap_err();
                            assert_eq!(done, j, "{what}: second fault");
                        } else {
                            kernel.apply(&next).unwrap_or_else(|(i, e)| {
                                panic!("{what}: next pass failed at {i}: {e}")
                            });
                        }
                        // Every pass is as safe as the first.
                        check_kept_services_stay(&start, &desired, kernel.state(), &what);
                    }
                    assert!(
                        lvsctl_plan::plan(&desired, &managed(to, kernel.state())).is_empty(),
                        "{what}: not converged"
                    );
                }
            }
        }
    }
    println!(
        "faults: {faults} kernel errors injected into {transitions} plans of up to {longest} \
         steps (every step x {} error kinds, half of them failing again in the next pass); \
         every plan stopped at the failure and converged on the next clean pass",
        errs.len()
    );
}

// ---------------------------------------------------------------------------------------
// The binary against the file-backed fake kernel

static N: AtomicUsize = AtomicUsize::new(0);

struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "lvsctl-faults/{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir }
    }

    fn kernel(&self) -> PathBuf {
        self.dir.join("kernel.json")
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p.display().to_string()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(repo_root())
            .env("LVSCTL_FAKE_KERNEL", self.kernel())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("LVSCTL_FAKE_FAIL_AT")
            .env_remove("LVSCTL_FAKE_FAIL_SCHEDULER")
            .env_remove("LVSCTL_FAKE_SAVE_EVERY_OP")
            .env_remove("LVSCTL_LOCK_FILE")
            // plan and apply read a running daemon's verdicts: never the machine's own.
            .env("LVSCTL_STATUS_FILE", self.dir.join("status.json"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn observed(&self) -> Observed {
        match std::fs::read_to_string(self.kernel()) {
            Ok(text) => parse_snapshot(&text),
            Err(_) => Observed::default(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn parse_snapshot(text: &str) -> Observed {
    let v: serde_json::Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the kernel file is not whole JSON ({e}):\n{text}"));
    assert_eq!(v["format_version"], "1", "{text}");
    serde_json::from_value(v["observed"].clone()).unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_binary_reports_a_failure_at_any_step_and_the_next_apply_finishes() {
    let sb = Sandbox::new("fail-at");
    let prev = sb.write("prev.yaml", &production_prev());
    let prod = repo_root()
        .join("manifests/production.yaml")
        .display()
        .to_string();
    assert_ok(&sb.run(&["apply", "-q", "-f", &prev]), "apply prev");
    let base = std::fs::read(sb.kernel()).unwrap();
    let start = sb.observed().state;
    let to = parse("production", &read_repo("manifests/production.yaml"));
    let desired = to.desired_state();
    let p = lvsctl_plan::plan(&desired, &managed(&to, &start));
    let n = p.ops.len();
    assert!(n >= 10, "a short plan ({n} steps) proves little");
    let mut faults = 0;
    for k in 0..n {
        std::fs::write(sb.kernel(), &base).unwrap();
        let out = sb
            .cmd(&["apply", "-q", "-f", &prod])
            .env("LVSCTL_FAKE_FAIL_AT", k.to_string())
            .output()
            .unwrap();
        faults += 1;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "step {k}: {err}");
        let mut want = format!(
            "error: apply step {}/{n} ({}) failed: injected failure (LVSCTL_FAKE_FAIL_AT) (EINVAL)\n",
            k + 1,
            p.ops[k]
        );
        if k == 0 {
            want.push_str("nothing was changed\n");
        } else {
            want.push_str(&format!("already done ({k} of {n}):\n"));
            for op in p.ops[..k].iter().take(50) {
                want.push_str(&format!("  {op}\n"));
            }
        }
        assert!(err.contains(&want), "step {k}: expected\n{want}got\n{err}");
        assert!(
            err.contains("fix the cause and run apply again: it continues from the current state"),
            "{err}"
        );
        // Exactly the steps reported done are in the kernel.
        assert_eq!(
            sb.observed().state,
            state_after(&start, &p.ops[..k]),
            "step {k}"
        );
        // The next apply finishes the job, and then there is nothing left to do.
        assert_ok(
            &sb.run(&["apply", "-q", "-f", &prod]),
            "apply after the failure",
        );
        let out = sb.run(&["plan", "-q", "-f", &prod, "--detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "step {k}: {}",
            text(&out.stdout)
        );
        assert!(lvsctl_plan::plan(&desired, &sb.observed().state).is_empty());
    }
    println!(
        "faults: lvsctl apply failed at each of the {faults} steps of production-prev -> \
         production (LVSCTL_FAKE_FAIL_AT); each reported its done steps and the next apply converged"
    );
}

/// A manifest of `n` services on `vip` (ports from `base`), each with two real servers:
/// switching between two of them is a plan of about 6n steps, long enough (with
/// `LVSCTL_FAKE_SAVE_EVERY_OP=1` the file-backed fake rewrites its file after every step) to be
/// caught in the middle.
fn big_manifest(vip: &str, base: u16, n: u16, weight: u32) -> String {
    let mut s = String::from("director:\n  vip_interface: lvs0\nservices:\n");
    // One service both manifests share, unchanged: it must never go.
    s.push_str(
        "  - {name: shared, vip: 198.51.100.1, port: 80, scheduler: rr, real_servers: \
         [{address: 10.1.0.1}, {address: 10.1.0.2}]}\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "  - {{name: s{i}, vip: {vip}, port: {}, scheduler: wlc, real_servers: \
             [{{address: 10.2.{}.{}, weight: {weight}}}, {{address: 10.3.{}.{}}}]}}\n",
            base + i,
            i / 200,
            i % 200 + 1,
            i / 200,
            i % 200 + 1
        ));
    }
    s
}

fn kill9(child: &mut Child) {
    // SIGKILL: no destructor, no unlock, no cleanup; exactly a crash.
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A cheap deterministic generator (splitmix64) for kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn iterations(default: usize, soak: usize) -> usize {
    if std::env::var_os("LVSCTL_SOAK").is_some_and(|v| v == "1") {
        soak
    } else {
        default
    }
}

#[test]
fn kill_9_of_apply_at_random_moments_leaves_a_whole_table_and_the_next_apply_converges() {
    let sb = Sandbox::new("kill9");
    let a = sb.write("a.yaml", &big_manifest("198.51.100.10", 1000, 60, 1));
    let b = sb.write("b.yaml", &big_manifest("198.51.100.20", 2000, 60, 3));
    let (ma, mb) = (
        parse("a", &big_manifest("198.51.100.10", 1000, 60, 1)),
        parse("b", &big_manifest("198.51.100.20", 2000, 60, 3)),
    );
    let shared = ma.services[0].key;
    assert_eq!(shared, mb.services[0].key);
    assert_ok(&sb.run(&["apply", "-q", "-f", &a]), "first apply");
    // How long one full switch takes here, saving after every step, to spread the kills over it.
    let t = Instant::now();
    let out = sb
        .cmd(&["apply", "-q", "-f", &b])
        .env("LVSCTL_FAKE_SAVE_EVERY_OP", "1")
        .output()
        .unwrap();
    assert_ok(&out, "timing apply");
    let full = t.elapsed();
    let mut rng = Rng(0x005e_ed0f_1a11);
    let rounds = iterations(30, 200);
    let (mut killed_mid_plan, mut finished_first) = (0, 0);
    for i in 0..rounds {
        let (file, m) = if i % 2 == 0 { (&a, &ma) } else { (&b, &mb) };
        let before = sb.observed().state;
        let mut child = sb
            .cmd(&["apply", "-q", "-f", file])
            .env("LVSCTL_FAKE_SAVE_EVERY_OP", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wait = Duration::from_micros(rng.next() % (full.as_micros() as u64).max(1));
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_some() {
            finished_first += 1;
        } else {
            kill9(&mut child);
        }
        // Whatever moment it died at: the file is whole, the shared service is there.
        let now = sb.observed().state;
        if now != before && !lvsctl_plan::plan(&m.desired_state(), &now).ops.is_empty() {
            killed_mid_plan += 1;
        }
        assert!(
            now.services.contains_key(&shared),
            "round {i}: the shared service is gone"
        );
        // The lock died with the process: the next apply does not wait for it.
        let t = Instant::now();
        let out = sb.run(&["apply", "-q", "-f", file, "--lock-timeout", "0s"]);
        assert_ok(&out, &format!("round {i}: apply after kill -9"));
        assert!(
            t.elapsed() < full * 3 + Duration::from_secs(5),
            "round {i}: slow"
        );
        assert!(
            lvsctl_plan::plan(&m.desired_state(), &sb.observed().state).is_empty(),
            "round {i}: not converged"
        );
    }
    // Not a check of luck: the kills are spread over whole applies, most of which is the plan.
    assert!(
        killed_mid_plan > 0,
        "no apply was killed in the middle of a plan ({finished_first} finished first)"
    );
    println!(
        "faults: {rounds} lvsctl apply processes killed with SIGKILL ({killed_mid_plan} in the \
         middle of a plan, {finished_first} finished first); every kernel file was whole, the \
         shared service never went, every next apply converged"
    );
}

#[test]
fn two_applies_at_once_never_corrupt_the_table() {
    let sb = Sandbox::new("pairs");
    let ta = big_manifest("198.51.100.10", 1000, 40, 1);
    let tb = big_manifest("198.51.100.20", 2000, 40, 2);
    let a = sb.write("a.yaml", &ta);
    let b = sb.write("b.yaml", &tb);
    let (da, db) = (
        parse("a", &ta).desired_state(),
        parse("b", &tb).desired_state(),
    );
    let pairs = iterations(20, 100);
    let (mut waited, mut refused, mut overlapped) = (0, 0, 0);
    for i in 0..pairs {
        // Every fourth pair gives up at once instead of waiting.
        let timeout = if i % 4 == 3 { "0s" } else { "60s" };
        let spawn = |file: &str| {
            sb.cmd(&["apply", "-f", file, "--lock-timeout", timeout])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let c1 = spawn(first);
        let c2 = spawn(second);
        let o1 = c1.wait_with_output().unwrap();
        let o2 = c2.wait_with_output().unwrap();
        let state = sb.observed().state;
        let is_a = lvsctl_plan::plan(&da, &state).is_empty();
        let is_b = lvsctl_plan::plan(&db, &state).is_empty();
        assert!(
            is_a || is_b,
            "pair {i}: the table is neither manifest's:\n{state:#?}"
        );
        let mut ok = 0;
        for o in [&o1, &o2] {
            let err = text(&o.stderr);
            if o.status.success() {
                ok += 1;
                assert!(
                    !err.contains("does not match the manifest"),
                    "pair {i}: {err}"
                );
                if err.contains("waiting for another lvsctl holding") {
                    waited += 1;
                }
            } else {
                assert_eq!(o.status.code(), Some(1), "pair {i}: {err}");
                assert!(
                    err.contains("another lvsctl is changing this director: lock ")
                        && err.contains("gave up after waiting 0.0s"),
                    "pair {i}: unclear failure: {err}"
                );
                assert_eq!(
                    timeout, "0s",
                    "pair {i}: failed while allowed to wait: {err}"
                );
                refused += 1;
            }
        }
        if ok == 2
            && [&o1, &o2]
                .iter()
                .any(|o| text(&o.stderr).contains("waiting for another"))
        {
            overlapped += 1;
        }
        assert!(ok >= 1, "pair {i}: neither apply succeeded");
        // Both succeeded: the later one's manifest must be the table's.
        if ok == 2 {
            let waiter_b = text(&o1.stderr).contains("waiting for another") && first == &b
                || text(&o2.stderr).contains("waiting for another") && second == &b;
            let waiter_a = text(&o1.stderr).contains("waiting for another") && first == &a
                || text(&o2.stderr).contains("waiting for another") && second == &a;
            if waiter_b && !waiter_a {
                assert!(is_b, "pair {i}: b waited, ran last, but the table is a's");
            }
            if waiter_a && !waiter_b {
                assert!(is_a, "pair {i}: a waited, ran last, but the table is b's");
            }
        }
    }
    assert!(
        waited + refused > 0,
        "no pair ever overlapped: the test proves nothing"
    );
    println!(
        "faults: {pairs} pairs of concurrent lvsctl apply: {waited} waited for the lock \
         ({overlapped} pairs overlapped and both applied in turn), {refused} gave up at once \
         (--lock-timeout 0s) with a clear message; the table was always exactly one manifest's"
    );
}
