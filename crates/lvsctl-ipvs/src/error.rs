//! Errors of the IPVS client, and errno names for messages.

use std::io;

use thiserror::Error;

/// What went wrong talking to the kernel's IPVS family.
#[derive(Debug, Error)]
pub enum IpvsError {
    /// nlctrl does not know the "IPVS" family: the ip_vs module is not loaded (or not built).
    #[error("IPVS is not available in this kernel (load the ip_vs module: modprobe ip_vs)")]
    Unavailable,
    /// EPERM: every IPVS command needs CAP_NET_ADMIN in the initial user namespace.
    #[error("lvsctl needs CAP_NET_ADMIN (run as root)")]
    Permission,
    /// The kernel answered a request with `-errno`.
    #[error("{}", kernel_text(*.errno, .extack.as_deref()))]
    Kernel {
        errno: i32,
        /// The extended-ACK text, when the kernel sent one.
        extack: Option<String>,
    },
    /// A socket call failed.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be decoded.
    #[error("cannot decode the kernel's IPVS answer: {0}")]
    Decode(String),
    /// The kernel answered something lvsctl did not expect (a lost answer, a missing field).
    #[error("unexpected IPVS answer from the kernel: {0}")]
    Protocol(String),
}

impl IpvsError {
    /// The errno of a kernel refusal (EPERM for [`IpvsError::Permission`]).
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Kernel { errno, .. } => Some(*errno),
            IpvsError::Permission => Some(libc::EPERM),
            _ => None,
        }
    }

    pub(crate) fn from_errno(errno: i32, extack: Option<String>) -> IpvsError {
        if errno == libc::EPERM {
            IpvsError::Permission
        } else {
            IpvsError::Kernel { errno, extack }
        }
    }
}

fn kernel_text(errno: i32, extack: Option<&str>) -> String {
    let mut s = format!("{} ({})", errno_description(errno), errno_name(errno));
    if let Some(m) = extack {
        s.push_str(": ");
        s.push_str(m);
    }
    s
}

/// `ENOENT` for 2, `errno 1234` for what this table does not know.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::EAGAIN => "EAGAIN",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOTCONN => "ENOTCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        _ => return format!("errno {errno}"),
    };
    name.to_owned()
}

/// The C library's description, lowercased like the rest of lvsctl's messages.
pub fn errno_description(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; the name replaces it.
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => format!("error {errno}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(errno_name(libc::ENOENT), "ENOENT");
        assert_eq!(errno_name(4242), "errno 4242");
        assert_eq!(errno_description(libc::EEXIST), "file exists");
        let e = IpvsError::from_errno(libc::EINVAL, Some("bad thing".into()));
        assert_eq!(e.to_string(), "invalid argument (EINVAL): bad thing");
        assert!(matches!(
            IpvsError::from_errno(libc::EPERM, None),
            IpvsError::Permission
        ));
        assert_eq!(
            IpvsError::Unavailable.to_string(),
            "IPVS is not available in this kernel (load the ip_vs module: modprobe ip_vs)"
        );
    }
}
