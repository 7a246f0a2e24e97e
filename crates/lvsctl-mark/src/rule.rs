//! One [`MarkRule`] <-> one iptables rule. Rendering happens in exactly one function
//! ([`render_args`]); every argument comes from a typed value, so nothing from a manifest reaches
//! iptables as free text.

use std::net::IpAddr;

use lvsctl_model::{Family, Fwmark, MarkRule, Protocol};

use crate::{CHAIN, COMMENT_PREFIX, MarkError};

/// Longest service name put into a comment; the kernel limit (`XT_MAX_COMMENT_LEN`) is 255
/// bytes, this leaves room and keeps `iptables -L` readable.
pub const MAX_SERVICE_NAME: usize = 128;

/// Checks what the type system does not: ports, port count, and a service name that is safe
/// inside a comment. Manifest names are `[a-z0-9-]`; this is the defensive second check.
pub fn validate(rule: &MarkRule) -> Result<(), MarkError> {
    let bad = |reason: String| MarkError::InvalidRule {
        rule: rule.to_string(),
        reason,
    };
    if rule.ports.is_empty() {
        return Err(bad("no ports (a mark rule needs at least one)".into()));
    }
    if rule.ports.len() > MarkRule::MAX_PORTS {
        return Err(bad(format!(
            "{} ports, but -m multiport takes at most {} per rule (split the service)",
            rule.ports.len(),
            MarkRule::MAX_PORTS
        )));
    }
    if rule.ports.contains(&0) {
        return Err(bad("port 0 cannot be matched".into()));
    }
    let name = &rule.service;
    if name.is_empty() || name.len() > MAX_SERVICE_NAME {
        return Err(bad(format!(
            "service name must be 1 to {MAX_SERVICE_NAME} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(bad(format!(
            "service name {name:?} contains {c:?} (allowed: letters, digits, '-', '_', '.')"
        )));
    }
    if addr_is_unusable(&rule.vip) {
        return Err(bad(format!("{} is not a usable VIP", rule.vip)));
    }
    Ok(())
}

fn addr_is_unusable(a: &IpAddr) -> bool {
    a.is_unspecified() || a.is_multicast()
}

/// The rule's arguments after `-A LVSCTL-MARK`:
/// `-d VIP/32 -p tcp -m multiport --dports 22,80 -m comment --comment lvsctl:NAME -j MARK
/// --set-mark 10`. Always `multiport`, even for one port, so one kernel match serves every rule.
pub fn render_args(rule: &MarkRule) -> Result<Vec<String>, MarkError> {
    validate(rule)?;
    let ports: Vec<String> = rule.ports.iter().map(u16::to_string).collect();
    Ok(vec![
        "-d".into(),
        format!("{}/{}", rule.vip, rule.family().max_prefix()),
        "-p".into(),
        rule.protocol.as_str().into(),
        "-m".into(),
        "multiport".into(),
        "--dports".into(),
        ports.join(","),
        "-m".into(),
        "comment".into(),
        "--comment".into(),
        format!("{COMMENT_PREFIX}{}", rule.service),
        "-j".into(),
        "MARK".into(),
        "--set-mark".into(),
        rule.mark.get().to_string(),
    ])
}

/// The rule as one `iptables-restore` line (`-A LVSCTL-MARK ...`). Validated arguments hold
/// only `[A-Za-z0-9._:/,-]`; anything else would be quoted, never passed raw.
pub fn restore_line(rule: &MarkRule) -> Result<String, MarkError> {
    Ok(format!("-A {CHAIN} {}", rule_spec(rule)?))
}

/// The rule's matches and target as one quoted string, for `-A`, `-I n` and `-R n` lines.
pub(crate) fn rule_spec(rule: &MarkRule) -> Result<String, MarkError> {
    let args = render_args(rule)?;
    Ok(args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "))
}

/// [`rule_spec`] of a rule bound for `family`'s chain, refusing one of the other family.
pub(crate) fn rule_spec_in(family: Family, rule: &MarkRule) -> Result<String, MarkError> {
    if rule.family() != family {
        return Err(MarkError::InvalidRule {
            rule: rule.to_string(),
            reason: format!("is not {family} (it cannot go into the {family} chain)"),
        });
    }
    rule_spec(rule)
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/,-".contains(c));
    if plain {
        arg.to_owned()
    } else {
        let mut q = String::with_capacity(arg.len() + 2);
        q.push('"');
        for c in arg.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    }
}

/// Splits one `iptables-save` line into arguments: whitespace separates, double quotes group,
/// a backslash inside quotes escapes the next character (as `iptables-save` writes comments).
pub fn split_save_line(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("unterminated escape".into()),
                        },
                        Some(o) => cur.push(o),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

/// Parses the arguments of one rule of our chain (after `-A LVSCTL-MARK`) back into a
/// [`MarkRule`]. Accepts what lvsctl writes and the forms iptables lists it as: `--set-xmark
/// X/0xffffffff` (how `--set-mark X` reads back), `-m tcp --dport N` as well as `-m multiport
/// --dports a,b`, hex or decimal marks, the address with or without its full prefix. Anything
/// else (negations, other matches, partial masks, port ranges, no `lvsctl:` comment) is an
/// error naming what was not understood, so the caller can report it and rewrite the chain.
pub fn parse_args(args: &[String]) -> Result<MarkRule, String> {
    let mut vip: Option<IpAddr> = None;
    let mut protocol: Option<Protocol> = None;
    let mut ports: Option<Vec<u16>> = None;
    let mut service: Option<String> = None;
    let mut mark: Option<Fwmark> = None;
    let mut target_mark = false;

    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .ok_or_else(|| format!("{arg} without a value ({what})"))
        };
        match arg {
            "-d" | "--destination" => {
                let v = value("address")?;
                once(&vip, arg)?;
                vip = Some(parse_host(v)?);
            }
            "-p" | "--protocol" => {
                let v = value("protocol")?;
                once(&protocol, arg)?;
                protocol = Some(parse_protocol(v)?);
            }
            "-m" | "--match" => {
                let m = value("match name")?;
                match m {
                    "multiport" | "comment" | "tcp" | "udp" | "sctp" => {}
                    other => return Err(format!("unexpected match -m {other}")),
                }
            }
            "--dport" | "--destination-port" => {
                let v = value("port")?;
                once(&ports, arg)?;
                ports = Some(vec![parse_port(v)?]);
            }
            "--dports" | "--destination-ports" => {
                let v = value("ports")?;
                once(&ports, arg)?;
                let mut list = v
                    .split(',')
                    .map(parse_port)
                    .collect::<Result<Vec<_>, _>>()?;
                // The order and repeats in --dports do not change what matches.
                list.sort_unstable();
                list.dedup();
                ports = Some(list);
            }
            "--comment" => {
                let v = value("comment")?;
                once(&service, arg)?;
                let name = v
                    .strip_prefix(COMMENT_PREFIX)
                    .ok_or_else(|| format!("comment {v:?} does not start with {COMMENT_PREFIX}"))?;
                service = Some(name.to_owned());
            }
            "-j" | "--jump" => {
                let v = value("target")?;
                if v != "MARK" {
                    return Err(format!("target -j {v} is not MARK"));
                }
                target_mark = true;
            }
            "--set-mark" | "--set-xmark" => {
                let v = value("mark")?;
                once(&mark, arg)?;
                mark = Some(parse_mark(v)?);
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if !target_mark {
        return Err("no -j MARK target".into());
    }
    let rule = MarkRule {
        vip: vip.ok_or("no destination address (-d)")?,
        protocol: protocol.ok_or("no protocol (-p)")?,
        ports: ports.ok_or("no destination port (--dport/--dports)")?,
        mark: mark.ok_or("no --set-mark / --set-xmark")?,
        service: service.ok_or("no lvsctl comment")?,
    };
    validate(&rule).map_err(|e| match e {
        MarkError::InvalidRule { reason, .. } => reason,
        other => other.to_string(),
    })?;
    Ok(rule)
}

fn once<T>(slot: &Option<T>, arg: &str) -> Result<(), String> {
    if slot.is_some() {
        Err(format!("{arg} given twice"))
    } else {
        Ok(())
    }
}

fn parse_host(v: &str) -> Result<IpAddr, String> {
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("destination {v:?} is not an address"))?;
    let full = lvsctl_model::Family::of(&ip).max_prefix();
    match prefix {
        None => Ok(ip),
        Some(p) if p.parse::<u8>().ok() == Some(full) => Ok(ip),
        // iptables-legacy may print an IPv4 mask in dotted form.
        Some("255.255.255.255") if ip.is_ipv4() => Ok(ip),
        Some(p) => Err(format!("destination {addr}/{p} is not a single address")),
    }
}

fn parse_protocol(v: &str) -> Result<Protocol, String> {
    if let Ok(p) = v.parse::<Protocol>() {
        return Ok(p);
    }
    v.parse::<u16>()
        .ok()
        .and_then(Protocol::from_number)
        .ok_or_else(|| format!("protocol {v:?} is not tcp, udp or sctp"))
}

fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {v:?} is not a single port from 1 to 65535")),
        Ok(p) => Ok(p),
    }
}

fn parse_u32(v: &str) -> Option<u32> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// `10`, `0xa`, `0xa/0xffffffff`: only a full mask sets the mark the way lvsctl does.
fn parse_mark(v: &str) -> Result<Fwmark, String> {
    let (value, mask) = match v.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (v, None),
    };
    if let Some(m) = mask
        && parse_u32(m) != Some(u32::MAX)
    {
        return Err(format!(
            "mark {v} has a partial mask (lvsctl sets all 32 bits)"
        ));
    }
    let n = parse_u32(value).ok_or_else(|| format!("mark {v:?} is not a number"))?;
    Fwmark::new(n).ok_or_else(|| format!("mark {v} is 0"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rule(vip: &str, ports: &[u16]) -> MarkRule {
        MarkRule {
            vip: vip.parse().unwrap(),
            protocol: Protocol::Tcp,
            ports: ports.to_vec(),
            mark: Fwmark::new(10).unwrap(),
            service: "web-ssh".into(),
        }
    }

    fn args(s: &str) -> Vec<String> {
        split_save_line(s).unwrap()
    }

    #[test]
    fn renders_the_documented_shape() {
        assert_eq!(
            restore_line(&rule("192.168.6.101", &[22, 80])).unwrap(),
            "-A LVSCTL-MARK -d 192.168.6.101/32 -p tcp -m multiport --dports 22,80 \
             -m comment --comment lvsctl:web-ssh -j MARK --set-mark 10"
        );
        assert_eq!(
            restore_line(&rule("2001:db8::1", &[443])).unwrap(),
            "-A LVSCTL-MARK -d 2001:db8::1/128 -p tcp -m multiport --dports 443 \
             -m comment --comment lvsctl:web-ssh -j MARK --set-mark 10"
        );
    }

    #[test]
    fn rejects_what_could_inject_or_fail() {
        let mut r = rule("10.0.0.1", &[80]);
        r.service = "x -j DROP".into();
        let e = restore_line(&r).unwrap_err().to_string();
        assert!(e.contains("contains ' '"), "{e}");
        r.service = "a\"b".into();
        assert!(restore_line(&r).is_err());
        r.service = String::new();
        assert!(restore_line(&r).is_err());
        r.service = "x".repeat(MAX_SERVICE_NAME + 1);
        assert!(restore_line(&r).is_err());
        let r = rule("10.0.0.1", &(1..=16).collect::<Vec<_>>());
        assert!(
            restore_line(&r)
                .unwrap_err()
                .to_string()
                .contains("16 ports")
        );
        assert!(restore_line(&rule("10.0.0.1", &[])).is_err());
        assert!(restore_line(&rule("10.0.0.1", &[0])).is_err());
        assert!(restore_line(&rule("0.0.0.0", &[80])).is_err());
    }

    #[test]
    fn parses_what_iptables_save_lists() {
        let want = rule("10.0.0.1", &[22, 80]);
        let listed = "-d 10.0.0.1/32 -p tcp -m multiport --dports 22,80 -m comment \
                      --comment \"lvsctl:web-ssh\" -j MARK --set-xmark 0xa/0xffffffff";
        assert_eq!(parse_args(&args(listed)).unwrap(), want);
        // what lvsctl writes parses too
        let written = render_args(&want).unwrap();
        assert_eq!(parse_args(&written).unwrap(), want);
    }

    #[test]
    fn parses_single_dport_and_other_orders() {
        let want = rule("10.0.0.1", &[80]);
        let listed = "-d 10.0.0.1/32 -p tcp -m tcp --dport 80 -m comment --comment \
                      \"lvsctl:web-ssh\" -j MARK --set-xmark 0xa/0xffffffff";
        assert_eq!(parse_args(&args(listed)).unwrap(), want);
        let unsorted = "-p 6 -d 10.0.0.1 -m multiport --dports 80,22,80 -m comment \
                        --comment lvsctl:web-ssh -j MARK --set-mark 0xA";
        assert_eq!(
            parse_args(&args(unsorted)).unwrap(),
            rule("10.0.0.1", &[22, 80])
        );
    }

    #[test]
    fn reports_rules_it_does_not_understand() {
        for (line, why) in [
            (
                "! -d 10.0.0.1/32 -p tcp --dport 80 -m comment --comment lvsctl:a -j MARK --set-mark 1",
                "unexpected argument \"!\"",
            ),
            (
                "-d 10.0.0.0/24 -p tcp --dport 80 -m comment --comment lvsctl:a -j MARK --set-mark 1",
                "not a single address",
            ),
            (
                "-d 10.0.0.1/32 -p tcp --dport 80 -j MARK --set-xmark 0x1/0xff",
                "partial mask",
            ),
            (
                "-d 10.0.0.1/32 -p tcp --dport 80 -m comment --comment other -j MARK --set-mark 1",
                "does not start with lvsctl:",
            ),
            (
                "-d 10.0.0.1/32 -p tcp -m multiport --dports 80:90 -m comment --comment lvsctl:a -j MARK --set-mark 1",
                "not a single port",
            ),
            (
                "-d 10.0.0.1/32 -p tcp --dport 80 -m comment --comment lvsctl:a -j ACCEPT",
                "not MARK",
            ),
            (
                "-d 10.0.0.1/32 -p tcp --dport 80 -m comment --comment lvsctl:a",
                "no -j MARK",
            ),
            (
                "-d 10.0.0.1/32 -p tcp -m comment --comment lvsctl:a -j MARK --set-mark 1",
                "no destination port",
            ),
            (
                "-d 10.0.0.1/32 -p icmp -m comment --comment lvsctl:a -j MARK --set-mark 1",
                "not tcp, udp or sctp",
            ),
            (
                "-d 10.0.0.1/32 -p tcp --dport 80 -m comment --comment lvsctl:a -j MARK --set-mark 0",
                "is 0",
            ),
            (
                "-s 10.0.0.2 -d 10.0.0.1/32 -p tcp --dport 80 -m comment --comment lvsctl:a -j MARK --set-mark 1",
                "unexpected argument \"-s\"",
            ),
        ] {
            let err = parse_args(&args(line)).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn split_handles_quotes_and_escapes() {
        assert_eq!(
            split_save_line(r#"-A X --comment "a \"b\" c" -j Y"#).unwrap(),
            vec!["-A", "X", "--comment", "a \"b\" c", "-j", "Y"]
        );
        assert!(split_save_line(r#"-A "open"#).is_err());
        assert_eq!(split_save_line("  ").unwrap(), Vec::<String>::new());
        assert_eq!(quote("a b"), "\"a b\"");
    }
}
