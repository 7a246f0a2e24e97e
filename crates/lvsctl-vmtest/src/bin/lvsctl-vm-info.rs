//! Reports whether the kernel it runs on can serve as an IPVS director: kernel release,
//! IPVS version and the IPVS modules loaded. Meant to run inside the test VM (it is the
//! workspace binary the harness's own tests copy in); exits 1 when IPVS is missing.

use std::{fs, process::ExitCode};

fn main() -> ExitCode {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    println!("kernel: {release}");
    let ipvs = match fs::read_to_string("/proc/net/ip_vs") {
        Ok(table) => table.lines().next().unwrap_or_default().to_string(),
        Err(e) => {
            eprintln!("IPVS is not available in this kernel: load ip_vs (/proc/net/ip_vs: {e})");
            return ExitCode::FAILURE;
        }
    };
    println!("ipvs: {ipvs}");
    let modules = fs::read_to_string("/proc/modules").unwrap_or_default();
    let mut ipvs_modules: Vec<&str> = modules
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|m| m.starts_with("ip_vs"))
        .collect();
    ipvs_modules.sort_unstable();
    println!("ipvs modules: {}", ipvs_modules.join(" "));
    ExitCode::SUCCESS
}
