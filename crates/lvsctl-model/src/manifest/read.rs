//! Reading one manifest file: the YAML tree checked against the manifest's schema, field by
//! field, with every problem reported and reading carried on past it. Rules that only involve
//! one service live here; rules across services and files live in `check`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::diag::{Location, Sink};
use super::duration::Resolution;
use super::yaml::{self, Key, Node, Pos, Resolved, Value, quote};
use super::{
    CheckKind, DEFAULT_DRAIN_TIMEOUT, DEFAULT_FALL, DEFAULT_HTTP_STATUS, DEFAULT_INTERVAL,
    DEFAULT_RISE, DEFAULT_SCHEDULER, DEFAULT_TIMEOUT, HealthCheck, HttpCheck, MatchDef, OnFailure,
    RealServerDef, RealServerSide, Selector, ServiceDef, SorryServer, Source, duration,
};
use crate::state::{
    DestKey, DestSpec, Family, Forward, Fwmark, Persistence, Protocol, Scheduler, ServiceFlags,
    ServiceKey, ServiceSpec, TunnelFlags, TunnelType,
};

/// What leaving a key out means, for the message on an explicit empty value (`scheduler:`
/// with nothing after it, `~`, `null`). An empty value is an error, not the default: a blank
/// templating variable must not quietly turn persistence or health checks off.
#[derive(Debug, Clone, Copy)]
enum Absent {
    /// What the field is without the key: "the default (wlc)", "no persistence".
    Means(&'static str),
    /// The key is needed, for this reason (also the "missing" message).
    Needed(&'static str),
    /// An empty value is read by the field itself: it has a meaning (`tcp:` checks the real
    /// server's port) or a message of its own (`services:`).
    Own,
}

use Absent::{Means, Needed, Own};

/// A mapping's keys, each with what leaving it out means.
type Schema = &'static [(&'static str, Absent)];

const TOP_KEYS: Schema = &[
    ("director", Means("no director settings")),
    ("services", Own),
    (
        "realserver",
        Means("no real-server side (realserver: {} takes every default)"),
    ),
];
const DIRECTOR_KEYS: Schema = &[
    ("vip_interface", Means("VIPs left unmanaged")),
    (
        "unmanaged",
        Means("no unmanaged selectors (lvsctl owns every service)"),
    ),
    ("sysctl", Means("the kernel's own sysctls")),
    ("timeouts", Means("the kernel's own timeouts")),
];
const KERNEL_VALUE: Absent = Means("the kernel's own value");
const SYSCTL_KEYS: Schema = &[
    ("expire_nodest_conn", KERNEL_VALUE),
    ("expire_quiescent_template", KERNEL_VALUE),
];
const TIMEOUT_KEYS: Schema = &[
    ("tcp", KERNEL_VALUE),
    ("tcpfin", KERNEL_VALUE),
    ("udp", KERNEL_VALUE),
];
const SELECTOR_KIND: Absent = Needed("a selector needs one of cidr, fwmark or fwmarks");
const SELECTOR_KEYS: Schema = &[
    ("cidr", SELECTOR_KIND),
    ("fwmark", SELECTOR_KIND),
    ("fwmarks", SELECTOR_KIND),
    ("protocol", Means("every protocol")),
    ("port", Means("every port")),
    ("family", Means("both families")),
];
const DEFAULT_TCP: Absent = Means("the default (tcp)");
const SERVICE_KEYS: Schema = &[
    (
        "name",
        Needed("every service needs a unique name ([a-z0-9-])"),
    ),
    ("protocol", DEFAULT_TCP),
    ("vip", Needed("a service needs vip and port (or fwmark)")),
    (
        "port",
        Needed("a service needs a port (0 = every port, with persistence)"),
    ),
    ("fwmark", Means("a service with vip and port")),
    ("family", Means("the default (ipv4)")),
    ("match", Means("no MARK rules")),
    ("scheduler", Means("the default (wlc)")),
    ("flags", Means("no flags")),
    ("one_packet", Means("the default (false)")),
    ("persistence", Means("no persistence")),
    ("real_servers", Means("no real servers")),
    ("health", Means("no health check")),
    ("drain_timeout", Means("the default (30s)")),
    ("sorry_server", Means("no sorry server")),
];
const MATCH_PORTS: Absent = Needed("a match entry needs ports (e.g. ports: [80, 443])");
const MATCH_KEYS: Schema = &[
    ("vip", Needed("a match entry needs a vip")),
    ("protocol", DEFAULT_TCP),
    ("ports", MATCH_PORTS),
    ("port", MATCH_PORTS),
];
const PERSISTENCE_KEYS: Schema = &[
    ("timeout", Means("the default (360)")),
    (
        "netmask",
        Means("the default (/32 or /128: each client on its own)"),
    ),
    ("engine", Means("no engine")),
];
const SERVICE_PORT: Absent = Means("the service port");
const DEFAULT_DR: Absent = Means("the default (dr)");
const DEFAULT_FALSE: Absent = Means("the default (false)");
const RS_KEYS: Schema = &[
    ("address", Needed("a real server needs an address")),
    ("port", SERVICE_PORT),
    ("forward", DEFAULT_DR),
    ("weight", Means("the default (1)")),
    ("upper_threshold", Means("the default (0, no limit)")),
    ("lower_threshold", Means("the default (0)")),
    ("tunnel", Means("the default (ipip)")),
    (
        "health",
        Means("the service's check (health: false for none)"),
    ),
];
const TUNNEL_KEYS: Schema = &[
    ("type", Means("the default (ipip)")),
    (
        "port",
        Needed("a gue tunnel needs a port (the kernel refuses 0)"),
    ),
    ("csum", DEFAULT_FALSE),
    ("remcsum", DEFAULT_FALSE),
];
const HEALTH_KEYS: Schema = &[
    // `http:` and `tcp:` alone check the real server's port; `exec:` alone is reported as
    // lacking its command.
    ("http", Own),
    ("tcp", Own),
    ("exec", Own),
    ("interval", Means("the default (3s)")),
    ("timeout", Means("the default (2s, at most the interval)")),
    ("rise", Means("the default (2)")),
    ("fall", Means("the default (3)")),
    ("on_failure", Means("the default (remove)")),
];
const RS_PORT: Absent = Means("the real server's port");
const HTTP_KEYS: Schema = &[
    ("port", RS_PORT),
    ("path", Means("the default (/)")),
    ("status", Means("the default (200)")),
    ("expect", Means("any body")),
    ("host", Means("the default Host header")),
    ("deadline", Means("the default (the check's timeout)")),
    ("reuse_connection", Means("the default (true)")),
];
const TCP_KEYS: Schema = &[("port", RS_PORT)];
const EXEC_KEYS: Schema = &[(
    "command",
    Needed("an exec check needs command: [program, args...]"),
)];
const SORRY_KEYS: Schema = &[
    ("address", Needed("a sorry server needs an address")),
    ("port", SERVICE_PORT),
    ("forward", DEFAULT_DR),
];
const REALSERVER_KEYS: Schema = &[
    (
        "vips",
        Means("the default (every VIP with a dr/tunnel real server)"),
    ),
    ("interface", Means("the default (lo)")),
    ("arp", Means("the default (true)")),
];

/// Longest service name (a DNS label; also keeps the MARK rule comment short).
pub(crate) const MAX_NAME_LEN: usize = 63;
/// Interface names are at most IFNAMSIZ - 1 bytes.
const MAX_IFNAME_LEN: usize = 15;
/// The kernel keeps IPVS timeouts as jiffies in an int: seconds * HZ (up to 1000) must fit.
const MAX_IPVS_TIMEOUT_SECS: u64 = i32::MAX as u64 / 1000;
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);
const MAX_RISE_FALL: i128 = 1000;
const MAX_DRAIN_TIMEOUT: Duration = Duration::from_secs(86_400);

/// A director setting and where it was made, for conflicts between files.
#[derive(Debug, Clone)]
pub(crate) struct Setting<T> {
    pub value: T,
    pub loc: Location,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DirectorPart {
    pub vip_interface: Option<Setting<String>>,
    /// Selector, its location and path.
    pub unmanaged: Vec<(Selector, Location, String)>,
    pub expire_nodest_conn: Option<Setting<bool>>,
    pub expire_quiescent_template: Option<Setting<bool>>,
    pub tcp: Option<Setting<Duration>>,
    pub tcpfin: Option<Setting<Duration>>,
    pub udp: Option<Setting<Duration>>,
}

/// A match port with where it is written and what its field path is made of.
#[derive(Debug, Clone)]
pub(crate) struct PortAt {
    pub port: u16,
    pub loc: Location,
    /// The match entry's index in the service's `match:` list.
    pub entry: usize,
    /// The index in `ports:`; `None` for a single `port:`.
    pub index: Option<usize>,
}

/// One service as read, with the extra positions cross-service checks point at. Field paths
/// are kept as indexes and written out only for a diagnostic: a large manifest has thousands
/// of services and almost never reports one.
#[derive(Debug, Clone)]
pub(crate) struct ParsedService {
    pub def: ServiceDef,
    /// Index in its file's `services:` list.
    pub index: usize,
    pub name_loc: Location,
    /// Where the identity is written (the vip, or the fwmark).
    pub key_loc: Location,
    /// `vip` or `fwmark`: the field holding the identity.
    pub key_field: &'static str,
    /// Per match entry: each port with its location and path.
    pub match_ports: Vec<Vec<PortAt>>,
}

impl ParsedService {
    /// `services[3]`.
    pub fn path(&self) -> String {
        FieldPath::Text("services").index(self.index).to_string()
    }

    /// `services[3].vip`, `services[3].fwmark`.
    pub fn key_path(&self) -> String {
        let s = FieldPath::Text("services");
        let i = s.index(self.index);
        i.key(self.key_field).to_string()
    }

    /// `services[3].match[0].ports[1]`, `services[3].match[0].port`.
    pub fn port_path(&self, port: &PortAt) -> String {
        let s = FieldPath::Text("services");
        let i = s.index(self.index);
        let m = i.key("match");
        let e = m.index(port.entry);
        match port.index {
            Some(k) => {
                let p = e.key("ports");
                p.index(k).to_string()
            }
            None => e.key("port").to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RealServerPart {
    /// `None`: default from the services.
    pub vips: Option<BTreeSet<IpAddr>>,
    pub interface: String,
    pub arp: bool,
    pub location: Location,
}

#[derive(Debug, Default)]
pub(crate) struct FileRead {
    pub director: Option<DirectorPart>,
    pub services: Vec<ParsedService>,
    pub has_services_key: bool,
    pub realserver: Option<RealServerPart>,
    /// Whether the file was readable as a manifest mapping at all.
    pub usable: bool,
    /// The file holds no YAML document, only comments: it is reported as empty unless an
    /// earlier file was reported first, which only `read_files` knows.
    pub comments_only: bool,
}

/// Below this much text in all, files are read one after the other: threads cost more than
/// they save on a few kilobytes.
const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// Reads every file, each into diagnostics of its own, on as many threads as there are files
/// and CPUs when the files are large. Results and diagnostics come out in the order of
/// `sources`, exactly as reading them one by one into `sink` would give them.
pub(crate) fn read_files<S: Input>(mut inputs: Vec<S>, sink: &mut Sink) -> Vec<FileRead> {
    let reads = read_each(&mut inputs);
    let mut files = Vec::with_capacity(inputs.len());
    for (src, (file, own)) in reads.into_iter().enumerate() {
        sink.append(own);
        if file.comments_only && sink.is_empty() {
            let name = inputs.get(src).map_or("", |s| s.source().name.as_str());
            sink.push_at(src, name, 1, 1, "", EMPTY.to_owned());
        }
        files.push(file);
    }
    files
}

/// A file to read: borrowed, or handed over so its text can go as soon as it is read.
pub(crate) trait Input: Send {
    fn source(&self) -> &Source;
    /// The file has been read.
    fn done(&mut self) {}
}

impl Input for &Source {
    fn source(&self) -> &Source {
        self
    }
}

impl Input for &mut Source {
    fn source(&self) -> &Source {
        self
    }

    fn done(&mut self) {
        // Only the name is used from here on (in messages).
        self.text = Vec::new();
    }
}

fn read_each<S: Input>(inputs: &mut [S]) -> Vec<(FileRead, Sink)> {
    let read_one = |src: usize, s: &mut S| {
        let mut own = Sink::default();
        let source = s.source();
        let file = read_file(src, &source.name, &source.text, &mut own);
        s.done();
        (file, own)
    };
    let total: usize = inputs.iter().map(|s| s.source().text.len()).sum();
    let threads = if inputs.len() < 2 || total < PARALLEL_MIN_BYTES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(inputs.len())
    };
    if threads <= 1 {
        return inputs
            .iter_mut()
            .enumerate()
            .map(|(i, s)| read_one(i, s))
            .collect();
    }
    // Each worker takes the next unread file, so a large file does not hold up the rest.
    let queue = Mutex::new(inputs.iter_mut().enumerate());
    let work = || {
        let mut mine = Vec::new();
        loop {
            // A worker that panicked holding the lock left the queue itself intact.
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((i, s)) = next else {
                return mine;
            };
            mine.push((i, read_one(i, s)));
        }
    };
    let mut done: Vec<(usize, (FileRead, Sink))> = std::thread::scope(|scope| {
        // A thread that cannot be started leaves its share to the others and this one.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("lvsctl-read".to_owned())
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        let mut done = work();
        for h in helpers {
            done.extend(
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn read_file(src: usize, name: &str, bytes: &[u8], sink: &mut Sink) -> FileRead {
    let mut r = Reader {
        file: Arc::from(name),
        src,
        sink,
    };
    let text = match yaml::decode(bytes) {
        Ok(t) => t,
        Err(d) => {
            r.err(d.pos, &d.path, d.message);
            return FileRead::default();
        }
    };
    let (root, diags) = yaml::parse_document(text);
    for d in diags {
        r.err(d.pos, &d.path, d.message);
    }
    let Some(root) = root else {
        if text.trim().is_empty() {
            r.err(Pos { line: 1, column: 1 }, "", EMPTY.to_owned());
        } else if r.sink.is_empty() {
            return FileRead {
                comments_only: true,
                ..FileRead::default()
            };
        }
        return FileRead::default();
    };
    if root.is_null() {
        r.err(root.pos, "", EMPTY.to_owned());
        return FileRead::default();
    }
    r.top(&root)
}

const EMPTY: &str = "file is empty; a manifest is a mapping with services: (and optionally \
                     director: and realserver:)";

struct Reader<'a> {
    file: Arc<str>,
    src: usize,
    sink: &'a mut Sink,
}

/// A field path such as `services[3].real_servers[7].port`, kept as its parts and written out
/// only when a diagnostic needs it: a large manifest reads hundreds of thousands of fields and
/// almost never reports one.
#[derive(Debug, Clone, Copy)]
enum FieldPath<'a> {
    Text(&'a str),
    Key(&'a FieldPath<'a>, &'a str),
    Index(&'a FieldPath<'a>, usize),
}

impl<'a> FieldPath<'a> {
    fn key(&'a self, key: &'a str) -> FieldPath<'a> {
        FieldPath::Key(self, key)
    }

    fn index(&'a self, i: usize) -> FieldPath<'a> {
        FieldPath::Index(self, i)
    }

    fn is_empty(&self) -> bool {
        match self {
            FieldPath::Text(t) => t.is_empty(),
            FieldPath::Key(base, key) => base.is_empty() && key.is_empty(),
            FieldPath::Index(..) => false,
        }
    }
}

/// `base.key` (just `key` at the top; keys shortened), `base[i]`.
impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldPath::Text(t) => f.write_str(t),
            FieldPath::Key(base, key) => {
                base.fmt(f)?;
                if !base.is_empty() {
                    f.write_str(".")?;
                }
                f.write_str(&super::yaml::path_segment(key))
            }
            FieldPath::Index(base, i) => {
                base.fmt(f)?;
                write!(f, "[{i}]")
            }
        }
    }
}

/// A mapping whose keys have been checked against a schema.
struct Fields<'n> {
    pos: Pos,
    path: FieldPath<'n>,
    entries: &'n [(Key<'n>, Node<'n>)],
    schema: Schema,
}

impl<'n> Fields<'n> {
    /// The value of `key`; an explicit null counts as absent (`map` has reported it, unless
    /// the key reads its empty value itself).
    // Inlined: `key` is a literal at every call, so comparing with it is a few loads instead
    // of a call to memcmp (a 10,000-real-server manifest asks a hundred thousand times).
    #[inline]
    fn get(&self, key: &str) -> Option<&'n Node<'n>> {
        self.entries
            .iter()
            .find(|(k, _)| k.text.len() == key.len() && k.text.as_bytes() == key.as_bytes())
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    #[inline]
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Whether `key` is written at all, even with an empty value.
    fn written(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.text == key)
    }

    fn key_pos(&self, key: &str) -> Pos {
        self.entries
            .iter()
            .find(|(k, _)| k.text == key)
            .map_or(self.pos, |(k, _)| k.pos)
    }

    fn p<'s>(&'s self, key: &'s str) -> FieldPath<'s> {
        FieldPath::Key(&self.path, key)
    }
}

/// A dotted-quad IPv4 address the way `IpAddr::from_str` reads it (four parts of 1 to 3
/// digits, no leading zero, each at most 255), without its general parser; `None` for
/// anything else, which then goes to that parser. Nearly every address of a large manifest
/// is one of these.
fn ipv4_quick(text: &str) -> Option<Ipv4Addr> {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d < 10);
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let first = digit(i)?;
        i += 1;
        let mut v = u16::from(first);
        // No digit may follow a leading zero; at most three digits.
        if first != 0 {
            for _ in 0..2 {
                let Some(d) = digit(i) else { break };
                v = v * 10 + u16::from(d);
                i += 1;
            }
        }
        *octet = u8::try_from(v).ok()?;
    }
    (i == b.len()).then_some(Ipv4Addr::from(octets))
}

/// Levenshtein distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `word`, if close enough to be a plausible typo.
pub(crate) fn nearest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let word_l = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (distance(&word_l, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn hint(word: &str, candidates: &[&str]) -> String {
    match nearest(word, candidates) {
        Some(c) => format!(" (did you mean {c:?}?)"),
        None => format!(" (expected one of: {})", candidates.join(", ")),
    }
}

impl Reader<'_> {
    fn loc(&self, pos: Pos) -> Location {
        Location {
            file: self.file.clone(),
            line: pos.line as usize,
            column: pos.column as usize,
        }
    }

    fn err(&mut self, pos: Pos, path: impl fmt::Display, message: impl Into<String>) {
        let file = self.file.clone();
        let path = path.to_string();
        self.sink.push_at(
            self.src,
            &file,
            pos.line as usize,
            pos.column as usize,
            &path,
            message.into(),
        );
    }

    fn wrong_type(&mut self, node: &Node<'_>, path: &FieldPath<'_>, expected: &str) {
        let found = node.describe();
        self.err(
            node.pos,
            path,
            format!("expected {expected}, found {found}"),
        );
    }

    // Inlined: `schema` is a constant list at every call, so checking a key against it is a
    // few compares of known lengths.
    #[inline]
    fn map<'n>(
        &mut self,
        node: &'n Node<'n>,
        path: &FieldPath<'n>,
        what: &str,
        schema: Schema,
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, path, what);
            return None;
        };
        for (k, v) in entries {
            let known = schema
                .iter()
                .find(|(a, _)| a.len() == k.text.len() && a.as_bytes() == k.text.as_bytes());
            match known {
                None => self.unknown_key(k, path, schema),
                Some((_, absent)) if v.is_null() => self.empty_value(k, path, *absent),
                Some(_) => {}
            }
        }
        Some(Fields {
            pos: node.pos,
            path: *path,
            entries,
            schema,
        })
    }

    #[cold]
    fn unknown_key(&mut self, k: &Key<'_>, path: &FieldPath<'_>, schema: Schema) {
        let names: Vec<&str> = schema.iter().map(|(name, _)| *name).collect();
        let h = hint(&k.text, &names);
        self.err(
            k.pos,
            path.key(&k.text),
            format!("unknown key {}{h}", quote(&k.text)),
        );
    }

    /// `scheduler:` with nothing after it: reported at the key, whose line holds no value.
    #[cold]
    fn empty_value(&mut self, k: &Key<'_>, path: &FieldPath<'_>, absent: Absent) {
        let message = match absent {
            Means(what) => format!("empty value; remove the key for {what} or give a value"),
            Needed(why) => format!("empty value; {why}"),
            Own => return,
        };
        self.err(k.pos, path.key(&k.text), message);
    }

    /// A needed `key` that `f` lacks, reported at the mapping; one written with an empty value
    /// was reported as such by `map`.
    fn missing(&mut self, f: &Fields<'_>, key: &str) {
        if f.written(key) {
            return;
        }
        let why = match f.schema.iter().find(|(k, _)| *k == key) {
            Some((_, Needed(why))) => why,
            _ => "needed here",
        };
        self.err(f.pos, f.p(key), format!("missing; {why}"));
    }

    fn seq<'n, 't>(
        &mut self,
        node: &'n Node<'t>,
        path: &FieldPath<'_>,
        what: &str,
    ) -> Option<&'n [Node<'t>]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.wrong_type(node, path, what);
                None
            }
        }
    }

    fn string<'n>(&mut self, node: &'n Node<'_>, path: &FieldPath<'_>) -> Option<&'n str> {
        // Only null and boolean spellings (empty, `~`, `null`, `true`, `False`, ...) are not
        // text here; numbers such as `port_name: 8080` are fine as text. Asked directly: the
        // full typing (the float check is its costly part) is not needed to answer that.
        if let Value::Scalar(s) = &node.value
            && !s.is_null_or_bool()
        {
            return Some(s.text.as_ref());
        }
        self.wrong_type(node, path, "a string");
        None
    }

    fn int(&mut self, node: &Node<'_>, path: &FieldPath<'_>, lo: i128, hi: i128) -> Option<i128> {
        if let Value::Scalar(s) = &node.value {
            // Ports and weights: a few plain digits, which `resolve` reads as this integer
            // after ruling out every other kind of scalar.
            if s.plain
                && (1..=18).contains(&s.text.len())
                && s.text.bytes().all(|b| b.is_ascii_digit())
            {
                let v = s
                    .text
                    .bytes()
                    .fold(0i128, |v, d| v * 10 + i128::from(d - b'0'));
                if (lo..=hi).contains(&v) {
                    return Some(v);
                }
            }
            match s.resolve() {
                Resolved::Int(Some(v)) if (lo..=hi).contains(&v) => return Some(v),
                Resolved::Int(_) => {
                    self.err(
                        node.pos,
                        path,
                        format!("{} is out of range {lo}..={hi}", yaml::shorten(&s.text)),
                    );
                    return None;
                }
                Resolved::Str(t) if !s.plain && t.trim().parse::<i128>().is_ok() => {
                    self.err(
                        node.pos,
                        path,
                        format!(
                            "expected an integer, found string {}; remove the quotes",
                            quote(t)
                        ),
                    );
                    return None;
                }
                _ => {}
            }
        }
        self.wrong_type(node, path, "an integer");
        None
    }

    fn u16(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<u16> {
        self.int(node, path, 0, i128::from(u16::MAX))
            .and_then(|v| u16::try_from(v).ok())
    }

    fn u32_in(&mut self, node: &Node<'_>, path: &FieldPath<'_>, lo: u32, hi: u32) -> Option<u32> {
        self.int(node, path, i128::from(lo), i128::from(hi))
            .and_then(|v| u32::try_from(v).ok())
    }

    fn bool(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<bool> {
        if let Value::Scalar(s) = &node.value
            && let Resolved::Bool(b) = s.resolve()
        {
            return Some(b);
        }
        self.wrong_type(node, path, "true or false");
        None
    }

    fn ip(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<IpAddr> {
        let text = self.string(node, path)?;
        let parsed = match ipv4_quick(text) {
            Some(v4) => Ok(IpAddr::V4(v4)),
            None => text.parse::<IpAddr>(),
        };
        match parsed {
            Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                let v4 = v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED);
                self.err(
                    node.pos,
                    path,
                    format!(
                        "{} is an IPv4-mapped IPv6 address; write it as {v4}",
                        quote(text)
                    ),
                );
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                let extra = if text.contains('/') {
                    " (write the address alone, without a prefix length)"
                } else if text.contains(':') && text.contains('.') && !text.contains("::") {
                    " (write the port in its own port: field)"
                } else {
                    ""
                };
                self.err(
                    node.pos,
                    path,
                    format!("{} is not an IPv4 or IPv6 address{extra}", quote(text)),
                );
                None
            }
        }
    }

    /// An address packets are sent to or from: no unspecified, multicast or broadcast address.
    fn unicast(&mut self, node: &Node<'_>, path: &FieldPath<'_>, what: &str) -> Option<IpAddr> {
        let a = self.ip(node, path)?;
        let problem = match a {
            IpAddr::V4(v4) if v4.is_unspecified() => Some("the unspecified address"),
            IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
            IpAddr::V4(v4) if v4.is_multicast() => Some("a multicast address"),
            IpAddr::V6(v6) if v6.is_unspecified() => Some("the unspecified address"),
            IpAddr::V6(v6) if v6.is_multicast() => Some("a multicast address"),
            _ => None,
        };
        if let Some(p) = problem {
            self.err(
                node.pos,
                path,
                format!("{a} is {p}; a {what} needs a unicast address"),
            );
            return None;
        }
        Some(a)
    }

    /// A real server's address: unicast, and not IPv6 link-local (the kernel refuses those
    /// unless they are local, and a link-local address needs an interface lvsctl can't name).
    fn dest_addr(&mut self, node: &Node<'_>, path: &FieldPath<'_>, what: &str) -> Option<IpAddr> {
        let a = self.unicast(node, path, what)?;
        if let IpAddr::V6(v6) = a
            && v6.is_unicast_link_local()
        {
            self.err(
                node.pos,
                path,
                format!("{a} is link-local; the kernel refuses link-local real servers"),
            );
            return None;
        }
        Some(a)
    }

    fn duration(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<Duration> {
        self.duration_in(node, path, Resolution::Millis)
    }

    fn duration_in(
        &mut self,
        node: &Node<'_>,
        path: &FieldPath<'_>,
        res: Resolution,
    ) -> Option<Duration> {
        if let Value::Scalar(s) = &node.value {
            match s.resolve() {
                Resolved::Str(t) => match duration::parse_in(t, res) {
                    Ok(d) => return Some(d),
                    Err(m) => {
                        self.err(node.pos, path, m);
                        return None;
                    }
                },
                Resolved::Int(_) => {
                    self.err(node.pos, path, {
                        let n = yaml::shorten(&s.text);
                        format!("{n} needs a unit ({})", res.unit_hint(&n, false))
                    });
                    return None;
                }
                _ => {}
            }
        }
        self.wrong_type(node, path, "a duration such as 3s or 500ms");
        None
    }

    /// Seconds for kernel timeouts: an integer (seconds) or a whole-second duration.
    fn seconds(&mut self, node: &Node<'_>, path: &FieldPath<'_>, lo: u64, hi: u64) -> Option<u64> {
        let secs = match &node.value {
            Value::Scalar(s) if matches!(s.resolve(), Resolved::Int(_)) => match s.resolve() {
                Resolved::Int(Some(v)) if v >= 0 => u64::try_from(v).unwrap_or(u64::MAX),
                _ => {
                    self.err(
                        node.pos,
                        path,
                        format!(
                            "{} is out of range {lo}..={hi} seconds",
                            yaml::shorten(&s.text)
                        ),
                    );
                    return None;
                }
            },
            Value::Scalar(s) if matches!(s.resolve(), Resolved::Str(_)) => {
                let d = self.duration_in(node, path, Resolution::Seconds)?;
                if d.subsec_nanos() != 0 {
                    self.err(
                        node.pos,
                        path,
                        format!(
                            "{} is not a whole number of seconds (the kernel counts in seconds)",
                            duration::format(d)
                        ),
                    );
                    return None;
                }
                d.as_secs()
            }
            _ => {
                self.wrong_type(
                    node,
                    path,
                    "whole seconds (e.g. 120) or a duration (e.g. 2m)",
                );
                return None;
            }
        };
        if !(lo..=hi).contains(&secs) {
            let shown = match &node.value {
                Value::Scalar(s) if matches!(s.resolve(), Resolved::Int(_)) => {
                    yaml::shorten(&s.text).into_owned()
                }
                _ => format!("{secs}s"),
            };
            self.err(
                node.pos,
                path,
                format!("{shown} is out of range {lo}..={hi} seconds"),
            );
            return None;
        }
        Some(secs)
    }

    fn protocol(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<Protocol> {
        let t = self.string(node, path)?;
        match t.parse::<Protocol>() {
            Ok(p) => Some(p),
            Err(_) => {
                let h = hint(t, &["tcp", "udp", "sctp"]);
                self.err(node.pos, path, format!("unknown protocol {}{h}", quote(t)));
                None
            }
        }
    }

    fn family(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<Family> {
        match self.string(node, path)? {
            "ipv4" => Some(Family::Inet),
            "ipv6" => Some(Family::Inet6),
            t => {
                let h = hint(t, &["ipv4", "ipv6"]);
                self.err(node.pos, path, format!("unknown family {}{h}", quote(t)));
                None
            }
        }
    }

    fn ifname(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<String> {
        let t = self.string(node, path)?;
        let bad = t.is_empty()
            || t.len() > MAX_IFNAME_LEN
            || t == "."
            || t == ".."
            || t.chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
        if bad {
            self.err(
                node.pos,
                path,
                format!(
                    "{} is not a valid interface name (1..={MAX_IFNAME_LEN} bytes, no '/', ':' or spaces)",
                    quote(t)
                ),
            );
            return None;
        }
        Some(t.to_owned())
    }

    // ------------------------------------------------------------------------------------------

    fn top(&mut self, root: &Node<'_>) -> FileRead {
        let Value::Map(_) = &root.value else {
            let found = root.describe();
            self.err(
                root.pos,
                "",
                format!(
                    "a manifest must be a mapping with services: (and optionally director: and \
                     realserver:), found {found}"
                ),
            );
            return FileRead::default();
        };
        let mut out = FileRead {
            usable: true,
            ..FileRead::default()
        };
        let Some(f) = self.map(root, &FieldPath::Text(""), "a mapping", TOP_KEYS) else {
            return out;
        };
        if let Some(d) = f.get("director") {
            out.director = self.director(d, &FieldPath::Text("director"));
        }
        if let Some((k, v)) = f.entries.iter().find(|(k, _)| k.text == "services") {
            out.has_services_key = true;
            if v.is_null() {
                // `services:` with nothing after it is more likely an accident than a request to
                // delete every service.
                self.err(
                    k.pos,
                    "services",
                    "is empty; list services, or write services: [] to manage a director with \
                     no services",
                );
            }
        }
        let services = FieldPath::Text("services");
        if let Some(list) = f.get("services")
            && let Some(items) = self.seq(list, &services, "a list of services")
        {
            for (i, item) in items.iter().enumerate() {
                if let Some(svc) = self.service(item, i, &services.index(i)) {
                    out.services.push(svc);
                }
            }
        }
        if let Some(rs) = f.get("realserver") {
            out.realserver = self.realserver(rs, &FieldPath::Text("realserver"));
        }
        out
    }

    fn director(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<DirectorPart> {
        let f = self.map(
            node,
            path,
            "a mapping (the director: section)",
            DIRECTOR_KEYS,
        )?;
        let mut d = DirectorPart::default();
        if let Some(n) = f.get("vip_interface") {
            d.vip_interface = self.ifname(n, &f.p("vip_interface")).map(|value| Setting {
                value,
                loc: self.loc(n.pos),
            });
        }
        if let Some(n) = f.get("unmanaged") {
            let p = f.p("unmanaged");
            if let Some(items) = self.seq(n, &p, "a list of selectors") {
                for (i, item) in items.iter().enumerate() {
                    let ip = p.index(i);
                    if let Some(s) = self.selector(item, &ip) {
                        d.unmanaged.push((s, self.loc(item.pos), ip.to_string()));
                    }
                }
            }
        }
        if let Some(n) = f.get("sysctl") {
            let p = f.p("sysctl");
            if let Some(s) = self.map(n, &p, "a mapping", SYSCTL_KEYS) {
                for (key, slot) in [
                    ("expire_nodest_conn", &mut d.expire_nodest_conn),
                    (
                        "expire_quiescent_template",
                        &mut d.expire_quiescent_template,
                    ),
                ] {
                    if let Some(v) = s.get(key) {
                        *slot = self.bool(v, &s.p(key)).map(|value| Setting {
                            value,
                            loc: self.loc(v.pos),
                        });
                    }
                }
            }
        }
        if let Some(n) = f.get("timeouts") {
            let p = f.p("timeouts");
            if let Some(t) = self.map(n, &p, "a mapping", TIMEOUT_KEYS) {
                for (key, slot) in [
                    ("tcp", &mut d.tcp),
                    ("tcpfin", &mut d.tcpfin),
                    ("udp", &mut d.udp),
                ] {
                    if let Some(v) = t.get(key) {
                        *slot = self
                            .seconds(v, &t.p(key), 1, MAX_IPVS_TIMEOUT_SECS)
                            .map(|s| Setting {
                                value: Duration::from_secs(s),
                                loc: self.loc(v.pos),
                            });
                    }
                }
            }
        }
        Some(d)
    }

    fn selector(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<Selector> {
        let f = self.map(
            node,
            path,
            "a selector mapping such as {cidr: 10.96.0.0/12} or {fwmark: 100}",
            SELECTOR_KEYS,
        )?;
        let kinds: Vec<&str> = ["cidr", "fwmark", "fwmarks"]
            .into_iter()
            .filter(|k| f.has(k))
            .collect();
        match kinds.as_slice() {
            // An empty one of them was reported as such.
            [] if ["cidr", "fwmark", "fwmarks"].iter().any(|k| f.written(k)) => None,
            [] => {
                self.err(
                    f.pos,
                    path,
                    "a selector needs one of cidr, fwmark or fwmarks".to_owned(),
                );
                None
            }
            ["cidr"] => {
                if f.has("family") {
                    self.err(
                        f.key_pos("family"),
                        f.p("family"),
                        "family is only for fwmark selectors (a cidr has its own family)",
                    );
                }
                let n = f.get("cidr")?;
                let (addr, prefix) = self.cidr(n, &f.p("cidr"))?;
                let protocol = match f.get("protocol") {
                    Some(p) => Some(self.protocol(p, &f.p("protocol"))?),
                    None => None,
                };
                let port = match f.get("port") {
                    Some(p) => Some(self.u16(p, &f.p("port"))?),
                    None => None,
                };
                Some(Selector::Cidr {
                    addr,
                    prefix,
                    protocol,
                    port,
                })
            }
            [kind] => {
                for k in ["protocol", "port"] {
                    if f.has(k) {
                        self.err(
                            f.key_pos(k),
                            f.p(k),
                            format!("{k} is only for cidr selectors (a fwmark service has no {k})"),
                        );
                    }
                }
                let n = f.get(kind)?;
                let (first, last) = if *kind == "fwmark" {
                    let m = self.fwmark(n, &f.p("fwmark"))?;
                    (m, m)
                } else {
                    self.mark_range(n, &f.p("fwmarks"))?
                };
                let family = match f.get("family") {
                    Some(x) => Some(self.family(x, &f.p("family"))?),
                    None => None,
                };
                Some(Selector::Fwmarks {
                    first,
                    last,
                    family,
                })
            }
            many => {
                self.err(
                    f.pos,
                    path,
                    format!(
                        "a selector has exactly one of cidr, fwmark or fwmarks, found {}",
                        many.join(" and ")
                    ),
                );
                None
            }
        }
    }

    fn cidr(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<(IpAddr, u8)> {
        let t = self.string(node, path)?;
        let (a, p) = t.split_once('/').unwrap_or((t, ""));
        let Ok(addr) = a.parse::<IpAddr>() else {
            self.err(
                node.pos,
                path,
                format!("{} is not a CIDR such as 10.96.0.0/12", quote(t)),
            );
            return None;
        };
        let max = Family::of(&addr).max_prefix();
        let prefix = if p.is_empty() {
            max
        } else {
            match p.parse::<u8>() {
                Ok(v) if v <= max => v,
                _ => {
                    self.err(
                        node.pos,
                        path,
                        format!("{} has an invalid prefix length (0..={max})", quote(t)),
                    );
                    return None;
                }
            }
        };
        let network = mask_addr(addr, prefix);
        if network != addr {
            self.err(
                node.pos,
                path,
                format!(
                    "{} has host bits set (did you mean {network}/{prefix}?)",
                    quote(t)
                ),
            );
            return None;
        }
        Some((addr, prefix))
    }

    fn fwmark(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<u32> {
        if let Value::Scalar(s) = &node.value
            && s.resolve() == Resolved::Int(Some(0))
        {
            self.err(
                node.pos,
                path,
                "fwmark 0 means \"no mark\" to the kernel; use 1..=4294967295",
            );
            return None;
        }
        self.u32_in(node, path, 1, u32::MAX)
    }

    fn mark_range(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<(u32, u32)> {
        let t = self.string(node, path)?;
        let parsed = t.split_once('-').and_then(|(a, b)| {
            Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?))
        });
        match parsed {
            Some((a, b)) if a >= 1 && a <= b => Some((a, b)),
            _ => {
                self.err(
                    node.pos,
                    path,
                    format!(
                        "{} is not a mark range such as \"1000-1999\" (1 <= first <= last <= 4294967295)",
                        quote(t)
                    ),
                );
                None
            }
        }
    }

    fn realserver(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<RealServerPart> {
        let f = self.map(
            node,
            path,
            "a mapping (the realserver: section)",
            REALSERVER_KEYS,
        )?;
        let mut ok = true;
        let vips = match f.get("vips") {
            Some(n) => {
                let p = f.p("vips");
                let mut set = BTreeSet::new();
                match self.seq(n, &p, "a list of addresses") {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let ip = p.index(i);
                            match self.unicast(item, &ip, "VIP") {
                                Some(a) => {
                                    if !set.insert(a) {
                                        self.err(item.pos, ip, format!("{a} is listed twice"));
                                    }
                                }
                                None => ok = false,
                            }
                        }
                    }
                    None => ok = false,
                }
                Some(set)
            }
            None => None,
        };
        let interface = match f.get("interface") {
            Some(n) => self.ifname(n, &f.p("interface")),
            None => Some("lo".to_owned()),
        };
        let arp = match f.get("arp") {
            Some(n) => self.bool(n, &f.p("arp")),
            None => Some(true),
        };
        let (Some(interface), Some(arp), true) = (interface, arp, ok) else {
            return None;
        };
        Some(RealServerPart {
            vips,
            interface,
            arp,
            location: self.loc(f.pos),
        })
    }

    // ------------------------------------------------------------------------------------------

    fn service(
        &mut self,
        node: &Node<'_>,
        index: usize,
        path: &FieldPath<'_>,
    ) -> Option<ParsedService> {
        let f = self.map(node, path, "a service mapping", SERVICE_KEYS)?;
        let name = self.service_name(&f);
        let name_loc = self.loc(f.get("name").map_or(f.pos, |n| n.pos));

        let (key, key_node, key_field) = if let Some(n) = f.get("fwmark") {
            for k in ["protocol", "vip", "port"] {
                if f.has(k) {
                    self.err(
                        f.key_pos(k),
                        f.p(k),
                        format!(
                            "{k} is not used by a fwmark service; it receives whatever the MARK \
                             rules mark (put vip, protocol and ports under match)"
                        ),
                    );
                }
            }
            let mark = self.fwmark(n, &f.p("fwmark")).and_then(Fwmark::new);
            let family = match f.get("family") {
                Some(x) => self.family(x, &f.p("family")),
                None => Some(Family::Inet),
            };
            let key = match (mark, family) {
                (Some(mark), Some(family)) => Some(ServiceKey::Fwmark { mark, family }),
                _ => None,
            };
            (key, n, "fwmark")
        } else {
            for k in ["family", "match"] {
                if f.has(k) {
                    let msg = if k == "match" {
                        "match is only for fwmark services; add fwmark: N to group ports with \
                         MARK rules"
                    } else {
                        "family is only for fwmark services (an address service takes its \
                         vip's family)"
                    };
                    self.err(f.key_pos(k), f.p(k), msg);
                }
            }
            let protocol = match f.get("protocol") {
                Some(n) => self.protocol(n, &f.p("protocol")),
                None => Some(Protocol::Tcp),
            };
            let vip_node = f.get("vip");
            let vip = match vip_node {
                Some(n) => self.unicast(n, &f.p("vip"), "VIP"),
                None => {
                    self.missing(&f, "vip");
                    None
                }
            };
            let port = match f.get("port") {
                Some(n) => self.u16(n, &f.p("port")),
                None => {
                    self.missing(&f, "port");
                    None
                }
            };
            let key = match (protocol, vip, port) {
                (Some(protocol), Some(vip), Some(port)) => Some(ServiceKey::Inet {
                    protocol,
                    vip,
                    port,
                }),
                _ => None,
            };
            (key, vip_node.unwrap_or(node), "vip")
        };

        let spec = self.service_spec(&f, key.as_ref());

        let mut matches = Vec::new();
        let mut match_ports = Vec::new();
        // Every match entry read: the MARK rules say which protocols the service receives.
        let mut matches_known = false;
        if let (Some(n), Some(ServiceKey::Fwmark { family, .. })) = (f.get("match"), key) {
            let p = f.p("match");
            if let Some(items) = self.seq(n, &p, "a list of match entries") {
                for (i, item) in items.iter().enumerate() {
                    if let Some((m, ports)) = self.match_entry(item, i, &p.index(i), family) {
                        matches.push(m);
                        match_ports.push(ports);
                    }
                }
                matches_known = !items.is_empty() && matches.len() == items.len();
            }
        }
        let udp_ok = match (&key, &spec) {
            (Some(ServiceKey::Inet { protocol, .. }), Some(spec)) => {
                self.udp_only(&f, spec, &[*protocol], false)
            }
            (Some(ServiceKey::Fwmark { .. }), Some(spec)) if matches_known => {
                let mut marked: Vec<Protocol> = matches.iter().map(|m| m.protocol).collect();
                marked.sort_unstable();
                marked.dedup();
                self.udp_only(&f, spec, &marked, true)
            }
            _ => true,
        };

        let drain_timeout = match f.get("drain_timeout") {
            Some(n) => self
                .duration(n, &f.p("drain_timeout"))
                .and_then(|d| {
                    if d > MAX_DRAIN_TIMEOUT {
                        self.err(
                            n.pos,
                            f.p("drain_timeout"),
                            format!(
                                "{} is longer than the {} limit",
                                duration::format(d),
                                duration::format(MAX_DRAIN_TIMEOUT)
                            ),
                        );
                        None
                    } else {
                        Some(d)
                    }
                })
                .unwrap_or(DEFAULT_DRAIN_TIMEOUT),
            None => DEFAULT_DRAIN_TIMEOUT,
        };

        // Health template: checked once here, applied per real server below.
        let health = match f.get("health") {
            Some(n) => {
                let p = f.p("health");
                if let Value::Scalar(s) = &n.value
                    && s.resolve() == Resolved::Bool(false)
                {
                    self.err(
                        n.pos,
                        p,
                        "health: false is only for a real server (to exempt it from its \
                         service's check); remove health: to have no check",
                    );
                    None
                } else {
                    self.health_raw(n, &p).inspect(|h| {
                        if h.kind_pos.is_none() {
                            self.err(h.pos, p, "a health check needs one of http, tcp or exec");
                        }
                        self.check_health_alone(h, &p, true);
                    })
                }
            }
            None => None,
        };

        let mut real_servers = Vec::new();
        if let Some(n) = f.get("real_servers") {
            let p = f.p("real_servers");
            if let Some(items) = self.seq(n, &p, "a list of real servers") {
                // Kept for the manifest's life: sized once (a vector grown by doubling holds
                // up to twice the space, 35 MB of 10,000 services).
                real_servers.reserve_exact(items.len());
                let mut seen = FirstSeen::new(items.len());
                let mut checks = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let ip = p.index(i);
                    let Some(rs) =
                        self.real_server(item, &ip, key.as_ref(), health.as_ref(), &mut checks)
                    else {
                        continue;
                    };
                    if let Some(first) = seen.first(&real_servers, &rs.key) {
                        self.err(
                            item.pos,
                            ip,
                            format!(
                                "real server {} is listed twice in this service (first as real_servers[{first}])",
                                rs.key
                            ),
                        );
                        continue;
                    }
                    seen.insert(rs.key, i);
                    real_servers.push(rs);
                }
                real_servers.shrink_to_fit();
            }
        }

        let sorry_server = match (f.get("sorry_server"), key.as_ref()) {
            (Some(n), Some(k)) => {
                let s = self.sorry_server(n, &f.p("sorry_server"), k);
                if let Some(s) = &s
                    && real_servers.iter().any(|r| r.key == s.key)
                {
                    self.err(
                        n.pos,
                        f.p("sorry_server"),
                        format!("{} is also a real server of this service", s.key),
                    );
                }
                s
            }
            _ => None,
        };

        let (key, spec, name) = (key?, spec?, name?);
        if !udp_ok {
            return None;
        }
        Some(ParsedService {
            def: ServiceDef {
                name,
                key,
                spec,
                matches,
                real_servers,
                drain_timeout,
                sorry_server,
                location: self.loc(f.pos),
            },
            index,
            name_loc,
            key_loc: self.loc(key_node.pos),
            key_field,
            match_ports,
        })
    }

    fn service_name(&mut self, f: &Fields<'_>) -> Option<String> {
        let p = f.p("name");
        let Some(n) = f.get("name") else {
            self.missing(f, "name");
            return None;
        };
        let t = self.string(n, &p)?;
        let valid = !t.is_empty()
            && t.len() <= MAX_NAME_LEN
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            self.err(
                n.pos,
                p,
                format!(
                    "{} is not a valid service name (1..={MAX_NAME_LEN} characters of a-z, 0-9 and -)",
                    quote(t)
                ),
            );
            return None;
        }
        Some(t.to_owned())
    }

    /// Scheduler, flags, one-packet and persistence.
    fn service_spec(&mut self, f: &Fields<'_>, key: Option<&ServiceKey>) -> Option<ServiceSpec> {
        let mut ok = true;
        let scheduler = match f.get("scheduler") {
            Some(n) => {
                let p = f.p("scheduler");
                match self.string(n, &p) {
                    Some(t) => match Scheduler::known(t) {
                        Some(s) => Some(s),
                        None => {
                            let near = nearest(t, Scheduler::KNOWN)
                                .map(|c| format!("did you mean {c:?}? "))
                                .unwrap_or_default();
                            self.err(
                                n.pos,
                                p,
                                format!(
                                    "unknown scheduler {} ({near}kernel schedulers: {})",
                                    quote(t),
                                    Scheduler::KNOWN.join(" ")
                                ),
                            );
                            None
                        }
                    },
                    None => None,
                }
            }
            None => Some(DEFAULT_SCHEDULER),
        };

        let mut flags = ServiceFlags::default();
        if let Some(n) = f.get("flags") {
            let p = f.p("flags");
            if let Some(items) = self.seq(n, &p, "a list of scheduler flags") {
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let ip = p.index(i);
                    let Some(t) = self.string(item, &ip) else {
                        ok = false;
                        continue;
                    };
                    const FLAGS: &[&str] = &[
                        "sh-fallback",
                        "sh-port",
                        "mh-fallback",
                        "mh-port",
                        "flag-1",
                        "flag-2",
                        "flag-3",
                    ];
                    let (bit, needs) = match t {
                        "sh-fallback" => (1, Some(Scheduler::Sh)),
                        "sh-port" => (2, Some(Scheduler::Sh)),
                        "mh-fallback" => (1, Some(Scheduler::Mh)),
                        "mh-port" => (2, Some(Scheduler::Mh)),
                        "flag-1" => (1, None),
                        "flag-2" => (2, None),
                        "flag-3" => (3, None),
                        other => {
                            let h = hint(other, FLAGS);
                            self.err(item.pos, ip, format!("unknown flag {}{h}", quote(other)));
                            ok = false;
                            continue;
                        }
                    };
                    if let (Some(need), Some(have)) = (&needs, &scheduler)
                        && need != have
                    {
                        self.err(
                            item.pos,
                            ip,
                            format!(
                                "{t} is a flag of the {need} scheduler, but this service uses {have}"
                            ),
                        );
                        ok = false;
                        continue;
                    }
                    if !seen.insert(bit) {
                        self.err(
                            item.pos,
                            ip,
                            format!("{t} sets a flag already set by an earlier entry"),
                        );
                        ok = false;
                        continue;
                    }
                    match bit {
                        1 => flags.sched1 = true,
                        2 => flags.sched2 = true,
                        _ => flags.sched3 = true,
                    }
                }
            } else {
                ok = false;
            }
        }

        // Whether the service receives UDP at all is checked once its match rules are read
        // (`udp_only`).
        if let Some(n) = f.get("one_packet") {
            match self.bool(n, &f.p("one_packet")) {
                Some(on) => flags.one_packet = on,
                None => ok = false,
            }
        }

        let family = key.map(ServiceKey::family).or_else(|| guess_family(f));
        let persistence = match (f.get("persistence"), family) {
            (Some(n), Some(family)) => match self.persistence(n, &f.p("persistence"), family) {
                Some(p) => Some(p),
                None => {
                    ok = false;
                    None
                }
            },
            (Some(_), None) => None,
            (None, _) => {
                if let Some(ServiceKey::Inet { port: 0, .. }) = key
                    && !f.written("persistence")
                {
                    let n = f.get("port");
                    self.err(
                        n.map_or(f.pos, |n| n.pos),
                        f.p("port"),
                        "port 0 (every port) needs persistence; add e.g. persistence: 360",
                    );
                    ok = false;
                }
                None
            }
        };
        let pe_name = persistence.as_ref().and_then(|(_, e)| e.clone());
        let persistence = persistence.map(|(p, _)| p);
        match (ok, scheduler) {
            (true, Some(scheduler)) => Some(ServiceSpec {
                scheduler,
                flags,
                persistence,
                pe_name,
            }),
            _ => None,
        }
    }

    /// One-packet scheduling and the sip persistence engine act on UDP only: the kernel
    /// ignores the one-packet flag for other packets, and the sip engine fails on them
    /// (`ip_vs_sip_fill_param`: -EINVAL), so IPVS drops every one. `protocols` is what the
    /// service receives: its protocol, or (`marked`) what its MARK rules mark.
    fn udp_only(
        &mut self,
        f: &Fields<'_>,
        spec: &ServiceSpec,
        protocols: &[Protocol],
        marked: bool,
    ) -> bool {
        // One-packet scheduling is harmless beside other protocols (it acts on the UDP part);
        // the sip engine is not: it fails on, and so drops, every packet that is not UDP.
        let other: Vec<String> = protocols
            .iter()
            .filter(|p| **p != Protocol::Udp)
            .map(ToString::to_string)
            .collect();
        if other.is_empty() {
            return true;
        }
        let has_udp = other.len() < protocols.len();
        let names = other.join(" and ");
        let mut ok = true;
        if spec.flags.one_packet
            && !has_udp
            && let Some(n) = f.get("one_packet")
        {
            let msg = if marked {
                format!(
                    "one-packet scheduling applies to udp only, and this service's match rules \
                     mark only {names} (remove one_packet, or mark udp)"
                )
            } else {
                format!("one-packet scheduling is only for udp or fwmark services, not {names}")
            };
            self.err(n.pos, f.p("one_packet"), msg);
            ok = false;
        }
        if spec.pe_name.as_deref() == Some("sip") {
            let p = f.p("persistence");
            let pos = match f.get("persistence").map(|n| &n.value) {
                Some(Value::Map(entries)) => entries
                    .iter()
                    .find(|(k, _)| k.text == "engine")
                    .map_or(f.pos, |(_, v)| v.pos),
                _ => f.pos,
            };
            let msg = if marked && has_udp {
                format!(
                    "the sip engine needs udp only, but this service's match rules also mark \
                     {names}: the kernel's sip engine fails on every {names} packet and IPVS \
                     drops it (give the {names} traffic a service of its own, or remove engine)"
                )
            } else if marked {
                format!(
                    "the sip engine needs udp, but this service's match rules mark only {names}: \
                     the kernel's sip engine fails on every such packet and IPVS drops it (mark \
                     udp, or remove engine)"
                )
            } else {
                format!(
                    "the sip engine needs protocol: udp, not {names}: the kernel's sip engine \
                     fails on every {names} packet and IPVS drops it (use protocol: udp, or \
                     remove engine)"
                )
            };
            self.err(pos, p.key("engine"), msg);
            ok = false;
        }
        ok
    }

    /// `120`, `2m`, or `{timeout, netmask, engine}`. Returns the persistence and the engine.
    fn persistence(
        &mut self,
        node: &Node<'_>,
        path: &FieldPath<'_>,
        family: Family,
    ) -> Option<(Persistence, Option<String>)> {
        let timeout_of = |r: &mut Self, n: &Node<'_>, p: &FieldPath<'_>| -> Option<u32> {
            if let Value::Scalar(s) = &n.value
                && s.resolve() == Resolved::Int(Some(0))
            {
                r.err(
                    n.pos,
                    p,
                    format!(
                        "0 is out of range 1..={} seconds (remove persistence to turn it off)",
                        Persistence::MAX_TIMEOUT
                    ),
                );
                return None;
            }
            r.seconds(n, p, 1, u64::from(Persistence::MAX_TIMEOUT))
                .and_then(|s| u32::try_from(s).ok())
        };
        if !matches!(node.value, Value::Map(_)) {
            let timeout = timeout_of(self, node, path)?;
            return Some((
                Persistence {
                    timeout,
                    netmask: family.max_prefix(),
                },
                None,
            ));
        }
        let f = self.map(node, path, "a mapping", PERSISTENCE_KEYS)?;
        let timeout = match f.get("timeout") {
            Some(n) => timeout_of(self, n, &f.p("timeout")),
            None => Some(Persistence::DEFAULT_TIMEOUT),
        };
        let netmask = match f.get("netmask") {
            Some(n) => self.netmask(n, &f.p("netmask"), family),
            None => Some(family.max_prefix()),
        };
        let engine = match f.get("engine") {
            Some(n) => {
                let p = f.p("engine");
                match self.string(n, &p) {
                    Some("sip") => Some(Some("sip".to_owned())),
                    Some(t) => {
                        self.err(
                            n.pos,
                            p,
                            format!(
                                "unknown persistence engine {} (the kernel has only \"sip\")",
                                quote(t)
                            ),
                        );
                        None
                    }
                    None => None,
                }
            }
            None => Some(None),
        };
        Some((
            Persistence {
                timeout: timeout?,
                netmask: netmask?,
            },
            engine?,
        ))
    }

    /// An IPv4 mask (`255.255.255.0`) or a prefix length; IPv6 takes a prefix length 1..=128.
    fn netmask(&mut self, node: &Node<'_>, path: &FieldPath<'_>, family: Family) -> Option<u8> {
        if let Value::Scalar(s) = &node.value
            && let Resolved::Int(_) = s.resolve()
        {
            let lo = if family == Family::Inet6 { 1 } else { 0 };
            let hi = i128::from(family.max_prefix());
            return self
                .int(node, path, lo, hi)
                .and_then(|v| u8::try_from(v).ok());
        }
        let t = self.string(node, path)?;
        let t = t.strip_prefix('/').unwrap_or(t);
        if let Ok(v) = t.parse::<u8>() {
            let lo = if family == Family::Inet6 { 1 } else { 0 };
            if (lo..=family.max_prefix()).contains(&v) {
                return Some(v);
            }
            self.err(
                node.pos,
                path,
                format!("/{v} is out of range {lo}..={}", family.max_prefix()),
            );
            return None;
        }
        match t.parse::<Ipv4Addr>() {
            Ok(mask) if family == Family::Inet => {
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    self.err(
                        node.pos,
                        path,
                        format!(
                            "{mask} is not a contiguous netmask (ones then zeros, e.g. 255.255.255.0)"
                        ),
                    );
                    return None;
                }
                u8::try_from(bits.leading_ones()).ok()
            }
            Ok(_) => {
                self.err(
                    node.pos,
                    path,
                    "an IPv6 service takes a prefix length (1..=128) as netmask, e.g. 64",
                );
                None
            }
            Err(_) => {
                self.err(
                    node.pos,
                    path,
                    format!(
                        "{} is not a netmask (write e.g. 255.255.255.0 or a prefix length such as 24)",
                        quote(t)
                    ),
                );
                None
            }
        }
    }

    fn match_entry(
        &mut self,
        node: &Node<'_>,
        entry: usize,
        path: &FieldPath<'_>,
        family: Family,
    ) -> Option<(MatchDef, Vec<PortAt>)> {
        let f = self.map(
            node,
            path,
            "a match mapping such as {vip: 192.168.6.101, protocol: tcp, ports: [80, 22]}",
            MATCH_KEYS,
        )?;
        let vip = match f.get("vip") {
            Some(n) => {
                let p = f.p("vip");
                self.unicast(n, &p, "VIP").and_then(|a| {
                    if Family::of(&a) == family {
                        Some(a)
                    } else {
                        self.err(
                            n.pos,
                            p,
                            format!(
                                "{a} is {} but the service's family is {family} (set family: {} on the service)",
                                Family::of(&a),
                                Family::of(&a)
                            ),
                        );
                        None
                    }
                })
            }
            None => {
                self.missing(&f, "vip");
                None
            }
        };
        let protocol = match f.get("protocol") {
            Some(n) => self.protocol(n, &f.p("protocol")),
            None => Some(Protocol::Tcp),
        };
        let mut ports: Vec<PortAt> = Vec::new();
        let mut ok = true;
        // Each port node with its index in `ports:` (`None`: the single `port:`).
        let port_nodes: Vec<(&Node<'_>, Option<usize>)> = match (f.get("ports"), f.get("port")) {
            (Some(_), Some(_)) => {
                self.err(
                    f.key_pos("port"),
                    f.p("port"),
                    "use either port or ports, not both",
                );
                ok = false;
                Vec::new()
            }
            (Some(n), None) => {
                let p = f.p("ports");
                match self.seq(n, &p, "a list of ports") {
                    Some([]) => {
                        self.err(n.pos, p, "needs at least one port");
                        ok = false;
                        Vec::new()
                    }
                    Some(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| (item, Some(i)))
                        .collect(),
                    None => {
                        ok = false;
                        Vec::new()
                    }
                }
            }
            (None, Some(n)) => vec![(n, None)],
            (None, None) => {
                // An empty `port:` was reported as such.
                if !f.written("port") {
                    self.missing(&f, "ports");
                }
                ok = false;
                Vec::new()
            }
        };
        let (ports_path, port_path) = (f.p("ports"), f.p("port"));
        for (n, index) in port_nodes {
            let p = match index {
                Some(i) => ports_path.index(i),
                None => port_path,
            };
            let Some(v) = self.int(n, &p, 1, i128::from(u16::MAX)) else {
                ok = false;
                continue;
            };
            let v = u16::try_from(v).unwrap_or(0);
            if let Some(first) = ports.iter().find(|x| x.port == v) {
                let msg = format!(
                    "port {v} is listed twice (first at line {}, column {})",
                    first.loc.line, first.loc.column
                );
                self.err(n.pos, p, msg);
                ok = false;
            } else {
                ports.push(PortAt {
                    port: v,
                    loc: self.loc(n.pos),
                    entry,
                    index,
                });
            }
        }
        let (Some(vip), Some(protocol), true) = (vip, protocol, ok) else {
            return None;
        };
        let mut sorted: Vec<u16> = ports.iter().map(|p| p.port).collect();
        sorted.sort_unstable();
        Some((
            MatchDef {
                vip,
                protocol,
                ports: sorted,
                location: self.loc(f.pos),
            },
            ports,
        ))
    }

    fn forward(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<&'static str> {
        let t = self.string(node, path)?;
        match t {
            "dr" => Some("dr"),
            "nat" => Some("nat"),
            "tunnel" => Some("tunnel"),
            other => {
                let extra = match other {
                    "gate" | "route" | "droute" | "direct" => " (did you mean \"dr\"?)".to_owned(),
                    "masq" | "masquerade" => " (did you mean \"nat\"?)".to_owned(),
                    "ipip" | "tun" => " (did you mean \"tunnel\"?)".to_owned(),
                    _ => hint(other, &["dr", "nat", "tunnel"]),
                };
                self.err(
                    node.pos,
                    path,
                    format!("unknown forwarding method {}{extra}", quote(other)),
                );
                None
            }
        }
    }

    fn tunnel(
        &mut self,
        node: &Node<'_>,
        path: &FieldPath<'_>,
    ) -> Option<(TunnelType, TunnelFlags)> {
        let f = self.map(
            node,
            path,
            "a mapping such as {type: gue, port: 6080}",
            TUNNEL_KEYS,
        )?;
        let ty = match f.get("type") {
            Some(n) => {
                let p = f.p("type");
                match self.string(n, &p) {
                    Some(t @ ("ipip" | "gue" | "gre")) => Some(t),
                    Some(t) => {
                        let h = hint(t, &["ipip", "gue", "gre"]);
                        self.err(n.pos, p, format!("unknown tunnel type {}{h}", quote(t)));
                        None
                    }
                    None => None,
                }
            }
            None => Some("ipip"),
        }?;
        let port = match f.get("port") {
            Some(n) => {
                let p = f.p("port");
                if ty != "gue" {
                    self.err(
                        f.key_pos("port"),
                        p,
                        format!("port is only used by gue tunnels, not {ty}"),
                    );
                    return None;
                }
                let v = self.u16(n, &p)?;
                if v == 0 {
                    self.err(
                        n.pos,
                        p,
                        "a gue tunnel needs a port 1..=65535 (the kernel refuses 0)",
                    );
                    return None;
                }
                Some(v)
            }
            None => None,
        };
        let mut flags = TunnelFlags::default();
        for key in ["csum", "remcsum"] {
            if let Some(n) = f.get(key) {
                let on = self.bool(n, &f.p(key))?;
                if key == "csum" {
                    flags.csum = on;
                } else {
                    flags.remcsum = on;
                }
            }
        }
        if ty == "ipip" && (flags.csum || flags.remcsum) {
            let key = if flags.csum { "csum" } else { "remcsum" };
            self.err(
                f.key_pos(key),
                f.p(key),
                "ipip tunnels have no checksum options (use gue or gre)",
            );
            return None;
        }
        if ty == "gre" && flags.remcsum {
            self.err(
                f.key_pos("remcsum"),
                f.p("remcsum"),
                "remcsum is only for gue tunnels",
            );
            return None;
        }
        if flags.csum && flags.remcsum {
            self.err(
                f.key_pos("remcsum"),
                f.p("remcsum"),
                "csum and remcsum exclude each other; pick one",
            );
            return None;
        }
        let tunnel = match ty {
            "gue" => match port {
                Some(port) => TunnelType::Gue { port },
                None => {
                    self.missing(&f, "port");
                    return None;
                }
            },
            "gre" => TunnelType::Gre,
            _ => TunnelType::Ipip,
        };
        Some((tunnel, flags))
    }

    fn real_server(
        &mut self,
        node: &Node<'_>,
        path: &FieldPath<'_>,
        service: Option<&ServiceKey>,
        health: Option<&HealthRaw>,
        checks: &mut HashSet<Arc<HealthCheck>>,
    ) -> Option<RealServerDef> {
        // `- 192.168.60.101` is a common shorthand worth a precise hint.
        if let Value::Scalar(s) = &node.value
            && let Resolved::Str(t) = s.resolve()
            && t.parse::<IpAddr>().is_ok()
        {
            self.err(
                node.pos,
                path,
                format!(
                    "expected a real server mapping, found string {}; write {{address: {t}}}",
                    quote(t)
                ),
            );
            return None;
        }
        let f = self.map(node, path, "a real server mapping", RS_KEYS)?;
        let address = match f.get("address") {
            Some(n) => self.dest_addr(n, &f.p("address"), "real server"),
            None => {
                self.missing(&f, "address");
                None
            }
        };
        let forward_name = match f.get("forward") {
            Some(n) => self.forward(n, &f.p("forward")),
            None => Some("dr"),
        };
        let tunnel = match f.get("tunnel") {
            Some(n) => {
                if forward_name.is_some_and(|fw| fw != "tunnel") {
                    self.err(
                        f.key_pos("tunnel"),
                        f.p("tunnel"),
                        format!(
                            "tunnel settings need forward: tunnel (this real server uses {})",
                            forward_name.unwrap_or("dr")
                        ),
                    );
                    None
                } else {
                    self.tunnel(n, &f.p("tunnel")).map(Some)
                }
            }
            None => Some(None),
        };
        let forward = match (forward_name, tunnel) {
            (Some("nat"), _) => Some(Forward::Nat),
            (Some("tunnel"), Some(t)) => {
                let (tunnel, flags) = t.unwrap_or((TunnelType::Ipip, TunnelFlags::default()));
                Some(Forward::Tunnel { tunnel, flags })
            }
            (Some("dr"), _) => Some(Forward::Dr),
            _ => None,
        };
        let default_port = service.map(super::service_port);
        let port_node = f.get("port");
        let port = match port_node {
            Some(n) => self.u16(n, &f.p("port")),
            None => default_port,
        };
        let weight = match f.get("weight") {
            Some(n) => self.u32_in(n, &f.p("weight"), 0, u32::from(u16::MAX)),
            None => Some(1),
        };
        let thresh_max = u32::try_from(i32::MAX).unwrap_or(u32::MAX);
        let upper = match f.get("upper_threshold") {
            Some(n) => self.u32_in(n, &f.p("upper_threshold"), 0, thresh_max),
            None => Some(0),
        };
        let lower = match f.get("lower_threshold") {
            Some(n) => self
                .u32_in(n, &f.p("lower_threshold"), 0, thresh_max)
                .and_then(|l| match upper {
                    Some(u) if l > u => {
                        let why = if u == 0 {
                            "upper_threshold is 0 (no limit); set upper_threshold too".to_owned()
                        } else {
                            format!("it must not exceed upper_threshold {u}")
                        };
                        self.err(
                            n.pos,
                            f.p("lower_threshold"),
                            format!("lower_threshold {l} is above the upper threshold: {why}"),
                        );
                        None
                    }
                    _ => Some(l),
                }),
            None => Some(0),
        };

        // Rules that tie the real server to its service.
        let mut ok = true;
        if let (Some(svc), Some(addr), Some(fw)) = (service, address, &forward) {
            if Family::of(&addr) != svc.family() && !matches!(fw, Forward::Tunnel { .. }) {
                self.err(
                    f.get("address").map_or(f.pos, |n| n.pos),
                    f.p("address"),
                    format!(
                        "{addr} is {} but the service is {}; only tunnel real servers may be of the other family",
                        Family::of(&addr),
                        svc.family()
                    ),
                );
                ok = false;
            }
            if let (Some(p), Some(n)) = (port, port_node)
                && super::port_must_match(svc, fw)
                && Some(p) != default_port
            {
                self.err(
                    n.pos,
                    f.p("port"),
                    format!(
                        "port {p} differs from the service port {}: {} real servers get packets unchanged, \
                         so the kernel can't use another port (use forward: nat, or drop port)",
                        super::service_port(svc),
                        fw.name()
                    ),
                );
                ok = false;
            }
        }

        let check = match f.get("health") {
            Some(n) => {
                let p = f.p("health");
                if let Value::Scalar(s) = &n.value
                    && s.resolve() == Resolved::Bool(false)
                {
                    Some(None)
                } else {
                    match self.health_raw(n, &p) {
                        Some(own) => {
                            let merged = match health {
                                Some(base) => base.overlay(&own),
                                None => own.clone(),
                            };
                            // Timing is re-checked only when this block changes it; otherwise
                            // the service level already reported it.
                            let ok_alone = self.check_health_alone(&merged, &p, own.sets_timing());
                            if merged.kind.is_none() && merged.kind_pos.is_none() {
                                self.err(
                                    own.pos,
                                    p,
                                    "a health check needs one of http, tcp or exec (the service has none to inherit)",
                                );
                                None
                            } else if ok_alone && merged.kind.is_some() {
                                port.map(|port| self.resolve_health(&merged, port, &p, own.pos))
                            } else {
                                None
                            }
                        }
                        None => None,
                    }
                }
            }
            None => match health {
                Some(base) if base.kind.is_some() && base.valid => {
                    port.map(|port| self.resolve_health(base, port, path, f.pos))
                }
                Some(_) => Some(None),
                None => Some(None),
            },
        };

        let (Some(addr), Some(port), Some(forward), Some(weight), Some(upper), Some(lower)) =
            (address, port, forward, weight, upper, lower)
        else {
            return None;
        };
        let health = check?.map(|h| share_check(checks, h));
        if !ok {
            return None;
        }
        Some(RealServerDef {
            key: DestKey { addr, port },
            spec: DestSpec {
                forward,
                weight,
                upper_threshold: upper,
                lower_threshold: lower,
            },
            health,
            location: self.loc(f.pos),
        })
    }

    fn sorry_server(
        &mut self,
        node: &Node<'_>,
        path: &FieldPath<'_>,
        svc: &ServiceKey,
    ) -> Option<SorryServer> {
        let default_port = super::service_port(svc);
        let (addr, port, forward, addr_pos, port_pos) = match &node.value {
            Value::Map(_) => {
                let f = self.map(node, path, "a mapping", SORRY_KEYS)?;
                let addr_node = f.get("address");
                let addr = match addr_node {
                    Some(n) => self.dest_addr(n, &f.p("address"), "sorry server")?,
                    None => {
                        self.missing(&f, "address");
                        return None;
                    }
                };
                let port = match f.get("port") {
                    Some(n) => Some((self.u16(n, &f.p("port"))?, n.pos)),
                    None => None,
                };
                let forward = match f.get("forward") {
                    Some(n) => match self.forward(n, &f.p("forward"))? {
                        "nat" => Forward::Nat,
                        "tunnel" => Forward::Tunnel {
                            tunnel: TunnelType::Ipip,
                            flags: TunnelFlags::default(),
                        },
                        _ => Forward::Dr,
                    },
                    None => Forward::Dr,
                };
                let apos = addr_node.map_or(f.pos, |n| n.pos);
                (addr, port.map(|p| p.0), forward, apos, port.map(|p| p.1))
            }
            _ => {
                let t = self.string(node, path)?;
                let parsed = t
                    .parse::<std::net::SocketAddr>()
                    .map(|sa| (sa.ip(), Some(sa.port())))
                    .or_else(|_| t.parse::<IpAddr>().map(|a| (a, None)));
                let Ok((addr, port)) = parsed else {
                    self.err(
                        node.pos,
                        path,
                        format!("{} is not ADDRESS, ADDRESS:PORT or [IPV6]:PORT", quote(t)),
                    );
                    return None;
                };
                (addr, port, Forward::Dr, node.pos, port.map(|_| node.pos))
            }
        };
        if Family::of(&addr) != svc.family() && !matches!(forward, Forward::Tunnel { .. }) {
            self.err(
                addr_pos,
                path,
                format!(
                    "{addr} is {} but the service is {}",
                    Family::of(&addr),
                    svc.family()
                ),
            );
            return None;
        }
        let port = port.unwrap_or(default_port);
        if super::port_must_match(svc, &forward) && port != default_port {
            self.err(
                port_pos.unwrap_or(addr_pos),
                path,
                format!(
                    "port {port} differs from the service port {default_port}: a {} sorry server \
                     gets packets unchanged (use {{address, port, forward: nat}})",
                    forward.name()
                ),
            );
            return None;
        }
        Some(SorryServer {
            key: DestKey { addr, port },
            spec: DestSpec {
                forward,
                ..DestSpec::default()
            },
            location: self.loc(node.pos),
        })
    }

    // ------------------------------------------------------------------------------------------

    fn health_raw(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<HealthRaw> {
        let f = self.map(
            node,
            path,
            "a health check mapping such as {http: {path: /.health.html, expect: OK}}",
            HEALTH_KEYS,
        )?;
        let mut h = HealthRaw {
            pos: f.pos,
            valid: true,
            ..HealthRaw::default()
        };
        let kinds: Vec<&str> = ["http", "tcp", "exec"]
            .into_iter()
            .filter(|k| f.entries.iter().any(|(key, _)| key.text == *k))
            .collect();
        if kinds.len() > 1 {
            self.err(
                f.key_pos(kinds[1]),
                f.p(kinds[1]),
                format!(
                    "a health check is one of http, tcp or exec; this one has {}",
                    kinds.join(" and ")
                ),
            );
            h.valid = false;
        }
        if let Some(kind) = kinds.first() {
            // `tcp:` with nothing after it is a tcp check on the real server's port.
            let n = f
                .entries
                .iter()
                .find(|(k, _)| k.text == *kind)
                .map(|(_, v)| v);
            let p = f.p(kind);
            h.kind = match (*kind, n) {
                ("tcp", Some(n)) if n.is_null() => Some(CheckRaw::Tcp { port: None }),
                ("http", Some(n)) if n.is_null() => Some(CheckRaw::Http(HttpRaw::default())),
                (_, Some(n)) => self.check_raw(kind, n, &p),
                (_, None) => None,
            };
            h.kind_pos = n.map(|n| n.pos);
            if h.kind.is_none() {
                h.valid = false;
            }
        }
        for (key, slot) in [("interval", &mut h.interval), ("timeout", &mut h.timeout)] {
            if let Some(n) = f.get(key) {
                match self.duration(n, &f.p(key)) {
                    Some(d) => *slot = Some((d, n.pos)),
                    None => h.valid = false,
                }
            }
        }
        for (key, slot) in [("rise", &mut h.rise), ("fall", &mut h.fall)] {
            if let Some(n) = f.get(key) {
                match self.int(n, &f.p(key), 1, MAX_RISE_FALL) {
                    Some(v) => *slot = u32::try_from(v).ok(),
                    None => h.valid = false,
                }
            }
        }
        if let Some(n) = f.get("on_failure") {
            let p = f.p("on_failure");
            match self.string(n, &p) {
                Some("remove") => h.on_failure = Some(OnFailure::Remove),
                Some("quiesce") => h.on_failure = Some(OnFailure::Quiesce),
                Some(t) => {
                    let hnt = hint(t, &["remove", "quiesce"]);
                    self.err(n.pos, p, format!("unknown on_failure {}{hnt}", quote(t)));
                    h.valid = false;
                }
                None => h.valid = false,
            }
        }
        Some(h)
    }

    fn check_raw(&mut self, kind: &str, node: &Node<'_>, path: &FieldPath<'_>) -> Option<CheckRaw> {
        match kind {
            "tcp" => {
                let f = self.map(node, path, "a mapping such as {port: 22}", TCP_KEYS)?;
                let port = match f.get("port") {
                    Some(n) => Some((self.check_port(n, &f.p("port"))?, n.pos)),
                    None => None,
                };
                Some(CheckRaw::Tcp { port })
            }
            "exec" => {
                let f = self.map(
                    node,
                    path,
                    "a mapping such as {command: [/usr/lib/lvsctl/check, --fast]}",
                    EXEC_KEYS,
                )?;
                let p = f.p("command");
                let Some(n) = f.get("command") else {
                    self.missing(&f, "command");
                    return None;
                };
                if let Value::Scalar(_) = n.value {
                    self.err(
                        n.pos,
                        p,
                        format!(
                            "expected a list of arguments, found {}; exec checks never run a shell, \
                             write [\"/path/to/program\", \"arg\"]",
                            n.describe()
                        ),
                    );
                    return None;
                }
                let items = self.seq(n, &p, "a list of arguments")?;
                if items.is_empty() {
                    self.err(n.pos, p, "needs at least the program to run");
                    return None;
                }
                let mut argv = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    let ip = p.index(i);
                    match self.string(item, &ip) {
                        Some(t) if t.contains('\0') => {
                            self.err(item.pos, ip, "contains a NUL byte");
                            ok = false;
                        }
                        Some("") if i == 0 => {
                            self.err(item.pos, ip, "the program name is empty");
                            ok = false;
                        }
                        Some(t) => argv.push(t.to_owned()),
                        None => ok = false,
                    }
                }
                ok.then_some(CheckRaw::Exec { command: argv })
            }
            _ => {
                let f = self.map(
                    node,
                    path,
                    "a mapping such as {path: /.health.html, expect: OK}",
                    HTTP_KEYS,
                )?;
                let mut h = HttpRaw::default();
                let mut ok = true;
                if let Some(n) = f.get("port") {
                    match self.check_port(n, &f.p("port")) {
                        Some(v) => h.port = Some((v, n.pos)),
                        None => ok = false,
                    }
                }
                if let Some(n) = f.get("path") {
                    let p = f.p("path");
                    match self.string(n, &p) {
                        Some(t)
                            if t.starts_with('/')
                                && !t.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                        {
                            h.path = Some(t.to_owned());
                        }
                        Some(t) => {
                            self.err(
                                n.pos,
                                p,
                                format!(
                                    "{} is not a request path (it starts with / and has no spaces; \
                                     percent-encode them)",
                                    quote(t)
                                ),
                            );
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                if let Some(n) = f.get("status") {
                    match self.int(n, &f.p("status"), 100, 599) {
                        Some(v) => h.status = u16::try_from(v).ok(),
                        None => ok = false,
                    }
                }
                if let Some(n) = f.get("expect") {
                    let p = f.p("expect");
                    match self.string(n, &p) {
                        Some("") => {
                            self.err(n.pos, p, "is empty; remove expect to accept any body");
                            ok = false;
                        }
                        Some(t) => h.expect = Some(t.to_owned()),
                        None => ok = false,
                    }
                }
                if let Some(n) = f.get("host") {
                    let p = f.p("host");
                    match self.string(n, &p) {
                        Some(t)
                            if !t.is_empty()
                                && !t.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                        {
                            h.host = Some(t.to_owned());
                        }
                        Some(t) => {
                            self.err(
                                n.pos,
                                p,
                                format!("{} is not a valid Host header value", quote(t)),
                            );
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                if let Some(n) = f.get("deadline") {
                    match self.duration(n, &f.p("deadline")) {
                        Some(d) => h.deadline = Some((d, n.pos)),
                        None => ok = false,
                    }
                }
                if let Some(n) = f.get("reuse_connection") {
                    match self.bool(n, &f.p("reuse_connection")) {
                        Some(b) => h.reuse_connection = Some(b),
                        None => ok = false,
                    }
                }
                ok.then_some(CheckRaw::Http(h))
            }
        }
    }

    fn check_port(&mut self, node: &Node<'_>, path: &FieldPath<'_>) -> Option<u16> {
        let v = self.u16(node, path)?;
        if v == 0 {
            self.err(node.pos, path, "a check port must be 1..=65535");
            return None;
        }
        Some(v)
    }

    /// Checks the parts of a health block that do not depend on the real server. Reports only
    /// when `report` (so an inherited problem is reported once, where it is written).
    fn check_health_alone(&mut self, h: &HealthRaw, path: &FieldPath<'_>, report: bool) -> bool {
        let mut ok = h.valid;
        let interval = h.interval.map_or(DEFAULT_INTERVAL, |(d, _)| d);
        let timeout = h.effective_timeout();
        let mut problems: Vec<(Pos, String, String)> = Vec::new();
        if let Some((d, pos)) = h.interval
            && !(MIN_CHECK_INTERVAL..=MAX_CHECK_INTERVAL).contains(&d)
        {
            problems.push((
                pos,
                path.key("interval").to_string(),
                format!(
                    "{} is out of range {}..={}",
                    duration::format(d),
                    duration::format(MIN_CHECK_INTERVAL),
                    duration::format(MAX_CHECK_INTERVAL)
                ),
            ));
        }
        if let Some((d, pos)) = h.timeout {
            if d.is_zero() {
                problems.push((
                    pos,
                    path.key("timeout").to_string(),
                    "must be more than 0s".to_owned(),
                ));
            } else if d > interval {
                problems.push((
                    pos,
                    path.key("timeout").to_string(),
                    format!(
                        "{} is longer than the interval {}; a check must finish before the next starts",
                        duration::format(d),
                        duration::format(interval)
                    ),
                ));
            }
        }
        if let Some(CheckRaw::Http(http)) = &h.kind
            && let Some((d, pos)) = http.deadline
        {
            let http = path.key("http");
            let kp = if h.kind_pos.is_some() { &http } else { path };
            if d.is_zero() {
                problems.push((
                    pos,
                    kp.key("deadline").to_string(),
                    "must be more than 0s".to_owned(),
                ));
            } else if d > interval {
                problems.push((
                    pos,
                    kp.key("deadline").to_string(),
                    format!(
                        "{} is longer than the interval {}; a check must finish before the next starts",
                        duration::format(d),
                        duration::format(interval)
                    ),
                ));
            } else if d < timeout && h.timeout.is_some() {
                problems.push((
                    pos,
                    kp.key("deadline").to_string(),
                    format!(
                        "{} is shorter than the timeout {}; the deadline bounds the whole exchange",
                        duration::format(d),
                        duration::format(timeout)
                    ),
                ));
            }
        }
        if !problems.is_empty() {
            ok = false;
            if report {
                for (pos, p, m) in problems {
                    self.err(pos, &p, m);
                }
            }
        }
        ok
    }

    fn resolve_health(
        &mut self,
        h: &HealthRaw,
        rs_port: u16,
        path: &FieldPath<'_>,
        pos: Pos,
    ) -> Option<HealthCheck> {
        let interval = h.interval.map_or(DEFAULT_INTERVAL, |(d, _)| d);
        let timeout = h.effective_timeout();
        let need_port = |r: &mut Self, explicit: Option<(u16, Pos)>, kind: &str| -> Option<u16> {
            match explicit {
                Some((p, _)) => Some(p),
                None if rs_port != 0 => Some(rs_port),
                None => {
                    r.err(
                        pos,
                        path,
                        format!(
                            "the {kind} check needs a port: this real server's port is 0 \
                             (set health.{kind}.port)"
                        ),
                    );
                    None
                }
            }
        };
        let kind = match h.kind.as_ref()? {
            CheckRaw::Tcp { port } => CheckKind::Tcp {
                port: need_port(self, *port, "tcp")?,
            },
            CheckRaw::Exec { command } => CheckKind::Exec {
                command: command.clone(),
            },
            CheckRaw::Http(x) => CheckKind::Http(HttpCheck {
                port: need_port(self, x.port, "http")?,
                path: x.path.clone().unwrap_or_else(|| "/".to_owned()),
                status: x.status.unwrap_or(DEFAULT_HTTP_STATUS),
                expect: x.expect.clone(),
                host: x.host.clone(),
                deadline: x.deadline.map_or(timeout, |(d, _)| d),
                reuse_connection: x.reuse_connection.unwrap_or(true),
            }),
        };
        Some(HealthCheck {
            kind,
            interval,
            timeout,
            rise: h.rise.unwrap_or(DEFAULT_RISE),
            fall: h.fall.unwrap_or(DEFAULT_FALL),
            on_failure: h.on_failure.unwrap_or_default(),
        })
    }
}

/// Where each real server of a service was first listed, for "listed twice". A service has a
/// handful of real servers: scanning them beats a map, which is kept for long lists only.
enum FirstSeen {
    /// The list index of each real server kept so far, in order, and how many were kept.
    Few([u8; FirstSeen::FEW], usize),
    Many(BTreeMap<DestKey, usize>),
}

impl FirstSeen {
    const FEW: usize = 32;

    fn new(len: usize) -> FirstSeen {
        if len <= Self::FEW {
            FirstSeen::Few([0; Self::FEW], 0)
        } else {
            FirstSeen::Many(BTreeMap::new())
        }
    }

    /// The list index of the real server with `key`, if one was kept; `kept` are the real
    /// servers kept so far, in the order they were inserted here.
    fn first(&self, kept: &[RealServerDef], key: &DestKey) -> Option<usize> {
        match self {
            FirstSeen::Few(indexes, _) => kept
                .iter()
                .position(|r| r.key == *key)
                .and_then(|j| indexes.get(j).map(|&i| usize::from(i))),
            FirstSeen::Many(map) => map.get(key).copied(),
        }
    }

    fn insert(&mut self, key: DestKey, index: usize) {
        match self {
            FirstSeen::Few(indexes, len) => {
                // At most `FEW` real servers are listed, so at most `FEW` are kept.
                if let (Some(slot), Ok(index)) = (indexes.get_mut(*len), u8::try_from(index)) {
                    *slot = index;
                    *len += 1;
                }
            }
            FirstSeen::Many(map) => {
                map.insert(key, index);
            }
        }
    }
}

/// The service's real servers mostly resolve to the same check (or one per real-server port):
/// `h` is returned as the equal check already in `checks`, or added to it.
fn share_check(checks: &mut HashSet<Arc<HealthCheck>>, h: HealthCheck) -> Arc<HealthCheck> {
    if let Some(c) = checks.get(&h) {
        return Arc::clone(c);
    }
    let c = Arc::new(h);
    checks.insert(Arc::clone(&c));
    c
}

/// The family of a service whose identity did not read, so persistence can still be checked:
/// the `family:` of a fwmark service, or what the vip text looks like.
fn guess_family(f: &Fields<'_>) -> Option<Family> {
    let text = |key: &str| match f.get(key).map(|n| &n.value) {
        Some(Value::Scalar(s)) => Some(s.text.clone()),
        _ => None,
    };
    if f.has("fwmark") {
        return Some(match text("family").as_deref() {
            Some("ipv6") => Family::Inet6,
            _ => Family::Inet,
        });
    }
    text("vip").map(|v| {
        if v.contains(':') {
            Family::Inet6
        } else {
            Family::Inet
        }
    })
}

fn mask_addr(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// A health block as written, before defaults and the real server's port are applied.
#[derive(Debug, Clone, Default)]
pub(crate) struct HealthRaw {
    pos: Pos,
    /// False when part of the block failed to read (already reported).
    valid: bool,
    kind: Option<CheckRaw>,
    kind_pos: Option<Pos>,
    interval: Option<(Duration, Pos)>,
    timeout: Option<(Duration, Pos)>,
    rise: Option<u32>,
    fall: Option<u32>,
    on_failure: Option<OnFailure>,
}

#[derive(Debug, Clone)]
enum CheckRaw {
    Http(HttpRaw),
    Tcp { port: Option<(u16, Pos)> },
    Exec { command: Vec<String> },
}

#[derive(Debug, Clone, Default)]
struct HttpRaw {
    port: Option<(u16, Pos)>,
    path: Option<String>,
    status: Option<u16>,
    expect: Option<String>,
    host: Option<String>,
    deadline: Option<(Duration, Pos)>,
    reuse_connection: Option<bool>,
}

impl HealthRaw {
    /// This block's settings over `self`'s: a check kind replaces the inherited one whole,
    /// timing fields replace one by one.
    fn overlay(&self, own: &HealthRaw) -> HealthRaw {
        HealthRaw {
            pos: own.pos,
            valid: self.valid && own.valid,
            kind: own.kind.clone().or_else(|| self.kind.clone()),
            kind_pos: own.kind_pos.or(self.kind_pos),
            interval: own.interval.or(self.interval),
            timeout: own.timeout.or(self.timeout),
            rise: own.rise.or(self.rise),
            fall: own.fall.or(self.fall),
            on_failure: own.on_failure.or(self.on_failure),
        }
    }

    fn sets_timing(&self) -> bool {
        self.interval.is_some()
            || self.timeout.is_some()
            || matches!(&self.kind, Some(CheckRaw::Http(h)) if h.deadline.is_some())
    }

    fn effective_timeout(&self) -> Duration {
        let interval = self.interval.map_or(DEFAULT_INTERVAL, |(d, _)| d);
        self.timeout
            .map_or(DEFAULT_TIMEOUT.min(interval), |(d, _)| d)
    }
}

pub(crate) fn resolve_realserver(
    part: &RealServerPart,
    services: &[ParsedService],
) -> RealServerSide {
    let vips = part.vips.clone().unwrap_or_else(|| {
        services
            .iter()
            .filter(|s| s.def.has_direct_real_servers())
            .flat_map(|s| s.def.vips())
            .collect()
    });
    RealServerSide {
        vips,
        interface: part.interface.clone(),
        arp: part.arp,
        location: part.location.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The paths as they were built before `FieldPath`: a string per level.
    fn join(path: &str, key: &str) -> String {
        let key = yaml::path_segment(key);
        if path.is_empty() {
            key.into_owned()
        } else {
            format!("{path}.{key}")
        }
    }

    #[test]
    fn twice_listed_real_servers_name_the_first_in_short_and_long_lists() {
        for n in [5usize, 40] {
            let mut doc = String::from("services:\n  - {name: web, vip: 10.0.0.1, port: 80}\n");
            doc = doc.replace('}', ", real_servers: [");
            let addrs: Vec<usize> = (0..n).chain([3, 1]).collect();
            let list: Vec<String> = addrs
                .iter()
                .map(|a| format!("{{address: 10.1.0.{a}}}"))
                .collect();
            doc = format!("{}{}]}}\n", doc.trim_end(), list.join(", "));
            let diags = crate::manifest::parse("m.yaml", &doc).unwrap_err();
            let got: Vec<String> = diags
                .iter()
                .map(|d| format!("{}: {}", d.path, d.message))
                .collect();
            assert_eq!(
                got,
                [
                    format!(
                        "services[0].real_servers[{n}]: real server 10.1.0.3:80 is listed twice \
                         in this service (first as real_servers[3])"
                    ),
                    format!(
                        "services[0].real_servers[{}]: real server 10.1.0.1:80 is listed twice \
                         in this service (first as real_servers[1])",
                        n + 1
                    ),
                ],
                "{doc}"
            );
        }
    }

    #[test]
    fn empty_value_messages_name_the_defaults_in_force() {
        let means = |schema: Schema, key: &str| match schema.iter().find(|(k, _)| *k == key) {
            Some((_, Means(m))) => (*m).to_owned(),
            other => panic!("{key}: {other:?}"),
        };
        let d = |v: &dyn fmt::Display| format!("the default ({v})");
        let cases = [
            (SERVICE_KEYS, "scheduler", d(&DEFAULT_SCHEDULER)),
            (
                SERVICE_KEYS,
                "drain_timeout",
                d(&duration::format(DEFAULT_DRAIN_TIMEOUT)),
            ),
            (
                PERSISTENCE_KEYS,
                "timeout",
                d(&Persistence::DEFAULT_TIMEOUT),
            ),
            (
                HEALTH_KEYS,
                "interval",
                d(&duration::format(DEFAULT_INTERVAL)),
            ),
            (
                HEALTH_KEYS,
                "timeout",
                format!(
                    "the default ({}, at most the interval)",
                    duration::format(DEFAULT_TIMEOUT)
                ),
            ),
            (HEALTH_KEYS, "rise", d(&DEFAULT_RISE)),
            (HEALTH_KEYS, "fall", d(&DEFAULT_FALL)),
            (HTTP_KEYS, "status", d(&DEFAULT_HTTP_STATUS)),
            (RS_KEYS, "weight", d(&DestSpec::default().weight)),
        ];
        for (schema, key, want) in cases {
            assert_eq!(means(schema, key), want, "{key}");
        }
    }

    #[test]
    fn an_empty_value_is_reported_once_at_its_key() {
        let doc = "services:\n  - name: web\n    vip: 10.0.0.1\n    port:\n    scheduler: ~\n";
        let diags = crate::manifest::parse("m.yaml", doc).unwrap_err();
        let got: Vec<String> = diags.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "m.yaml:4:5: services[0].port: empty value; a service needs a port (0 = every \
                 port, with persistence)",
                "m.yaml:5:5: services[0].scheduler: empty value; remove the key for the default \
                 (wlc) or give a value",
            ]
        );
    }

    #[test]
    fn fields_of_a_very_long_mapping_are_still_found() {
        // More keys than a slot can index: the service's own keys come last.
        let mut doc = String::from("services:\n  - ");
        for i in 0..300 {
            doc.push_str(&format!("junk{i}: 1\n    "));
        }
        doc.push_str("name: web\n    vip: 10.0.0.1\n    port: 80\n");
        let diags = crate::manifest::parse("m.yaml", &doc).unwrap_err();
        assert_eq!(diags.len(), 300, "{diags}");
        assert!(
            diags.iter().all(|d| d.message.starts_with("unknown key")),
            "{diags}"
        );
    }

    #[test]
    fn quick_ipv4_reads_what_the_standard_parser_reads() {
        let mut cases: Vec<String> = [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "a.b.c.d",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.04",
            "0.0.0.00",
            "1.2.3.-4",
            "+1.2.3.4",
            "1.2.3.4/24",
            "::1",
            "::ffff:1.2.3.4",
            "1.2.3.1000",
            "",
            ".",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.4.",
            "1.2.3.٣",
            "1.2.3.0x1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for v in 0..=1000 {
            for text in [format!("{v}"), format!("0{v}"), format!("00{v}")] {
                cases.push(format!("{text}.1.2.3"));
                cases.push(format!("10.{text}.0.1"));
                cases.push(format!("10.0.1.{text}"));
            }
        }
        for c in &cases {
            assert_eq!(
                ipv4_quick(c).map(IpAddr::V4),
                c.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                "{c:?}"
            );
            if let Some(a) = ipv4_quick(c) {
                assert_eq!(c.parse::<IpAddr>().ok(), Some(IpAddr::V4(a)), "{c:?}");
            }
        }
    }

    #[test]
    fn field_paths_render_as_joined_strings() {
        let long = "k".repeat(100);
        for top in ["", "services", "director"] {
            let root = FieldPath::Text(top);
            for key in ["", "real_servers", long.as_str()] {
                let k = root.key(key);
                assert_eq!(k.to_string(), join(top, key));
                let i = k.index(7);
                assert_eq!(i.to_string(), format!("{}[7]", join(top, key)));
                for leaf in ["", "port", long.as_str()] {
                    assert_eq!(
                        i.key(leaf).to_string(),
                        join(&format!("{}[7]", join(top, key)), leaf)
                    );
                    assert_eq!(k.key(leaf).to_string(), join(&join(top, key), leaf));
                }
            }
        }
    }
}
