//! `lvsctl status`: the table operators know from `ipvsadm -L -n`, with rates and, when the
//! daemon runs, each real server's health and why.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use lvsctl_model::{Counters, Observed, ServiceKey};
use serde_json::Value;

/// The daemon's status file: `Ok(None)` when absent (normal: no daemon), an error saying why
/// when it is there but cannot be used, so health never silently disappears.
pub fn read_daemon_status(path: &Path) -> Result<Option<Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a daemon status file: {e}", path.display()))?;
    match v.get("format_version").and_then(Value::as_str) {
        Some("1") => Ok(Some(v)),
        Some(other) => Err(format!(
            "{} has status format_version \"{other}\"; this lvsctl reads \"1\" (is the daemon another version?)",
            path.display()
        )),
        None => Err(format!(
            "{} has no format_version; it is not a status file `lvsctl run` wrote",
            path.display()
        )),
    }
}

/// What a daemon's status file says about the daemon, for `plan` and `apply`.
pub enum DaemonVerdicts {
    /// No status file: no daemon runs (or it writes elsewhere).
    Absent,
    /// The file is left over from a daemon that no longer runs (why, for the log).
    NotRunning { pid: u64, why: &'static str },
    /// A running daemon's verdicts.
    Running(DaemonHealth),
}

/// The real servers a running daemon found down, keyed as its status file writes them
/// (service key, then real server).
pub struct DaemonHealth {
    pub pid: u64,
    down: HashMap<String, HashMap<String, DownVerdict>>,
}

pub struct DownVerdict {
    /// A check confirmed it (else it is the kernel's state, taken over at start).
    pub confirmed: bool,
    pub reason: String,
}

impl DaemonHealth {
    /// The servers of one service (as `ServiceKey` displays) that the daemon found down.
    pub fn down_in(&self, service: &str) -> Option<&HashMap<String, DownVerdict>> {
        self.down.get(service)
    }
}

/// Why process `pid` is not an `lvsctl run` (gone, or the pid reused by another program after
/// a daemon that died without a word), or `None` when it is one.
fn not_a_running_daemon(pid: u64) -> Option<&'static str> {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return Some("it no longer runs");
    };
    let mut args = cmdline.split(|b| *b == 0).map(String::from_utf8_lossy);
    let program = args.next().unwrap_or_default();
    let is_lvsctl = Path::new(program.as_ref())
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("lvsctl"));
    if is_lvsctl && args.any(|a| a == "run") {
        None
    } else {
        Some("that pid is now another program")
    }
}

/// Why the daemon that wrote status `v` (naming `pid`) no longer counts as running: its last
/// file says it stopped, or the pid is not an `lvsctl run`; `None` when it runs.
fn why_not_running(v: &Value, pid: u64) -> Option<&'static str> {
    if v.get("stopped").and_then(Value::as_bool) == Some(true) {
        return Some("it stopped");
    }
    not_a_running_daemon(pid)
}

/// Refuses a status file that another user could have written: its verdicts take real servers
/// out of an `apply`. The daemon writes it whole and renames it into place, so only a file
/// another user owns or every user may write, or one in a folder another user owns or every
/// user may write without the sticky bit (they could rename theirs over it), could hold
/// someone else's words.
fn check_writers(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.mode() & 0o7777;
    let euid = crate::files::current_euid();
    let fix = "so anyone could claim real servers down";
    // Root's daemon writes it, or the caller's own (tests, a daemon run by hand).
    let trusted = |uid: u32| uid == 0 || uid == euid;
    if !trusted(meta.uid()) {
        return Err(format!(
            "{}: owned by uid {}, neither root nor you, {fix}; the daemon writes it as root",
            path.display(),
            meta.uid()
        ));
    }
    // A group's write bit on root's (or the caller's) own file is that owner's choice.
    if mode & 0o002 != 0 {
        return Err(format!(
            "{}: every user can write it (mode {mode:o}), {fix}; the daemon writes it 0644 \
             (`chmod o-w`)",
            path.display()
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir_meta =
        std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let dir_mode = dir_meta.mode() & 0o7777;
    // Whoever owns the folder can rename their own file over the daemon's.
    if !trusted(dir_meta.uid()) {
        return Err(format!(
            "{}: its folder {} is owned by uid {}, neither root nor you, who could put their \
             own file in its place, {fix}; give the daemon a folder of its own (`run \
             --status-file`)",
            path.display(),
            dir.display(),
            dir_meta.uid()
        ));
    }
    if dir_mode & 0o002 != 0 && dir_mode & 0o1000 == 0 {
        return Err(format!(
            "{}: every user can write its folder {} (mode {dir_mode:o}) and rename their own \
             file over it, {fix}; give the daemon a folder of its own (`run --status-file`)",
            path.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// Reads the daemon's verdicts from its status file; a daemon is running when the process the
/// file names is `lvsctl run` and the file does not say it stopped.
pub fn daemon_verdicts(path: &Path) -> Result<DaemonVerdicts, String> {
    let Some(v) = read_daemon_status(path)? else {
        return Ok(DaemonVerdicts::Absent);
    };
    check_writers(path)?;
    let pid = v
        .get("pid")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{} names no daemon pid", path.display()))?;
    if let Some(why) = why_not_running(&v, pid) {
        return Ok(DaemonVerdicts::NotRunning { pid, why });
    }
    let mut down: HashMap<String, HashMap<String, DownVerdict>> = HashMap::new();
    for (svc, servers) in v
        .get("health")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for (server, entry) in servers.as_object().into_iter().flatten() {
            if entry.get("state").and_then(Value::as_str) != Some("down") {
                continue;
            }
            let verdict = DownVerdict {
                // Unknown: as the kernel has it (never brings a sorry server in).
                confirmed: entry
                    .get("confirmed")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                reason: entry
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            };
            down.entry(svc.clone())
                .or_default()
                .insert(server.clone(), verdict);
        }
    }
    Ok(DaemonVerdicts::Running(DaemonHealth { pid, down }))
}

/// Health of one real server from the daemon's status: (state, reason).
fn health_of(status: Option<&Value>, svc: &ServiceKey, dest: &str) -> Option<(String, String)> {
    let entry = status?.get("health")?.get(svc.to_string())?.get(dest)?;
    let state = entry.get("state")?.as_str()?.to_owned();
    let reason = entry
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Some((state, reason))
}

pub fn render(observed: &Observed, daemon: Option<&Value>, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:<10} {:>7} {:>9} {:>9} {:>8} {:>10}  HEALTH",
        "SERVICE / REAL SERVER", "SCHED/FWD", "WEIGHT", "ACTIVE", "INACTIVE", "CPS", "IN B/S"
    );
    let zero = Counters::default();
    for (key, svc) in &observed.state.services {
        let c = observed.counters.get(key);
        let sc = c.map(|c| &c.service).unwrap_or(&zero);
        let mut sched = svc.spec.scheduler.to_string();
        if let Some(p) = svc.spec.persistence {
            let _ = write!(sched, " p{}", p.timeout);
        }
        let active: u32 = c
            .map(|c| c.dests.values().map(|d| d.active_conns).sum())
            .unwrap_or(0);
        let inactive: u32 = c
            .map(|c| c.dests.values().map(|d| d.inactive_conns).sum())
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<44} {:<10} {:>7} {:>9} {:>9} {:>8} {:>10}",
            paint("1", &key.to_string()),
            sched,
            "",
            active,
            inactive,
            sc.cps,
            sc.in_bps
        );
        for (dk, d) in &svc.dests {
            let dc = c.and_then(|c| c.dests.get(dk)).unwrap_or(&zero);
            let name = dk.to_string();
            let health = match health_of(daemon, key, &name) {
                Some((state, reason)) => {
                    let s = match state.as_str() {
                        "up" => paint("32", "up"),
                        "down" => paint("31", "down"),
                        other => other.to_owned(),
                    };
                    if reason.is_empty() {
                        s
                    } else {
                        format!("{s} ({reason})")
                    }
                }
                None => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "  -> {:<40} {:<10} {:>7} {:>9} {:>9} {:>8} {:>10}  {health}",
                name,
                d.forward.to_string(),
                d.weight,
                dc.active_conns,
                dc.inactive_conns,
                dc.cps,
                dc.in_bps
            );
        }
        // Real servers the daemon took out of IPVS (on_failure: remove) are not in the table
        // any more; they are what the operator most needs to see.
        for (dest, state, reason) in removed_by_daemon(daemon, key, svc) {
            let s = match state.as_str() {
                "down" => paint("31", "down"),
                "up" => paint("32", "up"),
                other => other.to_owned(),
            };
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            };
            let _ = writeln!(
                out,
                "  -> {:<40} {:<10} {:>7} {:>9} {:>9} {:>8} {:>10}  {s}{why}",
                dest, "(removed)", "-", "-", "-", "-", "-"
            );
        }
    }
    for (family, chain) in &observed.state.marks {
        let _ = writeln!(
            out,
            "mangle LVSCTL-MARK ({family}){}:",
            if chain.hooked { "" } else { " NOT HOOKED" }
        );
        for r in &chain.rules {
            let _ = writeln!(out, "  {r}");
        }
    }
    if let Some(v) = &observed.state.vips {
        let owned: Vec<String> = v.owned.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(out, "VIPs on {}: {}", v.interface, owned.join(", "));
    }
    if let Some(d) = daemon {
        daemon_lines(&mut out, d, &paint);
    }
    out
}

/// Real servers of `svc` that the daemon reports health for but that IPVS no longer has.
fn removed_by_daemon(
    daemon: Option<&Value>,
    key: &ServiceKey,
    svc: &lvsctl_model::Service,
) -> Vec<(String, String, String)> {
    let Some(dests) = daemon
        .and_then(|d| d.get("health"))
        .and_then(|h| h.get(key.to_string()))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let present: std::collections::BTreeSet<String> =
        svc.dests.keys().map(ToString::to_string).collect();
    dests
        .iter()
        .filter(|(name, _)| !present.contains(*name))
        .filter_map(|(name, entry)| {
            let state = entry.get("state")?.as_str()?.to_owned();
            let reason = entry
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            Some((name.clone(), state, reason))
        })
        .collect()
}

/// The daemon's own news: manifest refused, last reconcile, real servers draining.
fn daemon_lines(out: &mut String, d: &Value, paint: &dyn Fn(&str, &str) -> String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs_f64())
        .unwrap_or(0.0);
    let ago = |at: Option<f64>| match at {
        Some(at) if now >= at => format!("{}s ago", (now - at).round() as u64),
        Some(_) => "just now".to_owned(),
        None => "at an unknown time".to_owned(),
    };
    // A daemon that stopped or died leaves its last status behind: say the health is old news.
    if let Some(pid) = d.get("pid").and_then(Value::as_u64)
        && let Some(why) = why_not_running(d, pid)
    {
        let _ = writeln!(
            out,
            "daemon: {} (pid {pid}: {why}); health above as of {}",
            paint("31", "not running"),
            ago(d.get("updated_at").and_then(Value::as_f64))
        );
    }
    if let Some(m) = d.get("manifest")
        && m.get("ok").and_then(Value::as_bool) == Some(false)
    {
        let error = m
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        let _ = writeln!(
            out,
            "daemon: {}: {error} (the last good manifest is still enforced)",
            paint("31", "manifest refused")
        );
    }
    match d.get("last_reconcile") {
        Some(Value::Object(last)) => {
            let summary = last
                .get("summary")
                .and_then(Value::as_str)
                .or_else(|| last.get("result").and_then(Value::as_str))
                .unwrap_or("?");
            let _ = writeln!(
                out,
                "daemon: last reconcile {}: {summary}",
                ago(last.get("at").and_then(Value::as_f64))
            );
            if let Some(errors) = last.get("errors").and_then(Value::as_array) {
                for e in errors.iter().filter_map(Value::as_str) {
                    let _ = writeln!(out, "  {} {e}", paint("31", "error:"));
                }
            }
        }
        Some(Value::Null) | None => {
            let _ = writeln!(out, "daemon: no reconcile yet");
        }
        Some(other) => {
            let _ = writeln!(out, "daemon: last reconcile {other}");
        }
    }
    if let Some(draining) = d.get("draining").and_then(Value::as_array) {
        for e in draining {
            let service = e.get("service").and_then(Value::as_str).unwrap_or("?");
            let server = e.get("server").and_then(Value::as_str).unwrap_or("?");
            let left = e
                .get("expires_at")
                .and_then(Value::as_f64)
                .map(|t| format!("{}s", (t - now).max(0.0).round() as u64))
                .unwrap_or_else(|| "?".to_owned());
            let _ = writeln!(
                out,
                "daemon: draining {server} of {service} (deleted when idle, at the latest in {left})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shows_services_dests_counters_and_health() {
        let mut o = Observed::default();
        let key: ServiceKey = "fwmark/10".parse().unwrap();
        let mut svc = lvsctl_model::Service::default();
        let dk: lvsctl_model::DestKey = "192.168.60.101:0".parse().unwrap();
        svc.dests.insert(dk, lvsctl_model::DestSpec::default());
        o.state.services.insert(key, svc);
        let mut sc = lvsctl_model::ServiceCounters::default();
        sc.dests.insert(
            dk,
            Counters {
                active_conns: 7,
                ..Counters::default()
            },
        );
        o.counters.insert(key, sc);
        let health = serde_json::json!({"health": {"fwmark/10": {"192.168.60.101:0":
            {"state": "down", "reason": "http: status 503"}}}});
        let text = render(&o, Some(&health), false);
        assert!(text.contains("fwmark/10"), "{text}");
        let line = text
            .lines()
            .find(|l| l.contains("192.168.60.101:0"))
            .unwrap();
        assert!(line.contains(" 7 "), "{line}");
        assert!(line.contains("down (http: status 503)"), "{line}");
    }

    #[test]
    fn shows_servers_the_daemon_removed_and_its_last_reconcile() {
        let mut o = Observed::default();
        let key: ServiceKey = "tcp/10.0.0.1:80".parse().unwrap();
        let mut svc = lvsctl_model::Service::default();
        svc.dests.insert(
            "10.0.1.1:80".parse().unwrap(),
            lvsctl_model::DestSpec::default(),
        );
        o.state.services.insert(key, svc);
        let daemon = serde_json::json!({
            "manifest": {"ok": false, "error": "a.yaml:3:5: bad port"},
            "last_reconcile": {"at": 0.0, "result": "partial",
                "summary": "partial: 1 of 2 operation(s) failed (health)",
                "errors": ["add real server 10.0.1.2:80: EINVAL"]},
            "health": {"tcp/10.0.0.1:80": {
                "10.0.1.1:80": {"state": "up", "reason": "http 200"},
                "10.0.1.2:80": {"state": "down", "reason": "tcp: connection refused"}}},
            "draining": [{"service": "tcp/10.0.0.1:80", "server": "10.0.1.3:80",
                "since": 0.0, "expires_at": 0.0}]
        });
        let text = render(&o, Some(&daemon), false);
        let removed = text.lines().find(|l| l.contains("10.0.1.2:80")).unwrap();
        assert!(removed.contains("(removed)"), "{removed}");
        assert!(
            removed.contains("down (tcp: connection refused)"),
            "{removed}"
        );
        assert!(
            text.contains("manifest refused: a.yaml:3:5: bad port"),
            "{text}"
        );
        assert!(
            text.contains("s ago: partial: 1 of 2 operation(s) failed (health)"),
            "{text}"
        );
        assert!(
            text.contains("error: add real server 10.0.1.2:80: EINVAL"),
            "{text}"
        );
        assert!(
            text.contains("draining 10.0.1.3:80 of tcp/10.0.0.1:80"),
            "{text}"
        );
        assert!(!text.contains('{'), "no raw JSON: {text}");
        assert!(!text.contains("not running"), "no pid: nothing to check");
    }

    #[test]
    fn a_dead_daemons_status_is_flagged_stale() {
        let daemon = serde_json::json!({"pid": 99_999_999u64, "updated_at": 0.0,
            "last_reconcile": null, "health": {}});
        let text = render(&Observed::default(), Some(&daemon), false);
        assert!(
            text.contains(
                "daemon: not running (pid 99999999: it no longer runs); health above as of "
            ),
            "{text}"
        );
        // This test's pid is a process, but not an `lvsctl run`.
        let other = serde_json::json!({"pid": std::process::id(), "updated_at": 0.0});
        let text = render(&Observed::default(), Some(&other), false);
        let pid = std::process::id();
        assert!(
            text.contains(&format!("(pid {pid}: that pid is now another program)")),
            "{text}"
        );
        let stopped =
            serde_json::json!({"pid": std::process::id(), "updated_at": 0.0, "stopped": true});
        assert!(render(&Observed::default(), Some(&stopped), false).contains(": it stopped)"));
    }

    #[test]
    fn status_files_are_read_or_explained() {
        let dir = std::env::temp_dir().join(format!("lvsctl-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("status.json");
        assert_eq!(read_daemon_status(&f), Ok(None));
        std::fs::write(&f, "{\"format_version\": \"1\", \"health\": {}}").unwrap();
        assert!(read_daemon_status(&f).unwrap().is_some());
        std::fs::write(&f, "{\"format_version\": \"2\"}").unwrap();
        let err = read_daemon_status(&f).unwrap_err();
        assert!(
            err.contains("format_version \"2\"; this lvsctl reads"),
            "{err}"
        );
        std::fs::write(&f, "{\"pid\": 1}").unwrap();
        let err = read_daemon_status(&f).unwrap_err();
        assert!(err.contains("has no format_version"), "{err}");
        std::fs::write(&f, "{trunc").unwrap();
        let err = read_daemon_status(&f).unwrap_err();
        assert!(err.contains("is not a daemon status file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Whoever owns the status file, or its folder, could have written the verdicts in it
    /// (or renamed their own file over it): only root's or the caller's count. As root, a
    /// folder another user owns and its group may write is refused unless sticky.
    #[test]
    fn a_status_file_or_folder_another_user_owns_is_not_trusted() {
        use std::os::unix::fs::{PermissionsExt, chown};
        if crate::files::current_euid() != 0 {
            eprintln!("skipped: needs root (chown)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("lvsctl-status-own-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let folder = dir.join("st");
        std::fs::create_dir_all(&folder).unwrap();
        let f = folder.join("status.json");
        std::fs::write(&f, "{}").unwrap();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        mode(&f, 0o644);
        mode(&folder, 0o755);
        assert_eq!(check_writers(&f), Ok(()));

        chown(&f, Some(65534), None).unwrap();
        let err = check_writers(&f).unwrap_err();
        assert!(
            err.contains("owned by uid 65534, neither root nor you"),
            "{err}"
        );
        chown(&f, Some(0), None).unwrap();

        chown(&folder, Some(65534), None).unwrap();
        let err = check_writers(&f).unwrap_err();
        assert!(err.contains("is owned by uid 65534"), "{err}");

        // Root's folder that a group may write: root decides who is in that group.
        chown(&folder, Some(0), Some(65534)).unwrap();
        mode(&folder, 0o775);
        assert_eq!(check_writers(&f), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
