//! State snapshots: `lvsctl export --state` writes one, `plan --state` and `status --state`
//! read one, so a pipeline without access to the director can still review a change. The file
//! is versioned like the JSON plan.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use lvsctl_model::Observed;
use serde::{Deserialize, Serialize};

pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    format_version: String,
    observed: Observed,
}

pub fn to_json(observed: &Observed) -> Result<String> {
    let mut out = Vec::new();
    encode(&mut out, observed)?;
    String::from_utf8(out).context("cannot encode the snapshot")
}

/// The snapshot document (pretty JSON and a final newline), as `export --state` prints it.
fn encode(out: &mut impl Write, observed: &Observed) -> Result<()> {
    let snap = SnapshotRef {
        format_version: FORMAT_VERSION,
        observed,
    };
    serde_json::to_writer_pretty(&mut *out, &snap).context("cannot encode the snapshot")?;
    out.write_all(b"\n").context("cannot encode the snapshot")
}

/// Parses the file as it is read: a 10,000-service snapshot is 26 MB of JSON, never held whole.
pub fn read(path: &Path) -> Result<Observed> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot read snapshot", path.display()))?;
    let snap = serde_json::from_reader(std::io::BufReader::new(file));
    check_version(&path.display().to_string(), snap)
}

fn check_version(name: &str, snap: serde_json::Result<Snapshot>) -> Result<Observed> {
    let snap = snap.with_context(|| {
        format!("{name}: not an lvsctl state snapshot (make one with `lvsctl export --state`)")
    })?;
    if snap.format_version != FORMAT_VERSION {
        bail!(
            "{name}: snapshot format_version {:?} is not supported (this lvsctl reads {FORMAT_VERSION:?}); export it again with this version",
            snap.format_version
        );
    }
    Ok(snap.observed)
}

/// [`Snapshot`] for writing: borrows the state instead of copying it.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    format_version: &'static str,
    observed: &'a Observed,
}

/// Writes atomically (temp file + rename) so a reader never sees half a snapshot. Streams the
/// JSON to the file: a large table is never held twice, nor as one string.
pub fn write(path: &Path, observed: &Observed) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let cannot = || format!("{}: cannot write", tmp.display());
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(cannot)?);
    encode(&mut out, observed).with_context(cannot)?;
    out.into_inner()
        .map_err(|e| e.into_error())
        .with_context(cannot)?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn from_json(name: &str, text: &str) -> Result<Observed> {
        check_version(name, serde_json::from_str(text))
    }

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let mut o = Observed::default();
        o.state.services.insert(
            "tcp/10.0.0.1:80".parse().unwrap(),
            lvsctl_model::Service::default(),
        );
        let text = to_json(&o).unwrap();
        assert_eq!(from_json("s.json", &text).unwrap(), o);
        let other = text.replace("\"format_version\": \"1\"", "\"format_version\": \"9\"");
        let err = from_json("s.json", &other).unwrap_err().to_string();
        assert!(err.contains("format_version \"9\""), "{err}");
        let err = from_json("s.json", "{}").unwrap_err().to_string();
        assert!(err.contains("not an lvsctl state snapshot"), "{err}");
    }

    #[test]
    fn write_then_read_gives_the_state_back() {
        let dir = std::env::temp_dir().join(format!("lvsctl-snapshot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.json");
        let mut o = Observed::default();
        o.state.services.insert(
            "fwmark/7".parse().unwrap(),
            lvsctl_model::Service::default(),
        );
        write(&path, &o).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // The streamed file is the document `export --state` prints.
        assert_eq!(text, to_json(&o).unwrap());
        assert_eq!(read(&path).unwrap(), o);
        std::fs::write(&path, "{\"format_version\": \"1\"").unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("not an lvsctl state snapshot"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
