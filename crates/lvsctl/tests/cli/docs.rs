//! What operators read: `--help` with examples on every command, completions, man pages,
//! colour rules, and the split between stdout (plans) and stderr (logs).

use crate::support::{Sandbox, example, has_ansi};

/// Subcommand names as `lvsctl --help` lists them, so a new command is covered automatically.
fn subcommands(sb: &Sandbox) -> Vec<String> {
    let help = sb.run(&["--help"]).success().stdout;
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            if line.is_empty() {
                break;
            }
            let name = line.split_whitespace().next().unwrap();
            if name != "help" {
                names.push(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let sb = Sandbox::new("docs-help");
    let names = subcommands(&sb);
    for expected in [
        "validate",
        "plan",
        "apply",
        "export",
        "import",
        "status",
        "run",
        "realserver",
        "completions",
        "man",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for name in &names {
        let out = sb.run(&[name, "--help"]).success();
        let example_section = out
            .stdout
            .lines()
            .position(|l| l == "Example:" || l == "Examples:")
            .unwrap_or_else(|| panic!("`lvsctl {name} --help` has no Example section"));
        let first = out.stdout.lines().nth(example_section + 1).unwrap();
        assert!(
            first.trim_start().starts_with("lvsctl ")
                || first.contains("| lvsctl ")
                || first.contains("&& lvsctl "),
            "{name}: the example runs lvsctl: {first:?}"
        );
    }
}

#[test]
fn top_level_help_documents_the_exit_codes() {
    let sb = Sandbox::new("docs-exit-codes");
    let out = sb.run(&["--help"]).success();
    for line in [
        "  0  success (a plain plan exits 0 with or without changes)",
        "  1  error: invalid manifest or usage, kernel or iptables error, failed step,",
        "  2  plan --detailed-exitcode: the plan has changes or director.timeouts differ",
        "  3  apply refused by a safety guard (nothing was changed)",
    ] {
        assert!(out.stdout.contains(line), "{line:?} in\n{}", out.stdout);
    }
}

#[test]
fn completions_for_each_shell_know_the_subcommands() {
    let sb = Sandbox::new("docs-completions");
    let names = subcommands(&sb);
    for shell in ["bash", "zsh", "fish"] {
        let out = sb.run(&["completions", shell]).success();
        assert!(
            out.stdout.len() > 1000,
            "{shell}: {} bytes",
            out.stdout.len()
        );
        for name in &names {
            assert!(
                out.stdout.contains(name.as_str()),
                "{shell} completion lacks {name}"
            );
        }
        // Options of subcommands too.
        assert!(out.stdout.contains("detailed-exitcode"), "{shell}");
        assert!(out.stdout.contains("allow-destroy"), "{shell}");
    }
    assert!(
        sb.run(&["completions", "bash"])
            .stdout
            .contains("complete -F _lvsctl")
    );
}

#[test]
fn man_writes_a_page_per_command() {
    let sb = Sandbox::new("docs-man");
    let dir = sb.path("man1");
    let out = sb.run(&["man", "--out", dir.to_str().unwrap()]).success();
    assert_eq!(out.stdout, "", "man pages go to files, the note to stderr");
    assert!(out.stderr.contains("wrote man pages to"), "{}", out.stderr);
    let main = std::fs::read_to_string(dir.join("lvsctl.1")).unwrap();
    assert!(
        main.contains(".TH lvsctl 1"),
        "{}",
        &main[..200.min(main.len())]
    );
    assert!(
        main.contains("Exit codes"),
        "the exit codes are in the man page"
    );
    for name in subcommands(&sb) {
        let page = dir.join(format!("lvsctl-{name}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("no {}", page.display()));
        assert!(text.contains(".TH lvsctl-"), "{name}");
        assert!(
            text.contains("Example"),
            "{name}: man page keeps the example"
        );
    }
}

#[test]
fn colour_on_request_plain_when_piped_or_no_color() {
    let sb = Sandbox::new("docs-colour");
    let m = example("pnmpp");
    let piped = sb.run(&["plan", "-f", &m]).success();
    assert!(!has_ansi(&piped.stdout));
    assert!(!has_ansi(&piped.stderr));
    let coloured = sb.run(&["plan", "-f", &m, "--color", "always"]).success();
    assert!(
        coloured
            .stdout
            .contains("\x1b[32m+\x1b[0m service fwmark/10"),
        "{}",
        coloured.stdout
    );
    // NO_COLOR only affects "auto"; piped output is plain either way.
    let no_color = sb
        .cmd(&["plan", "-f", &m])
        .env("NO_COLOR", "1")
        .run()
        .success();
    assert_eq!(no_color.stdout, piped.stdout);
    let never = sb.run(&["plan", "-f", &m, "--color", "never"]).success();
    assert_eq!(never.stdout, piped.stdout);
}

#[test]
fn logs_go_to_stderr_and_the_plan_to_stdout() {
    let sb = Sandbox::new("docs-streams");
    let out = sb.run(&["-v", "plan", "-f", &example("ppc")]).success();
    assert!(out.stdout.starts_with("Symbols: + add\n"), "{}", out.stdout);
    assert!(
        out.stderr.contains("observed the director"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("observed the director"));
    // JSON logs: one object per line, still on stderr.
    let out = sb
        .run(&["--log-format", "json", "apply", "-f", &example("ppc")])
        .success();
    assert!(out.stdout.contains("Plan: 6 to add"));
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    // -q: warnings only.
    let out = sb.run(&["-q", "plan", "-f", &example("ppc")]).success();
    assert_eq!(out.stderr, "");
}

/// Runs `lvsctl ARGS` on a pseudo-terminal (util-linux `script`), where `--color auto` decides
/// by itself; returns what the terminal showed (stdout and stderr together).
fn on_a_terminal(sb: &Sandbox, args: &str, no_color: bool) -> String {
    let mut c = std::process::Command::new("script");
    c.args([
        "-qec",
        &format!("{} {args}", crate::support::BIN),
        "/dev/null",
    ])
    .current_dir(crate::support::repo_root())
    .env("LVSCTL_FAKE_KERNEL", sb.kernel())
    .env_remove("RUST_LOG")
    .env_remove("NO_COLOR")
    .stdin(std::process::Stdio::null());
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let out = c
        .output()
        .expect("util-linux `script` runs the terminal tests");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn on_a_terminal_colour_is_on_unless_no_color() {
    let sb = Sandbox::new("docs-tty");
    let args = "plan -f examples/pnmpp.yaml";
    let tty = on_a_terminal(&sb, args, false);
    assert!(
        tty.contains("\x1b[32m+\x1b[0m service fwmark/10"),
        "{tty:?}"
    );
    // NO_COLOR turns off every escape: the plan's and the logs'.
    let plain = on_a_terminal(&sb, args, true);
    assert!(!has_ansi(&plain), "{plain:?}");
    assert!(plain.contains("INFO observed the director"), "{plain:?}");
    assert!(plain.contains("  + service fwmark/10"), "{plain:?}");
}

/// The README's "every key" manifest is one valid manifest, so it can be copied as it is.
#[test]
fn the_readmes_every_key_block_validates() {
    let sb = Sandbox::new("docs-every-key");
    let readme = std::fs::read_to_string(crate::support::repo_root().join("README.md")).unwrap();
    let start = readme
        .find("Every key, with its default or range:")
        .expect("README.md has the every-key block");
    let block = readme[start..]
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .unwrap();
    assert!(block.contains("real_servers:") && block.contains("realserver:"));
    let path = sb.write("every.yaml", block);
    let out = sb
        .run(&["validate", "-f", path.to_str().unwrap()])
        .success();
    assert!(
        out.stdout.starts_with("valid: 1 service(s)"),
        "{}",
        out.stdout
    );
}

/// Files named in `--help` examples exist in the repository.
#[test]
fn help_examples_name_files_that_exist() {
    let sb = Sandbox::new("docs-help-files");
    let root = crate::support::repo_root();
    for name in subcommands(&sb) {
        let help = sb.run(&[&name, "--help"]).success().stdout;
        for word in help.split_whitespace() {
            if (word.starts_with("examples/") || word.starts_with("manifests/"))
                && !word.ends_with('/')
            {
                assert!(
                    root.join(word).exists(),
                    "`lvsctl {name} --help` names {word}, which does not exist"
                );
            }
        }
    }
}
