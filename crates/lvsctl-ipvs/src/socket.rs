//! A synchronous generic-netlink socket speaking the kernel's IPVS family: family resolution,
//! request/reply, dumps, and pipelined batches of writes matched to their ACKs by sequence
//! number.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use lvsctl_netlink::constants::IPVS_GENL_NAME;
use lvsctl_netlink::{
    DaemonRaw, DestRaw, Incoming, InfoRaw, IpvsCmd, IpvsMessage, IpvsRequest, ServiceRaw,
    TimeoutsRaw, decode_datagram, encode_get_family, encode_ipvs,
};
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

use crate::error::IpvsError;
use crate::model::DestCounters;
use crate::sockopt::SockoptSocket;

/// Requested socket buffer size. Big receive buffers let many ACKs and dump chunks queue up
/// while lvsctl is still sending; the kernel doubles the value for its bookkeeping.
const SOCKET_BUFFER: usize = 4 << 20;
/// Receive buffer for one datagram. The kernel sizes dump chunks after the reader's buffer,
/// capped at 32 KiB, and expects readers to offer that much (`netlink_dump`).
const RECV_BUFFER: usize = 32 << 10;
/// Largest datagram lvsctl sends (well under any default SO_SNDBUF).
const MAX_DATAGRAM: usize = 32 << 10;
/// How long one receive may wait for the kernel before lvsctl gives up.
const RECV_TIMEOUT: Duration = Duration::from_secs(60);
/// The kernel charges every queued ACK with its skb's truesize; assume this much per ACK when
/// sizing the pipeline so the receive buffer never overflows (which would drop ACKs).
const ACK_TRUESIZE: usize = 2048;

/// A blocking NETLINK_GENERIC socket bound to the IPVS family of the caller's network
/// namespace. Buffers are reused across calls.
pub struct IpvsSocket {
    sock: Socket,
    family: u16,
    next_seq: u32,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    max_in_flight: usize,
    /// For the legacy getsockopt reads of [`IpvsSocket::observe_services`]; opened with the
    /// netlink socket so both speak for the same network namespace. `None` when it could not
    /// be opened or was turned off.
    pub(crate) sockopt: Option<SockoptSocket>,
    /// Which counters observing builds (see [`IpvsSocket::set_counters`]).
    pub(crate) counters: DestCounters,
}

impl std::fmt::Debug for IpvsSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpvsSocket")
            .field("family", &self.family)
            .field("next_seq", &self.next_seq)
            .field("max_in_flight", &self.max_in_flight)
            .field("sockopt", &self.sockopt.is_some())
            .finish()
    }
}

impl IpvsSocket {
    /// Opens a socket and resolves the "IPVS" family. Without the ip_vs module this is
    /// [`IpvsError::Unavailable`].
    pub fn open() -> Result<IpvsSocket, IpvsError> {
        let mut s = IpvsSocket::open_raw()?;
        s.family = s.resolve_family(IPVS_GENL_NAME)?;
        // Without it every read goes through netlink, so a failure here is no error.
        s.sockopt = SockoptSocket::open().ok();
        Ok(s)
    }

    /// Opens another socket for an already resolved family id (for parallel dumps).
    pub fn with_family(family: u16) -> Result<IpvsSocket, IpvsError> {
        let mut s = IpvsSocket::open_raw()?;
        s.family = family;
        Ok(s)
    }

    /// Whether [`IpvsSocket::observe_services`] may read real servers through the legacy
    /// getsockopt interface (on by default when its socket could be opened).
    pub fn sockopt_reads(&self) -> bool {
        self.sockopt.is_some()
    }

    /// Turns the getsockopt reads off (netlink only) or back on (reopening the socket in the
    /// calling thread's network namespace, which must be the one this socket was opened in).
    pub fn set_sockopt_reads(&mut self, on: bool) {
        self.sockopt = if on { SockoptSocket::open().ok() } else { None };
    }

    /// Which counters observing builds: callers that plan from the state alone (`lvsctl plan`
    /// and `apply`) take [`DestCounters::None`], the daemon's draining
    /// [`DestCounters::Busy`]; neither then holds a hundred bytes per idle real server.
    /// Default [`DestCounters::All`].
    ///
    /// With less than `All`, [`IpvsSocket::observe_services`] also keeps the getsockopt read
    /// for real servers whose traffic counters outgrew what it reports exactly (it truncates
    /// packets, conns and rates to 32 bits) and reports their traffic counters as zero instead
    /// of dumping the service over netlink: those callers read at most the connection counts,
    /// which stay exact. On a busy director almost every real server has carried more than
    /// 2 GiB, and otherwise most services would go back to netlink.
    pub fn set_counters(&mut self, wanted: DestCounters) {
        self.counters = wanted;
    }

    /// Which counters observing builds ([`IpvsSocket::set_counters`]).
    pub fn counters(&self) -> DestCounters {
        self.counters
    }

    fn open_raw() -> Result<IpvsSocket, IpvsError> {
        let io = |what| move |source| IpvsError::Io { what, source };
        let mut sock =
            Socket::new(NETLINK_GENERIC).map_err(io("cannot open a generic netlink socket"))?;
        sock.bind_auto()
            .map_err(io("cannot bind the generic netlink socket"))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(io(
            "cannot connect the generic netlink socket to the kernel",
        ))?;
        // Error answers echo only the request's header, and carry the kernel's text if any.
        // Both options are missing on old kernels, which is fine.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        let fd = sock.as_raw_fd();
        let rcvbuf = grow_buffer(fd, libc::SO_RCVBUF, libc::SO_RCVBUFFORCE);
        let _ = grow_buffer(fd, libc::SO_SNDBUF, libc::SO_SNDBUFFORCE);
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, tv)
            .map_err(io("cannot set a receive timeout on the netlink socket"))?;
        Ok(IpvsSocket {
            sock,
            family: 0,
            next_seq: 1,
            rbuf: vec![0; RECV_BUFFER],
            wbuf: Vec::with_capacity(MAX_DATAGRAM + 1024),
            max_in_flight: (rcvbuf / 2 / ACK_TRUESIZE).clamp(8, 1024),
            sockopt: None,
            counters: DestCounters::All,
        })
    }

    /// The resolved IPVS family id.
    pub fn family(&self) -> u16 {
        self.family
    }

    /// How many writes [`IpvsSocket::execute_batch`] keeps unacknowledged at most.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Limits the pipeline depth; 1 makes batches strictly one request at a time (nothing
    /// after a failed request is sent when stopping at the first error).
    pub fn set_max_in_flight(&mut self, n: usize) {
        self.max_in_flight = n.clamp(1, 4096);
    }

    fn take_seq(&mut self, n: u32) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(n);
        if self.next_seq == 0 {
            self.next_seq = 1;
        }
        s
    }

    fn send_wbuf(&mut self) -> Result<(), IpvsError> {
        loop {
            match self.sock.send(&self.wbuf, 0) {
                Ok(n) if n == self.wbuf.len() => return Ok(()),
                Ok(n) => {
                    return Err(IpvsError::Protocol(format!(
                        "the kernel took {n} of {} request bytes",
                        self.wbuf.len()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(IpvsError::Io {
                        what: "cannot send to the kernel",
                        source,
                    });
                }
            }
        }
    }

    /// Receives one datagram into `rbuf` and returns its length.
    fn recv(&mut self) -> Result<usize, IpvsError> {
        loop {
            let mut slice = &mut self.rbuf[..];
            match self.sock.recv(&mut slice, libc::MSG_TRUNC) {
                Ok(n) if n > self.rbuf.len() => {
                    return Err(IpvsError::Protocol(format!(
                        "a {n}-byte answer did not fit the {}-byte receive buffer",
                        self.rbuf.len()
                    )));
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(IpvsError::Protocol(format!(
                        "no answer within {} s",
                        RECV_TIMEOUT.as_secs()
                    )));
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Err(IpvsError::Protocol(
                        "the kernel dropped answers because the socket receive buffer was full"
                            .into(),
                    ));
                }
                Err(source) => {
                    return Err(IpvsError::Io {
                        what: "cannot receive from the kernel",
                        source,
                    });
                }
            }
        }
    }

    /// Receives one datagram and hands each decoded message to `f`.
    fn recv_each(
        &mut self,
        mut f: impl FnMut(Incoming) -> Result<(), IpvsError>,
    ) -> Result<(), IpvsError> {
        let n = self.recv()?;
        let buf = std::mem::take(&mut self.rbuf);
        let mut result = Ok(());
        for m in decode_datagram(&buf[..n], self.family) {
            let r = match m {
                Ok(m) => f(m),
                Err(e) => Err(IpvsError::Decode(e.to_string())),
            };
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        self.rbuf = buf;
        result
    }

    fn resolve_family(&mut self, name: &str) -> Result<u16, IpvsError> {
        let seq = self.take_seq(1);
        self.wbuf.clear();
        encode_get_family(&mut self.wbuf, NLM_F_REQUEST, seq, name);
        self.send_wbuf()?;
        let mut found = None;
        while found.is_none() {
            self.recv_each(|m| {
                match m {
                    Incoming::Ctrl {
                        seq: s, family_id, ..
                    } if s == seq => {
                        found = Some(family_id.ok_or_else(|| {
                            IpvsError::Protocol("nlctrl answered without a family id".into())
                        }));
                    }
                    Incoming::Error { seq: s, errno, .. } if s == seq => {
                        found = Some(Err(if errno == libc::ENOENT {
                            IpvsError::Unavailable
                        } else {
                            IpvsError::from_errno(errno, None)
                        }));
                    }
                    _ => {}
                }
                Ok(())
            })?;
        }
        found.unwrap_or(Err(IpvsError::Unavailable))
    }

    /// Sends a request that has one reply message (GET_INFO, GET_CONFIG, GET_SERVICE).
    pub fn request(&mut self, msg: IpvsMessage) -> Result<IpvsMessage, IpvsError> {
        let seq = self.take_seq(1);
        self.wbuf.clear();
        encode_ipvs(&mut self.wbuf, self.family, NLM_F_REQUEST, seq, msg);
        self.send_wbuf()?;
        let mut answer: Option<Result<IpvsMessage, IpvsError>> = None;
        while answer.is_none() {
            self.recv_each(|m| {
                match m {
                    Incoming::Ipvs { seq: s, msg, .. } if s == seq => answer = Some(Ok(msg)),
                    Incoming::Error {
                        seq: s,
                        errno,
                        message,
                    } if s == seq => answer = Some(Err(IpvsError::from_errno(errno, message))),
                    // A late ACK or other noise: not ours.
                    _ => {}
                }
                Ok(())
            })?;
        }
        answer.unwrap_or_else(|| Err(IpvsError::Protocol("no answer".into())))
    }

    /// Runs a dump and hands each item to `f`. The dump is always read to its end, so the
    /// socket stays usable even when `f` fails; the first failure is returned.
    pub fn dump(
        &mut self,
        msg: IpvsMessage,
        mut f: impl FnMut(IpvsMessage) -> Result<(), IpvsError>,
    ) -> Result<(), IpvsError> {
        let seq = self.take_seq(1);
        self.wbuf.clear();
        encode_ipvs(
            &mut self.wbuf,
            self.family,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            msg,
        );
        self.send_wbuf()?;
        let mut done = false;
        let mut first_err: Option<IpvsError> = None;
        while !done {
            self.recv_each(|m| {
                match m {
                    Incoming::Ipvs { seq: s, msg, .. } if s == seq && first_err.is_none() => {
                        if let Err(e) = f(msg) {
                            first_err = Some(e);
                        }
                    }
                    Incoming::Done { seq: s, errno } if s == seq => {
                        done = true;
                        if errno != 0 && first_err.is_none() {
                            first_err = Some(IpvsError::from_errno(errno, None));
                        }
                    }
                    Incoming::Error {
                        seq: s,
                        errno,
                        message,
                    } if s == seq => {
                        done = true;
                        if first_err.is_none() {
                            first_err = Some(IpvsError::from_errno(errno, message));
                        }
                    }
                    _ => {}
                }
                Ok(())
            })?;
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Every service of this network namespace.
    pub fn services(&mut self) -> Result<Vec<ServiceRaw>, IpvsError> {
        let mut out = Vec::new();
        self.dump(IpvsMessage::dump_services(), |m| {
            out.push(service_of(&m)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// One service by identity; `None` when it does not exist (ESRCH).
    pub fn service(&mut self, identity: &ServiceRaw) -> Result<Option<ServiceRaw>, IpvsError> {
        match self.request(IpvsMessage::get_service(identity)) {
            Ok(m) => service_of(&m).map(Some),
            Err(IpvsError::Kernel { errno, .. }) if errno == libc::ESRCH => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The real servers of one service. The kernel answers a missing service with an empty
    /// list, not an error.
    pub fn dests(&mut self, service: &ServiceRaw) -> Result<Vec<DestRaw>, IpvsError> {
        let mut out = Vec::new();
        self.dests_into(service, &mut out)?;
        Ok(out)
    }

    /// Like [`IpvsSocket::dests`], appending to `out` (lets callers reuse one vector).
    pub fn dests_into(
        &mut self,
        service: &ServiceRaw,
        out: &mut Vec<DestRaw>,
    ) -> Result<(), IpvsError> {
        self.dump(IpvsMessage::dump_dests(service), |m| {
            let attrs = m.dest().ok_or_else(|| {
                IpvsError::Protocol("a real-server dump item lacks its DEST nest".into())
            })?;
            out.push(DestRaw::from_attrs(attrs).map_err(|e| IpvsError::Protocol(e.to_string()))?);
            Ok(())
        })
    }

    /// Version and connection table size (GET_INFO).
    pub fn info(&mut self) -> Result<InfoRaw, IpvsError> {
        let m = self.request(IpvsMessage::get_info())?;
        InfoRaw::from_attrs(&m.attrs).map_err(|e| IpvsError::Protocol(e.to_string()))
    }

    /// TCP, TCP FIN and UDP connection timeouts (GET_CONFIG).
    pub fn timeouts(&mut self) -> Result<TimeoutsRaw, IpvsError> {
        let m = self.request(IpvsMessage::get_config())?;
        Ok(TimeoutsRaw::from_attrs(&m.attrs))
    }

    /// The running sync daemons (GET_DAEMON dump).
    pub fn daemons(&mut self) -> Result<Vec<DaemonRaw>, IpvsError> {
        let mut out = Vec::new();
        self.dump(IpvsMessage::dump_daemons(), |m| {
            let attrs = m.daemon().ok_or_else(|| {
                IpvsError::Protocol("a sync-daemon dump item lacks its DAEMON nest".into())
            })?;
            out.push(DaemonRaw::from_attrs(attrs).map_err(|e| IpvsError::Protocol(e.to_string()))?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs one write and waits for its ACK.
    pub fn execute(&mut self, req: &IpvsRequest) -> Result<(), IpvsError> {
        self.execute_batch(std::slice::from_ref(req), true)
            .pop()
            .unwrap_or_else(|| Err(IpvsError::Protocol("the request was not sent".into())))
    }

    pub fn new_service(&mut self, s: &ServiceRaw) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::NewService(s.clone()))
    }

    pub fn set_service(&mut self, s: &ServiceRaw) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::SetService(s.clone()))
    }

    pub fn del_service(&mut self, s: &ServiceRaw) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::DelService(s.clone()))
    }

    pub fn new_dest(&mut self, service: &ServiceRaw, dest: &DestRaw) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::NewDest {
            service: service.clone(),
            dest: dest.clone(),
        })
    }

    pub fn set_dest(&mut self, service: &ServiceRaw, dest: &DestRaw) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::SetDest {
            service: service.clone(),
            dest: dest.clone(),
        })
    }

    pub fn del_dest(&mut self, service: &ServiceRaw, dest: &DestRaw) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::DelDest {
            service: service.clone(),
            dest: dest.clone(),
        })
    }

    /// Deletes every service (and so every real server) of this network namespace.
    pub fn flush(&mut self) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::Flush)
    }

    /// Zeroes the counters of one service, or of all services.
    pub fn zero(&mut self, service: Option<&ServiceRaw>) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::Zero(service.cloned()))
    }

    /// Sets the timeouts; a 0 leaves that timeout unchanged.
    pub fn set_timeouts(&mut self, t: &TimeoutsRaw) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::SetTimeouts(*t))
    }

    /// Starts a sync daemon.
    pub fn new_daemon(&mut self, d: &DaemonRaw) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::NewDaemon(d.clone()))
    }

    /// Stops the sync daemon in `state` (1 master, 2 backup).
    pub fn del_daemon(&mut self, state: u32) -> Result<(), IpvsError> {
        self.execute(&IpvsRequest::DelDaemon { state })
    }

    /// Sends `reqs` back to back, several per datagram and up to
    /// [`IpvsSocket::max_in_flight`] unacknowledged, and matches each ACK or error to its
    /// request by sequence number. Returns one result per request *sent*, in order: with
    /// `stop_at_first_error`, nothing more is sent once an error came back, so the vector can
    /// be shorter than `reqs`. Requests already in flight when the error arrived still ran
    /// and report their own results.
    pub fn execute_batch(
        &mut self,
        reqs: &[IpvsRequest],
        stop_at_first_error: bool,
    ) -> Vec<Result<(), IpvsError>> {
        let n = reqs.len();
        let mut results: Vec<Option<Result<(), IpvsError>>> = Vec::with_capacity(n);
        if n == 0 {
            return Vec::new();
        }
        // Sequence numbers base..base+n belong to this batch.
        let base = self.take_seq(u32::try_from(n).unwrap_or(u32::MAX));
        let window = self.max_in_flight;
        let (mut sent, mut answered, mut failed) = (0usize, 0usize, false);
        let mut transport: Option<String> = None;

        while transport.is_none()
            && (answered < sent || (sent < n && !(stop_at_first_error && failed)))
        {
            let may_send = sent < n && !(stop_at_first_error && failed) && sent - answered < window;
            if may_send {
                self.wbuf.clear();
                let first = sent;
                while sent < n && sent - answered < window && self.wbuf.len() < MAX_DATAGRAM {
                    let seq = base.wrapping_add(sent as u32);
                    encode_ipvs(
                        &mut self.wbuf,
                        self.family,
                        NLM_F_REQUEST | NLM_F_ACK,
                        seq,
                        reqs[sent].to_message(),
                    );
                    results.push(None);
                    sent += 1;
                }
                if let Err(e) = self.send_wbuf() {
                    // Nothing of this datagram reached the kernel.
                    for r in &mut results[first..sent] {
                        *r = Some(Err(IpvsError::Protocol(format!("not sent: {e}"))));
                    }
                    answered += sent - first;
                    failed = true;
                    transport = Some(e.to_string());
                }
                continue;
            }
            let r = self.recv_each(|m| {
                let (seq, res) = match m {
                    Incoming::Ack { seq } => (seq, Ok(())),
                    Incoming::Error {
                        seq,
                        errno,
                        message,
                    } => (seq, Err(IpvsError::from_errno(errno, message))),
                    _ => return Ok(()),
                };
                let idx = seq.wrapping_sub(base) as usize;
                if let Some(slot) = results.get_mut(idx)
                    && slot.is_none()
                {
                    failed |= res.is_err();
                    *slot = Some(res);
                    answered += 1;
                }
                Ok(())
            });
            if let Err(e) = r {
                transport = Some(e.to_string());
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(IpvsError::Protocol(format!(
                        "no answer: {}",
                        transport.as_deref().unwrap_or("lost")
                    )))
                })
            })
            .collect()
    }
}

/// The service of a NEW_SERVICE dump item or GET_SERVICE reply.
fn service_of(m: &IpvsMessage) -> Result<ServiceRaw, IpvsError> {
    if m.cmd != IpvsCmd::NewService {
        return Err(IpvsError::Protocol(format!(
            "expected {} in a service answer, got {}",
            IpvsCmd::NewService,
            m.cmd
        )));
    }
    let attrs = m
        .service()
        .ok_or_else(|| IpvsError::Protocol("a service answer lacks its SERVICE nest".into()))?;
    ServiceRaw::from_attrs(attrs).map_err(|e| IpvsError::Protocol(e.to_string()))
}

/// Asks for `SOCKET_BUFFER` bytes, falling back to the privileged FORCE variant when
/// `rmem_max`/`wmem_max` capped the request; returns what the kernel granted.
fn grow_buffer(fd: RawFd, opt: libc::c_int, force: libc::c_int) -> usize {
    let want = SOCKET_BUFFER as libc::c_int;
    let _ = setsockopt(fd, libc::SOL_SOCKET, opt, want);
    let got = getsockopt_int(fd, libc::SOL_SOCKET, opt).unwrap_or(0);
    // The kernel reports twice what it grants.
    if (got as usize) < SOCKET_BUFFER {
        let _ = setsockopt(fd, libc::SOL_SOCKET, force, want);
    }
    getsockopt_int(fd, libc::SOL_SOCKET, opt).map_or(0, |v| v.max(0) as usize)
}

/// `setsockopt(2)` with a plain-data value.
#[allow(unsafe_code)]
fn setsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: T,
) -> io::Result<()> {
    // SAFETY: `value` is a live, plain-data `T` on our stack and the length passed is exactly
    // its size; the kernel only reads from the pointer during the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const T).cast::<libc::c_void>(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `getsockopt(2)` of an int option.
#[allow(unsafe_code)]
fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live locals; `len` holds the size of `value`, so the
    // kernel writes at most that many bytes into it.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}
