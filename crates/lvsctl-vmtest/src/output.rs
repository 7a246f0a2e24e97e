//! What a VM run produced: the command's exit status and the console text.

/// The result of a VM run whose command ran to completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmOutput {
    /// The command's exit status inside the VM.
    pub status: i32,
    /// Everything the VM printed on its console, plus run.sh's own messages, `\r` removed.
    pub console: String,
}

impl VmOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Panics, showing the end of the console, unless the command exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.success(),
            "the command in the vm exited with status {}\n--- vm console (last lines) ---\n{}",
            self.status,
            tail(&self.console, 60)
        );
        self
    }

    /// The console lines that start with `prefix`, in order.
    pub fn lines_with_prefix(&self, prefix: &str) -> Vec<&str> {
        self.console
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// The output framed by the guest helper `vm_section NAME cmd...` (the last such section
    /// when there are several), one `\n` after each line. Kernel log lines that landed in
    /// between on the shared console are dropped.
    pub fn section(&self, name: &str) -> Option<String> {
        let begin = format!("LVSCTL-VM-BEGIN {name}");
        let end = format!("LVSCTL-VM-END {name}");
        let lines: Vec<&str> = self.console.lines().collect();
        let start = lines.iter().rposition(|l| *l == begin)?;
        let len = lines[start + 1..].iter().position(|l| *l == end)?;
        let mut text = String::new();
        for line in &lines[start + 1..start + 1 + len] {
            if !is_kernel_log(line) {
                text.push_str(line);
                text.push('\n');
            }
        }
        Some(text)
    }
}

/// A printk line on the console, `[   12.345678] message`.
fn is_kernel_log(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let Some((stamp, _)) = rest.split_once(']') else {
        return false;
    };
    let stamp = stamp.trim();
    !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn out(console: &str) -> VmOutput {
        VmOutput {
            status: 0,
            console: console.to_string(),
        }
    }

    #[test]
    fn section_cuts_framed_output_and_drops_kernel_lines() {
        let o = out(
            "x\nLVSCTL-VM-BEGIN ipvs\n-A -t 1.2.3.4:80 -s rr\n[   12.5] IPVS: hello\n-a -t 1.2.3.4:80 -r 5.6.7.8:80 -g -w 1\nLVSCTL-VM-END ipvs\ny\n",
        );
        assert_eq!(
            o.section("ipvs").unwrap(),
            "-A -t 1.2.3.4:80 -s rr\n-a -t 1.2.3.4:80 -r 5.6.7.8:80 -g -w 1\n"
        );
    }

    #[test]
    fn empty_and_missing_sections() {
        let o = out("LVSCTL-VM-BEGIN m\nLVSCTL-VM-END m\nLVSCTL-VM-BEGIN open\nno end\n");
        assert_eq!(o.section("m").unwrap(), "");
        assert_eq!(o.section("open"), None);
        assert_eq!(o.section("absent"), None);
    }

    #[test]
    fn the_last_section_of_a_name_wins() {
        let o = out(
            "LVSCTL-VM-BEGIN s\nold\nLVSCTL-VM-END s\nLVSCTL-VM-BEGIN s\nnew\nLVSCTL-VM-END s\n",
        );
        assert_eq!(o.section("s").unwrap(), "new\n");
    }

    #[test]
    fn kernel_log_lines_are_recognised() {
        assert!(is_kernel_log("[    5.827233] reboot: Power down"));
        assert!(!is_kernel_log("[x] not a stamp"));
        assert!(!is_kernel_log("-A PREROUTING -j MARK"));
    }

    #[test]
    fn lines_with_prefix_and_tail() {
        let o = out("probe c1 80 RS1\nother\nprobe c2 80 RS2\n");
        assert_eq!(
            o.lines_with_prefix("probe "),
            ["probe c1 80 RS1", "probe c2 80 RS2"]
        );
        assert_eq!(tail(&o.console, 2), "other\nprobe c2 80 RS2");
        assert_eq!(tail("a", 5), "a");
    }

    #[test]
    #[should_panic(expected = "exited with status 2")]
    fn assert_success_panics_with_status() {
        VmOutput {
            status: 2,
            console: "boom\n".into(),
        }
        .assert_success();
    }
}
