//! `lvsctl status`: the table operators know from `ipvsadm -L -n`, with rates and, when the
//! daemon runs, each real server's health and why.

use std::fmt::Write as _;
use std::path::Path;

use lvsctl_model::{Counters, Observed, ServiceKey};
use serde_json::Value;

/// The daemon's status file, if it is there and readable. Absent is normal (no daemon).
pub fn read_daemon_status(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
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
        if let Some(last) = d.get("last_reconcile") {
            let _ = writeln!(out, "daemon: last reconcile {last}");
        }
    }
    out
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
}
