//! `lvsctl plan`: golden text plans, the JSON document, `--detailed-exitcode`, `--state`
//! snapshots, and the promise that a plan never writes anything.

use crate::support::{EXAMPLES, PRODUCTION, Sandbox, example, golden, has_ansi, repo_root};

/// The README's first command, exactly as documented (minus `cargo run -q -p lvsctl --`).
const README_ARGS: &[&str] = &[
    "plan",
    "-f",
    "examples/pnmpp.yaml",
    "--state",
    "examples/snapshots/ppc-director.json",
];

#[test]
fn text_plan_of_each_example_against_an_empty_director() {
    let sb = Sandbox::new("plan-golden");
    let mut manifests: Vec<String> = EXAMPLES.iter().map(|e| example(e)).collect();
    manifests.push(PRODUCTION.to_owned());
    for m in &manifests {
        let out = sb.run(&["plan", "-f", m]).success();
        let name = std::path::Path::new(m)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap();
        golden(&format!("plan/{name}.txt"), &out.stdout);
        assert!(!has_ansi(&out.stdout), "piped output is plain");
        assert!(
            out.stdout.ends_with("to destroy.\n"),
            "the plan ends with its summary line:\n{}",
            out.stdout
        );
    }
    assert!(
        sb.listing().is_empty(),
        "plan created no kernel and no lock file"
    );
}

#[test]
fn json_plan_is_one_versioned_document() {
    let sb = Sandbox::new("plan-json");
    let out = sb
        .run(&["plan", "-f", &example("pnmpp"), "--output", "json"])
        .success();
    assert!(
        out.stdout.ends_with("}\n") && !out.stdout.ends_with("\n\n"),
        "one document, one final newline: {:?}",
        &out.stdout[out.stdout.len().saturating_sub(10)..]
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["format_version"], "1");
    assert_eq!(
        v["summary"],
        serde_json::json!({"add": 4, "change": 0, "destroy": 0})
    );
    let ops: Vec<&str> = v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        ["add_service", "add_dest", "add_dest", "write_mark_chain"]
    );
    assert_eq!(v["ops"][0]["key"], "fwmark/10");
    assert_eq!(
        v["ops"][3]["rules"][0]["ports"],
        serde_json::json!([22, 80])
    );
    // The text plan of the same change agrees.
    let text = sb.run(&["plan", "-f", &example("pnmpp")]).success();
    assert!(
        text.stdout
            .ends_with("Plan: 4 to add, 0 to change, 0 to destroy.\n")
    );
}

#[test]
fn detailed_exitcode_is_0_without_changes_2_with_changes_1_on_error() {
    let sb = Sandbox::new("plan-exitcode");
    let ppc = example("ppc");
    // Without the flag, a plan with changes still exits 0.
    sb.run(&["plan", "-f", &ppc]).success();
    sb.run(&["plan", "-f", &ppc, "--detailed-exitcode"]).code(2);
    sb.run(&["plan", "-f", &ppc, "--detailed-exitcode", "-o", "json"])
        .code(2);
    sb.apply(&ppc, &[]);
    let out = sb
        .run(&["plan", "-f", &ppc, "--detailed-exitcode"])
        .success();
    assert_eq!(
        out.stdout,
        "No changes. IPVS services, real servers, MARK rules and VIPs match the manifest.\n"
    );
    let bad = sb.write(
        "bad.yaml",
        "services:\n  - name: web\n    vip: 10.0.0.1\n    port: 99999\n",
    );
    let out = sb
        .run(&["plan", "-f", bad.to_str().unwrap(), "--detailed-exitcode"])
        .code(1);
    assert_eq!(out.stdout, "");
    // A director that cannot be read is an error too, not "changes".
    std::fs::write(sb.kernel(), "not json").unwrap();
    sb.run(&["plan", "-f", &ppc, "--detailed-exitcode"])
        .code(1)
        .stderr_has("not an lvsctl state snapshot");
}

#[test]
fn plan_against_a_snapshot_never_opens_the_kernel() {
    let sb = Sandbox::new("plan-state");
    // The "kernel" runs PCC; the snapshot says PPC: the plan must follow the snapshot.
    sb.apply(&example("pcc"), &[]);
    let before = sb.listing();
    let snap = repo_root().join("examples/snapshots/ppc-director.json");
    let out = sb
        .run(&[
            "plan",
            "-f",
            &example("ppc"),
            "--state",
            snap.to_str().unwrap(),
            "--detailed-exitcode",
        ])
        .success();
    assert_eq!(
        out.stdout,
        "No changes. IPVS services, real servers, MARK rules and VIPs match the manifest.\n"
    );
    sb.run(&[
        "plan",
        "-f",
        &example("pcc"),
        "--state",
        snap.to_str().unwrap(),
        "--detailed-exitcode",
    ])
    .code(2)
    .stdout_has("- service tcp/192.168.6.101:80");
    assert_eq!(sb.listing(), before, "plan --state wrote nothing");
    // Works with no kernel at all (a CI runner far from the director).
    let out = sb
        .cmd(&[
            "plan",
            "-f",
            &example("ppc"),
            "--state",
            snap.to_str().unwrap(),
        ])
        .env_remove("LVSCTL_FAKE_KERNEL")
        .run()
        .success();
    assert!(out.stdout.starts_with("No changes."), "{}", out.stdout);

    // A snapshot records no director timeouts: the plan says they were not compared.
    let ppc = std::fs::read_to_string(repo_root().join("examples/ppc.yaml")).unwrap();
    let with_timeouts = sb.write(
        "ppc-timeouts.yaml",
        &format!("director: {{timeouts: {{tcp: 15m}}}}\n{ppc}"),
    );
    sb.run(&[
        "plan",
        "-f",
        with_timeouts.to_str().unwrap(),
        "--state",
        snap.to_str().unwrap(),
        "--detailed-exitcode",
    ])
    .success()
    .stdout_has("No changes.")
    .stderr_has("director.timeouts are not compared: the snapshot");
}

#[test]
fn bad_snapshots_are_reported() {
    let sb = Sandbox::new("plan-bad-state");
    let missing = sb.path("missing.json");
    let missing = missing.to_str().unwrap();
    sb.run(&["plan", "-f", &example("ppc"), "--state", missing])
        .code(1)
        .stderr_has(&format!("{missing}: cannot read snapshot"));
    let snap = std::fs::read_to_string(repo_root().join("examples/snapshots/ppc-director.json"))
        .unwrap()
        .replace("\"format_version\": \"1\"", "\"format_version\": \"7\"");
    let future = sb.write("future.json", &snap);
    let future = future.to_str().unwrap();
    sb.run(&["plan", "-f", &example("ppc"), "--state", future])
        .code(1)
        .stderr_has(&format!(
            "{future}: snapshot format_version \"7\" is not supported"
        ));
}

#[test]
fn plan_never_writes_anything() {
    let sb = Sandbox::new("plan-readonly");
    sb.apply(&example("ppc"), &[]);
    let before = sb.listing();
    assert!(!before.is_empty());
    for args in [
        vec!["plan", "-f", "examples/pnmpp.yaml"],
        vec!["plan", "-f", "examples/pnmpp.yaml", "-o", "json"],
        vec!["plan", "-f", "examples/pcc.yaml", "--detailed-exitcode"],
        vec!["plan", "-f", "manifests/production.yaml"],
    ] {
        let out = sb.run(&args);
        assert!(out.code == 0 || out.code == 2, "{out:?}");
        assert_eq!(sb.listing(), before, "{args:?} changed the sandbox");
    }
}

#[test]
fn plan_warns_when_apply_would_refuse_it() {
    let sb = Sandbox::new("plan-guard-warning");
    sb.apply(&example("ppc"), &[]);
    let out = sb.run(&["plan", "-f", &example("pnmpp")]).success();
    assert!(
        out.stderr.contains(
            "this plan deletes all 2 IPVS service(s) of the director: apply will refuse it unless given --allow-destroy"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("WARN"), "logs stay off stdout");
    // No warning for a plan that keeps services.
    let out = sb.run(&["plan", "-f", &example("ppc")]).success();
    assert_eq!(out.stderr.matches("WARN").count(), 0, "{}", out.stderr);
}

#[test]
fn readme_first_command_plans_ppc_to_pnmpp_from_the_bundled_snapshot() {
    let sb = Sandbox::new("plan-readme");
    let out = sb
        .cmd(README_ARGS)
        .env_remove("LVSCTL_FAKE_KERNEL")
        .run()
        .success();
    golden("plan/readme-ppc-to-pnmpp.txt", &out.stdout);
    // The README shows this very plan: it must not drift from what the command prints.
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let shown = readme
        .split("```text\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.starts_with("Symbols:") && block.contains("fwmark/10"))
        .expect("the README shows the ppc -> pnmpp plan in a ```text block");
    assert_eq!(
        shown, out.stdout,
        "README.md's plan differs from the command's output"
    );
    assert!(
        out.stdout
            .ends_with("Plan: 4 to add, 0 to change, 2 to destroy.\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_bundled_snapshot_is_the_ppc_example_with_counters() {
    let text =
        std::fs::read_to_string(repo_root().join("examples/snapshots/ppc-director.json")).unwrap();
    let snap = crate::support::parse_snapshot(&text);
    assert_eq!(snap.state, crate::support::fresh_state(&example("ppc")));
    // Counters a director running PPC for a while would show: per real server, and a service
    // total that is their sum.
    assert_eq!(snap.counters.len(), 2);
    for (key, c) in &snap.counters {
        assert!(snap.state.services.contains_key(key), "{key}");
        assert!(c.service.conns > 0, "{key}");
        let sum: u64 = c.dests.values().map(|d| d.conns).sum();
        assert_eq!(c.service.conns, sum, "{key}");
        assert!(c.dests.values().all(|d| d.active_conns > 0), "{key}");
    }
}
