//! `lvsctl import --from ipvsadm`: reads `ipvsadm -S -n` output (what operators already have)
//! into a [`State`], reporting every line it cannot understand with its line number.
//!
//! What ipvsadm itself refuses is refused here, with the line; what ipvsadm quietly changes
//! (a DR or tunnel real server's port) is changed the same way, with a warning naming the line,
//! so a table written by hand imports as the kernel runs it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use lvsctl_model::{
    DestKey, DestSpec, Family, Forward, Fwmark, Persistence, Protocol, Scheduler, Service,
    ServiceKey, ServiceSpec, State, TunnelFlags, TunnelType,
};

/// Something said about one line of the input, with its 1-based line number: an error, or a
/// warning about a value imported as ipvsadm would have set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineNote {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for LineNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Where one service of an imported manifest came from: the input line that adds it, and the
/// line of each of its real servers, in the order the manifest lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOrigin {
    pub line: usize,
    pub real_servers: Vec<usize>,
}

/// A dump read without errors.
#[derive(Debug)]
pub struct Imported {
    pub state: State,
    /// Values imported as ipvsadm would have set them rather than as written.
    pub warnings: Vec<LineNote>,
    /// One entry per service, in the order [`lvsctl_model::manifest::manifest_from_state`]
    /// writes them (the state's key order; real servers likewise), so a problem the manifest
    /// check finds at `services[i].real_servers[j]` is traced back to its line.
    pub origins: Vec<ServiceOrigin>,
}

/// Parses a whole `ipvsadm -S -n` dump. All problems are collected; the state is returned only
/// when there are none, so a half-understood table never becomes a manifest.
pub fn parse_ipvsadm_save(text: &str) -> Result<Imported, Vec<LineNote>> {
    let mut services: BTreeMap<ServiceKey, Service> = BTreeMap::new();
    // The line of each service and of each of its real servers.
    let mut lines: BTreeMap<ServiceKey, (usize, BTreeMap<DestKey, usize>)> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let res = match words[0] {
            "-A" | "--add-service" => parse_service(&words[1..]).and_then(|(key, spec)| {
                if services.contains_key(&key) {
                    return Err(format!("service {key} is defined twice"));
                }
                services.insert(
                    key,
                    Service {
                        spec,
                        dests: BTreeMap::new(),
                    },
                );
                lines.insert(key, (line, BTreeMap::new()));
                Ok(())
            }),
            "-a" | "--add-server" => parse_dest(&words[1..]).and_then(|(svc, key, spec, note)| {
                let service = services.get_mut(&svc).ok_or_else(|| {
                    format!("real server {key} names service {svc}, which no earlier -A line adds")
                })?;
                if service.dests.insert(key, spec).is_some() {
                    return Err(format!("real server {key} of {svc} is defined twice"));
                }
                if let Some((_, dests)) = lines.get_mut(&svc) {
                    dests.insert(key, line);
                }
                if let Some(message) = note {
                    warnings.push(LineNote { line, message });
                }
                Ok(())
            }),
            other => Err(format!(
                "unknown line starting with {other:?} (expected -A or -a lines as printed by `ipvsadm -S -n`)"
            )),
        };
        if let Err(message) = res {
            errors.push(LineNote { line, message });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let origins = services
        .iter()
        .map(|(key, svc)| {
            let (line, dests) = &lines[key];
            ServiceOrigin {
                line: *line,
                real_servers: svc.dests.keys().map(|d| dests[d]).collect(),
            }
        })
        .collect();
    Ok(Imported {
        state: State {
            services,
            ..State::default()
        },
        warnings,
        origins,
    })
}

/// Reads the service address options common to -A and -a: `-t/-u/--sctp-service ADDR:PORT`,
/// `-f MARK`, and `-6` for IPv6 fwmark services. Returns the key and the unread words.
fn take_service_key<'a>(words: &[&'a str]) -> Result<(ServiceKey, Vec<&'a str>), String> {
    let mut key = None;
    let mut inet6 = false;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let proto = match w {
            "-t" | "--tcp-service" => Some(Protocol::Tcp),
            "-u" | "--udp-service" => Some(Protocol::Udp),
            "--sctp-service" => Some(Protocol::Sctp),
            _ => None,
        };
        if let Some(protocol) = proto {
            let v = value(words, i)?;
            let sa = parse_sockaddr(v)?;
            key = Some(ServiceKey::Inet {
                protocol,
                vip: sa.ip(),
                port: sa.port(),
            });
            i += 2;
        } else if w == "-f" || w == "--fwmark-service" {
            let v = value(words, i)?;
            let mark = v
                .parse::<u32>()
                .ok()
                .and_then(Fwmark::new)
                .ok_or_else(|| format!("invalid fwmark {v:?}"))?;
            key = Some(ServiceKey::Fwmark {
                mark,
                family: Family::Inet,
            });
            i += 2;
        } else if w == "-6" || w == "--ipv6" {
            inet6 = true;
            i += 1;
        } else {
            rest.push(w);
            i += 1;
        }
    }
    let mut key = key.ok_or("no service address (-t, -u, --sctp-service or -f)")?;
    if inet6 && let ServiceKey::Fwmark { family, .. } = &mut key {
        *family = Family::Inet6;
    }
    Ok((key, rest))
}

fn parse_service(words: &[&str]) -> Result<(ServiceKey, ServiceSpec), String> {
    let (key, rest) = take_service_key(words)?;
    let mut spec = ServiceSpec::default();
    let mut timeout = None;
    let mut netmask = None;
    let mut sched_flags = None;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "-s" | "--scheduler" => {
                let v = value(&rest, i)?;
                // A manifest can only name the mainline schedulers; say so here, with the line,
                // rather than write a manifest that then fails validation.
                spec.scheduler = Scheduler::known(v).ok_or_else(|| {
                    format!(
                        "unknown scheduler {v:?} (lvsctl manifests accept {})",
                        Scheduler::KNOWN.join(", ")
                    )
                })?;
                i += 2;
            }
            "-p" | "--persistent" => {
                // ipvsadm -S always prints the timeout; accept a bare -p as ipvsadm does. Its
                // option parser takes the next word as the timeout unless it is an option.
                match rest.get(i + 1).filter(|v| !v.starts_with('-')) {
                    Some(v) => {
                        timeout = Some(
                            v.parse::<u32>()
                                .ok()
                                .filter(|t| (1..=Persistence::MAX_TIMEOUT).contains(t))
                                .ok_or_else(|| {
                                    format!(
                                        "invalid persistence timeout {v:?} (ipvsadm accepts \
                                         1..={} seconds)",
                                        Persistence::MAX_TIMEOUT
                                    )
                                })?,
                        );
                        i += 2;
                    }
                    None => {
                        timeout = Some(Persistence::DEFAULT_TIMEOUT);
                        i += 1;
                    }
                }
            }
            "-M" | "--netmask" => {
                let v = value(&rest, i)?;
                netmask = Some(parse_netmask(v, key.family())?);
                i += 2;
            }
            "-o" | "--ops" => {
                spec.flags.one_packet = true;
                i += 1;
            }
            "-b" | "--sched-flags" => {
                // Read once the scheduler is known, wherever -s is: ipvsadm does the same.
                sched_flags = Some(value(&rest, i)?);
                i += 2;
            }
            "--pe" => {
                spec.pe_name = Some(value(&rest, i)?.to_owned());
                i += 2;
            }
            other => return Err(format!("unknown service option {other:?}")),
        }
    }
    if let Some(v) = sched_flags {
        for flag in v.split(',') {
            let (needs, bit) = match flag {
                "sh-fallback" => (Some(Scheduler::Sh), &mut spec.flags.sched1),
                "sh-port" => (Some(Scheduler::Sh), &mut spec.flags.sched2),
                "mh-fallback" => (Some(Scheduler::Mh), &mut spec.flags.sched1),
                "mh-port" => (Some(Scheduler::Mh), &mut spec.flags.sched2),
                "flag-1" => (None, &mut spec.flags.sched1),
                "flag-2" => (None, &mut spec.flags.sched2),
                "flag-3" => (None, &mut spec.flags.sched3),
                other => return Err(format!("unknown scheduler flag {other:?}")),
            };
            if let Some(need) = needs
                && need != spec.scheduler
            {
                return Err(format!(
                    "scheduler flag {flag} is for the {need} scheduler, but this service uses {} \
                     (ipvsadm refuses it too: give -s {need} or drop the flag)",
                    spec.scheduler
                ));
            }
            *bit = true;
        }
    }
    if let Some(timeout) = timeout {
        spec.persistence = Some(Persistence {
            timeout,
            netmask: netmask.unwrap_or(key.family().max_prefix()),
        });
    } else if netmask.is_some() {
        return Err("-M netmask without -p persistence".to_owned());
    } else if spec.pe_name.is_some() {
        // A manifest keeps the engine inside `persistence:`; without it the engine would be lost.
        return Err("--pe persistence engine without -p persistence; add -p TIMEOUT".to_owned());
    }
    if let ServiceKey::Inet {
        protocol, port: 0, ..
    } = key
        && spec.persistence.is_none()
    {
        return Err(format!(
            "{protocol} port 0 (every port) without -p persistence: ipvsadm and the kernel \
             refuse such a service; add -p TIMEOUT"
        ));
    }
    if let ServiceKey::Inet { protocol, .. } = key
        && spec.flags.one_packet
        && protocol != Protocol::Udp
    {
        return Err(format!(
            "-o (one-packet scheduling) is only for udp and fwmark services, not {protocol}; \
             ipvsadm refuses it too: drop -o"
        ));
    }
    Ok((key, spec))
}

/// A real server: its service, its key and spec as ipvsadm would add them, and a warning when
/// that differs from what the line says.
type ParsedDest = (ServiceKey, DestKey, DestSpec, Option<String>);

fn parse_dest(words: &[&str]) -> Result<ParsedDest, String> {
    let (svc, rest) = take_service_key(words)?;
    let mut dest = None;
    let mut spec = DestSpec::default();
    let mut tun_type = None;
    let mut tun_port = None;
    let mut tun_flags = TunnelFlags::default();
    let mut tunnel = false;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "-r" | "--real-server" => {
                let v = value(&rest, i)?;
                let (addr, port) = match parse_sockaddr(v) {
                    Ok(sa) => (sa.ip(), Some(sa.port())),
                    // Without a port, ipvsadm gives the real server the service's.
                    Err(_) => (
                        v.trim_matches(|c| c == '[' || c == ']')
                            .parse::<IpAddr>()
                            .map_err(|_| {
                                format!("invalid real server address {v:?}{}", numeric_hint(v))
                            })?,
                        None,
                    ),
                };
                dest = Some((addr, port));
                i += 2;
            }
            "-g" | "--gatewaying" => {
                spec.forward = Forward::Dr;
                i += 1;
            }
            "-m" | "--masquerading" => {
                spec.forward = Forward::Nat;
                i += 1;
            }
            "-i" | "--ipip" => {
                tunnel = true;
                i += 1;
            }
            // ipvsadm's ranges; it refuses anything outside them.
            "-w" | "--weight" => {
                spec.weight = in_range(value(&rest, i)?, "weight", u32::from(u16::MAX))?;
                i += 2;
            }
            "-x" | "--u-threshold" => {
                spec.upper_threshold =
                    in_range(value(&rest, i)?, "upper threshold", THRESHOLD_MAX)?;
                i += 2;
            }
            "-y" | "--l-threshold" => {
                spec.lower_threshold =
                    in_range(value(&rest, i)?, "lower threshold", THRESHOLD_MAX)?;
                i += 2;
            }
            "--tun-type" => {
                tun_type = Some(value(&rest, i)?.to_owned());
                i += 2;
            }
            "--tun-port" => {
                tun_port = Some(number::<u16>(value(&rest, i)?, "tunnel port")?);
                i += 2;
            }
            "--tun-nocsum" => {
                tun_flags = TunnelFlags::default();
                i += 1;
            }
            "--tun-csum" => {
                tun_flags.csum = true;
                i += 1;
            }
            "--tun-remcsum" => {
                tun_flags.remcsum = true;
                i += 1;
            }
            other => return Err(format!("unknown real server option {other:?}")),
        }
    }
    if tunnel {
        let t = match tun_type.as_deref().unwrap_or("ipip") {
            "ipip" => TunnelType::Ipip,
            "gre" => TunnelType::Gre,
            "gue" => TunnelType::Gue {
                port: tun_port.ok_or("--tun-type gue needs --tun-port")?,
            },
            other => return Err(format!("unknown tunnel type {other:?}")),
        };
        spec.forward = Forward::Tunnel {
            tunnel: t,
            flags: tun_flags,
        };
    }
    let (addr, port) = dest.ok_or("no real server (-r ADDR:PORT)")?;
    if Family::of(&addr) != svc.family() && !matches!(spec.forward, Forward::Tunnel { .. }) {
        return Err(format!(
            "real server {addr} is {} but service {svc} is {}: only tunnel real servers (-i) \
             may be of the other family; ipvsadm refuses it too",
            Family::of(&addr),
            svc.family()
        ));
    }
    let svc_port = match svc {
        ServiceKey::Inet { port, .. } => port,
        ServiceKey::Fwmark { .. } => 0,
    };
    let mut key = DestKey {
        addr,
        port: port.unwrap_or(svc_port),
    };
    let mut note = None;
    // ipvsadm sets a DR or tunnel real server of a port service to the service's port (those
    // packets reach it unchanged), whatever port the line gives: import what the kernel runs.
    if !svc.is_fwmark() && matches!(spec.forward, Forward::Dr | Forward::Tunnel { .. }) {
        if key.port != svc_port && key.port != 0 {
            note = Some(format!(
                "real server {key} of {svc} is {}, which keeps the service port: imported as \
                 port {svc_port}, as ipvsadm adds it (use -m for another port)",
                spec.forward.name()
            ));
        }
        key.port = svc_port;
    }
    Ok((svc, key, spec, note))
}

/// Largest connection threshold ipvsadm accepts (`INT_MAX`).
const THRESHOLD_MAX: u32 = i32::MAX.unsigned_abs();

fn in_range(v: &str, what: &str, max: u32) -> Result<u32, String> {
    let n: u64 = number(v, what)?;
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| format!("{what} {n} is out of range 0..={max}; ipvsadm refuses it too"))
}

fn value<'a>(words: &[&'a str], i: usize) -> Result<&'a str, String> {
    words
        .get(i + 1)
        .copied()
        .ok_or_else(|| format!("option {} needs a value", words[i]))
}

fn number<T: std::str::FromStr>(v: &str, what: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("invalid {what} {v:?}"))
}

fn parse_sockaddr(v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| {
        format!(
            "invalid address {v:?} (expected ADDR:PORT or [ADDR6]:PORT){}",
            numeric_hint(v)
        )
    })
}

/// `ipvsadm -S` without `-n` prints host and service names (`web1:http`), which a manifest
/// cannot hold: point at the flag.
fn numeric_hint(v: &str) -> &'static str {
    let (host, port) = v.rsplit_once(':').unwrap_or((v, "0"));
    let named_port = !port.is_empty() && !port.chars().all(|c| c.is_ascii_digit());
    let named_host = host
        .chars()
        .any(|c| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')));
    if named_port || named_host {
        "; names instead of numbers: dump with `ipvsadm -S -n`"
    } else {
        ""
    }
}

/// ipvsadm prints an IPv4 netmask dotted and an IPv6 one as a prefix length.
fn parse_netmask(v: &str, family: Family) -> Result<u8, String> {
    if let Ok(p) = v.parse::<u8>()
        && p >= 1
        && p <= family.max_prefix()
    {
        return Ok(p);
    }
    if let Ok(std::net::IpAddr::V4(m)) = v.parse::<IpAddr>() {
        let bits = u32::from(m);
        let ones = bits.leading_ones();
        if bits.checked_shl(ones).unwrap_or(0) == 0 {
            return u8::try_from(ones).map_err(|_| format!("invalid netmask {v:?}"));
        }
        return Err(format!("netmask {v} is not contiguous"));
    }
    Err(format!("invalid netmask {v:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SEED_PNMPP: &str = "\
-A -f 10 -s rr -p 120
-a -f 10 -r 192.168.60.101:0 -g -w 1
-a -f 10 -r 192.168.60.102:0 -g -w 1
";

    #[test]
    fn seed_fwmark_dump_imports() {
        let s = parse_ipvsadm_save(SEED_PNMPP).unwrap().state;
        let key = ServiceKey::Fwmark {
            mark: Fwmark::new(10).unwrap(),
            family: Family::Inet,
        };
        let svc = &s.services[&key];
        assert_eq!(svc.spec.scheduler, Scheduler::Rr);
        assert_eq!(
            svc.spec.persistence,
            Some(Persistence {
                timeout: 120,
                netmask: 32
            })
        );
        assert_eq!(svc.dests.len(), 2);
        let d: DestKey = "192.168.60.101:0".parse().unwrap();
        assert_eq!(svc.dests[&d].forward, Forward::Dr);
    }

    #[test]
    fn every_option_ipvsadm_prints_is_understood() {
        let text = "\
-A -t 10.0.0.1:0 -s wlc -p 300 -M 255.255.255.0
-a -t 10.0.0.1:0 -r 10.1.0.1:0 -g -w 3 -x 100 -y 50
-A -u 10.0.0.2:53 -s sh -b sh-fallback,sh-port -o
-a -u 10.0.0.2:53 -r 10.1.0.2:5353 -m -w 0
-A -t [2001:db8::1]:443 -s mh -b mh-port -p 60 -M 64
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -i --tun-type gue --tun-port 6080 --tun-csum -w 1
-A -f 7 -6 -s rr
-a -f 7 -6 -r [2001:db8::11]:0 -g -w 1
";
        let s = parse_ipvsadm_save(text).unwrap().state;
        assert_eq!(s.services.len(), 4);
        let pcc = &s.services[&"tcp/10.0.0.1:0".parse().unwrap()];
        assert_eq!(pcc.spec.persistence.unwrap().netmask, 24);
        let d = pcc.dests.values().next().unwrap();
        assert_eq!(
            (d.weight, d.upper_threshold, d.lower_threshold),
            (3, 100, 50)
        );
        let dns = &s.services[&"udp/10.0.0.2:53".parse().unwrap()];
        assert!(dns.spec.flags.one_packet && dns.spec.flags.sched1 && dns.spec.flags.sched2);
        assert_eq!(dns.dests.values().next().unwrap().forward, Forward::Nat);
        let v6 = &s.services[&"tcp/[2001:db8::1]:443".parse().unwrap()];
        assert_eq!(v6.spec.persistence.unwrap().netmask, 64);
        assert_eq!(
            v6.dests.values().next().unwrap().forward,
            Forward::Tunnel {
                tunnel: TunnelType::Gue { port: 6080 },
                flags: TunnelFlags {
                    csum: true,
                    remcsum: false
                }
            }
        );
        assert!(s.services.contains_key(&"fwmark/7/ipv6".parse().unwrap()));
    }

    #[test]
    fn unknown_lines_are_reported_with_their_number() {
        let text = "-A -t 10.0.0.1:80 -s rr\n-X nonsense\n-a -t 10.0.0.9:80 -r 10.1.0.1:80 -g\n";
        let errs = parse_ipvsadm_save(text).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].message.contains("unknown line"), "{}", errs[0]);
        assert_eq!(errs[1].line, 3);
        assert!(
            errs[1].message.contains("no earlier -A line"),
            "{}",
            errs[1]
        );
    }

    #[test]
    fn names_from_ipvsadm_without_n_point_at_the_flag() {
        let text = "-A -t director.example.com:http -s rr\n-A -t 10.0.0.1:80 -s rr\n\
                    -a -t 10.0.0.1:80 -r web1:http -g -w 1\n-A -t 10.0.0.300:80 -s rr\n";
        let errs = parse_ipvsadm_save(text).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 3, 4]);
        for e in &errs[..2] {
            assert!(e.message.ends_with("dump with `ipvsadm -S -n`"), "{e}");
        }
        assert!(!errs[2].message.contains("ipvsadm -S -n"), "{}", errs[2]);
    }

    #[test]
    fn unknown_schedulers_are_reported_not_carried_into_the_manifest() {
        let errs = parse_ipvsadm_save("-A -t 10.0.0.1:80 -s roundrobin\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .starts_with("unknown scheduler \"roundrobin\" (lvsctl manifests accept rr, wrr,"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn dr_and_tunnel_real_servers_take_the_service_port_as_ipvsadm_adds_them() {
        let text = "\
-A -t 10.0.0.1:81 -s rr
-a -t 10.0.0.1:81 -r 10.1.0.1:8080 -g -w 1
-a -t 10.0.0.1:81 -r 10.1.0.2:8081 -i -w 1
-a -t 10.0.0.1:81 -r 10.1.0.3:8082 -m -w 1
-a -t 10.0.0.1:81 -r 10.1.0.4 -m
-a -t 10.0.0.1:81 -r 10.1.0.5:81 -g
-A -f 5 -s rr
-a -f 5 -r 10.1.0.6:8080 -g
";
        let imported = parse_ipvsadm_save(text).unwrap();
        let ports = |svc: &str| -> Vec<String> {
            imported.state.services[&svc.parse().unwrap()]
                .dests
                .keys()
                .map(ToString::to_string)
                .collect()
        };
        // NAT keeps its port; a bare address takes the service's, as ipvsadm gives it.
        assert_eq!(
            ports("tcp/10.0.0.1:81"),
            [
                "10.1.0.1:81",
                "10.1.0.2:81",
                "10.1.0.3:8082",
                "10.1.0.4:81",
                "10.1.0.5:81"
            ]
        );
        // fwmark services: ipvsadm leaves the port alone.
        assert_eq!(ports("fwmark/5"), ["10.1.0.6:8080"]);
        let warned: Vec<usize> = imported.warnings.iter().map(|w| w.line).collect();
        assert_eq!(warned, [2, 3]);
        assert_eq!(
            imported.warnings[0].message,
            "real server 10.1.0.1:8080 of tcp/10.0.0.1:81 is dr, which keeps the service port: \
             imported as port 81, as ipvsadm adds it (use -m for another port)"
        );
    }

    #[test]
    fn what_ipvsadm_refuses_is_an_error_on_its_line() {
        let text = "\
-A -t 10.0.0.1:0 -s rr
-A -t 10.0.0.1:83 -s rr -o
-A -t 10.0.0.1:84 -s rr -b sh-port
-A -t 10.0.0.1:85 -s rr -p 0
-A -u 10.0.0.1:86 -s rr --pe sip
-A -u 10.0.0.1:87 -s rr -p 60
-a -u 10.0.0.1:87 -r 10.1.0.1:87 -g -w 70000
-a -u 10.0.0.1:87 -r 10.1.0.2:87 -g -x 2147483648
-a -u 10.0.0.1:87 -r [2001:db8::1]:87 -m
-A -s mh -b mh-port -t 10.0.0.1:88
-A -u 10.0.0.1:89 -s rr -o -p 2678400
";
        let errs = parse_ipvsadm_save(text).unwrap_err();
        let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    "tcp port 0 (every port) without -p persistence: ipvsadm and the kernel \
                     refuse such a service; add -p TIMEOUT"
                ),
                (
                    2,
                    "-o (one-packet scheduling) is only for udp and fwmark services, not tcp; \
                     ipvsadm refuses it too: drop -o"
                ),
                (
                    3,
                    "scheduler flag sh-port is for the sh scheduler, but this service uses rr \
                     (ipvsadm refuses it too: give -s sh or drop the flag)"
                ),
                (
                    4,
                    "invalid persistence timeout \"0\" (ipvsadm accepts 1..=2678400 seconds)"
                ),
                (
                    5,
                    "--pe persistence engine without -p persistence; add -p TIMEOUT"
                ),
                (
                    7,
                    "weight 70000 is out of range 0..=65535; ipvsadm refuses it too"
                ),
                (
                    8,
                    "upper threshold 2147483648 is out of range 0..=2147483647; ipvsadm refuses it too"
                ),
                (
                    9,
                    "real server 2001:db8::1 is ipv6 but service udp/10.0.0.1:87 is ipv4: only \
                     tunnel real servers (-i) may be of the other family; ipvsadm refuses it too"
                ),
            ]
        );
    }

    #[test]
    fn origins_follow_the_manifest_order() {
        let text = "\
-A -u 10.0.0.1:53 -s rr
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.1.0.2:80 -g
-a -u 10.0.0.1:53 -r 10.1.0.1:53 -g
-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g
";
        let imported = parse_ipvsadm_save(text).unwrap();
        // tcp before udp; real servers by address.
        assert_eq!(
            imported.origins,
            [
                ServiceOrigin {
                    line: 2,
                    real_servers: vec![5, 3]
                },
                ServiceOrigin {
                    line: 1,
                    real_servers: vec![4]
                },
            ]
        );
    }
}
