//! `lvsctl run`: the daemon loop (filled in by the daemon work).

use crate::cli::RunArgs;

pub fn run(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("lvsctl run is not built yet")
}
