//! systemd's readiness protocol (`sd_notify`), for `Type=notify` units: `READY=1` once the
//! daemon handles its signals, `STOPPING=1` when it starts to stop. Under `Type=simple` a
//! `systemctl reload` (SIGHUP) sent in the first milliseconds after start reached the process
//! before its handler existed and killed it, and systemd does not restart a unit that ended
//! on SIGHUP. Without `NOTIFY_SOCKET` (not started by systemd) this does nothing.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use tracing::{debug, warn};

/// Tells the service manager `state` (e.g. `READY=1`), when there is one.
pub fn send(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    match send_to(&socket, state) {
        Ok(()) => debug!(state, "told the service manager"),
        // The unit then times out waiting for READY=1, and systemd says so; name the cause.
        Err(e) => warn!(
            socket = %socket.to_string_lossy(),
            error = %e,
            state,
            "cannot notify the service manager (NOTIFY_SOCKET)"
        ),
    }
}

/// Sends one datagram to `socket`: a path, or an abstract name written with a leading `@`.
fn send_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    let addr = match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(Path::new(socket))?,
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither an absolute path nor an abstract name (@...)",
            ));
        }
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("lvsctl-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("lvsctl-notify-test-{}", std::process::id());
        let abstract_listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        send_to(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = abstract_listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_relative_or_empty_socket_is_an_error_not_a_send() {
        for bad in ["", "notify", "run/systemd/notify"] {
            let e = send_to(OsStr::new(bad), "READY=1").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
