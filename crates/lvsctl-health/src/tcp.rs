//! The `tcp` probe: a connect within the deadline passes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::CheckError;

pub(crate) async fn check(addr: SocketAddr, deadline: Duration) -> Result<(), CheckError> {
    match tokio::time::timeout(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            abort(stream);
            Ok(())
        }
        Ok(Err(source)) => Err(CheckError::connect(addr, source)),
        Err(_) => Err(CheckError::Timeout {
            after: deadline,
            during: format!("connecting to {addr}"),
        }),
    }
}

/// Closes a check connection with RST: no FIN exchange and no TIME_WAIT socket left behind per
/// check (HAProxy closes its check connections the same way). Zero linger never blocks.
pub(crate) fn abort(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
