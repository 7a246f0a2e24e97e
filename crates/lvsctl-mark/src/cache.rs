//! The last `*-save` output of each family's mangle table, kept on disk with the nf_tables
//! ruleset generation it was read at. While the namespace's generation has not moved, nothing
//! in any table changed (every nf_tables change, by any program, is a commit that moves it), so
//! the copy is what `*-save` would print now: reading it replaces a process start on the path
//! of every `plan` and every daemon pass. Only for the nft backend: x_tables has no generation.
//!
//! A copy is used only when it was written by lvsctl for this boot, this network namespace
//! (its cookie, never reused while the machine is up) and this generation, and only when
//! nobody else could have written it (the file and its folder belong to the user lvsctl runs
//! as and are writable by nobody else). Any doubt, or any I/O error, means "no copy": `*-save` runs.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lvsctl_model::Family;

use crate::probe::Generation;

const MAGIC: &str = "lvsctl mark cache v1";

/// Where a copy is valid: this boot, namespace and ruleset generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    boot: String,
    at: Generation,
}

impl Stamp {
    /// The namespace's current stamp, `None` when it cannot be read.
    pub(crate) fn now() -> Option<Stamp> {
        Some(Stamp {
            boot: boot_id()?.to_owned(),
            at: crate::probe::nft_generation()?,
        })
    }

    fn header(&self, family: Family) -> String {
        format!(
            "{MAGIC} boot={} netns={} generation={} family={family}\n",
            self.boot, self.at.netns, self.at.generation
        )
    }
}

/// This boot's id, read once per process: it cannot change while the process runs, and every
/// read and save asks for a stamp.
fn boot_id() -> Option<&'static str> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    BOOT.get_or_init(|| {
        let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let boot = boot.trim();
        (!boot.is_empty() && !boot.contains(char::is_whitespace)).then(|| boot.to_owned())
    })
    .as_deref()
}

/// The effective uid: `/proc/self` belongs to it.
fn euid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

fn path(dir: &Path, family: Family) -> PathBuf {
    dir.join(match family {
        Family::Inet => "mark-cache-ipv4",
        Family::Inet6 => "mark-cache-ipv6",
    })
}

/// The copy of `family`'s `*-save` output taken at `stamp`, if there is one to trust.
pub(crate) fn load(dir: &Path, family: Family, stamp: &Stamp) -> Option<String> {
    let file = path(dir, family);
    let (meta, dir_meta) = (fs::metadata(&file).ok()?, fs::metadata(dir).ok()?);
    if !trusted(&meta, &dir_meta) {
        return None;
    }
    let text = fs::read_to_string(&file).ok()?;
    text.strip_prefix(&stamp.header(family)).map(str::to_owned)
}

/// Keeps `text` as `family`'s copy at `stamp`, replacing the file in one rename so a reader
/// never sees half of it. Failing to keep it only costs the next read a `*-save`.
pub(crate) fn store(dir: &Path, family: Family, stamp: &Stamp, text: &str) {
    let _ = try_store(dir, family, stamp, text);
}

fn try_store(dir: &Path, family: Family, stamp: &Stamp, text: &str) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let file = path(dir, family);
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        // O_EXCL after clearing the name: never written through a link someone left there.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(stamp.header(family).as_bytes())?;
        f.write_all(text.as_bytes())?;
        fs::rename(&tmp, &file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Nobody but this process's user can have written the file.
fn trusted(file: &fs::Metadata, dir: &fs::Metadata) -> bool {
    const OTHERS_WRITE: u32 = 0o022;
    let me = euid();
    file.is_file()
        && Some(file.uid()) == me
        && Some(dir.uid()) == me
        && file.mode() & OTHERS_WRITE == 0
        && dir.mode() & OTHERS_WRITE == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stamp(generation: u32) -> Stamp {
        Stamp {
            boot: "8c5a7f2e-0000-4000-8000-000000000001".into(),
            at: Generation {
                netns: 4096,
                generation,
            },
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("lvsctl-mark-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_copy_is_used_only_at_its_own_generation_family_and_namespace() {
        let dir = scratch("stamp");
        let text = "*mangle\n:LVSCTL-MARK - [0:0]\nCOMMIT\n";
        store(&dir, Family::Inet, &stamp(7), text);
        assert_eq!(load(&dir, Family::Inet, &stamp(7)).as_deref(), Some(text));
        assert_eq!(
            load(&dir, Family::Inet, &stamp(8)),
            None,
            "the ruleset moved"
        );
        assert_eq!(load(&dir, Family::Inet6, &stamp(7)), None, "other family");
        let mut other_ns = stamp(7);
        other_ns.at.netns = 4097;
        assert_eq!(load(&dir, Family::Inet, &other_ns), None);
        let mut other_boot = stamp(7);
        other_boot.boot = "another".into();
        assert_eq!(load(&dir, Family::Inet, &other_boot), None);
        // A newer copy replaces the old one.
        store(&dir, Family::Inet, &stamp(9), "*mangle\nCOMMIT\n");
        assert_eq!(load(&dir, Family::Inet, &stamp(7)), None);
        assert_eq!(
            load(&dir, Family::Inet, &stamp(9)).as_deref(),
            Some("*mangle\nCOMMIT\n")
        );
        let mode = fs::metadata(path(&dir, Family::Inet)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_copy_others_could_have_written_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("perm");
        store(&dir, Family::Inet, &stamp(1), "*mangle\nCOMMIT\n");
        let file = path(&dir, Family::Inet);
        let chmod = |p: &Path, mode| fs::set_permissions(p, fs::Permissions::from_mode(mode));
        chmod(&file, 0o622).unwrap();
        assert_eq!(
            load(&dir, Family::Inet, &stamp(1)),
            None,
            "group/others may write it"
        );
        chmod(&file, 0o600).unwrap();
        chmod(&dir, 0o777).unwrap();
        assert_eq!(
            load(&dir, Family::Inet, &stamp(1)),
            None,
            "others may replace it"
        );
        chmod(&dir, 0o700).unwrap();
        assert!(load(&dir, Family::Inet, &stamp(1)).is_some());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The copy is written as root under a name anyone can predict: a symlink planted there
    /// must not be written through.
    #[test]
    fn a_symlink_at_the_temporary_name_is_not_written_through() {
        let dir = scratch("link");
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("precious");
        fs::write(&victim, "root:secret\n").unwrap();
        let file = path(&dir, Family::Inet);
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        store(&dir, Family::Inet, &stamp(3), "*mangle\nCOMMIT\n");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:secret\n");
        assert!(fs::symlink_metadata(&file).unwrap().is_file());
        assert_eq!(
            load(&dir, Family::Inet, &stamp(3)).as_deref(),
            Some("*mangle\nCOMMIT\n")
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A copy in a folder of another user's (e.g. `LVSCTL_LOCK_FILE` under their directory):
    /// they could have written anything into it, so root must not take it for `*-save` output.
    #[test]
    fn a_copy_another_user_owns_is_ignored() {
        use std::os::unix::fs::chown;
        let dir = scratch("owner");
        store(&dir, Family::Inet, &stamp(5), "*mangle\nCOMMIT\n");
        let me = fs::metadata(&dir).unwrap().uid();
        let other = if me == 65534 { 65533 } else { 65534 };
        if chown(&dir, Some(other), None).is_err() {
            eprintln!("skipped: cannot chown (not root)");
            fs::remove_dir_all(&dir).unwrap();
            return;
        }
        // Only the folder another user's: they could have put the file there.
        assert_eq!(load(&dir, Family::Inet, &stamp(5)), None);
        // Both.
        chown(path(&dir, Family::Inet), Some(other), None).unwrap();
        assert_eq!(load(&dir, Family::Inet, &stamp(5)), None);
        // Only the file.
        chown(&dir, Some(me), None).unwrap();
        assert_eq!(load(&dir, Family::Inet, &stamp(5)), None);
        // Both ours again: trusted.
        chown(path(&dir, Family::Inet), Some(me), None).unwrap();
        assert!(load(&dir, Family::Inet, &stamp(5)).is_some());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_truncated_or_foreign_file_is_no_copy() {
        let dir = scratch("bad");
        store(&dir, Family::Inet, &stamp(1), "*mangle\nCOMMIT\n");
        let file = path(&dir, Family::Inet);
        fs::write(&file, "lvsctl mark cache v1 boot=").unwrap();
        assert_eq!(load(&dir, Family::Inet, &stamp(1)), None);
        fs::write(&file, "*mangle\nCOMMIT\n").unwrap();
        assert_eq!(load(&dir, Family::Inet, &stamp(1)), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
