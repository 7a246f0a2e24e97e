//! Reading `iptables-save -t mangle` output: lvsctl's chain, its rules and who jumps to it.
//! `-save` is used rather than `-S` because it prints the whole table in one consistent
//! snapshot, with comments quoted, on both backends.

use lvsctl_model::{MarkChain, MarkRule};

use crate::CHAIN;
use crate::rule::{parse_args, split_save_line};

/// The hooks lvsctl installs: exactly `-A <hook> -j LVSCTL-MARK`, no matches.
pub const HOOKS: [&str; 2] = ["PREROUTING", "OUTPUT"];

/// A rule inside lvsctl's chain that lvsctl cannot read as a [`MarkRule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnparsedRule {
    /// The line as `iptables-save` printed it.
    pub line: String,
    /// What was not understood.
    pub reason: String,
}

/// lvsctl's chain as found in one family's mangle table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedChain {
    /// Rules lvsctl understands, in chain order.
    pub rules: Vec<MarkRule>,
    /// Rules in the chain lvsctl does not understand; a rewrite replaces them.
    pub unparsed: Vec<UnparsedRule>,
    /// How many `-A PREROUTING -j LVSCTL-MARK` rules exist.
    pub prerouting_jumps: usize,
    /// How many `-A OUTPUT -j LVSCTL-MARK` rules exist.
    pub output_jumps: usize,
    /// Other rules (outside the chain) that jump or go to it: not lvsctl's, never touched.
    pub foreign_references: Vec<String>,
}

impl ObservedChain {
    /// Both hooks present exactly once.
    pub fn hooks_exact(&self) -> bool {
        self.prerouting_jumps == 1 && self.output_jumps == 1
    }

    /// True when a rewrite would change nothing besides the rules themselves: one jump per hook
    /// and no rule lvsctl cannot read.
    pub fn is_clean(&self) -> bool {
        self.hooks_exact() && self.unparsed.is_empty()
    }

    /// The model's view. `hooked` is true only when the chain is clean ([`Self::is_clean`]):
    /// duplicate jumps and unreadable rules cannot be shown in `rules`, so they surface as
    /// "not hooked", which makes the planner emit a `WriteMarkChain` that repairs them.
    pub fn to_mark_chain(&self) -> MarkChain {
        MarkChain {
            hooked: self.is_clean(),
            rules: self.rules.clone(),
        }
    }

    /// Human-readable notes on anything not as lvsctl writes it, for the CLI to print.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for (hook, n) in [
            ("PREROUTING", self.prerouting_jumps),
            ("OUTPUT", self.output_jumps),
        ] {
            match n {
                1 => {}
                0 => w.push(format!("{hook} does not jump to {CHAIN}")),
                n => w.push(format!("{hook} jumps to {CHAIN} {n} times")),
            }
        }
        for u in &self.unparsed {
            w.push(format!(
                "rule lvsctl cannot read in {CHAIN} ({}): {}",
                u.reason, u.line
            ));
        }
        for r in &self.foreign_references {
            w.push(format!(
                "rule outside lvsctl's control refers to {CHAIN}: {r}"
            ));
        }
        w
    }
}

/// Parses a whole `iptables-save` output (any tables; only `*mangle` is read). `None` when the
/// mangle table has no `LVSCTL-MARK` chain.
pub fn parse_save(text: &str) -> Option<ObservedChain> {
    let mut in_mangle = false;
    let mut exists = false;
    let mut obs = ObservedChain::default();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(table) = line.strip_prefix('*') {
            in_mangle = table == "mangle";
            continue;
        }
        if line == "COMMIT" {
            in_mangle = false;
            continue;
        }
        if !in_mangle {
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            if decl.split_whitespace().next() == Some(CHAIN) {
                exists = true;
            }
            continue;
        }
        let args = match split_save_line(line) {
            Ok(a) => a,
            Err(reason) => {
                // An unreadable line can only matter if it is in or about our chain.
                if line.contains(CHAIN) {
                    obs.unparsed.push(UnparsedRule {
                        line: line.to_owned(),
                        reason,
                    });
                }
                continue;
            }
        };
        let (Some(cmd), Some(chain)) = (args.first(), args.get(1)) else {
            continue;
        };
        if cmd != "-A" {
            continue;
        }
        let body = &args[2..];
        if chain == CHAIN {
            match parse_args(body) {
                Ok(rule) => obs.rules.push(rule),
                Err(reason) => obs.unparsed.push(UnparsedRule {
                    line: line.to_owned(),
                    reason,
                }),
            }
            continue;
        }
        let is_plain_jump = body.len() == 2 && body[0] == "-j" && body[1] == CHAIN;
        match chain.as_str() {
            "PREROUTING" if is_plain_jump => obs.prerouting_jumps += 1,
            "OUTPUT" if is_plain_jump => obs.output_jumps += 1,
            _ => {
                if refers_to_chain(body) {
                    obs.foreign_references.push(line.to_owned());
                }
            }
        }
    }
    exists.then_some(obs)
}

fn refers_to_chain(body: &[String]) -> bool {
    body.windows(2)
        .any(|w| matches!(w[0].as_str(), "-j" | "--jump" | "-g" | "--goto") && w[1] == CHAIN)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SAVED: &str = r#"# Generated by iptables-nft-save v1.8.9 (nf_tables) on Wed Nov 25 15:47:46 2026
*filter
:INPUT ACCEPT [0:0]
-A INPUT -j LVSCTL-MARK
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:FOREIGN - [0:0]
:LVSCTL-MARK - [0:0]
-A PREROUTING -s 1.2.3.4/32 -j ACCEPT
-A PREROUTING -j LVSCTL-MARK
-A PREROUTING -j LVSCTL-MARK
-A FORWARD -i lo -j LVSCTL-MARK
-A OUTPUT -j LVSCTL-MARK
-A FOREIGN -j MARK --set-xmark 0x5/0xffffffff
-A LVSCTL-MARK -d 10.0.0.1/32 -p tcp -m multiport --dports 22,80 -m comment --comment "lvsctl:web-ssh" -j MARK --set-xmark 0xa/0xffffffff
-A LVSCTL-MARK -d 10.0.0.2/32 -p udp -m udp --dport 53 -m comment --comment "lvsctl:dns" -j MARK --set-xmark 0x20/0xffffffff
-A LVSCTL-MARK -j ACCEPT
COMMIT
# Completed on Wed Nov 25 15:47:46 2026
"#;

    #[test]
    fn reads_chain_jumps_and_strangers() {
        let obs = parse_save(SAVED).unwrap();
        assert_eq!(obs.rules.len(), 2);
        assert_eq!(obs.rules[0].ports, vec![22, 80]);
        assert_eq!(obs.rules[0].mark.get(), 10);
        assert_eq!(obs.rules[1].service, "dns");
        assert_eq!(obs.rules[1].mark.get(), 0x20);
        assert_eq!(obs.unparsed.len(), 1);
        assert_eq!(obs.unparsed[0].line, "-A LVSCTL-MARK -j ACCEPT");
        assert_eq!(obs.prerouting_jumps, 2);
        assert_eq!(obs.output_jumps, 1);
        // The filter table's reference is another table's business; FORWARD's is foreign.
        assert_eq!(
            obs.foreign_references,
            vec!["-A FORWARD -i lo -j LVSCTL-MARK"]
        );
        assert!(!obs.is_clean());
        assert!(!obs.to_mark_chain().hooked);
        assert_eq!(obs.warnings().len(), 3);
    }

    #[test]
    fn absent_chain_is_none_and_clean_chain_is_hooked() {
        assert_eq!(
            parse_save("*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"),
            None
        );
        assert_eq!(parse_save(""), None);
        let obs = parse_save(
            "*mangle\n:LVSCTL-MARK - [0:0]\n-A PREROUTING -j LVSCTL-MARK\n\
             -A OUTPUT -j LVSCTL-MARK\nCOMMIT\n",
        )
        .unwrap();
        assert!(obs.is_clean());
        assert_eq!(
            obs.to_mark_chain(),
            MarkChain {
                hooked: true,
                rules: vec![]
            }
        );
        assert!(obs.warnings().is_empty());
    }
}
