//! The narrow interface between the planner's world and a kernel: observe the director, run one
//! [`Op`]. The real backend lives in `lvsctl-kernel`; [`crate::fake`] is an in-memory one.

use lvsctl_model::{Observed, VipState};
use thiserror::Error;

use crate::Op;

/// The errno-level reason a kernel refused an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// EEXIST: the object already exists.
    Exists,
    /// ESRCH: the service does not exist.
    NoService,
    /// ENOENT: the real server (or scheduler module) does not exist.
    NotFound,
    /// EINVAL: the kernel rejected an attribute.
    Invalid,
    /// EPERM: no CAP_NET_ADMIN.
    Permission,
    /// Any other errno (positive value).
    Other(i32),
}

/// A failure of one backend call, naming the operation and the object.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BackendError {
    /// The kernel answered an operation with an error.
    #[error("{op}: {message}")]
    Kernel {
        /// The operation and object, e.g. `add real server 10.0.0.11:80 to tcp/10.0.0.100:80`.
        op: String,
        errno: Errno,
        /// Human explanation, e.g. `scheduler "foo" is not available (ENOENT)`.
        message: String,
    },
    /// The backend cannot talk to the kernel at all (IPVS missing, no permission, ...).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (I/O with helper programs, unexpected replies).
    #[error("{0}")]
    Other(String),
}

/// A director: something that can be observed and changed one operation at a time.
pub trait Backend {
    /// Reads the whole director state (services, real servers, MARK chains, VIPs).
    fn observe(&mut self) -> Result<Observed, BackendError>;

    /// Reads the director again after `ops` ran, to check it converged. `before` is the
    /// observation the ops were planned from: a backend that can read single objects re-reads
    /// only what the ops touched and keeps the rest of `before`, so a small change to a large
    /// table does not cost a second full dump. The default reads everything again.
    fn observe_changed(&mut self, before: Observed, ops: &[Op]) -> Result<Observed, BackendError> {
        let _ = (before, ops);
        self.observe()
    }

    /// Points the backend at the manifest's VIP interface (`None`: VIPs are not managed) and
    /// reads the VIPs there, as [`Backend::observe`] reports them in `state.vips`. Lets a caller
    /// open the backend and observe the rest of the director while it is still reading the
    /// manifest. The default observes everything again and keeps the VIPs.
    fn observe_vips(&mut self, interface: Option<&str>) -> Result<Option<VipState>, BackendError> {
        let _ = interface;
        Ok(self.observe()?.state.vips)
    }

    /// [`Backend::observe_vips`], also naming the interface of this node's DR real-server side
    /// (the manifest's `realserver.interface`, when it has a `realserver:` section): the
    /// addresses lvsctl stamped there are that side's, never reported as the director's in
    /// [`VipState::elsewhere`]. The default ignores it.
    fn observe_vips_sparing(
        &mut self,
        interface: Option<&str>,
        realserver_interface: Option<&str>,
    ) -> Result<Option<VipState>, BackendError> {
        let _ = realserver_interface;
        self.observe_vips(interface)
    }

    /// Runs one operation.
    fn execute(&mut self, op: &Op) -> Result<(), BackendError>;

    /// Runs several operations; backends that can pipeline override this. Returns how many ops
    /// succeeded before the first error.
    fn execute_all(&mut self, ops: &[Op]) -> Result<(), (usize, BackendError)> {
        for (i, op) in ops.iter().enumerate() {
            self.execute(op).map_err(|e| (i, e))?;
        }
        Ok(())
    }
}
