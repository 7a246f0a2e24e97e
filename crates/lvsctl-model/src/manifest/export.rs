//! `lvsctl export`: a [`State`] written back as manifest text that [`super::parse`] reads into
//! the same state. What a manifest cannot express (kernel-only forwarding methods, MARK rules
//! without a fwmark service, ...) is written as a `# skipped:` comment instead of being lost
//! silently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use super::read::MAX_NAME_LEN;
use crate::state::{
    DestKey, DestSpec, Family, Forward, MarkRule, Persistence, ServiceKey, State, TunnelType,
};

/// Writes `state` as a manifest. Service names come from the MARK rules' comments for fwmark
/// services when usable, and are generated otherwise (`tcp-192-168-6-101-80`, `fwmark-10`).
pub fn manifest_from_state(state: &State) -> String {
    let mut out = String::new();
    let mut skipped: Vec<String> = Vec::new();

    // MARK rules grouped by the fwmark service they feed.
    let mut rules_of: BTreeMap<ServiceKey, Vec<&MarkRule>> = BTreeMap::new();
    for (family, chain) in &state.marks {
        if !chain.hooked && !chain.rules.is_empty() {
            skipped.push(format!(
                "the {family} MARK chain is not hooked into PREROUTING/OUTPUT; a manifest always hooks it"
            ));
        }
        for rule in &chain.rules {
            let key = ServiceKey::Fwmark {
                mark: rule.mark,
                family: rule.family(),
            };
            if rule.family() != *family || !state.services.contains_key(&key) {
                skipped.push(format!("MARK rule {rule}: no {key} service to feed"));
                continue;
            }
            rules_of.entry(key).or_default().push(rule);
        }
    }

    let names = service_names(state, &rules_of);

    if let Some(v) = &state.vips {
        let derived: BTreeSet<IpAddr> = state
            .services
            .keys()
            .flat_map(|k| match k {
                ServiceKey::Inet { vip, .. } => vec![*vip],
                ServiceKey::Fwmark { .. } => rules_of
                    .get(k)
                    .map(|rs| rs.iter().map(|r| r.vip).collect())
                    .unwrap_or_default(),
            })
            .collect();
        // A manifest's vip_interface holds every service VIP: with one of them elsewhere (put
        // on another interface by hand), applying the export would add it there too. Leave VIPs
        // unmanaged instead, so the export reproduces the director as it is.
        let elsewhere: Vec<String> = derived
            .iter()
            .filter(|a| !v.owned.contains(a) && !v.foreign.contains(a))
            .map(ToString::to_string)
            .collect();
        if elsewhere.is_empty() {
            let _ = writeln!(out, "director:");
            let _ = writeln!(out, "  vip_interface: {}", v.interface);
        } else {
            skipped.push(format!(
                "director.vip_interface {}: the VIPs {} of services are not on it, and a \
                 manifest's vip_interface holds every service VIP; VIPs are left unmanaged \
                 (add vip_interface back to have lvsctl put them all there)",
                v.interface,
                elsewhere.join(", ")
            ));
        }
        for extra in v.owned.difference(&derived) {
            skipped.push(format!(
                "VIP {extra} on {} belongs to no service; a manifest keeps only service VIPs",
                v.interface
            ));
        }
    }

    if state.services.is_empty() {
        let _ = writeln!(out, "services: []");
    } else {
        let _ = writeln!(out, "services:");
    }
    for (key, svc) in &state.services {
        let name = names.get(key).map_or("unnamed", String::as_str);
        let _ = writeln!(out, "  - name: {name}");
        match key {
            ServiceKey::Inet {
                protocol,
                vip,
                port,
            } => {
                let _ = writeln!(out, "    protocol: {protocol}");
                let _ = writeln!(out, "    vip: {}", addr(*vip));
                let _ = writeln!(out, "    port: {port}");
            }
            ServiceKey::Fwmark { mark, family } => {
                let _ = writeln!(out, "    fwmark: {mark}");
                if *family == Family::Inet6 {
                    let _ = writeln!(out, "    family: ipv6");
                }
            }
        }
        let spec = &svc.spec;
        let _ = writeln!(out, "    scheduler: {}", spec.scheduler);
        let flags: Vec<String> = spec
            .flags
            .names(&spec.scheduler)
            .into_iter()
            .filter(|f| f != "ops")
            .collect();
        if !flags.is_empty() {
            let _ = writeln!(out, "    flags: [{}]", flags.join(", "));
        }
        if spec.flags.one_packet {
            let _ = writeln!(out, "    one_packet: true");
        }
        if let Some(p) = &spec.persistence {
            let _ = writeln!(
                out,
                "    persistence: {}",
                persistence(p, key.family(), spec.pe_name.as_deref())
            );
        } else if let Some(pe) = &spec.pe_name {
            skipped.push(format!(
                "{key}: persistence engine {pe:?} without persistence"
            ));
        }
        if let Some(rules) = rules_of.get(key) {
            let _ = writeln!(out, "    match:");
            for r in rules {
                let ports: Vec<String> = r.ports.iter().map(u16::to_string).collect();
                let _ = writeln!(
                    out,
                    "      - {{vip: {}, protocol: {}, ports: [{}]}}",
                    addr(r.vip),
                    r.protocol,
                    ports.join(", ")
                );
            }
        }
        if svc.dests.is_empty() {
            let _ = writeln!(out, "    real_servers: []");
        } else {
            let _ = writeln!(out, "    real_servers:");
        }
        for (dk, ds) in &svc.dests {
            match real_server(dk, ds) {
                Some(line) => {
                    let _ = writeln!(out, "      - {line}");
                }
                None => skipped.push(format!(
                    "{key}: real server {dk} uses forwarding method {}, which lvsctl does not configure",
                    ds.forward.name()
                )),
            }
        }
    }

    let mut head = String::from("# lvsctl manifest exported from a director state\n");
    for s in &skipped {
        let _ = writeln!(head, "# skipped: {s}");
    }
    head + &out
}

/// Unique names: fwmark services take the name their MARK rules carry when it is a valid
/// service name; everything else is named after its identity.
fn service_names(
    state: &State,
    rules_of: &BTreeMap<ServiceKey, Vec<&MarkRule>>,
) -> BTreeMap<ServiceKey, String> {
    let mut names = BTreeMap::new();
    let mut used = BTreeSet::new();
    for key in state.services.keys() {
        let Some(rules) = rules_of.get(key) else {
            continue;
        };
        let first = rules.first().map(|r| r.service.as_str()).unwrap_or("");
        if valid_name(first) && rules.iter().all(|r| r.service == first) && used.insert(first) {
            names.insert(*key, first.to_owned());
        }
    }
    let mut used: BTreeSet<String> = used.into_iter().map(str::to_owned).collect();
    for key in state.services.keys() {
        if names.contains_key(key) {
            continue;
        }
        let base = generated_name(key);
        let mut name = base.clone();
        let mut n = 2;
        while used.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        used.insert(name.clone());
        names.insert(*key, name);
    }
    names
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `tcp-192-168-6-101-80`, `udp-2001-db8--1-53`, `fwmark-10`, `fwmark-10-ipv6`.
fn generated_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Inet {
            protocol,
            vip,
            port,
        } => {
            let a = vip.to_string().replace(['.', ':'], "-");
            format!("{protocol}-{a}-{port}")
        }
        ServiceKey::Fwmark {
            mark,
            family: Family::Inet,
        } => format!("fwmark-{mark}"),
        ServiceKey::Fwmark {
            mark,
            family: Family::Inet6,
        } => format!("fwmark-{mark}-ipv6"),
    }
}

/// Splits a manifest written by [`manifest_from_state`] into parts of at most `per_part`
/// services each, for a directory of files (`-f DIR` reads them back as one manifest). The
/// first part keeps the header comments and the `director:` section; each part has its own
/// `services:` list and says which part it is. Always at least one part.
pub fn split_manifest(text: &str, per_part: usize) -> Vec<String> {
    let per_part = per_part.max(1);
    // Service items are the only lines at this indentation that open a list item.
    const ITEM: &str = "  - name: ";
    let Some(services_at) = text.find("\nservices:\n").map(|i| i + 1) else {
        return vec![text.to_owned()];
    };
    let head = &text[..services_at];
    let body = &text[services_at + "services:\n".len()..];
    let mut items: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in body.split_inclusive('\n') {
        if line.starts_with(ITEM) && at > start {
            items.push(&body[start..at]);
            start = at;
        }
        at += line.len();
    }
    if at > start {
        items.push(&body[start..at]);
    }
    let chunks: Vec<&[&str]> = items.chunks(per_part).collect();
    let total = chunks.len().max(1);
    if total == 1 {
        return vec![text.to_owned()];
    }
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            // Later parts repeat the first comment line (what made the manifest).
            let mut part = match text.lines().next() {
                _ if i == 0 => head.to_owned(),
                Some(first) if first.starts_with('#') => format!("{first}\n"),
                _ => String::new(),
            };
            let _ = writeln!(
                part,
                "# part {} of {total}: read all parts together with -f DIR",
                i + 1
            );
            part.push_str("services:\n");
            for item in *chunk {
                part.push_str(item);
            }
            part
        })
        .collect()
}

/// IPv6 addresses are quoted: a plain scalar starting with `::` reads badly in flow mappings.
fn addr(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"{v6}\""),
    }
}

fn persistence(p: &Persistence, family: Family, engine: Option<&str>) -> String {
    if p.netmask == family.max_prefix() && engine.is_none() {
        return p.timeout.to_string();
    }
    let mut parts = vec![format!("timeout: {}", p.timeout)];
    if p.netmask != family.max_prefix() {
        let mask = match family {
            Family::Inet => {
                let bits = u32::MAX.checked_shl(32 - u32::from(p.netmask)).unwrap_or(0);
                Ipv4Addr::from(bits).to_string()
            }
            Family::Inet6 => p.netmask.to_string(),
        };
        parts.push(format!("netmask: {mask}"));
    }
    if let Some(e) = engine {
        parts.push(format!("engine: {e}"));
    }
    format!("{{{}}}", parts.join(", "))
}

fn real_server(key: &DestKey, spec: &DestSpec) -> Option<String> {
    let mut parts = vec![
        format!("address: {}", addr(key.addr)),
        format!("port: {}", key.port),
        format!("forward: {}", spec.forward.name()),
    ];
    match spec.forward {
        Forward::Dr | Forward::Nat => {}
        Forward::Tunnel { tunnel, flags } => {
            let mut t = match tunnel {
                TunnelType::Ipip => vec!["type: ipip".to_owned()],
                TunnelType::Gue { port } => vec!["type: gue".to_owned(), format!("port: {port}")],
                TunnelType::Gre => vec!["type: gre".to_owned()],
            };
            if flags.csum {
                t.push("csum: true".to_owned());
            }
            if flags.remcsum {
                t.push("remcsum: true".to_owned());
            }
            parts.push(format!("tunnel: {{{}}}", t.join(", ")));
        }
        Forward::Local | Forward::Bypass => return None,
    }
    parts.push(format!("weight: {}", spec.weight));
    if spec.upper_threshold != 0 {
        parts.push(format!("upper_threshold: {}", spec.upper_threshold));
    }
    if spec.lower_threshold != 0 {
        parts.push(format!("lower_threshold: {}", spec.lower_threshold));
    }
    Some(format!("{{{}}}", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::manifest::{Source, load};

    const SEVEN: &str = "
director:
  vip_interface: lvs0
services:
  - name: a
    protocol: tcp
    vip: 10.0.0.1
    port: 80
    real_servers:
      - {address: 10.0.1.1}
      - {address: 10.0.1.2, weight: 3}
  - name: b
    protocol: udp
    vip: 10.0.0.1
    port: 53
    real_servers: [{address: 10.0.1.1}]
  - name: c
    protocol: tcp
    vip: 10.0.0.2
    port: 0
    persistence: 300
  - name: web-ssh
    fwmark: 10
    match:
      - {vip: 10.0.0.3, protocol: tcp, ports: [22, 80]}
    real_servers: [{address: 10.0.1.1, port: 0}]
  - name: e
    protocol: tcp
    vip: 10.0.0.4
    port: 443
  - name: f
    protocol: tcp
    vip: 10.0.0.5
    port: 443
  - name: g
    protocol: sctp
    vip: 10.0.0.6
    port: 9
";

    #[test]
    fn split_parts_read_back_together_as_the_same_state() {
        let state = crate::manifest::parse("m.yaml", SEVEN.as_bytes())
            .unwrap()
            .desired_state();
        let text = manifest_from_state(&state);
        for per_part in [1, 2, 3, 6, 7, 100] {
            let parts = split_manifest(&text, per_part);
            assert_eq!(parts.len(), 7usize.div_ceil(per_part), "{per_part}");
            if parts.len() == 1 {
                assert_eq!(parts[0], text);
            }
            let sources: Vec<Source> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| Source::new(format!("part-{i}.yaml"), p.as_bytes().to_vec()))
                .collect();
            let back = load(&sources).unwrap_or_else(|d| panic!("{d}\n{parts:#?}"));
            assert_eq!(back.desired_state(), state, "{per_part}: {parts:#?}");
            // `director:` once, in the first part.
            assert!(parts[0].contains("director:\n  vip_interface: lvs0\n"));
            assert!(parts[1..].iter().all(|p| !p.contains("director:")));
            for (i, p) in parts.iter().enumerate().filter(|_| parts.len() > 1) {
                assert!(
                    p.contains(&format!("# part {} of {}", i + 1, parts.len())),
                    "{p}"
                );
                assert!(p.matches("  - name: ").count() <= per_part, "{p}");
            }
        }
        // An empty table is one part.
        let empty = manifest_from_state(&State::default());
        assert_eq!(split_manifest(&empty, 1), vec![empty]);
    }

    /// A service VIP that is not on the VIP interface (an operator put it elsewhere): written
    /// with vip_interface, the export would add it there when applied. It is left out, said in
    /// a comment, and the export reads back with VIPs unmanaged.
    #[test]
    fn vip_interface_is_left_out_when_a_service_vip_is_elsewhere() {
        let mut state = crate::manifest::parse("m.yaml", SEVEN.as_bytes())
            .unwrap()
            .desired_state();
        let vips = state.vips.as_mut().unwrap();
        assert!(vips.owned.remove(&"10.0.0.4".parse::<IpAddr>().unwrap()));
        let text = manifest_from_state(&state);
        assert!(!text.contains("vip_interface: lvs0\n"), "{text}");
        assert!(
            text.contains(
                "# skipped: director.vip_interface lvs0: the VIPs 10.0.0.4 of services are not on it"
            ),
            "{text}"
        );
        let back = crate::manifest::parse("m.yaml", text.as_bytes()).unwrap();
        assert_eq!(back.director.vip_interface, None);
        // On the interface as an operator's own address: lvsctl uses it as it is.
        let vips = state.vips.as_mut().unwrap();
        vips.foreign.insert("10.0.0.4".parse().unwrap());
        assert!(manifest_from_state(&state).contains("director:\n  vip_interface: lvs0\n"));
    }
}
