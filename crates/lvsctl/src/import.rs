//! `lvsctl import --from ipvsadm`: reads `ipvsadm -S -n` output (what operators already have)
//! into a [`State`], reporting every line it cannot understand with its line number.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use lvsctl_model::{
    DestKey, DestSpec, Family, Forward, Fwmark, Persistence, Protocol, Scheduler, Service,
    ServiceKey, ServiceSpec, State, TunnelFlags, TunnelType,
};

/// One problem in the input, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses a whole `ipvsadm -S -n` dump. All problems are collected; the state is returned only
/// when there are none, so a half-understood table never becomes a manifest.
pub fn parse_ipvsadm_save(text: &str) -> Result<State, Vec<ImportError>> {
    let mut services: BTreeMap<ServiceKey, Service> = BTreeMap::new();
    let mut errors = Vec::new();
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
                Ok(())
            }),
            "-a" | "--add-server" => parse_dest(&words[1..]).and_then(|(svc, key, spec)| {
                let service = services.get_mut(&svc).ok_or_else(|| {
                    format!("real server {key} names service {svc}, which no earlier -A line adds")
                })?;
                if service.dests.insert(key, spec).is_some() {
                    return Err(format!("real server {key} of {svc} is defined twice"));
                }
                Ok(())
            }),
            other => Err(format!(
                "unknown line starting with {other:?} (expected -A or -a lines as printed by `ipvsadm -S -n`)"
            )),
        };
        if let Err(message) = res {
            errors.push(ImportError { line, message });
        }
    }
    if errors.is_empty() {
        Ok(State {
            services,
            ..State::default()
        })
    } else {
        Err(errors)
    }
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
                // ipvsadm -S always prints the timeout; accept a bare -p as ipvsadm does.
                match rest.get(i + 1).and_then(|v| v.parse::<u32>().ok()) {
                    Some(t) => {
                        timeout = Some(t);
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
                let v = value(&rest, i)?;
                for flag in v.split(',') {
                    match flag {
                        "sh-fallback" | "mh-fallback" | "flag-1" => spec.flags.sched1 = true,
                        "sh-port" | "mh-port" | "flag-2" => spec.flags.sched2 = true,
                        "flag-3" => spec.flags.sched3 = true,
                        other => return Err(format!("unknown scheduler flag {other:?}")),
                    }
                }
                i += 2;
            }
            "--pe" => {
                spec.pe_name = Some(value(&rest, i)?.to_owned());
                i += 2;
            }
            other => return Err(format!("unknown service option {other:?}")),
        }
    }
    if let Some(timeout) = timeout {
        spec.persistence = Some(Persistence {
            timeout,
            netmask: netmask.unwrap_or(key.family().max_prefix()),
        });
    } else if netmask.is_some() {
        return Err("-M netmask without -p persistence".to_owned());
    }
    Ok((key, spec))
}

fn parse_dest(words: &[&str]) -> Result<(ServiceKey, DestKey, DestSpec), String> {
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
                    Ok(sa) => (sa.ip(), sa.port()),
                    // fwmark services may name a real server without a port.
                    Err(_) => (
                        v.trim_matches(|c| c == '[' || c == ']')
                            .parse::<IpAddr>()
                            .map_err(|_| {
                                format!("invalid real server address {v:?}{}", numeric_hint(v))
                            })?,
                        0,
                    ),
                };
                dest = Some(DestKey { addr, port });
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
            "-w" | "--weight" => {
                spec.weight = number(value(&rest, i)?, "weight")?;
                i += 2;
            }
            "-x" | "--u-threshold" => {
                spec.upper_threshold = number(value(&rest, i)?, "upper threshold")?;
                i += 2;
            }
            "-y" | "--l-threshold" => {
                spec.lower_threshold = number(value(&rest, i)?, "lower threshold")?;
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
    let mut dest = dest.ok_or("no real server (-r ADDR:PORT)")?;
    // DR and tunnel real servers of a port service use the service's port (ipvsadm forces it).
    if let ServiceKey::Inet { port, .. } = svc
        && dest.port == 0
        && !matches!(spec.forward, Forward::Nat)
    {
        dest.port = port;
    }
    Ok((svc, dest, spec))
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
        let s = parse_ipvsadm_save(SEED_PNMPP).unwrap();
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
        let s = parse_ipvsadm_save(text).unwrap();
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
}
