//! lvsctl's real director backend: composes the IPVS client (`lvsctl-ipvs`), lvsctl's mangle
//! chain (`lvsctl-mark`) and VIP addresses (`lvsctl-vip`) behind [`lvsctl_plan::Backend`].
//! It only routes each [`Op`] to the part that owns it; it must not plan, order or retry.

use std::time::Duration;

use lvsctl_ipvs::{IpvsSocket, is_ipvs_op};
use lvsctl_mark::{Config as MarkConfig, IptablesBackend, Xtables};
use lvsctl_model::{Family, MarkChain, Observed};
use lvsctl_plan::{Backend, BackendError, Op};
use lvsctl_vip::Vips;
use tracing::{debug, warn};

/// How to reach the director's parts.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The manifest's `director.vip_interface`; `None` = VIPs are not managed.
    pub vip_interface: Option<String>,
    /// Bounded wait for the xtables lock (default 5 s).
    pub xtables_wait: Option<Duration>,
    /// Without `vip_interface`, look for the interface holding lvsctl's addresses (export and
    /// status have no manifest to name it).
    pub discover_vip_interface: bool,
}

/// The real kernel, in the calling thread's network namespace.
pub struct KernelBackend {
    ipvs: IpvsSocket,
    config: Config,
    xtables: Option<Xtables>,
    vips: Option<Vips>,
}

impl KernelBackend {
    /// Opens the IPVS socket (fails clearly when IPVS is missing or CAP_NET_ADMIN is not held).
    pub fn open(config: Config) -> Result<Self, BackendError> {
        let ipvs = IpvsSocket::open().map_err(|e| BackendError::Unavailable(e.to_string()))?;
        Ok(KernelBackend {
            ipvs,
            config,
            xtables: None,
            vips: None,
        })
    }

    /// iptables is detected on first use: a director without fwmark services never needs it.
    fn xtables(&mut self) -> Result<&Xtables, BackendError> {
        if self.xtables.is_none() {
            let backend = IptablesBackend::detect()
                .map_err(|e| BackendError::Unavailable(format!("iptables: {e}")))?;
            debug!(backend = %backend.backend, "iptables backend");
            let mut cfg = MarkConfig::new(backend.backend);
            if let Some(w) = self.config.xtables_wait {
                cfg.wait = w;
            }
            self.xtables = Some(Xtables::new(cfg));
        }
        self.xtables
            .as_ref()
            .ok_or_else(|| BackendError::Other("iptables backend missing".to_owned()))
    }

    fn vips(&mut self) -> Result<&mut Vips, BackendError> {
        if self.vips.is_none() {
            self.vips = Some(Vips::open().map_err(|e| BackendError::Unavailable(e.to_string()))?);
        }
        self.vips
            .as_mut()
            .ok_or_else(|| BackendError::Other("rtnetlink socket missing".to_owned()))
    }

    fn observe_marks(&mut self) -> Result<Vec<(Family, MarkChain)>, BackendError> {
        let xt = match self.xtables() {
            Ok(xt) => xt.clone(),
            // No iptables at all: there can be no chain of ours to see. Writing one will fail
            // with the same reason, so nothing is hidden.
            Err(e) => {
                warn!("cannot read MARK rules: {e}");
                return Ok(Vec::new());
            }
        };
        let mut out = Vec::new();
        for family in [Family::Inet, Family::Inet6] {
            let chain = xt
                .observe(family)
                .map_err(|e| BackendError::Other(format!("read the {family} mangle table: {e}")))?;
            if let Some(chain) = chain {
                for w in chain.warnings() {
                    warn!("{family} LVSCTL-MARK: {w}");
                }
                out.push((family, chain.to_mark_chain()));
            }
        }
        Ok(out)
    }

    /// The first interface (by name) holding an address lvsctl added, if any.
    fn discover_vip_interface(&mut self) -> Result<Option<String>, BackendError> {
        let mut names: Vec<String> = match std::fs::read_dir("/sys/class/net") {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => return Ok(None),
        };
        names.sort();
        for name in names {
            let state = self
                .vips()?
                .observe(&name)
                .map_err(|e| BackendError::Other(format!("read addresses of {name}: {e}")))?;
            if state.is_some_and(|s| !s.owned.is_empty()) {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    fn execute_other(&mut self, op: &Op) -> Result<(), BackendError> {
        let mark_err = |e: lvsctl_mark::MarkError| BackendError::Other(format!("{op}: {e}"));
        let vip_err = |e: lvsctl_vip::VipError| BackendError::Other(format!("{op}: {e}"));
        match op {
            Op::WriteMarkChain { family, rules, .. } => self
                .xtables()?
                .write_chain(*family, rules)
                .map_err(mark_err),
            Op::RemoveMarkChain { family, .. } => {
                self.xtables()?.remove_chain(*family).map_err(mark_err)
            }
            Op::AddVip { interface, addr } => {
                self.vips()?.add_vip(interface, *addr).map_err(vip_err)?;
                Ok(())
            }
            Op::DeleteVip {
                interface, addr, ..
            } => {
                self.vips()?.delete_vip(interface, *addr).map_err(vip_err)?;
                Ok(())
            }
            other => self.ipvs.execute_op(other),
        }
    }
}

impl Backend for KernelBackend {
    fn observe(&mut self) -> Result<Observed, BackendError> {
        let (services, counters) = self.ipvs.observe_services()?;
        let mut observed = Observed::default();
        observed.state.services = services;
        observed.counters = counters;
        observed.state.marks = self.observe_marks()?.into_iter().collect();
        if self.config.vip_interface.is_none() && self.config.discover_vip_interface {
            self.config.vip_interface = self.discover_vip_interface()?;
        }
        if let Some(interface) = self.config.vip_interface.clone() {
            let state = self
                .vips()?
                .observe(&interface)
                .map_err(|e| BackendError::Other(format!("read VIPs on {interface}: {e}")))?;
            // A missing interface holds nothing yet; the first AddVip creates it.
            observed.state.vips = Some(state.unwrap_or_else(|| lvsctl_model::VipState {
                interface,
                ..Default::default()
            }));
        }
        Ok(observed)
    }

    fn execute(&mut self, op: &Op) -> Result<(), BackendError> {
        self.execute_other(op)
    }

    /// Runs of consecutive IPVS ops are pipelined on the socket; the rest go one by one.
    fn execute_all(&mut self, ops: &[Op]) -> Result<(), (usize, BackendError)> {
        let mut i = 0;
        while i < ops.len() {
            if is_ipvs_op(&ops[i]) {
                let end = ops[i..]
                    .iter()
                    .position(|op| !is_ipvs_op(op))
                    .map_or(ops.len(), |p| i + p);
                let results = self.ipvs.execute_ops(&ops[i..end], true);
                for (k, r) in results.into_iter().enumerate() {
                    r.map_err(|e| (i + k, e))?;
                }
                i = end;
            } else {
                self.execute_other(&ops[i]).map_err(|e| (i, e))?;
                i += 1;
            }
        }
        Ok(())
    }
}

/// Director-wide IPVS connection timeouts in seconds (`ipvsadm --set`); `None` leaves one as
/// the kernel has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: Option<u32>,
    pub tcp_fin: Option<u32>,
    pub udp: Option<u32>,
}

/// Brings the kernel's IPVS timeouts to `want`; returns one line per change (`tcp: 900s ->
/// 600s`). With `dry_run` nothing is written.
pub fn sync_timeouts(want: &Timeouts, dry_run: bool) -> Result<Vec<String>, BackendError> {
    let mut sock = IpvsSocket::open().map_err(|e| BackendError::Unavailable(e.to_string()))?;
    let have = sock
        .timeouts()
        .map_err(|e| BackendError::Other(format!("read IPVS timeouts: {e}")))?;
    let mut set = lvsctl_ipvs::codec::TimeoutsRaw {
        tcp: 0,
        tcp_fin: 0,
        udp: 0,
    };
    let mut changes = Vec::new();
    // 0 in SET_CONFIG means "leave as is", so only differing values are sent.
    for (name, want, have, slot) in [
        ("tcp", want.tcp, have.tcp, &mut set.tcp),
        ("tcpfin", want.tcp_fin, have.tcp_fin, &mut set.tcp_fin),
        ("udp", want.udp, have.udp, &mut set.udp),
    ] {
        if let Some(w) = want
            && w != have
        {
            *slot = w;
            changes.push(format!("~ ipvs timeout {name}: {have}s -> {w}s"));
        }
    }
    if !changes.is_empty() && !dry_run {
        sock.set_timeouts(&set)
            .map_err(|e| BackendError::Other(format!("set IPVS timeouts: {e}")))?;
    }
    Ok(changes)
}
