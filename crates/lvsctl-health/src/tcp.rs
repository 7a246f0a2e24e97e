//! The `tcp` probe: a connect within the deadline passes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::CheckError;

pub(crate) async fn check(addr: SocketAddr, deadline: Duration) -> Result<(), CheckError> {
    match tokio::time::timeout(deadline, TcpStream::connect(addr)).await {
        // Dropping the stream closes it with a FIN; nothing is sent.
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(source)) => Err(CheckError::Connect { addr, source }),
        Err(_) => Err(CheckError::Timeout {
            after: deadline,
            during: format!("connecting to {addr}"),
        }),
    }
}
