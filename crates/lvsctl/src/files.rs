//! Finding and reading manifest files: directories expand to their `*.yaml`/`*.yml` files in
//! name order, and a manifest anyone else can write is refused unless the operator says so.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use lvsctl_model::manifest::Source;

/// A name in a manifest directory that lvsctl reads: `*.yaml` or `*.yml`, not hidden (editors'
/// swap files, Kubernetes' `..data` entries, lvsctl's own staged `.tmp` files).
pub fn is_manifest_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Files in `dir` that look meant as manifests but are not read: `*.YAML`, `*.Yml`, ... (hidden
/// names are skipped on purpose and not listed).
fn near_misses(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            let lower = n.to_ascii_lowercase();
            !n.starts_with('.')
                && !is_manifest_name(n)
                && (lower.ends_with(".yaml") || lower.ends_with(".yml"))
        })
        .collect();
    names.sort();
    names
}

/// Expands `paths` into the manifest files they name, in a stable order: each argument in the
/// order given, a directory's files sorted by name. Hidden files (`.x.yaml`, editors' swap
/// files) and Kubernetes' `..data` indirection entries are skipped. A file named twice (`-f
/// dir/ -f dir/a.yaml`) is read once, where it first appears: it must not conflict with itself.
/// A part `export`/`import --out-dir` staged and had not yet renamed into place (see
/// `commands::write_manifest`): while one is there, the set may be incomplete.
pub fn is_unfinished_part(name: &str) -> bool {
    name.strip_prefix(".lvsctl-")
        .and_then(|rest| rest.strip_suffix(".yaml.tmp"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |out: &mut Vec<PathBuf>, p: PathBuf| {
        let id = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if seen.insert(id) {
            out.push(p);
        }
    };
    for p in paths {
        let meta = std::fs::metadata(p)
            .with_context(|| format!("{}: cannot read manifest path", p.display()))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            let entries = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list directory", p.display()))?;
            for entry in entries {
                let entry =
                    entry.with_context(|| format!("{}: cannot list directory", p.display()))?;
                let path = entry.path();
                if is_unfinished_part(&entry.file_name().to_string_lossy()) {
                    bail!(
                        "{}: an `lvsctl export` or `import --out-dir` into this directory did \
                         not finish (killed, or still running), so its manifests may be only \
                         part of the director, and read as a smaller one they would delete \
                         services; write the set again into an empty directory, or, if you know \
                         the set is whole, remove the .lvsctl-*.yaml.tmp files",
                        path.display()
                    );
                }
                // Follow symlinks: a ConfigMap mount links each file through `..data`.
                if is_manifest_name(&entry.file_name().to_string_lossy())
                    && std::fs::metadata(&path)
                        .map(|m| m.is_file())
                        .unwrap_or(false)
                {
                    files.push(path);
                }
            }
            files.sort();
            if files.is_empty() {
                bail!(
                    "{}: directory holds no *.yaml or *.yml manifest (pass files, or a directory with manifests)",
                    p.display()
                );
            }
            for f in files {
                push(&mut out, f);
            }
        } else {
            push(&mut out, p.clone());
        }
    }
    Ok(out)
}

/// Refuses a manifest that a user other than its owner (or root) can change: whoever can write
/// it decides what the director does.
pub fn check_permissions(path: &Path, allow_insecure: bool) -> Result<()> {
    if allow_insecure {
        return Ok(());
    }
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        bail!(
            "{}: refusing a manifest that every user can write (mode {:o}); fix with `chmod o-w {}` or pass --allow-insecure-manifest",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    // SAFETY-free: geteuid via std is not available, so read it from /proc/self.
    let euid = current_euid();
    if mode & 0o020 != 0 && meta.uid() != euid && euid == 0 {
        // Group-writable files owned by someone else are only a risk when root reads them.
        bail!(
            "{}: refusing a group-writable manifest owned by uid {} while running as root (mode {:o}); fix with `chmod g-w` or pass --allow-insecure-manifest",
            path.display(),
            meta.uid(),
            mode & 0o7777
        );
    }
    Ok(())
}

pub fn current_euid() -> u32 {
    // /proc/self is owned by the process's effective uid.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Refuses a manifest directory every user can write: anyone could drop a `*.yaml` into it
/// (the sticky bit does not stop new files) and it would be merged into the desired state.
pub fn check_dir_permissions(dir: &Path, allow_insecure: bool) -> Result<()> {
    if allow_insecure {
        return Ok(());
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("{}: cannot read", dir.display()))?;
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        bail!(
            "{}: refusing a manifest directory that every user can write (mode {:o}): anyone could add a manifest to it; fix with `chmod o-w {}` or pass --allow-insecure-manifest",
            dir.display(),
            mode & 0o7777,
            dir.display()
        );
    }
    // The sticky bit does not stop new files either.
    if group_may_write_as_root(&meta) {
        bail!(
            "{}: refusing a manifest directory while running as root: {}; its members could add a manifest to it; fix with `chmod g-w {}` or pass --allow-insecure-manifest",
            dir.display(),
            group_writes(dir, &meta),
            dir.display()
        );
    }
    Ok(())
}

/// As for a manifest (see [`check_permissions`]): a group may write it and a user other than
/// root owns it, while lvsctl runs as root.
fn group_may_write_as_root(meta: &std::fs::Metadata) -> bool {
    meta.mode() & 0o020 != 0 && meta.uid() != 0 && current_euid() == 0
}

fn group_writes(dir: &Path, meta: &std::fs::Metadata) -> String {
    format!(
        "its group may write {} (mode {:o}) and uid {} owns it",
        dir.display(),
        meta.mode() & 0o7777,
        meta.uid()
    )
}

/// Refuses a manifest that every user could swap for another through a directory on its way:
/// without the sticky bit, whoever can write a directory can rename any entry in it, so a
/// world-writable `/srv/shared` lets anyone replace `/srv/shared/lvsctl/director.yaml` by
/// renaming `lvsctl` away and making their own. Every directory the path is looked up through
/// counts, symlinks followed as the kernel follows them (a symlink's own directory included).
pub fn check_parent_permissions(path: &Path, allow_insecure: bool) -> Result<()> {
    if allow_insecure {
        return Ok(());
    }
    for dir in lookup_dirs(path)? {
        let meta = match std::fs::metadata(&dir) {
            Ok(m) => m,
            // A missing manifest is reported by whoever opens it, with its own message.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", dir.display())),
        };
        let mode = meta.mode();
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            bail!(
                "{}: refusing a manifest under a directory that every user can write ({}, mode {:o}): anyone could replace it; fix with `chmod o-w {}` (or `chmod +t`), or pass --allow-insecure-manifest",
                path.display(),
                dir.display(),
                mode & 0o7777,
                dir.display()
            );
        }
        if mode & 0o1000 == 0 && group_may_write_as_root(&meta) {
            bail!(
                "{}: refusing a manifest while running as root: {}; its members could replace the manifest with their own; fix with `chmod g-w {}` (or `chmod +t`), or pass --allow-insecure-manifest",
                path.display(),
                group_writes(&dir, &meta),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Every directory in which a name of `path` is looked up, in lookup order: the ancestors of
/// the path as named, then, through each symlink met, those of its target.
fn lookup_dirs(path: &Path) -> Result<Vec<PathBuf>> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;
    // As the kernel does (ELOOP), give up on a chain of links this long.
    const MAX_LINKS: usize = 40;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .with_context(|| format!("{}: cannot resolve the current directory", path.display()))?
            .join(path)
    };
    let mut todo: VecDeque<OsString> = VecDeque::new();
    fn push_front(todo: &mut VecDeque<OsString>, p: &Path) {
        let names: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        for n in names.into_iter().rev() {
            todo.push_front(n);
        }
    }
    push_front(&mut todo, &absolute);
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut cur = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            cur.pop();
            continue;
        }
        if !dirs.contains(&cur) {
            dirs.push(cur.clone());
        }
        let next = cur.join(&name);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    bail!(
                        "{}: too many levels of symbolic links (at {})",
                        path.display(),
                        next.display()
                    );
                }
                let target = std::fs::read_link(&next)
                    .with_context(|| format!("{}: cannot read link", next.display()))?;
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                push_front(&mut todo, &target);
            }
            _ => cur = next,
        }
    }
    Ok(dirs)
}

/// Creates `path` afresh for a file lvsctl writes and then renames into place (a staged part,
/// a status file's temporary copy): whatever is left at that name (a copy from a run that
/// died, or a symlink someone put there) is removed first, and the file is created with
/// `O_EXCL`, which never follows a symlink, so root never writes into a file it did not make.
pub fn create_fresh(path: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // 0644 whatever the umask: a status file or manifest others may write is refused on read.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
}

/// Reads every manifest named by `paths` into sources, checking permissions first.
pub fn read_sources(paths: &[PathBuf], allow_insecure: bool) -> Result<Vec<Source>> {
    for p in paths {
        if p.is_dir() {
            check_dir_permissions(p, allow_insecure)?;
            for name in near_misses(p) {
                tracing::warn!(
                    "{}: not read: only names ending in lower-case .yaml or .yml are manifests",
                    p.join(name).display()
                );
            }
        }
    }
    let files = expand(paths)?;
    let mut sources = Vec::with_capacity(files.len());
    for f in files {
        check_parent_permissions(&f, allow_insecure)?;
        check_permissions(&f, allow_insecure)?;
        tracing::debug!("reading manifest {}", f.display());
        let bytes = read_bounded(&f)?;
        sources.push(Source::new(f.display().to_string(), bytes));
    }
    Ok(sources)
}

/// Reads a manifest, but never more than one byte past the largest one the reader accepts: a
/// huge file, or one that never ends (`/dev/zero`), is refused without being read whole.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let limit = lvsctl_model::manifest::MAX_INPUT_BYTES;
    let file = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot read manifest", path.display()))?;
    // Sized from the file up front: growing by doubling held up to twice a large manifest.
    let size = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(limit).min(limit + 1));
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read manifest", path.display()))?;
    if bytes.len() > limit {
        bail!(
            "{}: manifest is larger than the {} MiB limit (split it into several files)",
            path.display(),
            limit / (1024 * 1024)
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn directories_expand_in_name_order_skipping_hidden_and_other_files() {
        let dir = tempdir();
        for name in ["b.yaml", "a.yml", ".swap.yaml", "notes.txt", "c.yaml"] {
            std::fs::write(dir.join(name), "services: []\n").unwrap();
        }
        let got = expand(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.yml", "b.yaml", "c.yaml"]);
    }

    #[test]
    fn a_file_named_twice_is_read_once() {
        let dir = tempdir();
        for name in ["a.yaml", "b.yaml"] {
            std::fs::write(dir.join(name), "services: []\n").unwrap();
        }
        let got = expand(&[dir.join("b.yaml"), dir.clone(), dir.join("./b.yaml")]).unwrap();
        assert_eq!(got, [dir.join("b.yaml"), dir.join("a.yaml")]);
    }

    #[test]
    fn empty_directory_is_an_error() {
        let dir = tempdir();
        let err = expand(std::slice::from_ref(&dir)).unwrap_err().to_string();
        assert!(err.contains("holds no *.yaml"), "{err}");
    }

    #[test]
    fn world_writable_manifest_is_refused_unless_allowed() {
        let dir = tempdir();
        let f = dir.join("m.yaml");
        std::fs::write(&f, "services: []\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = check_permissions(&f, false).unwrap_err().to_string();
        assert!(err.contains("every user can write"), "{err}");
        check_permissions(&f, true).unwrap();
    }

    #[test]
    fn world_writable_directory_is_refused_unless_allowed() {
        let dir = tempdir();
        std::fs::write(dir.join("m.yaml"), "services: []\n").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = read_sources(std::slice::from_ref(&dir), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("manifest directory that every user can write (mode 1777)"),
            "{err}"
        );
        assert_eq!(read_sources(&[dir], true).unwrap().len(), 1);
    }

    #[test]
    fn a_manifest_every_user_could_replace_is_refused_unless_allowed() {
        let dir = tempdir();
        let f = dir.join("m.yaml");
        std::fs::write(&f, "services: []\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = read_sources(std::slice::from_ref(&f), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "under a directory that every user can write ({}, mode 777): anyone could replace it",
                dir.display()
            )),
            "{err}"
        );
        assert_eq!(
            read_sources(std::slice::from_ref(&f), true).unwrap().len(),
            1
        );

        // The sticky bit (as on /tmp) stops others renaming over it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(
            read_sources(std::slice::from_ref(&f), false).unwrap().len(),
            1
        );

        // Through a symlink from a safe directory, the target's directory counts too.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let safe = tempdir();
        let link = safe.join("link.yaml");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let err = read_sources(std::slice::from_ref(&link), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("anyone could replace it"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(read_sources(&[link], false).unwrap().len(), 1);
    }

    #[test]
    fn every_directory_on_the_way_to_a_manifest_counts() {
        let root = tempdir();
        let open = root.join("open");
        let f = open.join("cfg").join("m.yaml");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, "services: []\n").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = |p: &Path| {
            let err = check_parent_permissions(p, false).unwrap_err().to_string();
            assert!(
                err.contains(&format!("({}, mode 777)", open.display())),
                "{}: {err}",
                p.display()
            );
        };
        // A grandparent anyone can write: `cfg` can be renamed away and replaced.
        refused(&f);
        // The same, named with `..` and through a symlinked directory whose own directory is
        // safe but whose target lies under the open one.
        refused(&open.join("cfg").join("..").join("cfg").join("m.yaml"));
        let safe = root.join("safe");
        std::fs::create_dir(&safe).unwrap();
        std::os::unix::fs::symlink(open.join("cfg"), safe.join("cfg")).unwrap();
        refused(&safe.join("cfg").join("m.yaml"));
        // A symlinked directory that itself sits in the open directory: the link can be swapped.
        let real = root.join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("m.yaml"), "services: []\n").unwrap();
        std::os::unix::fs::symlink(&real, open.join("link")).unwrap();
        refused(&open.join("link").join("m.yaml"));
        check_parent_permissions(&real.join("m.yaml"), false).unwrap();
        check_parent_permissions(&open.join("link").join("m.yaml"), true).unwrap();

        // Once the directory is closed, all of these are accepted.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        for p in [
            &f,
            &safe.join("cfg").join("m.yaml"),
            &open.join("link").join("m.yaml"),
        ] {
            check_parent_permissions(p, false).unwrap();
        }

        // A loop of links is an error, not a hang.
        std::os::unix::fs::symlink(root.join("b"), root.join("a")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("b")).unwrap();
        let err = check_parent_permissions(&root.join("a").join("m.yaml"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too many levels of symbolic links"), "{err}");
    }

    /// As root, a manifest a group may write is refused when another user owns it; the same
    /// group writing its directory could replace it with a file of a member's own (or, for
    /// `-f DIR`, add one), so such a directory is refused the same way.
    #[test]
    fn as_root_a_directory_a_group_may_write_is_refused_like_such_a_manifest() {
        use std::os::unix::fs::chown;
        if current_euid() != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let root = tempdir();
        let dir = root.join("lb");
        std::fs::create_dir(&dir).unwrap();
        let f = dir.join("m.yaml");
        std::fs::write(&f, "services: []\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        chown(&f, Some(65534), Some(65534)).unwrap();
        chown(&dir, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        for p in [&dir, &f] {
            let err = read_sources(std::slice::from_ref(p), false)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!(
                    "its group may write {} (mode 775) and uid 65534 owns it",
                    dir.display()
                )),
                "{}: {err}",
                p.display()
            );
            assert_eq!(
                read_sources(std::slice::from_ref(p), true).unwrap().len(),
                1
            );
        }
        // Sticky: nobody renames another's file, but a new file still joins `-f DIR`.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1775)).unwrap();
        assert_eq!(
            read_sources(std::slice::from_ref(&f), false).unwrap().len(),
            1
        );
        assert!(read_sources(std::slice::from_ref(&dir), false).is_err());
        // Root's own directory, or one its group cannot write: as for manifests, accepted.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            read_sources(std::slice::from_ref(&dir), false)
                .unwrap()
                .len(),
            1
        );
        chown(&dir, Some(0), Some(65534)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert_eq!(
            read_sources(std::slice::from_ref(&dir), false)
                .unwrap()
                .len(),
            1
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lookup_dirs_of_a_relative_path_start_at_the_root() {
        let cwd = std::env::current_dir().unwrap();
        let dirs = lookup_dirs(Path::new("m.yaml")).unwrap();
        assert_eq!(dirs.first(), Some(&PathBuf::from("/")));
        assert_eq!(dirs.last(), Some(&cwd));
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "lvsctl-files-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
