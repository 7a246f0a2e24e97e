//! Several large files are read on several threads (`read::read_files`); what `load` answers
//! must not depend on it: the same diagnostics in the same order as reading the files one by
//! one, and a comments-only file reported as empty only when nothing was reported before it.
#![allow(clippy::unwrap_used)]

use lvsctl_model::manifest::{self, Source};

/// `n` services numbered from `first` (about 600 bytes each, as the scale generator writes
/// them); service `bad`, if any, has a weight out of range on its third real server.
fn services(first: usize, n: usize, bad: Option<usize>) -> String {
    let mut s = String::from("# generated for parallel_load.rs\nservices:\n");
    for i in first..first + n {
        s.push_str(&format!(
            "  - name: svc-{i:05}\n    vip: 172.16.{}.{}\n    port: 80\n    scheduler: wlc\n    real_servers:\n",
            i / 250,
            i % 250 + 1
        ));
        for j in 0..10 {
            let weight = if Some(i) == bad && j == 2 { 70000 } else { 1 };
            let n = i * 10 + j + 1;
            s.push_str(&format!(
                "      - {{address: 10.128.{}.{}, forward: dr, weight: {weight}}}\n",
                n / 256,
                n % 256
            ));
        }
    }
    s
}

const COMMENTS: &str = "# nothing here yet\n# (a file of comments only)\n";

/// What `load` answers, checked to be what `load_owned` answers too.
fn errors(sources: &[Source]) -> String {
    let answer = |r: Result<manifest::Manifest, manifest::Diagnostics>| match r {
        Ok(m) => format!("ok: {} services", m.services.len()),
        Err(d) => d.to_string(),
    };
    let borrowed = answer(manifest::load(sources));
    assert_eq!(answer(manifest::load_owned(sources.to_vec())), borrowed);
    borrowed
}

#[test]
fn large_files_read_together_answer_as_one_by_one() {
    // Each over the size that starts threads (256 KiB in all), each with its own error.
    let files: Vec<Source> = (0..4)
        .map(|k| {
            Source::new(
                format!("part-{k}.yaml"),
                services(k * 500, 500, Some(k * 500 + 7 + k)),
            )
        })
        .collect();
    assert!(files.iter().all(|f| f.text.len() > 256 * 1024));
    let one_by_one: Vec<String> = files
        .iter()
        .map(|f| errors(std::slice::from_ref(f)))
        .collect();
    for e in &one_by_one {
        assert!(e.contains("weight: 70000 is out of range"), "{e}");
    }
    assert_eq!(errors(&files), one_by_one.join("\n"));
}

#[test]
fn a_comments_only_file_is_empty_unless_an_earlier_file_failed() {
    let good = |name: &str, first| Source::new(name, services(first, 500, None));
    let bad = |name: &str, first| Source::new(name, services(first, 500, Some(first + 1)));
    let comments = Source::new("b.yaml", COMMENTS);

    // Nothing else wrong: the comments-only file is the error.
    let got = errors(&[good("a.yaml", 0), comments.clone(), good("c.yaml", 500)]);
    assert_eq!(
        got,
        "b.yaml:1:1: document: file is empty; a manifest is a mapping with services: (and \
         optionally director: and realserver:)"
    );

    // An earlier file failed: only the real errors, in file order.
    let got = errors(&[bad("a.yaml", 0), comments.clone(), bad("c.yaml", 500)]);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2, "{got}");
    assert!(lines[0].starts_with("a.yaml:"), "{got}");
    assert!(lines[1].starts_with("c.yaml:"), "{got}");

    // A later file failing does not hide it.
    let got = errors(&[good("a.yaml", 0), comments, bad("c.yaml", 500)]);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2, "{got}");
    assert!(
        lines[0].starts_with("b.yaml:1:1: document: file is empty"),
        "{got}"
    );
    assert!(lines[1].starts_with("c.yaml:"), "{got}");
}
