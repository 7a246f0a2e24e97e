//! Locating workspace binaries to copy into the VM: `env!("CARGO_BIN_EXE_...")` only covers
//! the test's own crate, so these ask cargo to build the artifact and read its path from
//! cargo's JSON messages.

use std::{
    collections::HashMap,
    env,
    ffi::OsString,
    path::PathBuf,
    process::{Command, Stdio},
    sync::Mutex,
};

use crate::{VmError, repo_root};

/// Built artifacts of this process, so each is built once per test binary.
static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// Builds the binary `name` of the package `name` (`cargo build -p NAME --bin NAME`) once
/// and returns its path.
pub fn workspace_bin(name: &str) -> Result<PathBuf, VmError> {
    workspace_bin_in(name, name)
}

/// Builds the binary `bin` of `package` once and returns its path.
pub fn workspace_bin_in(package: &str, bin: &str) -> Result<PathBuf, VmError> {
    built(
        &["build", "-p", package, "--bin", bin],
        ArtifactKind::Bin,
        bin,
    )
}

/// Builds the integration test target `test_target` of `package`
/// (`cargo test -p PKG --test T --no-run`) once and returns the test executable's path.
pub fn test_binary(package: &str, test_target: &str) -> Result<PathBuf, VmError> {
    built(
        &["test", "-p", package, "--test", test_target, "--no-run"],
        ArtifactKind::Test,
        test_target,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArtifactKind {
    Bin,
    Test,
}

impl ArtifactKind {
    fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Bin => "bin",
            ArtifactKind::Test => "test",
        }
    }
}

fn built(args: &[&str], kind: ArtifactKind, name: &str) -> Result<PathBuf, VmError> {
    let key = args.join(" ");
    // Held while cargo runs: a second thread asking for the same thing waits for the first.
    let mut cache = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = cache.get_or_insert_with(HashMap::new).get(&key) {
        return Ok(path.clone());
    }
    let path = cargo_artifact(args, kind, name)?;
    cache
        .get_or_insert_with(HashMap::new)
        .insert(key, path.clone());
    Ok(path)
}

fn cargo_artifact(args: &[&str], kind: ArtifactKind, name: &str) -> Result<PathBuf, VmError> {
    // Under `cargo test`, CARGO names the cargo that runs us; the target dir (and
    // CARGO_TARGET_DIR) are inherited, so the binaries land next to the test's own.
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let shown = args.join(" ");
    let out = Command::new(&cargo)
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|source| VmError::Spawn {
            what: format!("cargo ({})", cargo.to_string_lossy()),
            source,
        })?;
    if !out.status.success() {
        return Err(VmError::Cargo {
            args: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    find_artifact(&String::from_utf8_lossy(&out.stdout), kind, name).ok_or_else(|| {
        VmError::NoArtifact {
            args: shown,
            kind: kind.as_str().to_string(),
            name: name.to_string(),
        }
    })
}

/// The executable of the `kind` target `name` among cargo's JSON messages (one per line).
fn find_artifact(json_lines: &str, kind: ArtifactKind, name: &str) -> Option<PathBuf> {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["target"]["name"] == name)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == kind.as_str()))
        })
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Trimmed from real `cargo test --no-run --message-format=json` output.
    const MESSAGES: &str = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/lvsctl-vmtest#0.1.0","target":{"kind":["lib"],"crate_types":["lib"],"name":"lvsctl_vmtest","src_path":"/w/crates/lvsctl-vmtest/src/lib.rs","edition":"2024","doctest":true,"test":true},"profile":{"test":false},"filenames":["/t/debug/deps/liblvsctl_vmtest-1.rlib"],"executable":null,"fresh":true}
{"reason":"compiler-artifact","package_id":"path+file:///w/crates/lvsctl-vmtest#0.1.0","target":{"kind":["test"],"crate_types":["bin"],"name":"guest_smoke","src_path":"/w/crates/lvsctl-vmtest/tests/guest_smoke.rs","edition":"2024","doctest":false,"test":true},"profile":{"test":true},"filenames":["/t/debug/deps/guest_smoke-abc"],"executable":"/t/debug/deps/guest_smoke-abc","fresh":false}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"guest_smoke"},"executable":"/t/debug/guest_smoke"}
not json: cargo noise
{"reason":"build-finished","success":true}"#;

    #[test]
    fn finds_the_test_executable() {
        assert_eq!(
            find_artifact(MESSAGES, ArtifactKind::Test, "guest_smoke").unwrap(),
            PathBuf::from("/t/debug/deps/guest_smoke-abc")
        );
    }

    #[test]
    fn kind_tells_bins_from_tests() {
        assert_eq!(
            find_artifact(MESSAGES, ArtifactKind::Bin, "guest_smoke").unwrap(),
            PathBuf::from("/t/debug/guest_smoke")
        );
    }

    #[test]
    fn libraries_and_unknown_names_give_nothing() {
        assert_eq!(
            find_artifact(MESSAGES, ArtifactKind::Bin, "lvsctl_vmtest"),
            None
        );
        assert_eq!(find_artifact(MESSAGES, ArtifactKind::Test, "nope"), None);
    }
}
