//! `lvsctl export`: the manifest it prints (YAML or JSON) reproduces the director exactly on an
//! empty one, and `--state` writes a snapshot `plan --state` reads.

use crate::support::{EXAMPLES, PRODUCTION, Sandbox, example, parse_snapshot};

fn all_manifests() -> Vec<String> {
    let mut v: Vec<String> = EXAMPLES.iter().map(|e| example(e)).collect();
    v.push(PRODUCTION.to_owned());
    v
}

#[test]
fn exported_yaml_applied_to_an_empty_director_reproduces_it_exactly() {
    for m in all_manifests() {
        let a = Sandbox::new("export-yaml-a");
        a.apply(&m, &[]);
        let exported = a.run(&["export"]).success();
        assert_eq!(exported.stderr.matches("ERROR").count(), 0);
        let file = a.write("exported.yaml", &exported.stdout);
        let file = file.to_str().unwrap();
        a.run(&["validate", "-f", file]).success();

        let b = Sandbox::new("export-yaml-b");
        b.apply(file, &[]);
        assert_eq!(b.state(), a.state(), "{m}: round trip through export");
        // The exported manifest describes the original director without any change either.
        a.run(&["plan", "-f", file, "--detailed-exitcode"])
            .success();
        // And exporting the copy gives the same text.
        assert_eq!(b.run(&["export"]).success().stdout, exported.stdout, "{m}");
    }
}

#[test]
fn production_vips_and_mark_chains_survive_the_round_trip() {
    let a = Sandbox::new("export-production");
    a.apply(PRODUCTION, &[]);
    let state = a.state();
    let vips = state
        .vips
        .as_ref()
        .expect("production manages VIPs on lvs0");
    assert_eq!(vips.interface, "lvs0");
    let owned: Vec<String> = vips.owned.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        owned,
        [
            "203.0.113.10",
            "203.0.113.25",
            "203.0.113.30",
            "203.0.113.53",
            "2001:db8:10::10",
            "2001:db8:10::30"
        ]
    );
    assert_eq!(state.marks.len(), 2, "an ipv4 and an ipv6 mark chain");
    let exported = a.run(&["export"]).success().stdout;
    assert!(exported.contains("vip_interface: lvs0"), "{exported}");
    let file = a.write("exported.yaml", &exported);
    let b = Sandbox::new("export-production-b");
    b.apply(file.to_str().unwrap(), &[]);
    assert_eq!(b.state().vips, state.vips);
    assert_eq!(b.state().marks, state.marks);
}

#[test]
fn exported_json_parses_and_applies_too() {
    for m in all_manifests() {
        let a = Sandbox::new("export-json-a");
        a.apply(&m, &[]);
        let out = a.run(&["export", "--output", "json"]).success();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert!(v["services"].is_array(), "{m}");
        // The JSON is the same document as the YAML export.
        let yaml = a.run(&["export"]).success().stdout;
        let from_yaml: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(v, from_yaml, "{m}");

        let file = a.write("exported.json", &out.stdout);
        let b = Sandbox::new("export-json-b");
        b.apply(file.to_str().unwrap(), &[]);
        assert_eq!(b.state(), a.state(), "{m}: round trip through JSON");
    }
}

#[test]
fn export_state_is_a_snapshot_plan_state_reads() {
    let a = Sandbox::new("export-state");
    a.apply(&example("pnmpp"), &[]);
    let out = a.run(&["export", "--state"]).success();
    // A snapshot is always JSON: asking for another format is a usage error, not ignored.
    a.run(&["export", "--state", "--output", "yaml"])
        .code(1)
        .stderr_has("'--state' cannot be used with '--output <OUTPUT>'");
    let snap = parse_snapshot(&out.stdout);
    assert_eq!(snap, a.observed());
    let file = a.write("snapshot.json", &out.stdout);
    let file = file.to_str().unwrap();
    // Read elsewhere, without the director.
    let b = Sandbox::new("export-state-b");
    let out = b
        .cmd(&[
            "plan",
            "-f",
            &example("pnmpp"),
            "--state",
            file,
            "--detailed-exitcode",
        ])
        .env_remove("LVSCTL_FAKE_KERNEL")
        .run()
        .success();
    assert!(out.stdout.starts_with("No changes."), "{}", out.stdout);
    b.run(&[
        "plan",
        "-f",
        &example("ppc"),
        "--state",
        file,
        "--detailed-exitcode",
    ])
    .code(2)
    .stdout_has("- service fwmark/10");
    b.run(&["status", "--state", file])
        .success()
        .stdout_has("fwmark/10");
    assert!(b.listing().is_empty());
}

#[test]
fn exporting_an_empty_director_gives_a_manifest_that_applies_as_no_change() {
    let sb = Sandbox::new("export-empty");
    let out = sb.run(&["export"]).success();
    let file = sb.write("empty.yaml", &out.stdout);
    sb.run(&["validate", "-f", file.to_str().unwrap()])
        .success();
    assert_eq!(
        sb.apply(file.to_str().unwrap(), &[]).stdout,
        "No changes. IPVS services, real servers, MARK rules and VIPs match the manifest.\n"
    );
}

/// `--out-dir` splits the manifest over files that `-f DIR` reads back as the same director;
/// a directory that already holds manifests is refused, with nothing written.
#[test]
fn export_out_dir_splits_into_files_that_read_back_as_one_manifest() {
    let a = Sandbox::new("export-out-dir");
    a.apply(PRODUCTION, &[]);
    let services = a.state().services.len();
    assert!(services > 4, "production has {services} services");
    let dir = a.path("director");
    let dir_s = dir.to_str().unwrap();
    let out = a
        .run(&["export", "--out-dir", dir_s, "--services-per-file", "2"])
        .success();
    assert_eq!(out.stdout, "", "files, not stdout");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let want: Vec<String> = (1..=services.div_ceil(2))
        .map(|i| format!("lvsctl-{i:04}.yaml"))
        .collect();
    assert_eq!(files, want, "no leftover temporary files either");
    assert!(
        out.stderr
            .contains(&format!("read it back with -f {dir_s}")),
        "{}",
        out.stderr
    );
    // Read together, the files are the director: no change, and the same director elsewhere.
    a.run(&["plan", "-f", dir_s, "--detailed-exitcode"])
        .success();
    let b = Sandbox::new("export-out-dir-b");
    b.apply(dir_s, &[]);
    assert_eq!(b.state(), a.state());

    // Again into the same directory: refused, the files as they were.
    let before: Vec<Vec<u8>> = want
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let out = a.run(&["export", "--out-dir", dir_s]).code(1);
    assert!(
        out.stderr
            .contains("already holds manifests (lvsctl-0001.yaml"),
        "{}",
        out.stderr
    );
    let after: Vec<Vec<u8>> = want
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);

    // A directory every user can write would be refused when read back: refused now.
    let open = a.path("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = a
        .run(&["export", "--out-dir", open.to_str().unwrap()])
        .code(1);
    assert!(
        out.stderr
            .contains("would refuse to read the manifest back from there"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);

    // JSON files would not be read from a directory; a count of 0 is no count.
    let out = a
        .run(&[
            "export",
            "--out-dir",
            &format!("{dir_s}-json"),
            "-o",
            "json",
        ])
        .code(1);
    assert!(
        out.stderr.contains("--out-dir writes YAML"),
        "{}",
        out.stderr
    );
    a.run(&["export", "--out-dir", dir_s, "--services-per-file", "0"])
        .code(1)
        .stderr_has("0 is not in 1..");
    a.run(&["export", "--services-per-file", "3"])
        .code(1)
        .stderr_has("--out-dir");
}

/// `--out-dir` is written as root into a directory that may belong to someone else (the
/// check only refuses one every user can write): a symlink waiting at a staging name must not
/// be written through, or root would overwrite whatever file it points to.
#[test]
fn export_out_dir_never_writes_through_a_planted_symlink() {
    let a = Sandbox::new("export-out-dir-link");
    a.apply(PRODUCTION, &[]);
    let dir = a.path("director");
    std::fs::create_dir(&dir).unwrap();
    let victim = a.write("precious", "root:secret\n");
    std::os::unix::fs::symlink(&victim, dir.join(".lvsctl-0001.yaml.tmp")).unwrap();
    let out = a.run(&["export", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
    assert!(
        std::fs::symlink_metadata(dir.join("lvsctl-0001.yaml"))
            .map(|m| m.is_file())
            .unwrap_or(true),
        "the part in place is the symlink, not a file lvsctl wrote"
    );
    // The stale staging name is lvsctl's own: replaced, and the export goes through.
    out.success();
    a.run(&["plan", "-f", dir.to_str().unwrap(), "--detailed-exitcode"])
        .success();
}

/// An export killed between its renames leaves some parts in place and the rest staged; read
/// as a whole, the parts in place are a smaller director, and applying them would delete the
/// rest. `-f DIR` refuses a directory holding a staged part; a new export into a directory
/// holding only staged parts (lvsctl's own) clears them and goes through.
#[test]
fn a_directory_with_an_unfinished_export_is_refused_until_written_again() {
    let a = Sandbox::new("export-out-dir-unfinished");
    a.apply(PRODUCTION, &[]);
    let dir = a.path("director");
    let dir_s = dir.to_str().unwrap();
    a.run(&["export", "--out-dir", dir_s, "--services-per-file", "2"])
        .success();
    // As the kill would leave it: the last part not yet renamed into place.
    let mut parts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    parts.sort();
    assert!(parts.len() >= 3, "{parts:?}");
    let last = parts.last().unwrap();
    let staged = dir.join(format!(".{last}.tmp"));
    std::fs::rename(dir.join(last), &staged).unwrap();
    for cmd in ["validate", "plan"] {
        a.run(&[cmd, "-f", dir_s])
            .code(1)
            .stderr_has(&format!("{}: an `lvsctl export`", staged.display()))
            .stderr_has("did not finish");
    }
    // Written again into an emptied directory that still holds staged parts (one beyond the
    // new set's count too): they are cleared, and the set reads back whole.
    for p in &parts[..parts.len() - 1] {
        std::fs::remove_file(dir.join(p)).unwrap();
    }
    std::fs::write(dir.join(".lvsctl-0099.yaml.tmp"), "services: []\n").unwrap();
    a.run(&["export", "--out-dir", dir_s, "--services-per-file", "2"])
        .success();
    assert!(!staged.exists() && !dir.join(".lvsctl-0099.yaml.tmp").exists());
    a.run(&["plan", "-f", dir_s, "--detailed-exitcode"])
        .success();
}
