//! `tests/vm/demo.sh` (the README's "see it for real" command) runs as a user would run it:
//! it builds lvsctl, boots the VM, applies the three examples in turn, and its tables show
//! each experiment's behaviour.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, process::Command};

use lvsctl_vmtest::{repo_root, skip_requested};

/// One example's part of the demo's output: the lines from its `=== <exp>:` header on.
fn part<'a>(out: &'a str, exp: &str) -> &'a str {
    let header = format!("\n=== {exp}: examples/{exp}.yaml ===\n");
    let start = out
        .find(&header)
        .unwrap_or_else(|| panic!("no `{}` in the demo's output:\n{out}", header.trim()));
    let rest = &out[start + header.len()..];
    let end = rest.find("\n=== ").unwrap_or(rest.len());
    &rest[..end]
}

/// The demo's table for one example: client -> (servers on :80, servers on :22, verdict).
fn table(part: &str) -> BTreeMap<String, (String, String, String)> {
    let mut rows = BTreeMap::new();
    let start = part
        .find("\n  client ")
        .unwrap_or_else(|| panic!("no table in:\n{part}"));
    for line in part[start + 1..].lines().skip(1) {
        let Some(row) = line.strip_prefix("  ") else {
            break;
        };
        let w: Vec<&str> = row.split_whitespace().collect();
        assert!(w.len() >= 4, "odd table row {line:?}");
        rows.insert(
            w[0].to_string(),
            (w[1].to_string(), w[2].to_string(), w[3..].join(" ")),
        );
    }
    rows
}

#[test]
fn demo_shows_each_example_for_real() {
    if skip_requested("demo_shows_each_example_for_real") {
        return;
    }
    let out = Command::new(repo_root().join("tests/vm/demo.sh"))
        .current_dir(repo_root())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    println!("{text}");
    assert!(out.status.success(), "demo.sh failed ({})", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("demo: building lvsctl (cargo build -p lvsctl)"),
        "the demo did not build lvsctl"
    );

    for exp in ["pcc", "ppc", "pnmpp"] {
        let p = part(&stdout, exp);
        assert!(
            p.contains("$ /opt/lvsctl -q apply") && p.contains("Plan: "),
            "{exp}: no lvsctl apply with its plan:\n{p}"
        );
        // Only the fwmark example has MARK rules to show.
        assert_eq!(
            p.contains("-A LVSCTL-MARK -d 192.168.6.101/32 -p tcp -m multiport --dports 22,80"),
            exp == "pnmpp",
            "{exp}: MARK rules:\n{p}"
        );
        let rows = table(p);
        let (c1_80, c1_22, c1_verdict) = &rows["c1"];
        let (c2_80, c2_22, c2_verdict) = &rows["c2"];
        for s in [c1_80, c1_22, c2_80, c2_22] {
            // One server per client and port across both rounds (RS1/RS2 would be a move).
            assert!(s == "RS1" || s == "RS2", "{exp}: {rows:?}");
        }
        assert_ne!(
            c1_80, c2_80,
            "{exp}: rr did not spread the clients: {rows:?}"
        );
        if exp == "ppc" {
            assert!(c1_80 != c1_22 && c2_80 != c2_22, "{exp}: {rows:?}");
            assert_eq!(c1_verdict, "different real servers");
            assert_eq!(c2_verdict, "different real servers");
        } else {
            assert!(c1_80 == c1_22 && c2_80 == c2_22, "{exp}: {rows:?}");
            assert_eq!(c1_verdict, "same real server for both ports");
            assert_eq!(c2_verdict, "same real server for both ports");
        }
    }
    let last = part(&stdout, "pnmpp");
    assert!(
        last.contains(
            "$ /opt/lvsctl -q apply -f /opt/examples/pnmpp.yaml\n\
             No changes. IPVS services, real servers, MARK rules and VIPs match the manifest.\n"
        ),
        "the last apply should find nothing to do:\n{last}"
    );
}
