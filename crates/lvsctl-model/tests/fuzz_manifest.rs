//! Fuzzing the manifest reader (issue 8, "Bad input"): no panic, no hang, bounded memory, and a
//! clear error for hostile input.
//!
//! - `corpus_inputs_meet_their_expectations`: every file of `tests/fuzz-corpus/manifest/` (bombs,
//!   deep nesting, bad encodings, ...; a first line `# expect: ok|error|<text>` says what the
//!   reader must answer), always;
//! - `hostile_inputs_made_at_run_time`: the inputs too big to check in (4 MiB and more, 10,000
//!   services, 100,000 keys), each with its expected answer and its time and memory;
//! - `mutated_manifests`: a time-boxed mutation fuzzer over that corpus, the bad-manifest corpus
//!   and the examples (`LVSCTL_FUZZ_SECS`, default 8 s; `LVSCTL_SOAK=1` for 5 minutes).
//!
//! Every case must also keep the reader's own promises: diagnostics are positioned, one line
//! each, capped; a manifest that validates exports and reads back to the same desired state.
#![allow(clippy::unwrap_used)]

#[path = "../../../tests/fuzz-corpus/fuzz_support.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fuzz_support::{CountingAlloc, Fuzz, Report, corpus};
use lvsctl_model::manifest::{self, Diagnostics, Source};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The reader's contract on any input: an answer, well formed.
fn read(bytes: &[u8]) {
    match manifest::parse("fuzz.yaml", bytes) {
        Ok(m) => {
            let state = m.desired_state();
            let text = manifest::manifest_from_state(&state);
            let back = manifest::parse("exported.yaml", &text).unwrap_or_else(|d| {
                panic!("a valid manifest exported to one that does not read back:\n{d}\n{text}")
            });
            assert_eq!(
                back.desired_state(),
                state,
                "export changed the state:\n{text}"
            );
        }
        Err(diags) => check_diagnostics(&diags),
    }
}

fn check_diagnostics(diags: &Diagnostics) {
    assert!(!diags.is_empty(), "an error without a diagnostic");
    assert!(
        diags.len() <= Diagnostics::MAX + 1,
        "{} diagnostics",
        diags.len()
    );
    for d in diags {
        assert!(d.line >= 1 && d.column >= 1, "unpositioned: {d}");
        assert!(!d.message.is_empty(), "empty message: {d}");
        assert!(!d.message.contains('\n'), "multi-line message: {d:?}");
        // A diagnostic quotes input, but not without bound: the path has at most 64 levels
        // (the nesting limit) of keys shortened to 60 characters, the message quotes at most
        // 60 characters of a value.
        assert!(
            d.path.len() < 64 * 72 && d.message.len() < 1024,
            "a {} byte path and a {} byte message",
            d.path.len(),
            d.message.len()
        );
    }
}

/// A case may take this long. Generous: tests build without optimisation and share two cores
/// with other builds; a real hang or a quadratic blow-up on these sizes takes far longer.
const CASE_LIMIT: Duration = Duration::from_secs(10);

/// Memory a case may use: the reader keeps the text, a tree with positions and the validated
/// manifest, each a small multiple of the input; plus room for the alias budget (100,000 nodes).
fn mem_limit(input_len: usize) -> usize {
    (64 << 20) + 40 * input_len
}

const FUZZ: Fuzz = Fuzz {
    target: "manifest",
    case_limit: CASE_LIMIT,
    mem_limit,
};

/// The megabyte inputs get more time (10,000 services are read, validated, exported and read
/// again), still far below what a quadratic step would need at these sizes.
const FUZZ_BIG: Fuzz = Fuzz {
    target: "manifest-big",
    case_limit: Duration::from_secs(60),
    mem_limit,
};

fn expectation(bytes: &[u8]) -> Option<String> {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let line = text.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    Some(line.strip_prefix("# expect: ")?.to_owned())
}

fn print_report(what: &str, r: &Report) {
    println!(
        "fuzz manifest {what}: {} cases, slowest {:?}, peak memory {} KiB, largest input {} bytes",
        r.cases,
        r.slowest,
        r.peak_bytes >> 10,
        r.largest_input
    );
}

#[test]
fn corpus_inputs_meet_their_expectations() {
    let _serial = fuzz_support::exclusive();
    let files = corpus(&root().join("tests/fuzz-corpus/manifest"));
    assert!(
        files.len() >= 30,
        "the corpus has only {} files",
        files.len()
    );
    let mut report = Report::default();
    let mut failures = Vec::new();
    for (name, bytes) in &files {
        FUZZ.check(&mut report, name, bytes, &read);
        let Some(want) = expectation(bytes) else {
            continue;
        };
        let got = manifest::parse(name, bytes);
        match (want.as_str(), &got) {
            ("ok", Ok(_)) | ("error", Err(_)) => {}
            ("ok", Err(d)) => failures.push(format!("{name}: expected to validate, got\n{d}")),
            (_, Ok(_)) => failures.push(format!("{name}: expected {want:?}, but it validated")),
            (text, Err(d)) => {
                if !d.to_string().contains(text) {
                    failures.push(format!(
                        "{name}: expected an error containing {text:?}, got\n{d}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    print_report("corpus", &report);
}

/// `n` services in flow style, each with two real servers: about 150 bytes per service.
fn many_services(n: usize) -> String {
    let mut s = String::from("services:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{name: s{i}, vip: 10.{}.{}.1, port: 80, real_servers: [{{address: 172.16.{}.{}}}, \
             {{address: 172.17.{}.{}}}]}}\n",
            i / 250,
            i % 250,
            i / 250,
            i % 250 + 1,
            i / 250,
            i % 250 + 1
        ));
    }
    s
}

#[test]
fn hostile_inputs_made_at_run_time() {
    let _serial = fuzz_support::exclusive();
    const MIB: usize = 1 << 20;
    let comment_filler = |total: usize| {
        let mut s = String::from("services: []\n");
        while s.len() < total {
            s.push_str("# padding padding padding padding padding padding padding padding\n");
        }
        s.truncate(total - 1);
        s.push('\n');
        s
    };
    let quoted = |n: usize| format!("services:\n  - name: \"{}\"\n", "a".repeat(n));
    let alias_bytes = |scalar: usize, aliases: usize| {
        let mut s = format!("x: &big \"{}\"\ny: [", "b".repeat(scalar));
        for i in 0..aliases {
            s.push_str(if i == 0 { "*big" } else { ", *big" });
        }
        s.push_str("]\nservices: []\n");
        s
    };
    // Every level anchored: a parser that copies each anchored subtree keeps `depth` copies.
    let nested_anchors = |depth: usize, scalar: usize| {
        let mut s = String::from("services: []\nx: ");
        for i in 0..depth {
            s.push_str(&format!("&a{i} ["));
        }
        s.push('"');
        s.push_str(&"n".repeat(scalar));
        s.push('"');
        s.push_str(&"]".repeat(depth));
        s.push('\n');
        s
    };
    // An explicit key (`? key`) may be megabytes long; every diagnostic below it names it in
    // its field path.
    let long_key_many_errors = |key: usize, errors: usize| {
        let mut s = format!("services: []\n? {}\n: {{", "k".repeat(key));
        for i in 0..errors {
            s.push_str(if i == 0 { "a: 1" } else { ", a: 1" });
        }
        s.push_str("}\n");
        s
    };
    let many_keys = |n: usize| {
        let mut s = String::from("services: []\nbig:\n");
        for i in 0..n {
            s.push_str(&format!("  k{i}: {i}\n"));
        }
        s
    };
    let long_flow_list = |n: usize| {
        let mut s = String::from("services: [");
        for i in 0..n {
            s.push_str(if i == 0 { "1" } else { ", 1" });
        }
        s.push_str("]\n");
        s
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "one byte over the 4 MiB limit",
            comment_filler(4 * MIB + 1).into_bytes(),
            "more than the 4 MiB limit",
        ),
        (
            "64 MiB of zero bytes",
            vec![0u8; 64 * MIB],
            "more than the 4 MiB limit",
        ),
        (
            "just under the limit, comments",
            comment_filler(4 * MIB - 1).into_bytes(),
            "ok",
        ),
        (
            "a 4 MiB quoted scalar",
            quoted(4 * MIB - 32).into_bytes(),
            "error",
        ),
        (
            "a 1 MiB scalar aliased 3000 times (3 GiB if copied)",
            alias_bytes(MIB, 3000).into_bytes(),
            "aliases (*name) expand to more than",
        ),
        (
            "a 64 KiB scalar aliased 1000 times (64 MiB if copied)",
            alias_bytes(64 << 10, 1000).into_bytes(),
            "aliases (*name) expand to more than",
        ),
        (
            "a 4 MiB scalar under 60 nested anchors",
            nested_anchors(60, 4 * MIB - 2048).into_bytes(),
            "error",
        ),
        (
            "a 2 MiB key over 20,000 duplicate keys (40 GiB of paths if each is whole)",
            long_key_many_errors(2 * MIB, 20_000).into_bytes(),
            "duplicate key",
        ),
        ("10,000 services", many_services(10_000).into_bytes(), "ok"),
        (
            "100,000 keys in one mapping",
            many_keys(100_000).into_bytes(),
            "error",
        ),
        (
            "a flow list of 500,000 items",
            long_flow_list(500_000).into_bytes(),
            "error",
        ),
        (
            "200,000 open brackets",
            "[".repeat(200_000).into_bytes(),
            "error",
        ),
        (
            "200,000 lines of `- ` at growing depth",
            (0..200_000)
                .map(|i| format!("{}- \n", " ".repeat(i % 200)))
                .collect::<String>()
                .into_bytes(),
            "error",
        ),
    ];
    let mut report = Report::default();
    let mut failures = Vec::new();
    for (what, bytes, want) in &cases {
        let m = FUZZ_BIG.check(&mut report, what, bytes, &read);
        println!(
            "  {what}: {} bytes, {:?}, peak {} KiB",
            bytes.len(),
            m.elapsed,
            m.peak_bytes >> 10
        );
        let got = manifest::parse("big.yaml", bytes);
        match (*want, &got) {
            ("ok", Ok(_)) | ("error", Err(_)) => {}
            ("ok", Err(d)) => failures.push(format!("{what}: expected to validate, got\n{d}")),
            (_, Ok(_)) => failures.push(format!("{what}: expected {want:?}, but it validated")),
            (text, Err(d)) => {
                if !d.to_string().contains(text) {
                    failures.push(format!("{what}: expected {text:?}, got\n{d}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    print_report("run-time inputs", &report);
}

#[test]
fn mutated_manifests() {
    let _serial = fuzz_support::exclusive();
    let mut seeds: Vec<Vec<u8>> = corpus(&root().join("tests/fuzz-corpus/manifest"))
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| b.len() <= 64 << 10)
        .collect();
    for dir in ["tests/bad-manifests", "examples", "manifests"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "yaml") {
                seeds.push(std::fs::read(&p).unwrap());
            }
        }
    }
    let tokens: &[&[u8]] = &[
        b"\n",
        b"\n  ",
        b"\n    - ",
        b": ",
        b"- ",
        b"{",
        b"}",
        b"[",
        b"]",
        b", ",
        b"&a ",
        b"*a",
        b"!!str ",
        b"!!binary ",
        b"<<: ",
        b"? ",
        b"---\n",
        b"...\n",
        b"|\n",
        b">-\n",
        b"\"",
        b"'",
        b"#",
        b"%YAML 1.2\n",
        b"\t",
        b"~",
        b"null",
        b"true",
        b"0x",
        b"0o",
        b"-",
        b".inf",
        b"services:",
        b"real_servers:",
        b"director:",
        b"unmanaged:",
        b"match:",
        b"health:",
        b"persistence:",
        b"fwmark: ",
        b"family: ipv6",
        b"vip: ",
        b"port: ",
        b"scheduler: ",
        b"forward: tunnel",
        b"tunnel: {type: gue, port: 0}",
        b"weight: ",
        b"sorry_server: ",
        b"192.168.6.101",
        b"2001:db8::1",
        b"::ffff:1.2.3.4",
        b"fe80::1",
        b"224.0.0.1",
        b"0.0.0.0",
        b"255.255.255.255",
        b"65535",
        b"65536",
        b"4294967295",
        b"-1",
        b"2147483648",
        b"1500ms",
        b"2m",
        b"\xff",
        b"\xc3",
        b"\xef\xbb\xbf",
        b"\0",
        b"\xe2\x80\xae",
        b"command: [/bin/sh, -c, \"touch /tmp/x\"]",
    ];
    let report = FUZZ.run(&seeds, tokens, 256 << 10, &read);
    assert!(report.cases > 0);
    print_report("mutated", &report);
}

#[test]
fn several_mutated_files_merge_without_panic() {
    let _serial = fuzz_support::exclusive();
    // check.rs merges files; feed it pairs of corpus files under the same limits.
    let files = corpus(&root().join("tests/fuzz-corpus/manifest"));
    let mut examples: Vec<Vec<u8>> = Vec::new();
    for name in ["pcc", "ppc", "pnmpp"] {
        examples.push(std::fs::read(root().join(format!("examples/{name}.yaml"))).unwrap());
    }
    let mut report = Report::default();
    for (name, bytes) in files.iter().filter(|(_, b)| b.len() <= 64 << 10) {
        for ex in &examples {
            let load = |_: &[u8]| {
                let sources = [
                    Source::new("a.yaml", bytes.as_slice()),
                    Source::new("b.yaml", ex.as_slice()),
                ];
                if let Err(d) = manifest::load(&sources) {
                    check_diagnostics(&d);
                }
            };
            let both = [bytes.as_slice(), ex.as_slice()].concat();
            FUZZ.check(&mut report, name, &both, &load);
        }
    }
    print_report("merged pairs", &report);
}
