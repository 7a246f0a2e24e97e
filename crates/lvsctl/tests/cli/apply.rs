//! `lvsctl apply`: convergence, idempotence, the safety guards, a failure mid-way and its
//! recovery, unmanaged services, and the director lock.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::{EXAMPLES, FakeDaemon, PRODUCTION, Sandbox, example, fresh_state};

const NO_CHANGES: &str =
    "No changes. IPVS services, real servers, MARK rules and VIPs match the manifest.\n";

#[test]
fn each_example_applies_from_empty_and_then_has_no_changes() {
    let mut manifests: Vec<String> = EXAMPLES.iter().map(|e| example(e)).collect();
    manifests.push(PRODUCTION.to_owned());
    for m in &manifests {
        let sb = Sandbox::new("apply-each");
        let planned = sb.run(&["plan", "-f", m]).success();
        let applied = sb.apply(m, &[]);
        assert_eq!(
            applied.stdout, planned.stdout,
            "{m}: apply prints the plan it runs"
        );
        // Progress and logs go to stderr, never into the plan.
        // Small plans log each step, big ones their progress.
        let steps = applied
            .stdout
            .lines()
            .filter(|l| l.starts_with("  "))
            .count();
        if steps <= 20 {
            assert!(applied.stderr.contains("[1/"), "{m}: {}", applied.stderr);
        }
        assert!(
            applied.stderr.contains(" operation(s) in "),
            "{m}: {}",
            applied.stderr
        );
        assert!(!applied.stdout.contains("INFO"), "{m}");
        let again = sb.apply(m, &[]);
        assert_eq!(again.stdout, NO_CHANGES, "{m}");
        sb.run(&["plan", "-f", m, "--detailed-exitcode"]).success();
    }
}

#[test]
fn quiet_apply_prints_the_plan_and_no_logs() {
    let sb = Sandbox::new("apply-quiet");
    let out = sb.apply(&example("ppc"), &["-q"]);
    assert!(out.stdout.contains("Plan: 6 to add"), "{}", out.stdout);
    assert_eq!(out.stderr, "");
}

/// The seed's experiments one after another on the same director: each switch leaves exactly
/// the new example, with nothing of the previous one.
#[test]
fn switching_pcc_ppc_pnmpp_converges_with_no_leftovers() {
    let sb = Sandbox::new("apply-switch");
    sb.apply(&example("pcc"), &[]);
    for (from, to) in [("pcc", "ppc"), ("ppc", "pnmpp"), ("pnmpp", "pcc")] {
        let before = sb.kernel_bytes();
        // Every service of the table goes: refused without --allow-destroy.
        let out = sb.run(&["apply", "-f", &example(to)]).code(3);
        assert!(
            out.stderr
                .contains("the manifest keeps none of them and adds"),
            "{from} -> {to}: {}",
            out.stderr
        );
        assert_eq!(sb.kernel_bytes(), before, "{from} -> {to}: nothing changed");
        sb.apply(&example(to), &["--allow-destroy"])
            .stderr_has("deleting every service of the director (--allow-destroy)");
        assert_eq!(
            sb.state(),
            fresh_state(&example(to)),
            "{from} -> {to} left something behind"
        );
        let exported = sb.run(&["export"]).success().stdout;
        let fresh = Sandbox::new("apply-switch-fresh");
        fresh.apply(&example(to), &[]);
        assert_eq!(exported, fresh.run(&["export"]).success().stdout);
        assert_eq!(sb.apply(&example(to), &[]).stdout, NO_CHANGES);
    }
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let sb = Sandbox::new("apply-dry-run");
    let out = sb.apply(&example("ppc"), &["--dry-run"]);
    assert!(
        out.stdout
            .ends_with("Plan: 6 to add, 0 to change, 0 to destroy.\n")
    );
    assert!(
        out.stderr.contains("dry run: nothing applied"),
        "{}",
        out.stderr
    );
    assert!(sb.listing().is_empty(), "no kernel file, no lock file");
    sb.apply(&example("ppc"), &[]);
    let before = sb.listing();
    sb.apply(&example("pcc"), &["--dry-run", "--allow-destroy"]);
    sb.apply(&example("ppc"), &["--dry-run"]);
    assert_eq!(sb.listing(), before);
}

#[test]
fn destroy_guard_refuses_to_empty_a_director_unless_allowed() {
    let sb = Sandbox::new("apply-destroy-guard");
    sb.apply(&example("ppc"), &[]);
    let empty = sb.write("empty.yaml", "# truncated by a bad commit\nservices: []\n");
    let empty = empty.to_str().unwrap();
    let before = sb.kernel_bytes();
    let out = sb.run(&["apply", "-f", empty]).code(3);
    assert_eq!(
        out.stderr.lines().last().unwrap(),
        "error: refusing to delete all 2 IPVS services of the director \
         (tcp/192.168.6.101:22, tcp/192.168.6.101:80); pass --allow-destroy if the manifest \
         really is meant to empty the table; nothing was changed"
    );
    assert!(
        out.stdout
            .contains("Plan: 0 to add, 0 to change, 2 to destroy.")
    );
    assert_eq!(sb.kernel_bytes(), before);
    // --dry-run reports the same refusal.
    sb.run(&["apply", "-f", empty, "--dry-run"]).code(3);
    sb.apply(empty, &["--allow-destroy"]);
    assert!(sb.state().services.is_empty());
    // An empty director stays empty without any flag.
    assert_eq!(sb.apply(empty, &[]).stdout, NO_CHANGES);
}

#[test]
fn max_changes_refuses_bigger_plans() {
    let sb = Sandbox::new("apply-max-changes");
    let out = sb
        .run(&["apply", "-f", &example("ppc"), "--max-changes", "1"])
        .code(3);
    assert_eq!(
        out.stderr.lines().last().unwrap(),
        "error: refusing a plan that changes 6 objects (6 to add, 0 to change, 0 to destroy), \
         more than --max-changes 1 allows; raise --max-changes if that is intended; nothing was changed"
    );
    assert!(sb.kernel_bytes().is_none());
    // --allow-destroy does not lift the change limit.
    sb.run(&[
        "apply",
        "-f",
        &example("ppc"),
        "--max-changes",
        "5",
        "--allow-destroy",
    ])
    .code(3);
    sb.apply(&example("ppc"), &["--max-changes", "6"]);
    assert_eq!(sb.state(), fresh_state(&example("ppc")));
}

#[test]
fn a_failure_midway_names_the_step_lists_what_was_done_and_the_next_apply_finishes() {
    let sb = Sandbox::new("apply-midway");
    let ppc = example("ppc");
    // The fake kernel fails its op number 2 (0-based): the third step.
    let out = sb
        .cmd(&["apply", "-f", &ppc])
        .env("LVSCTL_FAKE_FAIL_AT", "2")
        .run()
        .code(1);
    let expected = "\
error: apply step 3/6 (add real server 192.168.60.101:22 to tcp/192.168.6.101:22) failed: injected failure (LVSCTL_FAKE_FAIL_AT) (EINVAL)
already done (2 of 6):
  add service tcp/192.168.6.101:22
  add service tcp/192.168.6.101:80
fix the cause and run apply again: it continues from the current state
";
    assert!(out.stderr.ends_with(expected), "{}", out.stderr);
    // The director holds exactly the steps that were done.
    let state = sb.state();
    let keys: Vec<String> = state.services.keys().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["tcp/192.168.6.101:22", "tcp/192.168.6.101:80"]);
    assert!(state.services.values().all(|s| s.dests.is_empty()));
    // The next apply does the rest, then there is nothing left to do.
    let out = sb.apply(&ppc, &[]);
    assert!(
        out.stdout
            .ends_with("Plan: 4 to add, 0 to change, 0 to destroy.\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("+ service"), "{}", out.stdout);
    assert_eq!(sb.state(), fresh_state(&ppc));
    assert_eq!(sb.apply(&ppc, &[]).stdout, NO_CHANGES);
}

#[test]
fn a_missing_scheduler_stops_at_the_first_step() {
    let sb = Sandbox::new("apply-scheduler");
    let out = sb
        .cmd(&["apply", "-f", &example("ppc")])
        .env("LVSCTL_FAKE_FAIL_SCHEDULER", "rr")
        .run()
        .code(1);
    assert!(
        out.stderr.contains(
            "error: apply step 1/6 (add service tcp/192.168.6.101:22) failed: \
             scheduler \"rr\" is not available (ENOENT)\nnothing was changed\n"
        ),
        "{}",
        out.stderr
    );
    assert!(sb.state().services.is_empty());
    // Another scheduler is unaffected.
    sb.cmd(&["apply", "-f", &example("ppc")])
        .env("LVSCTL_FAKE_FAIL_SCHEDULER", "wlc")
        .run()
        .success();
}

#[test]
fn unmanaged_services_survive_and_stay_out_of_the_plan() {
    let sb = Sandbox::new("apply-unmanaged");
    // Somebody else's service (kube-proxy's range) is already on the director.
    let kube = sb.write(
        "kube.yaml",
        "services:\n  - {name: kube-dns, vip: 10.96.0.10, port: 53, protocol: udp, scheduler: rr, \
         real_servers: [{address: 10.244.0.5, forward: nat}]}\n",
    );
    sb.apply(kube.to_str().unwrap(), &[]);
    let kube_state = sb.state();
    let ours = sb.write(
        "ours.yaml",
        &format!(
            "director:\n  unmanaged: [{{cidr: 10.96.0.0/12}}]\n{}",
            std::fs::read_to_string(crate::support::repo_root().join("examples/ppc.yaml")).unwrap()
        ),
    );
    let ours = ours.to_str().unwrap();
    let out = sb.apply(ours, &[]);
    assert!(!out.stdout.contains("10.96"), "{}", out.stdout);
    assert!(
        out.stdout
            .ends_with("Plan: 6 to add, 0 to change, 0 to destroy.\n"),
        "{}",
        out.stdout
    );
    let state = sb.state();
    let kube_key = "udp/10.96.0.10:53".parse().unwrap();
    assert_eq!(state.services[&kube_key], kube_state.services[&kube_key]);
    assert_eq!(state.services.len(), 3);
    assert_eq!(sb.apply(ours, &[]).stdout, NO_CHANGES);
    // An empty manifest with the same selector: the guard counts only managed services, and
    // --allow-destroy still leaves the unmanaged one alone.
    let empty = sb.write(
        "empty.yaml",
        "director:\n  unmanaged: [{cidr: 10.96.0.0/12}]\nservices: []\n",
    );
    sb.run(&["apply", "-f", empty.to_str().unwrap()])
        .code(3)
        .stderr_has("refusing to delete all 2 IPVS services");
    sb.apply(empty.to_str().unwrap(), &["--allow-destroy"]);
    assert_eq!(sb.state().services.len(), 1);
    assert!(sb.state().services.contains_key(&kube_key));
}

#[test]
fn an_invalid_manifest_takes_no_lock_and_changes_nothing() {
    let sb = Sandbox::new("apply-invalid");
    let bad = sb.write("bad.yaml", "services:\n  - name: web\n    vip: 10.0.0.1\n");
    let bad = bad.to_str().unwrap();
    let out = sb.run(&["apply", "-f", bad]).code(1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with(&format!(
            "{bad}:2:5: services[0].port: missing; a service needs a port"
        )),
        "{}",
        out.stderr
    );
    assert!(!sb.kernel().exists() && !sb.lock_file().exists());
}

#[test]
fn a_second_apply_waits_for_the_lock_then_gives_up_clearly() {
    let sb = Sandbox::new("apply-lock");
    sb.apply(&example("pcc"), &[]);
    let before = sb.kernel_bytes();
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(sb.lock_file())
        .unwrap();
    lock.lock().unwrap();

    let started = Instant::now();
    let out = sb
        .run(&[
            "apply",
            "-f",
            &example("ppc"),
            "--allow-destroy",
            "--lock-timeout",
            "1s",
        ])
        .code(1);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "gave up after {waited:?}");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    let lock_name = sb.lock_file().display().to_string();
    assert!(
        out.stderr
            .contains(&format!("waiting for another lvsctl holding {lock_name}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with(&format!(
            "error: another lvsctl is changing this director: lock {lock_name} is held; \
             gave up after waiting 1.0s (wait for it to finish, or raise --lock-timeout)\n"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(sb.kernel_bytes(), before, "nothing changed while locked");

    // A holder that left a note is named.
    lock.set_len(0).unwrap();
    writeln!(
        &lock,
        "pid {}: lvsctl apply -f other.yaml",
        std::process::id()
    )
    .unwrap();
    sb.run(&["apply", "-f", &example("ppc"), "--lock-timeout", "200ms"])
        .code(1)
        .stderr_has(&format!(
            "is held by pid {}: lvsctl apply -f other.yaml;",
            std::process::id()
        ));

    // With time to spare, the second apply waits and then runs.
    let child = sb
        .cmd(&[
            "apply",
            "-f",
            &example("ppc"),
            "--allow-destroy",
            "--lock-timeout",
            "30s",
        ])
        .spawn();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sb.kernel_bytes(), before, "still waiting");
    lock.unlock().unwrap();
    let out = crate::support::Out::new("apply (waiting)".into(), child.wait_with_output().unwrap())
        .success();
    assert!(out.stdout.contains("Plan: 6 to add"), "{}", out.stdout);
    assert_eq!(sb.state(), fresh_state(&example("ppc")));
    // The lock file is left for the next run, without a stale note in it.
    assert_eq!(std::fs::read_to_string(sb.lock_file()).unwrap(), "");
}

#[test]
fn concurrent_applies_run_one_after_the_other() {
    let sb = Sandbox::new("apply-concurrent");
    let children: Vec<_> = (0..4)
        .map(|_| sb.cmd(&["apply", "-f", PRODUCTION]).spawn())
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| crate::support::Out::new("apply".into(), c.wait_with_output().unwrap()).success())
        .collect();
    // Exactly one of them did the work; the others found nothing left to do.
    let worked = outs
        .iter()
        .filter(|o| {
            o.stdout
                .ends_with("Plan: 32 to add, 0 to change, 0 to destroy.\n")
        })
        .count();
    let idle = outs.iter().filter(|o| o.stdout == NO_CHANGES).count();
    assert_eq!((worked, idle), (1, 3), "{outs:#?}");
    assert_eq!(sb.state(), fresh_state(PRODUCTION));
}

/// Two checked services: `web` removes a failed real server, `quiet` keeps it at weight 0.
const CHECKED: &str = "
services:
  - name: web
    protocol: tcp
    vip: 10.0.0.1
    port: 80
    real_servers:
      - {address: 10.0.1.1, weight: 5}
      - {address: 10.0.1.2, weight: 7}
    health:
      http: {path: /.health.html, expect: OK}
  - name: quiet
    protocol: tcp
    vip: 10.0.0.2
    port: 80
    real_servers:
      - {address: 10.0.2.1, weight: 3}
      - {address: 10.0.2.2, weight: 3}
    health:
      tcp: {}
      on_failure: quiesce
";

/// A daemon status file (the shape `daemon/status.rs` writes) naming `pid`, with `down` (service,
/// server, reason, confirmed) down and 10.0.1.1 of `web` up.
fn status_file(pid: u64, down: &[(&str, &str, &str, bool)]) -> String {
    let mut health = serde_json::json!({
        "tcp/10.0.0.1:80": {"10.0.1.1:80": {"state": "up", "reason": "http 200", "check": "http",
            "confirmed": true, "since": 0.0, "last_check": 0.0, "consecutive_ok": 9,
            "consecutive_fail": 0, "checks": 9, "failures": 0, "on_failure": "remove"}}
    });
    for (svc, server, reason, confirmed) in down {
        health[*svc][*server] = serde_json::json!({"state": "down", "reason": reason,
            "check": "http", "confirmed": confirmed, "since": 0.0, "last_check": 0.0,
            "consecutive_ok": 0, "consecutive_fail": 3, "checks": 9, "failures": 3,
            "on_failure": "remove"});
    }
    serde_json::json!({
        "format_version": "1", "pid": pid, "version": "0.1.0", "started_at": 0.0,
        "updated_at": 0.0,
        "manifest": {"ok": true, "paths": ["lvsctl.yaml"], "loaded_at": 0.0, "error": null,
                     "services": 2, "real_servers": 4},
        "last_reconcile": null,
        "health": health,
        "draining": []
    })
    .to_string()
}

const TWO_DOWN: &[(&str, &str, &str, bool)] = &[
    ("tcp/10.0.0.1:80", "10.0.1.2:80", "http: status 503", true),
    (
        "tcp/10.0.0.2:80",
        "10.0.2.2:80",
        "tcp: connection refused",
        true,
    ),
];

/// Each service's real servers and weights, as `service -> [(server, weight)]`.
fn weights(sb: &Sandbox) -> Vec<(String, Vec<(String, u32)>)> {
    sb.state()
        .services
        .iter()
        .map(|(k, s)| {
            let dests = s
                .dests
                .iter()
                .map(|(dk, d)| (dk.to_string(), d.weight))
                .collect();
            (k.to_string(), dests)
        })
        .collect()
}

fn all_in() -> Vec<(String, Vec<(String, u32)>)> {
    vec![
        (
            "tcp/10.0.0.1:80".to_owned(),
            vec![("10.0.1.1:80".to_owned(), 5), ("10.0.1.2:80".to_owned(), 7)],
        ),
        (
            "tcp/10.0.0.2:80".to_owned(),
            vec![("10.0.2.1:80".to_owned(), 3), ("10.0.2.2:80".to_owned(), 3)],
        ),
    ]
}

/// An apply beside a running daemon must not put back what the daemon's checks took out: the
/// daemon would only undo it at its next resync, and traffic would go to a dead server until
/// then. The daemon's verdicts come from its status file, applied as the daemon applies them.
#[test]
fn apply_beside_a_running_daemon_keeps_out_what_it_found_down() {
    let sb = Sandbox::new("apply-daemon-health");
    let m = sb.write("lvsctl.yaml", CHECKED);
    let m = m.to_str().unwrap();
    let daemon = FakeDaemon::start();
    sb.write("status.json", &status_file(daemon.pid(), TWO_DOWN));

    let plan = sb.run(&["plan", "-f", m]).success();
    assert!(!plan.stdout.contains("10.0.1.2:80"), "{}", plan.stdout);
    assert!(plan.stdout.contains("10.0.1.1:80"), "{}", plan.stdout);
    assert!(
        plan.stderr.contains(&format!(
            "the daemon (pid {}) found 2 real server(s) down",
            daemon.pid()
        )),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stderr
            .contains("tcp/10.0.0.1:80 10.0.1.2:80 out (http: status 503)"),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stderr
            .contains("tcp/10.0.0.2:80 10.0.2.2:80 at weight 0 (tcp: connection refused)"),
        "{}",
        plan.stderr
    );

    sb.apply(m, &[]);
    let want = vec![
        (
            "tcp/10.0.0.1:80".to_owned(),
            vec![("10.0.1.1:80".to_owned(), 5)],
        ),
        (
            "tcp/10.0.0.2:80".to_owned(),
            vec![("10.0.2.1:80".to_owned(), 3), ("10.0.2.2:80".to_owned(), 0)],
        ),
    ];
    assert_eq!(weights(&sb), want);
    // Converged as the daemon wants it: nothing more to do.
    sb.run(&["plan", "-f", m, "--detailed-exitcode"]).success();

    // Told to, the plan is the manifest as written.
    let out = sb
        .run(&[
            "plan",
            "-f",
            m,
            "--ignore-daemon-health",
            "--detailed-exitcode",
        ])
        .code(2);
    assert!(out.stdout.contains("10.0.1.2:80"), "{}", out.stdout);
    assert!(
        !out.stderr.contains("found 2 real server(s) down"),
        "{}",
        out.stderr
    );
    // The same through --daemon-status elsewhere: no file there, no verdicts.
    let elsewhere = sb.path("no-daemon.json");
    sb.run(&[
        "plan",
        "-f",
        m,
        "--daemon-status",
        elsewhere.to_str().unwrap(),
        "--detailed-exitcode",
    ])
    .code(2);
}

/// The daemon's verdicts take real servers out, so a status file anyone could have written
/// (every user may write it, or rename another over it) is not taken for them: `apply`
/// refuses, changing nothing, and `plan` goes on without it, as for a file it cannot read.
#[test]
fn a_status_file_every_user_could_write_is_not_taken_for_the_daemons_verdicts() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new("apply-daemon-health-forged");
    let m = sb.write("lvsctl.yaml", CHECKED);
    let m = m.to_str().unwrap();
    sb.apply(m, &["--ignore-daemon-health"]);
    assert_eq!(weights(&sb), all_in());
    let daemon = FakeDaemon::start();
    let status = sb.write("status.json", &status_file(daemon.pid(), TWO_DOWN));
    let mode = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };

    mode(&status, 0o666);
    let out = sb.run(&["apply", "-f", m]).code(1);
    assert!(
        out.stderr.contains("every user can write it (mode 666)"),
        "{}",
        out.stderr
    );
    assert_eq!(weights(&sb), all_in(), "nothing changed");
    let plan = sb.run(&["plan", "-f", m, "--detailed-exitcode"]).success();
    assert!(
        plan.stderr
            .contains("planning without the daemon's health verdicts"),
        "{}",
        plan.stderr
    );

    // A plain file, but in a folder every user can write: anyone could rename theirs over it.
    mode(&status, 0o644);
    let open = sb.path("open");
    std::fs::create_dir(&open).unwrap();
    let moved = open.join("status.json");
    std::fs::rename(&status, &moved).unwrap();
    mode(&open, 0o777);
    let out = sb
        .run(&["apply", "-f", m, "--daemon-status", moved.to_str().unwrap()])
        .code(1);
    assert!(
        out.stderr.contains("every user can write its folder"),
        "{}",
        out.stderr
    );
    assert_eq!(weights(&sb), all_in(), "nothing changed");

    // With the sticky bit (as on /tmp) nobody can replace it: the verdicts count.
    mode(&open, 0o1777);
    sb.run(&["apply", "-f", m, "--daemon-status", moved.to_str().unwrap()])
        .success();
    assert_ne!(weights(&sb), all_in());
}

/// Every real server of a service down, confirmed by checks: the sorry server is in, as the
/// daemon has it. Not confirmed yet (the daemon just started), it stays as the kernel has it.
#[test]
fn apply_beside_a_running_daemon_keeps_its_sorry_server() {
    let with_sorry = CHECKED.replace(
        "      - {address: 10.0.1.2, weight: 7}\n    health:",
        "      - {address: 10.0.1.2, weight: 7}\n    sorry_server: {address: 10.0.9.9}\n    health:",
    );
    assert_ne!(with_sorry, CHECKED);
    let sb = Sandbox::new("apply-daemon-sorry");
    let m = sb.write("lvsctl.yaml", &with_sorry);
    let m = m.to_str().unwrap();
    let daemon = FakeDaemon::start();
    let web_down = |confirmed| {
        [
            (
                "tcp/10.0.0.1:80",
                "10.0.1.1:80",
                "http: status 503",
                confirmed,
            ),
            (
                "tcp/10.0.0.1:80",
                "10.0.1.2:80",
                "http: status 503",
                confirmed,
            ),
        ]
    };
    // Unconfirmed, and no sorry server in the kernel: none added.
    sb.write("status.json", &status_file(daemon.pid(), &web_down(false)));
    sb.apply(m, &[]);
    assert_eq!(weights(&sb)[0], ("tcp/10.0.0.1:80".to_owned(), vec![]));
    // Confirmed: the sorry server comes in, and the log says why.
    sb.write("status.json", &status_file(daemon.pid(), &web_down(true)));
    let out = sb.apply(m, &[]);
    assert_eq!(
        weights(&sb)[0],
        (
            "tcp/10.0.0.1:80".to_owned(),
            vec![("10.0.9.9:80".to_owned(), 1)]
        )
    );
    assert!(
        out.stderr.contains(
            "tcp/10.0.0.1:80: every real server is down or at weight 0, so its sorry server is in"
        ),
        "{}",
        out.stderr
    );
    // One back up: the sorry server goes, the server returns.
    sb.write(
        "status.json",
        &status_file(daemon.pid(), &web_down(true)[1..]),
    );
    sb.apply(m, &[]);
    assert_eq!(
        weights(&sb)[0],
        (
            "tcp/10.0.0.1:80".to_owned(),
            vec![("10.0.1.1:80".to_owned(), 5)]
        )
    );
}

#[test]
fn a_status_file_of_no_running_daemon_changes_nothing_and_an_unreadable_one_stops_apply() {
    let sb = Sandbox::new("apply-daemon-gone");
    let m = sb.write("lvsctl.yaml", CHECKED);
    let m = m.to_str().unwrap();
    // No process has this pid: the daemon is gone and its verdicts with it.
    sb.write("status.json", &status_file(99_999_999, TWO_DOWN));
    let out = sb.apply(m, &[]);
    assert!(
        out.stderr
            .contains("was written by a daemon (pid 99999999) but it no longer runs"),
        "{}",
        out.stderr
    );
    assert_eq!(weights(&sb), all_in());
    // The pid is taken by another program (this test): not a daemon.
    sb.write(
        "status.json",
        &status_file(u64::from(std::process::id()), TWO_DOWN),
    );
    sb.run(&["plan", "-f", m, "--detailed-exitcode"])
        .success()
        .stderr_has("but that pid is now another program");
    // A daemon that stopped says so in its last status file.
    let daemon = FakeDaemon::start();
    let mut stopped: serde_json::Value =
        serde_json::from_str(&status_file(daemon.pid(), TWO_DOWN)).unwrap();
    stopped["stopped"] = serde_json::Value::Bool(true);
    sb.write("status.json", &stopped.to_string());
    sb.run(&["plan", "-f", m, "--detailed-exitcode"])
        .success()
        .stderr_has("but it stopped");

    // A file that is not a status file: plan says so and plans the manifest; apply changes
    // nothing unless told to ignore it.
    sb.write("status.json", "not json");
    let out = sb.run(&["plan", "-f", m, "--detailed-exitcode"]).success();
    assert!(
        out.stderr.contains("is not a daemon status file")
            && out
                .stderr
                .contains("planning without the daemon's health verdicts"),
        "{}",
        out.stderr
    );
    let manifest_down = CHECKED.replace("      - {address: 10.0.1.2, weight: 7}\n", "");
    let m2 = sb.write("down.yaml", &manifest_down);
    let m2 = m2.to_str().unwrap();
    let before = sb.kernel_bytes();
    let out = sb.run(&["apply", "-f", m2]).code(1);
    assert!(
        out.stderr.contains("is not a daemon status file")
            && out
                .stderr
                .contains("nothing was changed; pass --ignore-daemon-health"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.kernel_bytes(), before);
    sb.apply(m2, &["--ignore-daemon-health"]);
    assert_eq!(weights(&sb)[0].1.len(), 1);
}
