//! `lvsctl import --from ipvsadm`: real `ipvsadm -S -n` dumps (the VM harness's recorded
//! ones, and a production-like one) become manifests that validate and, applied, give the same
//! IPVS services; lines it cannot read are reported with their number.

use std::path::Path;

use crate::support::{EXAMPLES, PRODUCTION, Sandbox, example, fixtures, fresh_state, repo_root};

/// `ipvsadm -S -n` output recorded in the VM after running each seed experiment.
fn seed_dump(name: &str) -> String {
    format!("tests/vm/expected/{name}.ipvsadm")
}

/// Imports `dump`, checks the manifest validates, applies it to an empty director and returns
/// that director's sandbox.
fn import_and_apply(dump: &str) -> (Sandbox, String) {
    let sb = Sandbox::new("import");
    let out = sb.run(&["import", "--from", "ipvsadm", dump]).success();
    assert_eq!(out.stderr, "", "{dump}");
    let manifest = sb.write("imported.yaml", &out.stdout);
    let manifest = manifest.to_str().unwrap();
    sb.run(&["validate", "-f", manifest]).success();
    sb.apply(manifest, &[]);
    (sb, out.stdout)
}

#[test]
fn seed_dumps_import_to_the_same_services() {
    for name in EXAMPLES {
        let dump = seed_dump(name);
        assert!(
            repo_root().join(&dump).exists(),
            "{dump} is recorded by the VM harness"
        );
        let (sb, manifest) = import_and_apply(&dump);
        assert!(
            manifest.starts_with(&format!(
                "# lvsctl manifest imported from `ipvsadm -S -n` output ({dump})\n"
            )),
            "{manifest}"
        );
        // ipvsadm knows IPVS only: the services and real servers must match the example's.
        assert_eq!(
            sb.state().services,
            fresh_state(&example(name)).services,
            "{name}"
        );
    }
}

#[test]
fn port_zero_and_fwmark_services_come_through() {
    let (_, pcc) = import_and_apply(&seed_dump("pcc"));
    assert!(pcc.contains("    port: 0\n"), "{pcc}");
    assert!(pcc.contains("persistence: 120"), "{pcc}");
    let (sb, pnmpp) = import_and_apply(&seed_dump("pnmpp"));
    assert!(pnmpp.contains("fwmark: 10"), "{pnmpp}");
    // The MARK rules are iptables', not ipvsadm's: the manifest says what to add.
    assert!(
        pnmpp.contains("# fwmark services: add a `match:` list"),
        "{pnmpp}"
    );
    // With the example's match added back, the director converges on the example exactly.
    let out = sb.run(&["plan", "-f", &example("pnmpp")]).success();
    assert!(
        out.stdout
            .ends_with("Plan: 1 to add, 0 to change, 0 to destroy.\n"),
        "only the MARK rule is missing:\n{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("+ mark tcp 192.168.6.101:22,80 -> mark 10 (web-ssh)")
    );
}

#[test]
fn a_production_dump_with_every_option_imports_faithfully() {
    let dump = fixtures().join("ipvsadm/production.ipvsadm");
    let (sb, _) = import_and_apply(dump.to_str().unwrap());
    // The same IPVS table as the production manifest applies (v6 and tunnel real servers,
    // netmasks, thresholds, scheduler flags, one-packet scheduling included).
    assert_eq!(sb.state().services, fresh_state(PRODUCTION).services);
}

#[test]
fn stdin_is_read_with_a_dash() {
    let sb = Sandbox::new("import-stdin");
    let dump = seed_dump("ppc");
    let text = std::fs::read(repo_root().join(&dump)).unwrap();
    let from_file = sb.run(&["import", "--from", "ipvsadm", &dump]).success();
    let from_stdin = sb
        .cmd(&["import", "--from", "ipvsadm", "-"])
        .stdin(&text)
        .run()
        .success();
    assert_eq!(
        from_stdin.stdout,
        from_file.stdout.replace(&format!("({dump})"), "(<stdin>)")
    );
    assert!(from_stdin.stdout.contains("(<stdin>)"));
}

#[test]
fn unreadable_lines_are_reported_with_their_numbers() {
    let sb = Sandbox::new("import-bad");
    let dump = fixtures().join("ipvsadm/typos.ipvsadm");
    let rel = dump.strip_prefix(repo_root()).unwrap().to_str().unwrap();
    let out = sb.run(&["import", "--from", "ipvsadm", rel]).code(1);
    assert_eq!(out.stdout, "", "no manifest from a half-understood dump");
    let expected = format!(
        "{rel}:3: unknown line starting with \"IP\" (expected -A or -a lines as printed by `ipvsadm -S -n`)\n\
         {rel}:4: invalid weight \"one\"\n\
         {rel}:5: real server 192.168.60.102:8080 names service tcp/192.168.6.101:8080, which no earlier -A line adds\n\
         {rel}:6: unknown scheduler \"roundrobin\" (lvsctl manifests accept rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)\n\
         {rel}:7: unknown service option \"--no-such-option\"\n\
         error: 5 line(s) of {rel} could not be imported; no manifest written\n"
    );
    assert_eq!(out.stderr, expected);
    // From stdin, the same lines under the name <stdin>.
    let out = sb
        .cmd(&["import", "--from", "ipvsadm", "-"])
        .stdin(&std::fs::read(&dump).unwrap())
        .run()
        .code(1);
    assert!(
        out.stderr.starts_with("<stdin>:3: unknown line"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_missing_file_is_an_error() {
    let sb = Sandbox::new("import-missing");
    let missing = sb.path("rules.txt");
    let missing = missing.to_str().unwrap();
    sb.run(&["import", "--from", "ipvsadm", missing])
        .code(1)
        .stderr_has(&format!("error: {missing}: cannot read"));
    assert!(!Path::new(missing).exists());
}

#[test]
fn an_empty_dump_gives_an_empty_manifest_with_a_warning() {
    let sb = Sandbox::new("import-empty");
    let empty = sb.write("empty.txt", "");
    let empty = empty.to_str().unwrap();
    let out = sb.run(&["import", "--from", "ipvsadm", empty]).success();
    assert_eq!(
        out.stdout,
        format!("# lvsctl manifest imported from `ipvsadm -S -n` output ({empty})\nservices: []\n")
    );
    assert!(
        out.stderr.contains(&format!(
            "{empty} holds no IPVS service: the manifest is empty"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn import_out_dir_writes_parts_that_apply_as_the_whole_dump() {
    let dump = fixtures().join("ipvsadm/production.ipvsadm");
    let dump = dump.to_str().unwrap();
    let (whole, _) = import_and_apply(dump);
    let sb = Sandbox::new("import-out-dir");
    let dir = sb.path("imported");
    let dir_s = dir.to_str().unwrap();
    sb.run(&[
        "import",
        "--from",
        "ipvsadm",
        dump,
        "--out-dir",
        dir_s,
        "--services-per-file",
        "3",
    ])
    .success();
    let first = std::fs::read_to_string(dir.join("lvsctl-0001.yaml")).unwrap();
    let second = std::fs::read_to_string(dir.join("lvsctl-0002.yaml")).unwrap();
    assert!(first.starts_with("# lvsctl manifest imported from `ipvsadm -S -n` output"));
    assert!(
        second.starts_with("# lvsctl manifest imported from `ipvsadm -S -n` output"),
        "{second}"
    );
    sb.apply(dir_s, &[]);
    assert_eq!(sb.state(), whole.state());
}
