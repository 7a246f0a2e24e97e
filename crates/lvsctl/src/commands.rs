//! The one-shot commands: validate, plan, apply, export, import, status, realserver.
//! Each returns the process exit code; errors travel as `anyhow` to `main`, which reports them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lvsctl_health::{Status, Target};
use lvsctl_model::manifest::{self, Manifest};
use lvsctl_model::{Observed, State};
use lvsctl_plan::{Backend, Op, Plan, RenderOpts};
use tracing::{debug, info, warn};

use crate::backend::VipScope;
use crate::cli::{
    DaemonHealthArgs, ExportFormat, ImportFrom, ManifestArgs, OutDirArgs, PlanFormat,
};
use crate::output;
use crate::status::{DaemonHealth, DaemonVerdicts, DownVerdict};

/// Exit codes, documented in the README and `--help`; stable.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES: u8 = 2;
    pub const REFUSED: u8 = 3;
}

/// An error that has already been reported in full (diagnostics listed), carrying its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Reported {
    pub code: u8,
    pub message: String,
}

/// One-line description of an operation, for progress and error messages.
pub fn describe(op: &Op) -> String {
    op.to_string()
}

/// Reads, merges and validates manifests; every diagnostic is printed before failing.
pub fn load_manifests(args: &ManifestArgs) -> Result<Manifest> {
    let t = Instant::now();
    let sources = crate::files::read_sources(&args.files, args.allow_insecure_manifest)?;
    match manifest::load_owned(sources) {
        Ok(m) => {
            debug!(
                elapsed_ms = t.elapsed().as_millis() as u64,
                "read the manifests"
            );
            Ok(m)
        }
        Err(diags) => {
            eprint!("{diags}");
            if !diags.to_string().ends_with('\n') {
                eprintln!();
            }
            Err(Reported {
                code: exit::ERROR,
                message: format!(
                    "{} error(s) in the manifest; nothing was applied",
                    diags.len()
                ),
            }
            .into())
        }
    }
}

/// Reads manifests for the director (not for `realserver`): also says what is valid but risky.
fn load_director_manifests(args: &ManifestArgs) -> Result<Manifest> {
    let m = load_manifests(args)?;
    for w in m.warnings() {
        warn!("{w}");
    }
    Ok(m)
}

pub fn validate(args: &ManifestArgs) -> Result<u8> {
    let m = load_director_manifests(args)?;
    let state = m.desired_state();
    let dests: usize = state.services.values().map(|s| s.dests.len()).sum();
    let rules: usize = state.marks.values().map(|c| c.rules.len()).sum();
    output::stdout(&format!(
        "valid: {} service(s), {} real server(s), {} MARK rule(s) from {} file(s)\n",
        state.services.len(),
        dests,
        rules,
        crate::files::expand(&args.files)?.len()
    ));
    Ok(exit::OK)
}

/// Drops services the manifest leaves unmanaged, so no plan ever touches them.
/// Takes the observation by value: a large table is filtered in place, never copied.
pub fn managed_view(manifest: &Manifest, mut observed: Observed) -> Observed {
    observed
        .state
        .services
        .retain(|k, _| manifest.is_managed(k));
    observed.counters.retain(|k, _| manifest.is_managed(k));
    observed
}

/// Where each service is defined (`file:line`), for the plan's notes.
type Locations = BTreeMap<lvsctl_model::ServiceKey, String>;

fn locations(manifest: &Manifest) -> Locations {
    manifest
        .services
        .iter()
        .map(|s| (s.key, s.location.to_string()))
        .collect()
}

/// The desired state and where its services are defined; then the parsed services, the
/// largest thing a big manifest leaves in memory, are dropped (nothing after planning reads
/// them).
fn desired_and_locations(
    manifest: &mut Manifest,
    observed: &Observed,
    daemon: Option<&DaemonHealth>,
) -> (State, Locations) {
    let desired = match daemon {
        Some(h) => with_daemon_health(manifest, observed, h),
        None => manifest.desired_state(),
    };
    let locations = locations(manifest);
    manifest.services = Vec::new();
    (desired, locations)
}

fn render(plan: &Plan, locations: &Locations, color: bool) -> String {
    lvsctl_plan::render_text(plan, &render_opts(plan, locations, color))
}

/// Prints the plan as it is rendered: the text of a 10,000-service plan (15 MB) is never held
/// whole. Like `output::stdout`, a closed stdout is not an error.
fn print_plan(plan: &Plan, locations: &Locations, color: bool) {
    let mut out = std::io::stdout().lock();
    let _ = lvsctl_plan::render_text_to(plan, &render_opts(plan, locations, color), &mut out)
        .and_then(|()| std::io::Write::flush(&mut out));
}

fn render_opts(plan: &Plan, locations: &Locations, color: bool) -> RenderOpts {
    // Only service ops show a location.
    let locations = plan
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::AddService { key, .. }
            | Op::UpdateService { key, .. }
            | Op::DeleteService { key, .. } => locations.get_key_value(key),
            _ => None,
        })
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    RenderOpts { color, locations }
}

/// A running daemon's health verdicts, unless told to ignore them. A status file that cannot
/// be used fails `apply` (`strict`: it could put back servers the daemon took out) and is
/// reported by `plan`, which goes on without it.
fn daemon_health(args: &DaemonHealthArgs, strict: bool) -> Result<Option<DaemonHealth>> {
    if args.ignore_daemon_health {
        return Ok(None);
    }
    let path = args.daemon_status.display();
    match crate::status::daemon_verdicts(&args.daemon_status) {
        Ok(DaemonVerdicts::Absent) => Ok(None),
        Ok(DaemonVerdicts::NotRunning { pid, why }) => {
            warn!(
                "{path} was written by a daemon (pid {pid}) but {why}: its health verdicts \
                 are not applied"
            );
            Ok(None)
        }
        Ok(DaemonVerdicts::Running(h)) => Ok(Some(h)),
        Err(e) if strict => Err(Reported {
            code: exit::ERROR,
            message: format!(
                "{e}: cannot tell which real servers the daemon found down, so nothing was \
                 changed; pass --ignore-daemon-health to apply the manifest as written"
            ),
        }
        .into()),
        Err(e) => {
            warn!(
                "{e}: planning without the daemon's health verdicts \
                 (--ignore-daemon-health skips the file)"
            );
            Ok(None)
        }
    }
}

/// The manifest's state with a running daemon's verdicts applied as the daemon applies them
/// (`daemon::desired`), so that an apply beside the daemon does not put back a real server it
/// took out. Says which servers stay out.
fn with_daemon_health(manifest: &Manifest, observed: &Observed, daemon: &DaemonHealth) -> State {
    let mut verdicts: BTreeMap<Target, &DownVerdict> = BTreeMap::new();
    for svc in &manifest.services {
        let Some(down) = daemon.down_in(&svc.key.to_string()) else {
            continue;
        };
        for rs in svc.real_servers.iter().filter(|rs| rs.health.is_some()) {
            if let Some(v) = down.get(&rs.key.to_string()) {
                let target = Target {
                    service: svc.key,
                    server: rs.key,
                };
                verdicts.insert(target, v);
            }
        }
    }
    let (state, effect) = crate::daemon::desired::desired_state(manifest, observed, |t| {
        verdicts.get(t).map(|v| (Status::Down, v.confirmed))
    });
    let held: Vec<String> = effect
        .removed
        .iter()
        .map(|k| (k, "out"))
        .chain(effect.quiesced.iter().map(|k| (k, "at weight 0")))
        .map(|((svc, rs), how)| {
            let target = Target {
                service: *svc,
                server: *rs,
            };
            let reason = verdicts.get(&target).map_or("", |v| v.reason.as_str());
            format!("{svc} {rs} {how} ({reason})")
        })
        .collect();
    if !held.is_empty() {
        const SHOWN: usize = 5;
        let mut list = held
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if held.len() > SHOWN {
            list.push_str(&format!("; and {} more", held.len() - SHOWN));
        }
        info!(
            "the daemon (pid {}) found {} real server(s) down; this plan keeps them as it does \
             (--ignore-daemon-health plans the manifest as written): {list}",
            daemon.pid,
            held.len()
        );
    }
    for svc in &effect.sorry {
        info!("{svc}: every real server is down or at weight 0, so its sorry server is in");
    }
    state
}

pub fn plan(
    args: &ManifestArgs,
    state: Option<&Path>,
    format: PlanFormat,
    detailed: bool,
    daemon: &DaemonHealthArgs,
    color: bool,
) -> Result<u8> {
    let (mut manifest, observed) = match state {
        Some(p) => (load_director_manifests(args)?, crate::snapshot::read(p)?),
        None => {
            let (manifest, _backend, observed) = load_and_observe(args)?;
            (manifest, observed)
        }
    };
    let observed = managed_view(&manifest, observed);
    // A snapshot may come from another director: this one's daemon says nothing about it.
    let health = match state {
        Some(_) => None,
        None => daemon_health(daemon, false)?,
    };
    let (desired, locations) = desired_and_locations(&mut manifest, &observed, health.as_ref());
    let p = lvsctl_plan::plan(&desired, &observed.state);
    debug!(operations = p.ops.len(), "planned");
    drop(desired);
    if let Err(lvsctl_plan::GuardError::DestroysAll { services, .. }) =
        lvsctl_plan::destroy_guard(&p, &observed.state, None)
    {
        // Reviewers of a plan should learn before apply that it will be refused.
        warn!(
            "this plan deletes all {services} IPVS service(s) of the director: \
             apply will refuse it unless given --allow-destroy"
        );
    }
    match format {
        PlanFormat::Text => print_plan(&p, &locations, color),
        // render_json ends the document with a newline already.
        PlanFormat::Json => output::stdout(&lvsctl_plan::render_json(&p)),
    }
    // Director-wide timeouts are not IPVS objects and stay out of the plan and its JSON; in
    // text they are listed after it. Either way they count for --detailed-exitcode.
    let timeouts = match state {
        Some(path) => {
            // A snapshot holds no timeouts: say so, rather than let "No changes" cover them.
            if manifest.director.timeouts != Default::default() {
                warn!(
                    "director.timeouts are not compared: the snapshot {} does not record the \
                     kernel's timeouts (`lvsctl plan` without --state compares them)",
                    path.display()
                );
            }
            0
        }
        None => director_timeouts(&manifest, true, matches!(format, PlanFormat::Text))?,
    };
    Ok(if detailed && (!p.is_empty() || timeouts > 0) {
        exit::CHANGES
    } else {
        exit::OK
    })
}

fn observe(backend: &mut dyn Backend) -> Result<Observed> {
    let t = Instant::now();
    let o = backend
        .observe()
        .map_err(|e| anyhow::anyhow!("observe the director: {e}"))?;
    info!(
        services = o.state.services.len(),
        elapsed_ms = t.elapsed().as_millis() as u64,
        "observed the director"
    );
    Ok(o)
}

/// Brings the director-wide IPVS timeouts (`director.timeouts`) to the manifest's values on the
/// real kernel, printing each change; `dry_run` only prints. They are not IPVS objects, so they
/// are kept out of the plan and its counts.
/// Returns how many timeouts differ (were changed, or would be with `dry_run`). Each change is
/// printed on stdout, or with `to_stdout` false (JSON output) logged on stderr.
fn director_timeouts(manifest: &Manifest, dry_run: bool, to_stdout: bool) -> Result<usize> {
    let t = &manifest.director.timeouts;
    let secs = |d: Option<Duration>| d.map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    let want = lvsctl_kernel::Timeouts {
        tcp: secs(t.tcp),
        tcp_fin: secs(t.tcpfin),
        udp: secs(t.udp),
    };
    if want == lvsctl_kernel::Timeouts::default()
        || std::env::var_os("LVSCTL_FAKE_KERNEL").is_some()
    {
        return Ok(0);
    }
    let changes = lvsctl_kernel::sync_timeouts(&want, dry_run)
        .map_err(|e| anyhow::anyhow!("director timeouts: {e}"))?;
    for c in &changes {
        if to_stdout {
            output::stdout(&format!("{c}\n"));
        }
        if !dry_run || !to_stdout {
            info!("{c}");
        }
    }
    Ok(changes.len())
}

/// Reads the manifests and observes the director at the same time: on a large director both
/// take long and neither needs the other, except for the VIPs, which are read once the manifest
/// has named their interface. A manifest error wins over a kernel error.
fn load_and_observe(args: &ManifestArgs) -> Result<(Manifest, Box<dyn Backend + Send>, Observed)> {
    std::thread::scope(|scope| {
        let observer = scope.spawn(|| -> Result<(Box<dyn Backend + Send>, Observed)> {
            let mut backend = crate::backend::open_for_planning(VipScope::default())?;
            let observed = observe(backend.as_mut())?;
            Ok((backend, observed))
        });
        let manifest = load_director_manifests(args);
        let observed = observer.join().unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "internal error: the thread observing the director panicked"
            ))
        });
        let manifest = manifest?;
        let (mut backend, mut observed) = observed?;
        let vips = VipScope::of(&manifest);
        observed.state.vips = backend
            .observe_vips_sparing(vips.vip_interface, vips.realserver_interface)
            .map_err(|e| anyhow::anyhow!("observe the director's VIPs: {e}"))?;
        Ok((manifest, backend, observed))
    })
}

pub struct ApplyOpts {
    pub dry_run: bool,
    pub allow_destroy: bool,
    pub max_changes: Option<usize>,
    pub lock_timeout: Duration,
    pub daemon: DaemonHealthArgs,
}

pub fn apply(args: &ManifestArgs, opts: &ApplyOpts, color: bool) -> Result<u8> {
    // When the lock file exists and nobody holds it, the lock is taken at once and the director
    // is observed under it while the manifest is read. Otherwise the manifest is validated
    // first, so an invalid one neither waits for the lock nor creates its file.
    let free_lock = if opts.dry_run || !crate::lock::lock_path().exists() {
        None
    } else {
        crate::lock::DirectorLock::acquire(Duration::ZERO, "").ok()
    };
    let (mut manifest, mut backend, observed, lock) = if opts.dry_run || free_lock.is_some() {
        let (manifest, backend, observed) = load_and_observe(args)?;
        (manifest, backend, observed, free_lock)
    } else {
        let manifest = load_director_manifests(args)?;
        let lock = crate::lock::DirectorLock::acquire(
            opts.lock_timeout,
            "wait for it to finish, or raise --lock-timeout",
        )?;
        let mut backend = crate::backend::open_for_planning(VipScope::of(&manifest))?;
        let observed = observe(backend.as_mut())?;
        (manifest, backend, observed, Some(lock))
    };
    let observed = managed_view(&manifest, observed);
    let health = daemon_health(&opts.daemon, !opts.dry_run)?;
    let (desired, locations) = desired_and_locations(&mut manifest, &observed, health.as_ref());
    let p = lvsctl_plan::plan(&desired, &observed.state);
    print_plan(&p, &locations, color);
    // The guard goes before the director-wide timeouts: a refused apply changes nothing.
    match lvsctl_plan::destroy_guard(&p, &observed.state, opts.max_changes) {
        Ok(()) => {}
        Err(lvsctl_plan::GuardError::DestroysAll { .. }) if opts.allow_destroy => {
            warn!("deleting every service of the director (--allow-destroy)");
        }
        Err(e) => {
            let mut message = e.to_string();
            message.push_str("; nothing was changed");
            return Err(Reported {
                code: exit::REFUSED,
                message,
            }
            .into());
        }
    }
    director_timeouts(&manifest, opts.dry_run, true)?;
    if p.is_empty() {
        return Ok(exit::OK);
    }
    if opts.dry_run {
        info!("dry run: nothing applied");
        return Ok(exit::OK);
    }
    if let Some(lock) = &lock {
        lock.still_held()?;
    }
    run_plan(backend.as_mut(), &p)?;
    // The kernel must now match the manifest; anything else is a bug or interference. Only
    // what the plan touched is read back (everything else was just observed and needed no op),
    // so a small change to a large table stays cheap.
    let t = Instant::now();
    let after = backend
        .observe_changed(observed, &p.ops)
        .map_err(|e| anyhow::anyhow!("read the director back after applying: {e}"))?;
    info!(
        elapsed_ms = t.elapsed().as_millis() as u64,
        "read back what the plan changed"
    );
    let after = managed_view(&manifest, after);
    let again = lvsctl_plan::plan(&desired, &after.state);
    if !again.is_empty() {
        eprint!("{}", render(&again, &locations, false));
        bail!(
            "the director does not match the manifest after applying ({} operation(s) still pending); \
             another program may be changing it, or the kernel ignored an attribute — run `lvsctl plan` to see the difference",
            again.ops.len()
        );
    }
    Ok(exit::OK)
}

/// Runs a plan step by step with progress on stderr. On failure, names the step and lists
/// what was done; the next apply finishes the job.
pub fn run_plan(backend: &mut dyn Backend, plan: &Plan) -> Result<()> {
    // Ops go to the backend in chunks, so it can pipeline them; progress is reported per chunk.
    const CHUNK: usize = 2048;
    let n = plan.ops.len();
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut done = 0;
    while done < n {
        let chunk = &plan.ops[done..(done + CHUNK).min(n)];
        if let Err((k, e)) = backend.execute_all(chunk) {
            let i = done + k;
            let op = &plan.ops[i];
            // A kernel error already names the op; say it once.
            let why = match &e {
                lvsctl_plan::BackendError::Kernel { message, .. } => message.clone(),
                other => other.to_string(),
            };
            let mut msg = format!("apply step {}/{n} ({}) failed: {why}", i + 1, describe(op));
            if i == 0 {
                msg.push_str("\nnothing was changed");
            } else {
                msg.push_str(&format!("\nalready done ({i} of {n}):"));
                const SHOWN: usize = 50;
                for d in plan.ops[..i].iter().take(SHOWN) {
                    msg.push_str(&format!("\n  {}", describe(d)));
                }
                if i > SHOWN {
                    msg.push_str(&format!("\n  ... and {} more", i - SHOWN));
                }
            }
            msg.push_str(
                "\nfix the cause and run apply again: it continues from the current state",
            );
            return Err(Reported {
                code: exit::ERROR,
                message: msg,
            }
            .into());
        }
        if n <= 20 {
            for (k, op) in chunk.iter().enumerate() {
                info!("[{}/{n}] {}", done + k + 1, describe(op));
            }
        } else if last_report.elapsed() >= Duration::from_secs(1) || done + chunk.len() == n {
            info!(
                "applied {}/{n} operations ({:.1}s)",
                done + chunk.len(),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        done += chunk.len();
    }
    info!(
        "applied {n} operation(s) in {:.3}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn export(format: ExportFormat, state: bool, out: &OutDirArgs) -> Result<u8> {
    if out.out_dir.is_some() && format == ExportFormat::Json {
        bail!(
            "--out-dir writes YAML files (a directory is read as its *.yaml files); \
             drop --output json, or write JSON to stdout without --out-dir"
        );
    }
    let mut backend = crate::backend::open_without_manifest()?;
    let observed = observe(backend.as_mut())?;
    if state {
        output::stdout(&crate::snapshot::to_json(&observed)?);
        return Ok(exit::OK);
    }
    let text = state_as_manifest(&observed.state, format)?;
    write_manifest(&text, out)?;
    Ok(exit::OK)
}

/// Writes a manifest lvsctl made to stdout, or split into files of `--out-dir`.
fn write_manifest(text: &str, out: &OutDirArgs) -> Result<()> {
    let Some(dir) = &out.out_dir else {
        warn_if_too_big(text, "-");
        output::stdout(text);
        return Ok(());
    };
    let parts = manifest::split_manifest(text, out.services_per_file as usize);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the directory", dir.display()))?;
    // `-f DIR` would refuse it: say so now, not when the files are read back.
    crate::files::check_dir_permissions(dir, false)
        .context("lvsctl would refuse to read the manifest back from there")?;
    // Manifests already there would be read with these: never mix, never overwrite.
    let mut existing: Vec<String> = Vec::new();
    let mut unfinished: Vec<std::path::PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list the directory", dir.display()))?
    {
        let entry =
            entry.with_context(|| format!("{}: cannot list the directory", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if crate::files::is_manifest_name(&name) {
            existing.push(name);
        } else if crate::files::is_unfinished_part(&name) {
            unfinished.push(entry.path());
        }
    }
    existing.sort();
    if !existing.is_empty() {
        bail!(
            "{}: already holds manifests ({}); they would be read together with the new \
             ones: give an empty or new directory",
            dir.display(),
            existing.join(", ")
        );
    }
    // Parts an interrupted export staged here and never renamed: ours, and in the way (`-f DIR`
    // refuses a directory holding them).
    for p in unfinished {
        std::fs::remove_file(&p)
            .with_context(|| format!("{}: cannot remove an unfinished part", p.display()))?;
    }
    // Each part goes to a hidden name first (never read as a manifest), then all are renamed
    // into place; a failed write or rename takes every part back, as a partial set would read
    // as a smaller director. A process killed before the last rename leaves staged parts,
    // and `-f DIR` refuses a directory holding any (`files::is_unfinished_part`).
    let files: Vec<(std::path::PathBuf, std::path::PathBuf)> = (1..=parts.len())
        .map(|i| {
            (
                dir.join(format!(".lvsctl-{i:04}.yaml.tmp")),
                dir.join(format!("lvsctl-{i:04}.yaml")),
            )
        })
        .collect();
    // Every staged part, and the first `renamed` parts put in place.
    let undo = |renamed: usize| {
        for (i, (tmp, name)) in files.iter().enumerate() {
            let _ = std::fs::remove_file(tmp);
            if i < renamed {
                let _ = std::fs::remove_file(name);
            }
        }
    };
    for (part, (tmp, name)) in parts.iter().zip(&files) {
        // On disk before any is renamed: after a crash, a part in place is a whole part.
        let written = crate::files::create_fresh(tmp).and_then(|mut f| {
            std::io::Write::write_all(&mut f, part.as_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written {
            undo(0);
            return Err(e).with_context(|| format!("{}: cannot write", tmp.display()));
        }
        warn_if_too_big(part, &name.display().to_string());
    }
    for (i, (tmp, name)) in files.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, name) {
            undo(i);
            return Err(e).with_context(|| {
                format!(
                    "{}: cannot rename to {}; no part was left in place",
                    tmp.display(),
                    name.display()
                )
            });
        }
    }
    info!(
        files = parts.len(),
        "wrote the manifest to {}; read it back with -f {}",
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// A manifest lvsctl writes that it would refuse to read back as one file: say how to use it.
fn warn_if_too_big(text: &str, file: &str) {
    let limit = manifest::MAX_INPUT_BYTES;
    if text.len() > limit {
        let fix = if file == "-" {
            "write it as several files with --out-dir DIR and read them back with -f DIR"
        } else {
            "write it again with a lower --services-per-file"
        };
        warn!(
            "{file}: this manifest is {:.1} MiB, more than the {} MiB lvsctl reads from one \
             file: {fix}",
            text.len() as f64 / (1024.0 * 1024.0),
            limit / (1024 * 1024)
        );
    }
}

fn state_as_manifest(state: &State, format: ExportFormat) -> Result<String> {
    let yaml = manifest::manifest_from_state(state);
    Ok(match format {
        ExportFormat::Yaml => yaml,
        ExportFormat::Json => {
            // The same document as the YAML, in JSON: `apply` accepts either.
            let value: serde_json::Value = serde_saphyr::from_str(&yaml).map_err(|e| {
                anyhow::anyhow!("internal error: exported manifest is not YAML: {e}")
            })?;
            let mut s = serde_json::to_string_pretty(&value)
                .context("cannot encode the manifest as JSON")?;
            s.push('\n');
            s
        }
    })
}

/// Reads `input` as UTF-8 text, refusing more than `max` bytes.
fn read_capped(input: impl std::io::Read, max: u64) -> std::io::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut input.take(max + 1), &mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "more than {} MiB: an `ipvsadm -S -n` listing of 100,000 services with 10 real \
                 servers each is about 60 MB; is this the right file?",
                max >> 20
            ),
        ));
    }
    Ok(text)
}

/// The most `import` reads: `ipvsadm -S -n` of 100,000 services with 10 real servers each is
/// about 60 MB. A wrong path (`/dev/zero`, a log, a FIFO that never ends) must fail, not take
/// the machine's memory.
const IMPORT_MAX_BYTES: u64 = 256 << 20;

pub fn import(from: ImportFrom, file: &Path, out: &OutDirArgs) -> Result<u8> {
    let name = if file == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        file.display().to_string()
    };
    let text = if file == Path::new("-") {
        read_capped(std::io::stdin().lock(), IMPORT_MAX_BYTES)
            .context("cannot read standard input")?
    } else {
        std::fs::File::open(file)
            .and_then(|f| read_capped(f, IMPORT_MAX_BYTES))
            .with_context(|| format!("{name}: cannot read"))?
    };
    match from {
        ImportFrom::Ipvsadm => match crate::import::parse_ipvsadm_save(&text) {
            Ok(imported) => {
                for w in &imported.warnings {
                    warn!("{name}:{}: {}", w.line, w.message);
                }
                let state = &imported.state;
                if state.services.is_empty() {
                    // Likely the wrong machine or an empty file; applying it would be refused
                    // by the destroy guard anyway, but say so now.
                    warn!("{name} holds no IPVS service: the manifest is empty");
                }
                let yaml = manifest::manifest_from_state(state);
                // Say where the manifest came from instead of the generic export header.
                let body = yaml
                    .strip_prefix("# lvsctl manifest exported from a director state\n")
                    .unwrap_or(&yaml);
                let mut head =
                    format!("# lvsctl manifest imported from `ipvsadm -S -n` output ({name})\n");
                if state.services.keys().any(|k| k.is_fwmark()) {
                    head.push_str(
                        "# fwmark services: add a `match:` list for the packets to mark; \
                         ipvsadm does not know the iptables rules that set the mark\n",
                    );
                }
                let text = format!("{head}{body}");
                check_imported(&text, out, &name, &imported.origins)?;
                write_manifest(&text, out)?;
                Ok(exit::OK)
            }
            Err(errors) => {
                // FILE:LINE: message, like compilers and the manifest diagnostics.
                for e in &errors {
                    eprintln!("{name}:{}: {}", e.line, e.message);
                }
                Err(Reported {
                    code: exit::ERROR,
                    message: format!(
                        "{} line(s) of {name} could not be imported; no manifest written",
                        errors.len()
                    ),
                }
                .into())
            }
        },
    }
}

/// Checks the manifest an import built as `lvsctl validate` would, before anything is written:
/// whatever the source holds that lvsctl would refuse must stop the import, not the next
/// `validate`. Each problem is traced to the input line of its service or real server
/// (`origins`, in the manifest's service order), else named by its manifest field.
fn check_imported(
    text: &str,
    out: &OutDirArgs,
    input: &str,
    origins: &[crate::import::ServiceOrigin],
) -> Result<()> {
    // Checked in the parts --out-dir writes. On stdout too: a manifest over 4 MiB only gets a
    // warning there (write_manifest's), but its content must still be checked; a part still too
    // large to read is checked one service at a time.
    let mut per_part = out.services_per_file.max(1) as usize;
    let mut parts = manifest::split_manifest(text, per_part);
    if parts.iter().any(|p| p.len() > manifest::MAX_INPUT_BYTES) {
        per_part = 1;
        parts = manifest::split_manifest(text, per_part);
    }
    // Each part is named by its index, to find its first service's index again below.
    let sources = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| manifest::Source::new(i.to_string(), p))
        .collect();
    let Err(diags) = manifest::load_owned(sources) else {
        return Ok(());
    };
    // In input line order, like the import's own errors; what no line explains comes last.
    let mut report: Vec<(Option<usize>, String)> = diags
        .iter()
        .map(|d| {
            let first = d.file.parse::<usize>().unwrap_or(0) * per_part;
            match traced(&d.path, first, origins) {
                Some((line, path)) => (
                    Some(line),
                    format!("{input}:{line}: {} (manifest field {path})", d.message),
                ),
                None => (
                    None,
                    format!(
                        "{input}: the manifest built from it: {}: {}",
                        d.path, d.message
                    ),
                ),
            }
        })
        .collect();
    report.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
    for (_, message) in &report {
        eprintln!("{message}");
    }
    Err(Reported {
        code: exit::ERROR,
        message: format!(
            "the manifest built from {input} would not validate ({} error(s)): fix the input and \
             import again; no manifest written",
            diags.len()
        ),
    }
    .into())
}

/// A diagnostic path of a manifest part whose first service is the manifest's `first`:
/// the input line of the service or real server it names, and the path in the whole manifest.
fn traced(
    path: &str,
    first: usize,
    origins: &[crate::import::ServiceOrigin],
) -> Option<(usize, String)> {
    let (i, rest) = path.strip_prefix("services[")?.split_once(']')?;
    let i = first + i.parse::<usize>().ok()?;
    let service = origins.get(i)?;
    let real_server = rest
        .strip_prefix(".real_servers[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(j, _)| j.parse::<usize>().ok())
        .and_then(|j| service.real_servers.get(j));
    Some((
        *real_server.unwrap_or(&service.line),
        format!("services[{i}]{rest}"),
    ))
}

pub fn status(
    watch: bool,
    interval: Duration,
    daemon_status: &Path,
    state: Option<&Path>,
    color: bool,
) -> Result<u8> {
    let mut backend = match state {
        Some(_) => None,
        None => Some(crate::backend::open_without_manifest()?),
    };
    loop {
        let observed = match (state, backend.as_mut()) {
            (Some(p), _) => crate::snapshot::read(p)?,
            (None, Some(b)) => b
                .observe()
                .map_err(|e| anyhow::anyhow!("observe the director: {e}"))?,
            (None, None) => unreachable_backend()?,
        };
        let (health, problem) = match crate::status::read_daemon_status(daemon_status) {
            // Absent is normal at the default place (no daemon); a path given on purpose that
            // does not exist is more likely a typo.
            Ok(None) if daemon_status != Path::new(crate::cli::STATUS_FILE) => (
                None,
                Some(format!(
                    "{} does not exist (is that where `lvsctl run --status-file` writes?)",
                    daemon_status.display()
                )),
            ),
            Ok(h) => (h, None),
            Err(e) => (None, Some(e)),
        };
        let mut table = crate::status::render(&observed, health.as_ref(), color);
        if let Some(e) = problem {
            // In the table rather than on stderr: `--watch` redraws it instead of scrolling.
            table.push_str(&format!("daemon: no health shown: {e}\n"));
        }
        if watch {
            // Clear the screen and home the cursor, like watch(1).
            if output::try_stdout(&format!("\x1b[2J\x1b[H{table}")).is_err() {
                // Nobody reads any more (a closed pipe): stop like watch(1) would.
                return Ok(exit::OK);
            }
            std::thread::sleep(interval);
        } else {
            output::stdout(&table);
            return Ok(exit::OK);
        }
    }
}

fn unreachable_backend() -> Result<Observed> {
    bail!("internal error: no backend and no snapshot")
}

/// Likely mistakes in `realserver.vips`, when the manifest also has the director's services
/// to compare with (a real-server-only manifest cannot be checked).
fn realserver_warnings(
    manifest: &lvsctl_model::manifest::Manifest,
    side: &lvsctl_model::manifest::RealServerSide,
) -> Vec<String> {
    if !manifest.declares_services {
        return Vec::new();
    }
    let dr: std::collections::BTreeSet<_> = manifest
        .services
        .iter()
        .filter(|s| s.has_direct_real_servers())
        .flat_map(|s| s.vips())
        .collect();
    let any: std::collections::BTreeSet<_> =
        manifest.services.iter().flat_map(|s| s.vips()).collect();
    side.vips
        .iter()
        .filter(|v| !dr.contains(v))
        .map(|v| {
            if any.contains(v) {
                format!(
                    "realserver.vips: {v} is the VIP of NAT services only: a NAT real server \
                     must not hold it (replies go back through the director); remove it"
                )
            } else {
                format!("realserver.vips: {v} is the VIP of no service in this manifest (a typo?)")
            }
        })
        .collect()
}

pub fn realserver(args: &ManifestArgs, dry_run: bool) -> Result<u8> {
    let manifest = load_manifests(args)?;
    let Some(side) = manifest.realserver.as_ref() else {
        bail!(
            "the manifest has no `realserver:` section; add one listing the VIPs this real server answers for"
        );
    };
    for w in realserver_warnings(&manifest, side) {
        warn!("{w}");
    }
    let changes = crate::kernel::realserver(side, dry_run)?;
    if changes.is_empty() {
        output::stdout("No changes. This real server is ready for DR.\n");
    } else {
        for c in &changes {
            output::stdout(&format!("{c}\n"));
        }
        if dry_run {
            output::stdout(&format!("Plan: {} change(s) (dry run).\n", changes.len()));
        } else {
            output::stdout(&format!("Applied: {} change(s).\n", changes.len()));
        }
    }
    if !dry_run {
        warn_if_forwarding();
    }
    Ok(exit::OK)
}

fn warn_if_forwarding() {
    if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "1") {
        warn!("ip_forward is on: a DR real server normally does not route");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::ServiceOrigin;

    #[test]
    fn manifest_paths_trace_back_to_input_lines() {
        let origins = [
            ServiceOrigin {
                line: 1,
                real_servers: vec![2, 3],
            },
            ServiceOrigin {
                line: 4,
                real_servers: vec![],
            },
        ];
        for (path, first, line, whole) in [
            (
                "services[0].real_servers[1].weight",
                0,
                3,
                "services[0].real_servers[1].weight",
            ),
            ("services[0].vip", 0, 1, "services[0].vip"),
            // A later part: its services[0] is the manifest's services[first].
            ("services[0].persistence", 1, 4, "services[1].persistence"),
            // A real server the service does not have: the service's line.
            (
                "services[1].real_servers[0]",
                0,
                4,
                "services[1].real_servers[0]",
            ),
        ] {
            assert_eq!(
                traced(path, first, &origins),
                Some((line, whole.to_owned())),
                "{path}"
            );
        }
        for untraced in [
            "document",
            "director.vip_interface",
            "services[2].name",
            "services",
        ] {
            assert_eq!(traced(untraced, 0, &origins), None, "{untraced}");
        }
    }
}
