//! The bad-manifest corpus: every `tests/bad-manifests/NAME.yaml` (or directory `NAME/` of
//! several files, loaded together in name order) must fail with exactly the text in
//! `NAME.expected`. Run with `LVSCTL_BLESS=1` to rewrite the expected files after a deliberate
//! message change, then review the diff.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use lvsctl_model::manifest::{self, Source};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bad-manifests")
}

/// Display name relative to the repository root, as the CLI would show it.
fn display(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rel = path.strip_prefix(&root).unwrap_or(path);
    rel.to_string_lossy().into_owned()
}

fn cases() -> Vec<(String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut files: Vec<PathBuf> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect();
            files.sort();
            out.push((name, files));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push((name, vec![path]));
        }
    }
    out.sort();
    out
}

#[test]
fn every_bad_manifest_fails_with_its_expected_diagnostics() {
    let bless = std::env::var_os("LVSCTL_BLESS").is_some();
    let cases = cases();
    assert!(cases.len() >= 35, "corpus has only {} cases", cases.len());
    let mut failures = Vec::new();
    for (name, files) in &cases {
        let sources: Vec<Source> = files
            .iter()
            .map(|p| Source::new(display(p), fs::read(p).unwrap()))
            .collect();
        let got = match manifest::load(&sources) {
            Ok(_) => "(no error: the manifest validated)\n".to_owned(),
            Err(d) => format!("{d}\n"),
        };
        let expected_path = corpus_dir().join(format!("{name}.expected"));
        if bless {
            fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| format!("(missing {})\n", expected_path.display()));
        if got != expected {
            failures.push(format!(
                "--- {name}: expected\n{expected}--- {name}: got\n{got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_expected_file_has_a_case() {
    let cases = cases();
    for entry in fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expected") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                cases.iter().any(|(n, _)| *n == stem),
                "{} has no manifest",
                path.display()
            );
        }
    }
}

/// Too big for the corpus: built here.
#[test]
fn huge_file_is_refused_before_parsing() {
    let mut text = String::from("services:\n");
    while text.len() <= 4 * 1024 * 1024 {
        text.push_str("  - {name: x, vip: 192.168.6.101, port: 80}\n");
    }
    let err = manifest::parse("huge.yaml", &text).unwrap_err();
    assert_eq!(err.len(), 1);
    let d = err.iter().next().unwrap();
    assert_eq!((d.line, d.column, d.path.as_str()), (1, 1, "document"));
    assert!(d.message.contains("more than the 4 MiB limit"), "{d}");
}

#[test]
fn every_error_is_reported_in_one_run() {
    let text = fs::read(corpus_dir().join("wrong-types.yaml")).unwrap();
    let err = manifest::parse("wrong-types.yaml", &text).unwrap_err();
    assert!(err.len() >= 8, "{err}");
    for d in &err {
        assert!(d.line > 0 && d.column > 0, "{d}");
        assert!(!d.path.is_empty(), "{d}");
    }
}

/// A generated file with a systematic mistake gives a bounded report, not one line per error.
#[test]
fn error_reports_are_capped() {
    let mut text = String::from("services:\n");
    for i in 0..1500 {
        text.push_str(&format!(
            "  - {{name: s{i}, vip: 10.0.0.1, port: {}}}\n",
            70000 + i
        ));
    }
    let err = manifest::parse("many.yaml", &text).unwrap_err();
    assert_eq!(err.len(), manifest::Diagnostics::MAX + 1);
    let last = err.iter().last().unwrap();
    assert_eq!(
        last.message,
        "stopping after 1000 errors (500 more not shown)"
    );
    // Sorted by position: the first error is the first service's.
    assert_eq!(err.iter().next().unwrap().line, 2);
}
