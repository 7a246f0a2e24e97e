//! The `http` probe: a hand-rolled HTTP/1.1 `GET`, by default over a connection kept open from
//! one check to the next (`reuse_connection`, as Envoy's HTTP health checker does): per check a
//! request and a response instead of a TCP handshake and teardown. A connection is reused only
//! after a passing response read to its end (known length or chunked, no `Connection: close`,
//! HTTP/1.1 or 1.0 with keep-alive); any failure or timeout closes it.
//!
//! A health check needs a status line, a few headers and at most a small body, so this reads no
//! more than it must: it stops at a status mismatch, at the first sight of the expected text, and
//! at `max_response_bytes`. One deadline covers connect, request and response, so a server that
//! accepts and never answers, or trickles its answer byte by byte, fails at the deadline.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::{CheckError, HttpProbe, IdleConnection};

/// Where the exchange was when the deadline passed, for the error message.
enum Progress {
    Connecting,
    Sending,
    Head { received: usize },
    Body { received: usize },
}

impl Progress {
    fn describe(&self, addr: SocketAddr) -> String {
        match self {
            Progress::Connecting => format!("connecting to {addr}"),
            Progress::Sending => "sending the request".to_owned(),
            Progress::Head { received: 0 } => "waiting for the response".to_owned(),
            Progress::Head { received } => {
                format!("reading the response headers, {received} bytes so far")
            }
            Progress::Body { received } => format!("reading the body, {received} bytes so far"),
        }
    }
}

pub(crate) async fn check(
    probe: &HttpProbe,
    addr: SocketAddr,
    deadline: Duration,
    idle: Option<IdleConnection>,
) -> (Result<(), CheckError>, Option<IdleConnection>) {
    let request = match build_request(probe, addr) {
        Ok(r) => r,
        Err(e) => return (Err(e), None),
    };
    let until = Instant::now() + deadline;
    let mut progress = Progress::Connecting;
    let exchange = exchange(probe, addr, &request, &mut progress, idle, until);
    match tokio::time::timeout_at(until, exchange).await {
        Ok(done) => done,
        // The connection was dropped with the exchange: a half-read one is never reused.
        Err(_) => (
            Err(CheckError::Timeout {
                after: deadline,
                during: progress.describe(addr),
            }),
            None,
        ),
    }
}

fn build_request(probe: &HttpProbe, addr: SocketAddr) -> Result<Vec<u8>, CheckError> {
    // Anything that could end the request line or a header early would let manifest text
    // inject headers; refuse it rather than send something else than what was asked.
    let bad = |s: &str| s.is_empty() || s.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if !probe.path.starts_with('/') || bad(&probe.path) {
        return Err(CheckError::Config(format!(
            "http path {:?} must start with / and contain no spaces or control characters",
            probe.path
        )));
    }
    let host = match &probe.host {
        Some(h) if bad(h) => {
            return Err(CheckError::Config(format!(
                "http host {h:?} must be non-empty without spaces or control characters"
            )));
        }
        Some(h) => h.clone(),
        None => default_host(addr),
    };
    Ok(format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lvsctl-health/{}\r\n\
         Accept: */*\r\nConnection: {}\r\n\r\n",
        probe.path,
        env!("CARGO_PKG_VERSION"),
        if probe.reuse_connection {
            "keep-alive"
        } else {
            "close"
        },
    )
    .into_bytes())
}

fn default_host(addr: SocketAddr) -> String {
    let ip = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    if addr.port() == 80 {
        ip
    } else {
        format!("{ip}:{}", addr.port())
    }
}

/// One check: over the kept connection when there is one, else (or when the server had closed
/// it while idle) over a new one.
///
/// The trade-off of reusing connections (Envoy's too): a server that stops listening but keeps
/// serving connections it already accepted (e.g. one draining for a graceful restart) still
/// passes over the kept connection until it closes it; new clients would be refused meanwhile.
/// A server that closes the connection, or answers with `Connection: close`, is connected to
/// afresh on the next check, so this only delays noticing by as long as the server keeps idle
/// connections open. `reuse_connection: false` checks on a new connection every time.
async fn exchange(
    probe: &HttpProbe,
    addr: SocketAddr,
    request: &[u8],
    progress: &mut Progress,
    idle: Option<IdleConnection>,
    until: Instant,
) -> (Result<(), CheckError>, Option<IdleConnection>) {
    if let Some(mut conn) = idle.filter(|c| probe.reuse_connection && c.peer == addr)
        && still_open(&conn.stream)
    {
        let outcome = converse(probe, &mut conn.stream, request, progress, until).await;
        // Closed while idle, before a byte of the answer: a race with the server's idle timeout,
        // not a failure. Retry once at once on a new connection, within the same deadline.
        if !outcome.closed_unanswered {
            return finish(conn, outcome);
        }
    }
    *progress = Progress::Connecting;
    let connect = step(probe.io_timeout, format!("connecting to {addr}"), async {
        TcpStream::connect(addr)
            .await
            .map_err(|source| CheckError::connect(addr, source))
    });
    let stream = match connect.await {
        Ok(s) => s,
        Err(e) => return (Err(e), None),
    };
    let mut conn = IdleConnection { stream, peer: addr };
    let outcome = converse(probe, &mut conn.stream, request, progress, until).await;
    finish(conn, outcome)
}

/// Keeps the connection when the exchange passed and left it reusable; closes it otherwise.
fn finish(
    conn: IdleConnection,
    outcome: Outcome,
) -> (Result<(), CheckError>, Option<IdleConnection>) {
    let keep = outcome.reusable && outcome.result.is_ok();
    (outcome.result, keep.then_some(conn))
}

/// False when an idle connection already has something to read: the server's FIN or RST (it
/// closed the connection) or bytes nobody asked for. Costs no system call while the runtime
/// has seen nothing arrive on the socket.
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// How one request/response exchange on one connection ended.
struct Outcome {
    result: Result<(), CheckError>,
    /// The response was read to its end and allows another request on the connection.
    reusable: bool,
    /// The server closed (or reset) the connection before sending a byte of the response.
    closed_unanswered: bool,
}

impl From<Result<bool, CheckError>> for Outcome {
    fn from(r: Result<bool, CheckError>) -> Outcome {
        match r {
            Ok(reusable) => Outcome {
                result: Ok(()),
                reusable,
                closed_unanswered: false,
            },
            Err(e) => Outcome {
                result: Err(e),
                reusable: false,
                closed_unanswered: false,
            },
        }
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
    )
}

async fn converse(
    probe: &HttpProbe,
    stream: &mut TcpStream,
    request: &[u8],
    progress: &mut Progress,
    until: Instant,
) -> Outcome {
    let max = probe.max_response_bytes.max(64);
    *progress = Progress::Sending;
    if let Err(source) = stream.write_all(request).await {
        return Outcome {
            closed_unanswered: is_closed(&source),
            ..Outcome::from(Err(CheckError::Io {
                during: "send request",
                source,
            }))
        };
    }
    *progress = Progress::Head { received: 0 };

    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() >= max {
            return Err(CheckError::Protocol(format!(
                "response headers exceed {max} bytes"
            )))
            .into();
        }
        match read_some(probe, stream, &mut buf, max).await {
            Ok(0) => {
                return Outcome {
                    closed_unanswered: buf.is_empty(),
                    ..Outcome::from(Err(CheckError::Protocol(if buf.is_empty() {
                        "connection closed without a response".to_owned()
                    } else {
                        format!(
                            "connection closed inside the response headers after {} bytes",
                            buf.len()
                        )
                    })))
                };
            }
            Ok(_) => {}
            Err(e) => {
                let closed = buf.is_empty()
                    && matches!(&e, CheckError::Io { source, .. } if is_closed(source));
                return Outcome {
                    closed_unanswered: closed,
                    ..Outcome::from(Err(e))
                };
            }
        }
        *progress = Progress::Head {
            received: buf.len(),
        };
    };
    judge(probe, stream, buf, head_end, progress, until)
        .await
        .into()
}

/// Checks the status and the body of a response whose head is `buf[..head_end]`; on a pass,
/// whether the connection can carry the next check.
async fn judge(
    probe: &HttpProbe,
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    head_end: usize,
    progress: &mut Progress,
    until: Instant,
) -> Result<bool, CheckError> {
    let max = probe.max_response_bytes.max(64);
    let head = parse_head(&buf[..head_end])?;
    let status_ok = if probe.status.is_empty() {
        (200..300).contains(&head.status)
    } else {
        probe.status.contains(&head.status)
    };
    if !status_ok {
        return Err(CheckError::Status {
            got: head.status,
            expected: expected_status(&probe.status),
        });
    }
    if let Some(expect) = probe.expect.as_deref() {
        let expect = expect.as_bytes();
        loop {
            let body = body_so_far(head.framing, &buf[head_end..])?;
            if contains(&body.data, expect) {
                break;
            }
            let len = body.data.len();
            if body.complete {
                return Err(body_mismatch(expect, len));
            }
            if buf.len() >= max {
                return Err(CheckError::Body(format!(
                    "no {:?} in the first {max} bytes of the response",
                    String::from_utf8_lossy(expect)
                )));
            }
            if read_some(probe, stream, &mut buf, max).await? == 0 {
                return match head.framing {
                    Framing::UntilClose => Err(body_mismatch(expect, len)),
                    _ => Err(CheckError::Protocol(format!(
                        "connection closed inside the body after {} bytes",
                        buf.len() - head_end
                    ))),
                };
            }
            *progress = Progress::Body {
                received: buf.len() - head_end,
            };
        }
    }
    if !probe.reuse_connection || !head.keep_alive || head.framing == Framing::UntilClose {
        return Ok(false);
    }
    // Passed. The connection can carry the next check only once the whole response is read;
    // reading the rest of it must not turn the pass into a timeout, so it stops just before the
    // deadline and the connection is closed instead.
    let drain = async {
        loop {
            match body_so_far(head.framing, &buf[head_end..]) {
                // Bytes past the response are something nobody asked for: do not reuse.
                Ok(BodySoFar { end: Some(end), .. }) => return head_end + end == buf.len(),
                Ok(_) => {}
                Err(_) => return false,
            }
            if buf.len() >= max
                || !matches!(read_some(probe, stream, &mut buf, max).await, Ok(n) if n > 0)
            {
                return false;
            }
        }
    };
    Ok(tokio::time::timeout_at(until, drain).await.unwrap_or(false))
}

/// What has arrived of a response body framed by `framing`, read from `raw` (the bytes after
/// the head).
struct BodySoFar<'a> {
    /// The body's content so far (de-chunked; borrowed from `raw` unless chunked).
    data: Cow<'a, [u8]>,
    /// No more content will come: all of it (length), or the last chunk (chunked).
    complete: bool,
    /// Where the response ends in `raw`, trailers included, once all of it has arrived.
    end: Option<usize>,
}

fn body_so_far(framing: Framing, raw: &[u8]) -> Result<BodySoFar<'_>, CheckError> {
    Ok(match framing {
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let end = (raw.len() >= n).then_some(n);
            BodySoFar {
                data: Cow::Borrowed(&raw[..raw.len().min(n)]),
                complete: end.is_some(),
                end,
            }
        }
        Framing::Chunked => {
            let c = decode_chunked(raw)?;
            BodySoFar {
                data: Cow::Owned(c.body),
                complete: c.last_chunk,
                end: c.end,
            }
        }
        Framing::UntilClose => BodySoFar {
            data: Cow::Borrowed(raw),
            complete: false,
            end: None,
        },
    })
}

fn body_mismatch(expect: &[u8], len: usize) -> CheckError {
    CheckError::Body(format!(
        "body does not contain {:?} ({len} bytes)",
        String::from_utf8_lossy(expect)
    ))
}

fn expected_status(accepted: &[u16]) -> String {
    if accepted.is_empty() {
        "2xx".to_owned()
    } else {
        accepted
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// Runs one network step under the probe's per-step limit, if it has one.
async fn step<T>(
    limit: Option<Duration>,
    during: String,
    fut: impl std::future::Future<Output = Result<T, CheckError>>,
) -> Result<T, CheckError> {
    match limit {
        None => fut.await,
        Some(after) => tokio::time::timeout(after, fut)
            .await
            .unwrap_or(Err(CheckError::Timeout { after, during })),
    }
}

/// Reads what is available, never growing `buf` past `max`.
async fn read_some(
    probe: &HttpProbe,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<usize, CheckError> {
    let mut chunk = [0u8; 4096];
    let room = max.saturating_sub(buf.len()).min(chunk.len());
    let received = buf.len();
    let n = step(
        probe.io_timeout,
        format!("a read, {received} bytes received so far"),
        async {
            stream
                .read(&mut chunk[..room])
                .await
                .map_err(|source| CheckError::Io {
                    during: "read response",
                    source,
                })
        },
    )
    .await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The end of the header block (just past the blank line); bare `\n` line ends are accepted.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
    /// The server allows another request on the connection: HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    keep_alive: bool,
}

fn parse_head(head: &[u8]) -> Result<Head, CheckError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(CheckError::Protocol(format!(
            "status line {:?} is not HTTP/1.x",
            truncate(status_line, 60)
        )));
    }
    let status = match code.parse::<u16>() {
        Ok(s) if code.len() == 3 && (100..600).contains(&s) => s,
        _ => {
            return Err(CheckError::Protocol(format!(
                "status line {:?} has no valid status code",
                truncate(status_line, 60)
            )));
        }
    };
    let mut framing = Framing::UntilClose;
    let (mut close, mut keep) = (false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().ends_with("chunked") {
                framing = Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = value.parse::<u64>().map_err(|_| {
                CheckError::Protocol(format!("invalid content-length {:?}", truncate(value, 30)))
            })?;
            framing = Framing::Length(n);
        }
    }
    if status == 204 || status == 304 {
        // Never a body, whatever the headers say (RFC 9112 section 6.3).
        framing = Framing::Length(0);
    }
    // An interim 1xx answer is followed by the real one; not worth handling for reuse.
    let keep_alive = !close && status >= 200 && (version == "HTTP/1.1" || keep);
    Ok(Head {
        status,
        framing,
        keep_alive,
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A chunked body decoded as far as it has arrived.
struct Chunked {
    /// The data so far; partial chunk data is included so the expected text is found as early
    /// as possible.
    body: Vec<u8>,
    /// The last (zero-size) chunk was seen.
    last_chunk: bool,
    /// Where the chunked body ends, trailers included, once all of it has arrived.
    end: Option<usize>,
}

fn decode_chunked(raw: &[u8]) -> Result<Chunked, CheckError> {
    let mut out = Vec::with_capacity(raw.len());
    let partial = |body| {
        Ok(Chunked {
            body,
            last_chunk: false,
            end: None,
        })
    };
    let mut i = 0;
    loop {
        let Some(nl) = raw[i..].iter().position(|&b| b == b'\n') else {
            return partial(out);
        };
        let line = String::from_utf8_lossy(&raw[i..i + nl]);
        let size_text = line.trim_end_matches('\r');
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| {
            CheckError::Protocol(format!("invalid chunk size {:?}", truncate(size_text, 20)))
        })?;
        i += nl + 1;
        if size == 0 {
            return Ok(Chunked {
                body: out,
                last_chunk: true,
                end: trailers_end(raw, i),
            });
        }
        let available = raw.len() - i;
        if available < size {
            out.extend_from_slice(&raw[i..]);
            return partial(out);
        }
        out.extend_from_slice(&raw[i..i + size]);
        i += size;
        if raw[i..].starts_with(b"\r\n") {
            i += 2;
        } else if raw[i..].starts_with(b"\n") {
            i += 1;
        } else if raw.len() - i < 2 {
            return partial(out);
        } else {
            return Err(CheckError::Protocol(
                "chunk not followed by CRLF".to_owned(),
            ));
        }
    }
}

/// The end of the trailer section starting at `raw[from..]` (just past its empty line).
fn trailers_end(raw: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let nl = raw[from..].iter().position(|&b| b == b'\n')?;
        let empty = raw[from..from + nl] == *b"\r" || nl == 0;
        from += nl + 1;
        if empty {
            return Some(from);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn head_parsing() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                framing: Framing::Length(2),
                keep_alive: true,
            }
        );
        let h = parse_head(b"HTTP/1.0 503 Service Unavailable\n\n").unwrap();
        assert_eq!(h.status, 503);
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = parse_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(h.keep_alive);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(0), true));
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(parse_head(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[test]
    fn head_end() {
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\n\nbody"), Some(17));
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n"), None);
    }

    #[test]
    fn chunked_decoding() {
        let raw = b"2\r\nOK\r\n3;ext=1\r\n!!!\r\n0\r\n\r\n";
        let c = decode_chunked(raw).unwrap();
        assert_eq!(c.body, b"OK!!!");
        assert!(c.last_chunk);
        assert_eq!(c.end, Some(raw.len()));
        // The last chunk without the end of its trailers is not the end of the body.
        let c = decode_chunked(b"2\r\nOK\r\n0\r\nX-T: 1\r\n").unwrap();
        assert!(c.last_chunk);
        assert_eq!(c.end, None);
        let raw = b"2\r\nOK\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(decode_chunked(raw).unwrap().end, Some(raw.len()));
        let c = decode_chunked(b"5\r\nhel").unwrap();
        assert_eq!(c.body, b"hel");
        assert!(!c.last_chunk);
        let c = decode_chunked(b"2\r\nOK").unwrap();
        assert_eq!(c.body, b"OK");
        assert!(!c.last_chunk && c.end.is_none());
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(decode_chunked(b"ffffffffffffffffffffff\r\n").is_err());
        assert!(decode_chunked(b"1\r\naXY").is_err());
    }

    #[test]
    fn request_refuses_header_injection() {
        let addr: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        let mut p = HttpProbe::get("/x\r\nX-Evil: 1");
        assert!(matches!(
            build_request(&p, addr),
            Err(CheckError::Config(_))
        ));
        p.path = "/.health.html".into();
        p.host = Some("a\r\nb".into());
        assert!(matches!(
            build_request(&p, addr),
            Err(CheckError::Config(_))
        ));
        p.host = None;
        let req = String::from_utf8(build_request(&p, addr).unwrap()).unwrap();
        assert!(req.starts_with("GET /.health.html HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"));
        assert!(req.ends_with("\r\nConnection: keep-alive\r\n\r\n"));
        p.reuse_connection = false;
        let req = String::from_utf8(build_request(&p, addr).unwrap()).unwrap();
        assert!(req.ends_with("\r\nConnection: close\r\n\r\n"));
        let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        assert_eq!(default_host(v6), "[2001:db8::1]");
    }
}
