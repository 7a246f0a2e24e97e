//! Watching manifests the way files really change.
//!
//! inotify watches inodes, and editors, `git checkout` and Kubernetes ConfigMaps replace files
//! (write a new one, rename it over the old, or swap a `..data` symlink), so watching the file
//! itself loses track after the first save. This watches **directories**: the parent of every
//! manifest path, every manifest directory, and the directory of every symlink target, and
//! re-arms those watches whenever a directory was replaced. Events only say "look again"; the
//! daemon debounces them and re-reads everything, so no event detail is trusted.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Which names in a watched directory matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Interest {
    /// Exact names (a manifest file, a symlink on the way to one).
    names: BTreeSet<String>,
    /// Any `*.yaml` / `*.yml` (a manifest directory).
    yaml: bool,
    /// Kubernetes' `..data` / `..2024_...` swap entries.
    dotdot: bool,
}

impl Interest {
    fn matches(&self, name: &str) -> bool {
        self.names.contains(name)
            || (self.dotdot && name.starts_with(".."))
            || (self.yaml && crate::files::is_manifest_name(name))
    }

    fn merge(&mut self, other: Interest) {
        self.names.extend(other.names);
        self.yaml |= other.yaml;
        self.dotdot |= other.dotdot;
    }
}

type Interests = Arc<Mutex<BTreeMap<PathBuf, Interest>>>;

/// Watched directories whose watch may be gone: notify (or the kernel) drops it when the
/// directory is deleted or moved away, and a directory made again, or moved back, can have
/// the same (device, inode) as before, which the inode check alone would take for armed.
type Lost = Arc<Mutex<BTreeSet<PathBuf>>>;

/// The directories to watch for `paths` (as given with `-f`) and what matters in each.
fn plan_watches(paths: &[PathBuf]) -> BTreeMap<PathBuf, Interest> {
    let mut out: BTreeMap<PathBuf, Interest> = BTreeMap::new();
    let mut add = |dir: PathBuf, interest: Interest| out.entry(dir).or_default().merge(interest);
    for p in paths {
        let p = absolute(p);
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        // The parent sees the path itself replaced, renamed over, deleted and re-created.
        if let (Some(parent), Some(name)) = (p.parent(), name) {
            add(
                parent.to_path_buf(),
                Interest {
                    names: BTreeSet::from([name]),
                    dotdot: true,
                    ..Interest::default()
                },
            );
        }
        let is_dir = std::fs::metadata(&p).map(|m| m.is_dir()).unwrap_or(false);
        if is_dir {
            let dir_interest = Interest {
                yaml: true,
                dotdot: true,
                ..Interest::default()
            };
            add(p.clone(), dir_interest.clone());
            if let Ok(real) = std::fs::canonicalize(&p) {
                if real != p {
                    add(real.clone(), dir_interest);
                }
                // Manifests inside may be symlinks into other directories (a git checkout).
                if let Ok(entries) = std::fs::read_dir(&real) {
                    for e in entries.flatten() {
                        if crate::files::is_manifest_name(&e.file_name().to_string_lossy()) {
                            add_target_dir(&mut add, &e.path());
                        }
                    }
                }
            }
        } else {
            add_target_dir(&mut add, &p);
        }
    }
    out
}

/// For a manifest reached through symlinks, the directory of the file it finally names.
fn add_target_dir(add: &mut impl FnMut(PathBuf, Interest), file: &Path) {
    let Ok(real) = std::fs::canonicalize(file) else {
        return;
    };
    if real == absolute(file) {
        return;
    }
    if let (Some(dir), Some(name)) = (real.parent(), real.file_name()) {
        add(
            dir.to_path_buf(),
            Interest {
                names: BTreeSet::from([name.to_string_lossy().into_owned()]),
                ..Interest::default()
            },
        );
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Watches the manifest directories and sends `()` on every relevant change.
pub struct ManifestWatcher {
    watcher: RecommendedWatcher,
    paths: Vec<PathBuf>,
    interests: Interests,
    /// The (device, inode) each directory had when its watch was set.
    armed: BTreeMap<PathBuf, (u64, u64)>,
    lost: Lost,
    unwatchable: BTreeSet<PathBuf>,
}

impl ManifestWatcher {
    /// Starts watching for `paths`; changes arrive on the returned channel.
    pub fn new(
        paths: &[PathBuf],
    ) -> notify::Result<(ManifestWatcher, mpsc::UnboundedReceiver<()>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let interests: Interests = Arc::default();
        let seen = Arc::clone(&interests);
        let lost: Lost = Arc::default();
        let losing = Arc::clone(&lost);
        // Runs on notify's own thread: an unbounded sender works from any thread.
        let handler = move |res: notify::Result<Event>| match res {
            Ok(event) => {
                // Recorded before the event is sent, so the refresh it causes re-arms.
                if note_lost_watches(&event, &seen, &losing) {
                    debug!(paths = ?event.paths, "a watched manifest directory was deleted or moved; re-arming at the next refresh");
                    let _ = tx.send(());
                } else if relevant(&event, &seen) {
                    debug!(kind = ?event.kind, paths = ?event.paths, "manifest directory changed");
                    let _ = tx.send(());
                }
            }
            Err(e) => {
                // An overflow or a lost watch: say "look again" and let the re-read decide.
                warn!(error = %e, "file watcher error; re-reading manifests");
                let _ = tx.send(());
            }
        };
        let watcher = notify::recommended_watcher(handler)?;
        let mut w = ManifestWatcher {
            watcher,
            paths: paths.to_vec(),
            interests,
            armed: BTreeMap::new(),
            lost,
            unwatchable: BTreeSet::new(),
        };
        w.refresh();
        Ok((w, rx))
    }

    /// Re-plans the watches from the filesystem as it is now: a directory that was replaced
    /// (new inode), appeared, or is no longer needed gets its watch re-set or dropped. Cheap;
    /// the daemon calls it after every manifest read.
    pub fn refresh(&mut self) {
        let wanted = plan_watches(&self.paths);
        let lost = self
            .lost
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        for dir in lost {
            // Not unwatched: the watch is already gone, or belongs to the same inode.
            self.armed.remove(&dir);
        }
        let gone: Vec<PathBuf> = self
            .armed
            .keys()
            .filter(|d| !wanted.contains_key(*d))
            .cloned()
            .collect();
        for dir in gone {
            let _ = self.watcher.unwatch(&dir);
            self.armed.remove(&dir);
        }
        for dir in wanted.keys() {
            let id = std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()));
            match (id, self.armed.get(dir)) {
                (Some(id), Some(old)) if *old == id => continue,
                (None, _) => {
                    if self.armed.remove(dir).is_some() {
                        let _ = self.watcher.unwatch(dir);
                    }
                    if self.unwatchable.insert(dir.clone()) {
                        warn!(dir = %dir.display(), "cannot watch a manifest directory that does not exist; relying on --resync-interval until it does");
                    }
                    continue;
                }
                (Some(id), old) => {
                    if old.is_some() {
                        let _ = self.watcher.unwatch(dir);
                    }
                    match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                        Ok(()) => {
                            debug!(dir = %dir.display(), "watching");
                            self.armed.insert(dir.clone(), id);
                            self.unwatchable.remove(dir);
                        }
                        Err(e) => {
                            if self.unwatchable.insert(dir.clone()) {
                                warn!(dir = %dir.display(), error = %e, "cannot watch a manifest directory; relying on --resync-interval");
                            }
                        }
                    }
                }
            }
        }
        if let Ok(mut i) = self.interests.lock() {
            *i = wanted;
        }
    }

    /// The directories being watched.
    #[cfg(test)]
    pub fn watched(&self) -> Vec<PathBuf> {
        self.armed.keys().cloned().collect()
    }
}

/// Records the watched directories `event` says were deleted or moved away (by their own
/// watch, or by their parent's); true if there were any.
fn note_lost_watches(event: &Event, interests: &Interests, lost: &Lost) -> bool {
    if !matches!(
        event.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    ) {
        return false;
    }
    let (Ok(interests), Ok(mut lost)) = (interests.lock(), lost.lock()) else {
        return false;
    };
    let mut any = false;
    for p in &event.paths {
        if interests.contains_key(p) {
            lost.insert(p.clone());
            any = true;
        }
    }
    any
}

fn relevant(event: &Event, interests: &Interests) -> bool {
    // Our own reads open and close the files; only a close after writing means anything.
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    let Ok(interests) = interests.lock() else {
        return true;
    };
    if event.paths.is_empty() {
        return true;
    }
    event.paths.iter().any(|p| {
        // The watched directory itself (deleted, moved away).
        if interests.contains_key(p) {
            return true;
        }
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            return false;
        };
        interests
            .get(dir)
            .is_some_and(|i| i.matches(&name.to_string_lossy()))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn interest_matching() {
        let i = Interest {
            names: BTreeSet::from(["lvsctl.yaml".to_owned()]),
            dotdot: true,
            yaml: false,
        };
        assert!(i.matches("lvsctl.yaml"));
        assert!(i.matches("..data"));
        assert!(!i.matches("other.yaml"));
        assert!(!i.matches(".lvsctl.yaml.swp"));
        let d = Interest {
            yaml: true,
            ..Interest::default()
        };
        assert!(d.matches("a.yml"));
        assert!(!d.matches(".hidden.yaml"));
        assert!(!d.matches("4913"));
    }

    #[test]
    fn plans_parent_dirs_and_symlink_targets() {
        let dir = super::super::tests::tempdir("plan-watches");
        let repo = dir.join("repo");
        let etc = dir.join("etc");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(repo.join("m.yaml"), "services: []\n").unwrap();
        std::os::unix::fs::symlink(repo.join("m.yaml"), etc.join("lvsctl.yaml")).unwrap();
        let w = plan_watches(&[etc.join("lvsctl.yaml")]);
        let repo = std::fs::canonicalize(&repo).unwrap();
        assert!(w[&etc].names.contains("lvsctl.yaml"));
        assert!(w[&repo].names.contains("m.yaml"));
        let w = plan_watches(std::slice::from_ref(&etc));
        assert!(w[&etc].yaml);
        assert!(w[&dir].names.contains("etc"));
        assert!(w[&repo].names.contains("m.yaml"));
    }
}
