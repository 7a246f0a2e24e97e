//! The daemon's status file (`--status-file`): health per real server and why, the manifest in
//! force, and the last reconcile, for `lvsctl status` and for operators. Written whole to a
//! temporary file and renamed over the old one, so a reader never sees half of it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Version of the JSON shape; bumped on incompatible changes.
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusFile {
    pub format_version: String,
    pub pid: u32,
    pub version: String,
    /// Unix seconds.
    pub started_at: f64,
    pub updated_at: f64,
    pub manifest: ManifestStatus,
    /// `None` until the first pass ran.
    pub last_reconcile: Option<ReconcileStatus>,
    /// service key (`tcp/10.0.0.1:80`) -> real server (`10.0.1.1:80`) -> health.
    pub health: BTreeMap<String, BTreeMap<String, HealthEntry>>,
    /// Real servers being drained (weight 0, deleted when idle or at `expires_at`).
    pub draining: Vec<DrainEntry>,
    /// Written last, by a daemon that stopped (SIGTERM): its verdicts no longer hold.
    #[serde(default)]
    pub stopped: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestStatus {
    /// True when the last read was valid; false means the last good manifest is still enforced.
    pub ok: bool,
    pub paths: Vec<String>,
    /// When the manifest in force was loaded (unix seconds); `None` if none ever loaded.
    pub loaded_at: Option<f64>,
    /// Why the last read was refused (diagnostics, missing file), when `ok` is false.
    pub error: Option<String>,
    pub services: usize,
    pub real_servers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileStatus {
    pub at: f64,
    /// What started the pass: `startup`, `manifest`, `reload` (SIGHUP), `resync`, `health`,
    /// `retry`.
    pub trigger: String,
    /// `ok`, `partial` (some operations failed; retrying), `failed` (could not observe or
    /// lock), `refused` (a safety guard stopped the plan), `waiting` (no valid manifest yet).
    pub result: String,
    /// One line for humans, e.g. `ok: 2 operation(s) applied (manifest)`.
    pub summary: String,
    pub duration_ms: f64,
    pub applied: usize,
    pub failed: usize,
    /// Operations that repaired changes made behind lvsctl's back.
    pub drift: usize,
    pub errors: Vec<String>,
    /// Milliseconds until the next retry, after a failure.
    pub retry_in_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthEntry {
    /// `up` or `down`.
    pub state: String,
    /// Why: the last failure while down (or failing), the last pass otherwise.
    pub reason: String,
    /// `http`, `tcp` or `exec`.
    pub check: String,
    /// False while the state is still the one taken from the kernel at startup.
    pub confirmed: bool,
    pub since: f64,
    pub last_check: Option<f64>,
    pub consecutive_ok: u32,
    pub consecutive_fail: u32,
    pub checks: u64,
    pub failures: u64,
    /// Checks the director could not run (out of sockets, memory, ports or processes); they
    /// changed nothing.
    #[serde(default)]
    pub not_run: u64,
    /// `remove` or `quiesce`.
    pub on_failure: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainEntry {
    pub service: String,
    pub server: String,
    pub since: f64,
    pub expires_at: f64,
}

pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Writes `status` to `path` atomically (temporary file in the same directory, then rename),
/// creating the directory if needed.
pub fn write(path: &Path, status: &StatusFile) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // 0755 whatever the umask: `apply` refuses verdicts from a folder others may write.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755)
        .create(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "status.json".to_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let text = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    let result = (|| {
        let mut f = crate::files::create_fresh(&tmp)?;
        f.write_all(&text)?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A status with one service of two real servers and no health yet.
    fn sample() -> StatusFile {
        StatusFile {
            format_version: FORMAT_VERSION.into(),
            pid: 1,
            version: "0.1.0".into(),
            started_at: 1.0,
            updated_at: 2.0,
            manifest: ManifestStatus {
                ok: true,
                paths: vec!["/etc/lvsctl".into()],
                loaded_at: Some(1.5),
                error: None,
                services: 1,
                real_servers: 2,
            },
            last_reconcile: None,
            health: BTreeMap::new(),
            draining: Vec::new(),
            stopped: false,
        }
    }

    /// The daemon writes its status as root through a temporary name anyone can predict: a
    /// symlink planted there (by whoever can write the folder) must not be written through.
    #[test]
    fn a_symlink_at_the_temporary_name_is_not_written_through() {
        let dir = super::super::tests::tempdir("status-link");
        let path = dir.join("status.json");
        let victim = dir.join("precious");
        std::fs::write(&victim, "root:secret\n").unwrap();
        let tmp = dir.join(format!(".status.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let s = sample();
        write(&path, &s).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        let back: StatusFile =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn written_atomically_and_reads_back() {
        let dir = super::super::tests::tempdir("status");
        let path = dir.join("run/lvsctl/status.json");
        let mut s = sample();
        s.health.entry("fwmark/10".into()).or_default().insert(
            "192.168.60.101:0".into(),
            HealthEntry {
                state: "down".into(),
                reason: "unexpected http status 503 (expected 200)".into(),
                check: "http".into(),
                confirmed: true,
                since: 1.9,
                last_check: Some(1.95),
                consecutive_ok: 0,
                consecutive_fail: 3,
                checks: 10,
                failures: 3,
                not_run: 0,
                on_failure: "remove".into(),
            },
        );
        write(&path, &s).unwrap();
        let back: StatusFile =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, s);
        // The shape `lvsctl status` reads: health.<service>.<server>.{state,reason}.
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            v["health"]["fwmark/10"]["192.168.60.101:0"]["state"],
            "down"
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["status.json"]);
    }
}
