//! Rules across services and files: unique names and identities, who marks which
//! (vip, protocol, port), unmanaged selectors, and merging the `director:` and `realserver:`
//! sections of several files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use super::diag::{Location, Sink};
use super::read::{self, DirectorPart, FileRead, ParsedService, RealServerPart, Setting};
use super::{
    Director, DirectorSysctl, IpvsTimeouts, Manifest, Selector, ServiceDef, Source, duration,
};
use crate::state::{Protocol, ServiceKey};

/// Who claims a (vip, protocol, port): a service name, where, and how.
struct Claim<'s> {
    service: &'s str,
    loc: &'s Location,
    /// `service` for an address service, `match` for a MARK rule.
    by_match: bool,
}

pub(crate) fn merge(sources: &[Source], mut files: Vec<FileRead>, sink: &mut Sink) -> Manifest {
    let director = merge_director(&files, sink);
    let declares_services = files.iter().any(|f| f.has_services_key);
    let mut services: Vec<(usize, ParsedService)> =
        Vec::with_capacity(files.iter().map(|f| f.services.len()).sum());
    for (src, f) in files.iter_mut().enumerate() {
        services.extend(
            std::mem::take(&mut f.services)
                .into_iter()
                .map(|s| (src, s)),
        );
    }

    // Realserver: one file owns the section.
    let mut realserver: Option<(usize, &RealServerPart)> = None;
    for (src, f) in files.iter().enumerate() {
        if let Some(rs) = &f.realserver {
            match realserver {
                Some((_, first)) => sink.push(
                    src,
                    &rs.location,
                    "realserver",
                    format!(
                        "a realserver: section is already defined at {}; keep it in one file",
                        first.location
                    ),
                ),
                None => realserver = Some((src, rs)),
            }
        }
    }

    let all_usable = !files.is_empty() && files.iter().all(|f| f.usable);
    if all_usable && !declares_services && realserver.is_none() {
        let name = sources.first().map_or("", |s| s.name.as_str());
        sink.push_at(
            0,
            name,
            1,
            1,
            "services",
            "missing; no file has a services: list (write services: [] to manage a director \
             with no services)"
                .to_owned(),
        );
    }

    let selectors: Vec<&(Selector, Location, String)> = files
        .iter()
        .filter_map(|f| f.director.as_ref())
        .flat_map(|d| d.unmanaged.iter())
        .collect();

    // Unique names and identities.
    let mut names: HashMap<&str, &ParsedService> = HashMap::with_capacity(services.len());
    let mut keys: HashMap<ServiceKey, &ParsedService> = HashMap::with_capacity(services.len());
    for (src, s) in &services {
        if let Some(first) = names.get(s.def.name.as_str()) {
            sink.push(
                *src,
                &s.name_loc,
                &format!("{}.name", s.path()),
                format!(
                    "service name {:?} is already used by {} at {}",
                    s.def.name,
                    first.path(),
                    first.name_loc
                ),
            );
        } else {
            names.insert(&s.def.name, s);
        }
        if let Some(first) = keys.get(&s.def.key) {
            sink.push(
                *src,
                &s.key_loc,
                &s.key_path(),
                format!(
                    "{} is already defined by service {:?} at {}",
                    s.def.key, first.def.name, first.key_loc
                ),
            );
        } else {
            keys.insert(s.def.key, s);
        }
        for (sel, _, sel_path) in &selectors {
            if sel.matches(&s.def.key) {
                sink.push(
                    *src,
                    &s.key_loc,
                    &s.key_path(),
                    format!(
                        "{} is inside {sel_path} ({sel}), which marks services lvsctl must not \
                         touch; remove the service or narrow the selector",
                        s.def.key
                    ),
                );
            }
        }
    }

    // Who gets which (vip, protocol, port). Address services first, so the error lands on the
    // MARK rule that collides with them.
    let mut exact: BTreeMap<(IpAddr, Protocol, u16), Claim> = BTreeMap::new();
    let mut every_port: BTreeMap<(IpAddr, Protocol), Claim> = BTreeMap::new();
    // Only a match entry can collide with an address service: the others' claims are never
    // looked up (most services of a large manifest).
    let marked: BTreeSet<(IpAddr, Protocol)> = services
        .iter()
        .flat_map(|(_, s)| s.def.matches.iter().map(|m| (m.vip, m.protocol)))
        .collect();
    for (_, s) in &services {
        if let ServiceKey::Inet {
            protocol,
            vip,
            port,
        } = s.def.key
            && marked.contains(&(vip, protocol))
        {
            let claim = Claim {
                service: &s.def.name,
                loc: &s.key_loc,
                by_match: false,
            };
            if port == 0 {
                every_port.entry((vip, protocol)).or_insert(claim);
            } else {
                exact.entry((vip, protocol, port)).or_insert(claim);
            }
        }
    }
    for (src, s) in &services {
        for (m, ports) in s.def.matches.iter().zip(&s.match_ports) {
            for at in ports {
                let (port, loc) = (&at.port, &at.loc);
                // Written out only for a diagnostic.
                let target = || format!("{} {}", m.protocol, sock(m.vip, *port));
                if let Some(c) = every_port.get(&(m.vip, m.protocol)) {
                    let target = target();
                    sink.push(
                        *src,
                        loc,
                        &s.port_path(at),
                        format!(
                            "{target} is already taken by service {:?} (port 0: every {} port of {}) at {}",
                            c.service, m.protocol, m.vip, c.loc
                        ),
                    );
                    continue;
                }
                match exact.get(&(m.vip, m.protocol, *port)) {
                    Some(c) => {
                        let how = if c.by_match {
                            if c.service == s.def.name {
                                "another match entry of this service".to_owned()
                            } else {
                                format!("a match of service {:?}", c.service)
                            }
                        } else {
                            format!("service {:?}", c.service)
                        };
                        let target = target();
                        sink.push(
                            *src,
                            loc,
                            &s.port_path(at),
                            format!("{target} is already taken by {how} at {}", c.loc),
                        );
                    }
                    None => {
                        exact.insert(
                            (m.vip, m.protocol, *port),
                            Claim {
                                service: &s.def.name,
                                loc,
                                by_match: true,
                            },
                        );
                    }
                }
            }
        }
    }

    let parsed: Vec<ParsedService> = services.into_iter().map(|(_, s)| s).collect();
    let realserver = realserver.map(|(_, part)| read::resolve_realserver(part, &parsed));
    // Kept for the manifest's life: the parsed services' buffer is reused where the standard
    // library can, then cut to size (no second buffer, no slack).
    let mut defs: Vec<ServiceDef> = parsed.into_iter().map(|s| s.def).collect();
    defs.shrink_to_fit();
    Manifest {
        director,
        services: defs,
        realserver,
        declares_services,
    }
}

fn sock(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Field by field: each setting may be made in several files only with the same value.
fn merge_director(files: &[FileRead], sink: &mut Sink) -> Director {
    fn pick<T: Clone + PartialEq>(
        sink: &mut Sink,
        parts: &[(usize, &DirectorPart)],
        field: fn(&DirectorPart) -> &Option<Setting<T>>,
        path: &str,
        show: fn(&T) -> String,
    ) -> Option<T> {
        let mut chosen: Option<&Setting<T>> = None;
        for (src, part) in parts {
            let Some(s) = field(part) else { continue };
            match chosen {
                None => chosen = Some(s),
                Some(first) if first.value == s.value => {}
                Some(first) => sink.push(
                    *src,
                    &s.loc,
                    path,
                    format!(
                        "{} conflicts with {} set at {}",
                        show(&s.value),
                        show(&first.value),
                        first.loc
                    ),
                ),
            }
        }
        chosen.map(|s| s.value.clone())
    }
    let parts: Vec<(usize, &DirectorPart)> = files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.director.as_ref().map(|d| (i, d)))
        .collect();
    let show_str = |s: &String| format!("{s:?}");
    let show_bool = |b: &bool| b.to_string();
    let show_dur = |d: &std::time::Duration| duration::format(*d);
    Director {
        vip_interface: pick(
            sink,
            &parts,
            |d| &d.vip_interface,
            "director.vip_interface",
            show_str,
        ),
        unmanaged: parts
            .iter()
            .flat_map(|(_, d)| d.unmanaged.iter().map(|(s, _, _)| s.clone()))
            .collect(),
        sysctl: DirectorSysctl {
            expire_nodest_conn: pick(
                sink,
                &parts,
                |d| &d.expire_nodest_conn,
                "director.sysctl.expire_nodest_conn",
                show_bool,
            ),
            expire_quiescent_template: pick(
                sink,
                &parts,
                |d| &d.expire_quiescent_template,
                "director.sysctl.expire_quiescent_template",
                show_bool,
            ),
        },
        timeouts: IpvsTimeouts {
            tcp: pick(sink, &parts, |d| &d.tcp, "director.timeouts.tcp", show_dur),
            tcpfin: pick(
                sink,
                &parts,
                |d| &d.tcpfin,
                "director.timeouts.tcpfin",
                show_dur,
            ),
            udp: pick(sink, &parts, |d| &d.udp, "director.timeouts.udp", show_dur),
        },
    }
}
