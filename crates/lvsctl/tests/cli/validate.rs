//! `lvsctl validate`: exit codes, the summary line, positioned diagnostics, several files and
//! directories merged, and the refusal of manifests other users can write.

use std::os::unix::fs::PermissionsExt;

use crate::support::{PRODUCTION, Sandbox, example, repo_root};

const WEB: &str = "\
services:
  - name: web
    vip: 10.0.0.1
    port: 80
    real_servers:
      - address: 10.0.1.1
      - address: 10.0.1.2
";

const DNS: &str = "\
services:
  - name: dns
    protocol: udp
    vip: 10.0.0.2
    port: 53
    real_servers:
      - {address: 10.0.1.53}
";

#[test]
fn valid_manifests_exit_0_with_a_summary_line_and_touch_no_kernel() {
    let sb = Sandbox::new("validate-ok");
    let cases = [
        (
            example("pcc"),
            "1 service(s), 2 real server(s), 0 MARK rule(s)",
        ),
        (
            example("ppc"),
            "2 service(s), 4 real server(s), 0 MARK rule(s)",
        ),
        (
            example("pnmpp"),
            "1 service(s), 2 real server(s), 1 MARK rule(s)",
        ),
        (
            PRODUCTION.to_owned(),
            "7 service(s), 17 real server(s), 2 MARK rule(s)",
        ),
    ];
    for (file, counts) in cases {
        let out = sb.run(&["validate", "-f", &file]).success();
        assert_eq!(out.stdout, format!("valid: {counts} from 1 file(s)\n"));
        assert_eq!(out.stderr, "", "validate logs nothing on success");
    }
    assert!(
        sb.listing().is_empty(),
        "validate never creates kernel or lock files"
    );
}

/// Every case of the bad-manifest corpus, through the binary: exit 1, nothing on stdout, and
/// on stderr exactly the corpus's `file:line:col` diagnostics followed by one summary line.
#[test]
fn bad_manifests_exit_1_with_every_diagnostic_on_stderr() {
    let sb = Sandbox::new("validate-bad");
    let corpus = repo_root().join("tests/bad-manifests");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 35, "corpus has only {} cases", cases.len());
    for case in cases {
        let rel = case.strip_prefix(repo_root()).unwrap().to_str().unwrap();
        let stem = case.file_stem().unwrap().to_str().unwrap();
        let expected = std::fs::read_to_string(corpus.join(format!("{stem}.expected"))).unwrap();
        let n = expected.lines().count();
        let out = sb.run(&["validate", "-f", rel]).code(1);
        assert_eq!(out.stdout, "", "{rel}: nothing on stdout");
        assert_eq!(
            out.stderr,
            format!("{expected}error: {n} error(s) in the manifest; nothing was applied\n"),
            "{rel}"
        );
    }
}

#[test]
fn files_and_directories_are_merged_in_name_order() {
    let sb = Sandbox::new("validate-merge");
    sb.write("conf.d/20-dns.yaml", DNS);
    sb.write("conf.d/10-web.yml", WEB);
    sb.write("conf.d/README.md", "not a manifest");
    sb.write("conf.d/.10-web.yml.swp", "garbage: [");
    sb.write("conf.d/30-ssh.YAML", "garbage: [");
    let extra = sb.write(
        "extra.yaml",
        "services:\n  - {name: ssh, vip: 10.0.0.1, port: 22, real_servers: [{address: 10.0.1.1}]}\n",
    );
    let dir = sb.path("conf.d");
    let out = sb
        .run(&[
            "validate",
            "-f",
            dir.to_str().unwrap(),
            "-f",
            extra.to_str().unwrap(),
        ])
        .success();
    assert_eq!(
        out.stdout,
        "valid: 3 service(s), 4 real server(s), 0 MARK rule(s) from 3 file(s)\n"
    );
    // A name that looks meant as a manifest but is not read is named; hidden ones are not.
    assert!(
        out.stderr.contains(&format!(
            "{}: not read: only names ending in lower-case .yaml or .yml are manifests",
            dir.join("30-ssh.YAML").display()
        )) && !out.stderr.contains(".swp"),
        "{}",
        out.stderr
    );
    // -v lists each file read.
    let out = sb
        .run(&["-v", "validate", "-f", dir.to_str().unwrap()])
        .success();
    assert!(
        out.stderr.contains(&format!(
            "reading manifest {}",
            dir.join("10-web.yml").display()
        )),
        "{}",
        out.stderr
    );
    // The merged state is one desired state: plan shows all three services.
    let out = sb
        .run(&[
            "plan",
            "-f",
            dir.to_str().unwrap(),
            "-f",
            extra.to_str().unwrap(),
        ])
        .success();
    for svc in ["tcp/10.0.0.1:80", "udp/10.0.0.2:53", "tcp/10.0.0.1:22"] {
        assert!(
            out.stdout.contains(&format!("+ service {svc}")),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn a_file_named_twice_is_read_once() {
    let sb = Sandbox::new("validate-twice");
    let web = sb.write("conf.d/web.yaml", WEB);
    sb.write("conf.d/dns.yaml", DNS);
    let dir = sb.path("conf.d");
    let out = sb
        .run(&[
            "validate",
            "-f",
            dir.to_str().unwrap(),
            "-f",
            web.to_str().unwrap(),
        ])
        .success();
    assert_eq!(
        out.stdout,
        "valid: 2 service(s), 3 real server(s), 0 MARK rule(s) from 2 file(s)\n"
    );
}

#[test]
fn a_service_defined_in_two_files_names_both_places() {
    let sb = Sandbox::new("validate-dup");
    let a = sb.write("a.yaml", WEB);
    let b = sb.write(
        "b.yaml",
        "# the same service, under another name\nservices:\n  - name: web-again\n    vip: 10.0.0.1\n    port: 80\n",
    );
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let out = sb.run(&["validate", "-f", a, "-f", b]).code(1);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "{b}:4:10: services[0].vip: tcp/10.0.0.1:80 is already defined by service \"web\" at {a}:3:10\n\
             error: 1 error(s) in the manifest; nothing was applied\n"
        )
    );
}

#[test]
fn world_writable_manifests_are_refused_unless_allowed() {
    let sb = Sandbox::new("validate-perm");
    let f = sb.write("conf.d/web.yaml", WEB);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    let file = f.to_str().unwrap();
    for target in [file, sb.path("conf.d").to_str().unwrap()] {
        let out = sb.run(&["validate", "-f", target]).code(1);
        assert_eq!(out.stdout, "");
        assert_eq!(
            out.stderr,
            format!(
                "error: {file}: refusing a manifest that every user can write (mode 666); \
                 fix with `chmod o-w {file}` or pass --allow-insecure-manifest\n"
            )
        );
    }
    let out = sb
        .run(&["validate", "-f", file, "--allow-insecure-manifest"])
        .success();
    assert!(
        out.stdout.starts_with("valid: 1 service(s)"),
        "{}",
        out.stdout
    );
    // apply refuses it too, before touching anything.
    sb.run(&["apply", "-f", file]).code(1);
    assert!(sb.kernel_bytes().is_none());
}

#[test]
fn an_empty_directory_or_a_missing_path_is_an_error() {
    let sb = Sandbox::new("validate-empty");
    std::fs::create_dir_all(sb.path("empty")).unwrap();
    sb.write("empty/notes.txt", "no manifests here");
    let dir = sb.path("empty");
    let dir = dir.to_str().unwrap();
    let out = sb.run(&["validate", "-f", dir]).code(1);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "error: {dir}: directory holds no *.yaml or *.yml manifest (pass files, or a directory with manifests)\n"
        )
    );
    let missing = sb.path("missing.yaml");
    let missing = missing.to_str().unwrap();
    sb.run(&["validate", "-f", missing])
        .code(1)
        .stderr_has(&format!("error: {missing}: cannot read manifest path"));
}

#[test]
fn validate_needs_a_file() {
    let sb = Sandbox::new("validate-usage");
    let out = sb.run(&["validate"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("--file <PATH>"), "{}", out.stderr);
}

#[test]
fn a_world_writable_manifest_directory_is_refused_unless_allowed() {
    let sb = Sandbox::new("validate-dir-perm");
    sb.write("conf.d/web.yaml", WEB);
    let dir = sb.path("conf.d");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let dir = dir.to_str().unwrap();
    let out = sb.run(&["validate", "-f", dir]).code(1);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "error: {dir}: refusing a manifest directory that every user can write (mode 1777): \
             anyone could add a manifest to it; fix with `chmod o-w {dir}` or pass --allow-insecure-manifest\n"
        )
    );
    sb.run(&["validate", "-f", dir, "--allow-insecure-manifest"])
        .success();
}

/// `lvsctl realserver` names VIPs in `realserver.vips` that no DR or tunnel service of the same
/// manifest uses: a typo, or a NAT service's VIP, which a NAT real server must not hold. Only
/// stderr is checked: what the dry run lists depends on this machine's own `lo` and sysctls.
#[test]
fn realserver_warns_about_vips_no_dr_service_uses() {
    let sb = Sandbox::new("realserver-vips");
    let m = sb.write(
        "rs.yaml",
        "services:\n\
         \x20 - name: web\n\
         \x20   vip: 192.168.6.101\n\
         \x20   port: 80\n\
         \x20   real_servers: [{address: 10.0.0.1, forward: nat}]\n\
         \x20 - name: ssh\n\
         \x20   vip: 192.168.6.102\n\
         \x20   port: 22\n\
         \x20   real_servers: [{address: 10.0.0.1}]\n\
         realserver:\n\
         \x20 vips: [192.168.6.250, 192.168.6.101, 192.168.6.102]\n",
    );
    let out = sb.run(&["realserver", "--dry-run", "-f", m.to_str().unwrap()]);
    let out = out
        .stderr_has(
            "realserver.vips: 192.168.6.101 is the VIP of NAT services only: a NAT real server \
             must not hold it",
        )
        .stderr_has("realserver.vips: 192.168.6.250 is the VIP of no service in this manifest");
    assert!(!out.stderr.contains("192.168.6.102 is"), "{}", out.stderr);
}

/// A persistent service whose failed real servers are quiesced keeps sending them their
/// clients unless `expire_quiescent_template` is on (keepalived's and ldirectord's users hit
/// this): valid, so exit 0, but `validate` says so with the service's place; with the sysctl
/// set, or without persistence, it says nothing.
#[test]
fn persistence_with_quiesce_is_valid_but_warned_about() {
    let sb = Sandbox::new("validate-quiesce");
    let service = "services:\n\
         \x20 - name: web\n\
         \x20   vip: 10.0.0.1\n\
         \x20   port: 80\n\
         \x20   persistence: 300\n\
         \x20   real_servers: [{address: 10.0.1.1}]\n\
         \x20   health: {tcp: {port: 80}, on_failure: quiesce}\n";
    let risky = sb.write("risky.yaml", service);
    let out = sb
        .run(&["validate", "-f", risky.to_str().unwrap()])
        .success();
    let out = out.stderr_has(&format!(
        "{}:2:5: service web: a real server its health check takes out stays at weight 0",
        risky.display()
    ));
    assert!(
        out.stderr
            .contains("set director.sysctl.expire_quiescent_template: true"),
        "{}",
        out.stderr
    );
    let fixed = sb.write(
        "fixed.yaml",
        &format!("director:\n  sysctl: {{expire_quiescent_template: true}}\n{service}"),
    );
    let no_persistence = sb.write("plain.yaml", &service.replace("    persistence: 300\n", ""));
    for ok in [fixed, no_persistence] {
        let out = sb.run(&["validate", "-f", ok.to_str().unwrap()]).success();
        assert_eq!(out.stderr, "", "{}", ok.display());
    }
}
