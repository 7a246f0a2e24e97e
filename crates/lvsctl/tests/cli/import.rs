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

#[test]
fn a_dr_real_server_on_another_port_is_imported_on_the_service_port_with_a_warning() {
    let (sb, dump) = with_rules(
        "import-dr-port",
        "-A -t 192.168.6.101:81 -s rr\n\
         -a -t 192.168.6.101:81 -r 10.0.0.1:8080 -g -w 1\n\
         -a -t 192.168.6.101:81 -r 10.0.0.2:8080 -m -w 1\n",
    );
    let out = sb.run(&["import", "--from", "ipvsadm", &dump]).success();
    // As ipvsadm adds it, and the kernel runs it; NAT keeps its port.
    assert!(
        out.stdout.contains(
            "      - {address: 10.0.0.1, port: 81, forward: dr, weight: 1}\n\
             \x20     - {address: 10.0.0.2, port: 8080, forward: nat, weight: 1}\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!(
            "{dump}:2: real server 10.0.0.1:8080 of tcp/192.168.6.101:81 is dr, which keeps the \
             service port: imported as port 81, as ipvsadm adds it (use -m for another port)\n"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let manifest = sb.write("imported.yaml", &out.stdout);
    sb.run(&["validate", "-f", manifest.to_str().unwrap()])
        .success();
}

/// A sandbox holding the ipvsadm rules file `text`, and that file's path.
fn with_rules(name: &str, text: &str) -> (Sandbox, String) {
    let sb = Sandbox::new(name);
    let path = sb.write("rules.txt", text).to_str().unwrap().to_owned();
    (sb, path)
}

/// Runs an import that must fail, to stdout and to --out-dir (with `out_dir_args`): exit 1,
/// nothing on stdout, no directory made. Returns stderr, the same both ways.
fn refused(sb: &Sandbox, dump: &str, out_dir_args: &[&str]) -> String {
    let out = sb.run(&["import", "--from", "ipvsadm", dump]).code(1);
    assert_eq!(out.stdout, "", "no manifest");
    let dir = sb.path("out");
    let mut args = vec!["import", "--from", "ipvsadm", dump, "--out-dir"];
    args.push(dir.to_str().unwrap());
    args.extend(out_dir_args);
    let to_dir = sb.run(&args).code(1);
    assert!(!dir.exists(), "nothing written to --out-dir");
    assert_eq!(to_dir.stderr, out.stderr);
    out.stderr
}

#[test]
fn what_ipvsadm_refuses_is_reported_with_its_line_and_nothing_is_written() {
    let (sb, d) = with_rules(
        "import-refused",
        "-A -t 192.168.6.101:82 -s rr -b sh-port\n\
         -A -t 192.168.6.101:83 -s rr -o\n\
         -A -t 192.168.6.101:0 -s rr\n\
         -A -u 192.168.6.101:84 -s rr -p 60 --pe sip\n\
         -a -u 192.168.6.101:84 -r 10.0.0.2:84 -g -w 70000\n\
         -a -u 192.168.6.101:84 -r [2001:db8::2]:84 -m\n\
         -A -t 192.168.6.101:85 -s rr -p 9999999\n",
    );
    assert_eq!(
        refused(&sb, &d, &[]),
        format!(
            "{d}:1: scheduler flag sh-port is for the sh scheduler, but this service uses rr \
             (ipvsadm refuses it too: give -s sh or drop the flag)\n\
             {d}:2: -o (one-packet scheduling) is only for udp and fwmark services, not tcp; \
             ipvsadm refuses it too: drop -o\n\
             {d}:3: tcp port 0 (every port) without -p persistence: ipvsadm and the kernel \
             refuse such a service; add -p TIMEOUT\n\
             {d}:5: weight 70000 is out of range 0..=65535; ipvsadm refuses it too\n\
             {d}:6: real server 2001:db8::2 is ipv6 but service udp/192.168.6.101:84 is ipv4: \
             only tunnel real servers (-i) may be of the other family; ipvsadm refuses it too\n\
             {d}:7: invalid persistence timeout \"9999999\" (ipvsadm accepts 1..=2678400 seconds)\n\
             error: 6 line(s) of {d} could not be imported; no manifest written\n"
        )
    );
}

#[test]
fn a_manifest_validate_would_refuse_is_not_written_and_its_errors_name_the_input_lines() {
    // ipvsadm takes all of these; the kernel or lvsctl's manifest rules do not.
    let (sb, d) = with_rules(
        "import-backstop",
        "-A -t 192.168.6.101:80 -s rr\n\
         -a -t 192.168.6.101:80 -r 10.0.0.2:80 -g -w 1 -x 10 -y 20\n\
         -A -u 224.0.0.9:53 -s rr\n\
         -A -u 192.168.6.101:5060 -s rr -p 60 --pe foo\n\
         -a -t 192.168.6.101:80 -r 10.0.0.3:80 -i --tun-csum\n",
    );
    let expected = format!(
        "{d}:2: lower_threshold 20 is above the upper threshold: it must not exceed \
         upper_threshold 10 (manifest field services[0].real_servers[0].lower_threshold)\n\
         {d}:3: 224.0.0.9 is a multicast address; a VIP needs a unicast address \
         (manifest field services[2].vip)\n\
         {d}:4: unknown persistence engine \"foo\" (the kernel has only \"sip\") \
         (manifest field services[1].persistence.engine)\n\
         {d}:5: ipip tunnels have no checksum options (use gue or gre) \
         (manifest field services[0].real_servers[1].tunnel.csum)\n\
         error: the manifest built from {d} would not validate (4 error(s)): fix the input and \
         import again; no manifest written\n"
    );
    // --out-dir's parts are checked as they are written: a later part's services are traced
    // back as well.
    assert_eq!(refused(&sb, &d, &["--services-per-file", "1"]), expected);
}

/// A wrong path that never ends (`/dev/zero`: NUL bytes are valid UTF-8) is refused after
/// 256 MiB instead of growing until the machine runs out of memory.
#[test]
fn an_endless_input_is_refused_at_its_size_cap() {
    let sb = Sandbox::new("import-endless");
    let out = sb
        .run(&["import", "--from", "ipvsadm", "/dev/zero"])
        .code(1);
    assert_eq!(out.stdout, "");
    out.stderr_has("/dev/zero: cannot read")
        .stderr_has("more than 256 MiB");
}
