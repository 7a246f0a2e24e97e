//! A small YAML document tree with source positions, built from `granit-parser` events.
//!
//! Why a tree of our own instead of serde: validation wants to see the whole document and report
//! every problem in one run, each with a line and column; serde stops at the first error. The
//! tree is also where the input limits live: size, nesting depth, alias expansion, one document
//! per file, no duplicate keys.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use granit_parser::{ErrorKind, Event, Parser, ScalarStyle, ScanError, Span};

/// Largest manifest file accepted. Real manifests are kilobytes; 10,000 services with 10 real
/// servers each fit in about 3 MiB of flow-style YAML.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of sequences and mappings. A manifest needs about 6.
pub(crate) const MAX_DEPTH: usize = 64;
/// How many nodes aliases (`*name`) may add to the document in total. Each alias copies its
/// anchor's subtree, so this is what stops "billion laughs" documents.
pub(crate) const MAX_ALIAS_NODES: usize = 100_000;
/// How much text (scalars and keys) aliases may copy in total. The node budget alone lets a
/// 1 MiB scalar be aliased thousands of times: few nodes, gigabytes of copies.
pub(crate) const MAX_ALIAS_BYTES: usize = MAX_INPUT_BYTES;

/// A 1-based line and column (columns count characters, as editors do). `u32`: a file is at
/// most [`MAX_INPUT_BYTES`], and every node carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    fn new(line: usize, column: usize) -> Pos {
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }

    fn of_span(span: &Span) -> Pos {
        Pos::new(span.start.line(), span.start.col() + 1)
    }
}

/// A node of the tree. Text borrows from the document wherever the parser could (plain and
/// most quoted scalars), so building the tree allocates only for collections.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub pos: Pos,
    pub value: Value<'a>,
}

#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    Scalar(Scalar<'a>),
    Seq(Vec<Node<'a>>),
    Map(Vec<(Key<'a>, Node<'a>)>),
}

/// A mapping key: always a scalar in this tree (other keys are reported and dropped).
#[derive(Debug, Clone)]
pub(crate) struct Key<'a> {
    pub text: Cow<'a, str>,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) struct Scalar<'a> {
    pub text: Cow<'a, str>,
    /// Plain scalars are typed by the YAML 1.2 core schema (`80` is an integer, `true` a
    /// boolean); quoted and block scalars, and `!!str`, are always strings.
    pub plain: bool,
}

/// A problem found while reading the document, before any manifest meaning is applied.
#[derive(Debug, Clone)]
pub(crate) struct RawDiag {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

/// What a plain or quoted scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved<'a> {
    Null,
    Bool(bool),
    /// An integer; `None` when it does not fit in an i128 (still an integer, just huge).
    Int(Option<i128>),
    Float,
    Str(&'a str),
}

impl Scalar<'_> {
    pub fn resolve(&self) -> Resolved<'_> {
        if !self.plain {
            return Resolved::Str(&self.text);
        }
        resolve_plain(&self.text)
    }

    /// Whether [`Scalar::resolve`] answers `Null` or `Bool`, without the rest of its typing.
    pub fn is_null_or_bool(&self) -> bool {
        self.plain && (is_null_text(&self.text) || bool_text(&self.text).is_some())
    }
}

fn is_null_text(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// The YAML 1.2 core schema's booleans.
fn bool_text(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn resolve_plain(s: &str) -> Resolved<'_> {
    if is_null_text(s) {
        return Resolved::Null;
    }
    if let Some(b) = bool_text(s) {
        return Resolved::Bool(b);
    }
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return Resolved::Float,
        _ => {}
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Resolved::Int(i128::from_str_radix(hex, 16).ok());
        }
        return Resolved::Str(s);
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Resolved::Int(i128::from_str_radix(oct, 8).ok());
        }
        return Resolved::Str(s);
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Resolved::Int(s.parse::<i128>().ok());
    }
    if is_float(digits) {
        return Resolved::Float;
    }
    Resolved::Str(s)
}

/// `[0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)?` with at least one digit in the mantissa.
fn is_float(s: &str) -> bool {
    // Most scalars that get here are names and addresses: one byte outside the alphabet of
    // a number settles it.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return false;
    }
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !frac.is_none_or(digits) {
        return false;
    }
    if int.is_empty() && frac.is_none_or(str::is_empty) {
        return false;
    }
    if frac.is_none() && exp.is_none() {
        return false;
    }
    match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
    }
}

impl Node<'_> {
    /// A short description of what this node is, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => "nothing (null)".to_owned(),
                Resolved::Bool(b) => format!("boolean {b}"),
                Resolved::Int(_) => format!("integer {}", shorten(&s.text)),
                Resolved::Float => format!("number {}", shorten(&s.text)),
                Resolved::Str(t) => format!("string {}", quote(t)),
            },
        }
    }

    pub fn is_null(&self) -> bool {
        // What `resolve` answers `Null` for, without typing the scalar: every field lookup asks.
        matches!(&self.value, Value::Scalar(s) if s.plain && is_null_text(&s.text))
    }

    /// Bytes of text in this subtree (scalars and keys): what copying it costs beyond nodes.
    fn text_len(&self) -> usize {
        match &self.value {
            Value::Scalar(s) => s.text.len(),
            Value::Seq(items) => items.iter().map(Node::text_len).sum(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| k.text.len() + v.text_len())
                .sum(),
        }
    }

    fn count(&self) -> usize {
        match &self.value {
            Value::Scalar(_) => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + v.count()).sum::<usize>(),
        }
    }
}

/// A mapping key as it appears in a diagnostic's field path, shortened: a key can be megabytes
/// long (`? key` has no length limit), and every diagnostic below it repeats the path.
pub(crate) fn path_segment(key: &str) -> std::borrow::Cow<'_, str> {
    shorten(key)
}

/// Input text shown unquoted in a message (a number, a key), cut to 60 characters: a plain
/// scalar can be megabytes of digits.
pub(crate) fn shorten(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]).into(),
        None => text.into(),
    }
}

/// Quotes a user-provided string for a message, shortened so a 1 MiB scalar does not end up
/// in a log line.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() > MAX {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    } else {
        format!("{s:?}")
    }
}

/// Turns raw bytes into text, or explains why they are not a manifest.
pub(crate) fn decode(bytes: &[u8]) -> Result<&str, RawDiag> {
    let at_start = |message: String| RawDiag {
        pos: Pos { line: 1, column: 1 },
        path: String::new(),
        message,
    };
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(at_start(format!(
            "file is {} bytes, more than the {} MiB limit for a manifest (split it into several files)",
            bytes.len(),
            MAX_INPUT_BYTES / (1024 * 1024)
        )));
    }
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(at_start(
            "file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8".to_owned(),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by construction; count lines and characters in it.
            let prefix = String::from_utf8_lossy(valid);
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            Err(RawDiag {
                pos: Pos::new(line, column),
                path: String::new(),
                message: format!(
                    "file is not valid UTF-8 (byte 0x{byte:02x} at offset {}); manifests must be UTF-8 text",
                    e.valid_up_to()
                ),
            })
        }
    }
}

/// A collection being built. Its children wait on the builder's shared stacks (`items`,
/// `entries`) from `start` on, so each finished collection is one allocation of its exact size.
enum Frame<'a> {
    Seq {
        pos: Pos,
        anchor: usize,
        start: usize,
        len: usize,
    },
    Map {
        pos: Pos,
        anchor: usize,
        start: usize,
        len: usize,
        /// The key whose value comes next; `Some(None)` when that key was unusable.
        pending: Option<Option<Key<'a>>>,
    },
}

struct Builder<'a> {
    stack: Vec<Frame<'a>>,
    /// Children of the open sequences, innermost last.
    items: Vec<Node<'a>>,
    /// Entries of the open mappings, innermost last.
    entries: Vec<(Key<'a>, Node<'a>)>,
    root: Option<Node<'a>>,
    /// Anchored nodes with their node count and text length.
    anchors: HashMap<usize, (Node<'a>, usize, usize)>,
    alias_budget: usize,
    alias_bytes_budget: usize,
    /// What the anchors' copies hold so far (nested anchors copy their subtrees again).
    anchored_nodes: usize,
    anchored_bytes: usize,
    diags: Vec<RawDiag>,
}

/// Parses one YAML document into a tree. Returns `None` (with at least one diagnostic) when the
/// text is not usable YAML at all; returns a tree plus diagnostics for problems that do not stop
/// reading (duplicate keys, unsupported tags, non-scalar keys).
pub(crate) fn parse_document(text: &str) -> (Option<Node<'_>>, Vec<RawDiag>) {
    // Manifests are nearly always in the subset the fast reader knows; it answers only when
    // this function would give the same tree and no diagnostic.
    if let Some(root) = super::fast::parse_fast(text) {
        return (Some(root), Vec::new());
    }
    parse_general(text)
}

/// [`parse_document`] by the general parser, for any YAML.
pub(super) fn parse_general(text: &str) -> (Option<Node<'_>>, Vec<RawDiag>) {
    let options = granit_parser::options! {
        flow_nesting_limit: MAX_DEPTH,
        block_nesting_limit: MAX_DEPTH,
        emit_comments: false,
    };
    let mut b = Builder {
        stack: Vec::new(),
        items: Vec::new(),
        entries: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        alias_budget: MAX_ALIAS_NODES,
        alias_bytes_budget: MAX_ALIAS_BYTES,
        anchored_nodes: 0,
        anchored_bytes: 0,
        diags: Vec::new(),
    };
    let mut documents = 0usize;
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = match item {
            Ok(ok) => ok,
            Err(e) => {
                b.scan_error(&e);
                return (None, b.diags);
            }
        };
        let pos = Pos::of_span(&span);
        let ok = match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    b.diags.push(RawDiag {
                        pos,
                        path: String::new(),
                        message: "a second YAML document (---) in the same file; put one manifest \
                                  document in each file (lvsctl reads several files)"
                            .to_owned(),
                    });
                    return (None, b.diags);
                }
                true
            }
            Event::Scalar(text, style, anchor, tag) => {
                let mut plain = style == ScalarStyle::Plain;
                if let Some(tag) = tag {
                    match tag.core_suffix() {
                        Some("str") => plain = false,
                        Some(_) => {}
                        None => b.diags.push(RawDiag {
                            pos,
                            path: b.path(),
                            message: format!(
                                "unsupported YAML tag {}; remove it",
                                quote(&format!("{}{}", tag.original_handle(), tag.suffix()))
                            ),
                        }),
                    }
                }
                let node = Node {
                    pos,
                    value: Value::Scalar(Scalar { text, plain }),
                };
                b.push_node(node, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                b.check_collection_tag(tag.as_deref(), "seq", pos);
                b.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    start: b.items.len(),
                    len: 0,
                });
                true
            }
            Event::MappingStart(_, anchor, tag) => {
                b.check_collection_tag(tag.as_deref(), "map", pos);
                b.stack.push(Frame::Map {
                    pos,
                    anchor,
                    start: b.entries.len(),
                    len: 0,
                    pending: None,
                });
                true
            }
            Event::SequenceEnd | Event::MappingEnd => match b.stack.pop() {
                Some(Frame::Seq {
                    pos, anchor, start, ..
                }) => {
                    let items = take_from(&mut b.items, start);
                    b.push_node(
                        Node {
                            pos,
                            value: Value::Seq(items),
                        },
                        anchor,
                    )
                }
                Some(Frame::Map {
                    pos, anchor, start, ..
                }) => {
                    let entries = take_from(&mut b.entries, start);
                    let entries = b.finish_map(entries);
                    b.push_node(
                        Node {
                            pos,
                            value: Value::Map(entries),
                        },
                        anchor,
                    )
                }
                None => true,
            },
            Event::Alias(id) => b.alias(id, pos),
            // Unresolved aliases are an error by default in the parser; comments are off.
            _ => true,
        };
        if !ok {
            return (None, b.diags);
        }
    }
    (b.root, b.diags)
}

impl<'a> Builder<'a> {
    /// The field path of the node being built, e.g. `services[1].real_servers[0]`.
    fn path(&self) -> String {
        self.path_upto(self.stack.len())
    }

    /// The path of the `n` outermost frames, each with the key or index being read.
    fn path_upto(&self, n: usize) -> String {
        let mut out = String::new();
        for frame in &self.stack[..n.min(self.stack.len())] {
            match frame {
                Frame::Seq { len, .. } => out.push_str(&format!("[{len}]")),
                Frame::Map {
                    pending,
                    start,
                    len,
                    ..
                } => {
                    let key = match pending {
                        Some(Some(k)) => Some(k.text.as_ref()),
                        Some(None) => None,
                        None => (*len > 0)
                            .then(|| self.entries.get(start + len - 1))
                            .flatten()
                            .map(|(k, _)| k.text.as_ref()),
                    };
                    if let Some(k) = key {
                        if !out.is_empty() {
                            out.push('.');
                        }
                        out.push_str(&path_segment(k));
                    }
                }
            }
        }
        out
    }

    fn scan_error(&mut self, e: &ScanError) {
        let m = e.marker();
        let pos = Pos::new(m.line().max(1), m.col() + 1);
        // The parser wanted the next `- ` item of a block list: no item was started, and the
        // stray line most likely belongs to the item just read.
        let between_items = e.info().contains("did not find expected '-'");
        let message = match e.kind() {
            ErrorKind::RecursionLimitExceeded => format!(
                "lists and mappings are nested more than {MAX_DEPTH} levels deep; a manifest needs \
                 far fewer (is this file generated wrongly?)"
            ),
            ErrorKind::UnknownAnchor => {
                "alias (*name) refers to an anchor (&name) that is not defined before it".to_owned()
            }
            _ => {
                let info = e.info();
                // The scanner's wording for a line indented wrongly, or a value holding ": ".
                let hint = if info.contains("mapping values are not allowed")
                    || info.contains("did not find expected key")
                    || between_items
                {
                    " (check this line's indentation; quote values that contain \": \")"
                } else {
                    ""
                };
                format!("invalid YAML: {info}{hint}")
            }
        };
        let path = match self.stack.last() {
            Some(Frame::Seq { len, .. }) if between_items && *len > 0 => {
                let list = self.path_upto(self.stack.len() - 1);
                format!("{list}[{}]", len - 1)
            }
            _ => self.path(),
        };
        self.diags.push(RawDiag { pos, path, message });
    }

    fn check_collection_tag(&mut self, tag: Option<&granit_parser::Tag>, want: &str, pos: Pos) {
        if let Some(tag) = tag
            && tag.core_suffix() != Some(want)
        {
            self.diags.push(RawDiag {
                pos,
                path: self.path(),
                message: format!(
                    "unsupported YAML tag {}; remove it",
                    quote(&format!("{}{}", tag.original_handle(), tag.suffix()))
                ),
            });
        }
    }

    fn alias(&mut self, id: usize, pos: Pos) -> bool {
        let Some((node, size, bytes)) = self.anchors.get(&id) else {
            self.diags.push(RawDiag {
                pos,
                path: self.path(),
                message: "alias refers to the collection that contains it (a recursive alias)"
                    .to_owned(),
            });
            return false;
        };
        if *size > self.alias_budget {
            self.diags.push(RawDiag {
                pos,
                path: self.path(),
                message: format!(
                    "aliases (*name) expand to more than {MAX_ALIAS_NODES} YAML nodes; \
                     refusing a possible \"billion laughs\" document"
                ),
            });
            return false;
        }
        if *bytes > self.alias_bytes_budget {
            self.diags.push(RawDiag {
                pos,
                path: self.path(),
                message: format!(
                    "aliases (*name) expand to more than {} MiB of text; refusing a possible \
                     \"billion laughs\" document",
                    MAX_ALIAS_BYTES / (1024 * 1024)
                ),
            });
            return false;
        }
        self.alias_budget -= *size;
        self.alias_bytes_budget -= *bytes;
        let node = node.clone();
        self.push_node(node, 0)
    }

    /// Attaches a finished node to its parent (or makes it the root).
    fn push_node(&mut self, node: Node<'a>, anchor: usize) -> bool {
        if anchor != 0 {
            let (size, bytes) = (node.count(), node.text_len());
            // Each anchor keeps a copy of its subtree for later aliases: 60 nested anchors
            // around a 4 MiB scalar would otherwise keep 60 copies of it.
            self.anchored_nodes = self.anchored_nodes.saturating_add(size);
            self.anchored_bytes = self.anchored_bytes.saturating_add(bytes);
            if self.anchored_nodes > MAX_ALIAS_NODES || self.anchored_bytes > MAX_ALIAS_BYTES {
                self.diags.push(RawDiag {
                    pos: node.pos,
                    path: self.path(),
                    message: format!(
                        "anchors (&name) hold more than {MAX_ALIAS_NODES} YAML nodes or {} MiB \
                         of text; anchor small pieces (such as one list of real servers)",
                        MAX_ALIAS_BYTES / (1024 * 1024)
                    ),
                });
                return false;
            }
            self.anchors.insert(anchor, (node.clone(), size, bytes));
        }
        let wants_key = matches!(self.stack.last(), Some(Frame::Map { pending: None, .. }));
        if wants_key && !matches!(node.value, Value::Scalar(_)) {
            // The mapping's own path: the previous key has nothing to do with this one.
            let path = self.path_upto(self.stack.len().saturating_sub(1));
            self.diags.push(RawDiag {
                pos: node.pos,
                path,
                message: format!(
                    "mapping key is {}; keys must be plain names",
                    node.describe()
                ),
            });
            if let Some(Frame::Map { pending, .. }) = self.stack.last_mut() {
                *pending = Some(None);
            }
            return true;
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { len, .. }) => {
                self.items.push(node);
                *len += 1;
            }
            Some(Frame::Map { pending, len, .. }) => match pending.take() {
                Some(Some(key)) => {
                    self.entries.push((key, node));
                    *len += 1;
                }
                Some(None) => {}
                None => {
                    if let Value::Scalar(s) = node.value {
                        *pending = Some(Some(Key {
                            text: s.text,
                            pos: node.pos,
                        }));
                    }
                }
            },
        }
        true
    }

    /// Rejects duplicate keys and applies YAML merge keys (`<<: *defaults`): merged entries
    /// fill in keys the mapping does not set itself.
    fn finish_map(&mut self, entries: Vec<(Key<'a>, Node<'a>)>) -> Vec<(Key<'a>, Node<'a>)> {
        // Nearly every mapping has neither: keep it as it is.
        if !entries.iter().any(|(k, _)| k.text == "<<") && !has_duplicate_key(&entries) {
            return entries;
        }
        let mut out: Vec<(Key<'a>, Node<'a>)> = Vec::with_capacity(entries.len());
        let mut seen: HashMap<Cow<'a, str>, Pos> = HashMap::new();
        let mut merges: Vec<Node<'a>> = Vec::new();
        // (position, key, message): the path is only built when something is wrong.
        let mut problems: Vec<(Pos, Cow<'a, str>, String)> = Vec::new();
        for (key, value) in entries {
            if key.text == "<<" {
                merges.push(value);
                continue;
            }
            if let Some(first) = seen.get(&key.text) {
                let message = format!(
                    "duplicate key {} (first set at line {}, column {})",
                    quote(&key.text),
                    first.line,
                    first.column
                );
                problems.push((key.pos, key.text, message));
                continue;
            }
            seen.insert(key.text.clone(), key.pos);
            out.push((key, value));
        }
        for merge in merges {
            let sources: Vec<Node<'a>> = match merge.value {
                Value::Map(_) => vec![merge],
                Value::Seq(items) => items,
                Value::Scalar(_) => vec![merge],
            };
            for source in sources {
                match source.value {
                    Value::Map(entries) => {
                        for (key, value) in entries {
                            if !seen.contains_key(&key.text) {
                                seen.insert(key.text.clone(), key.pos);
                                out.push((key, value));
                            }
                        }
                    }
                    _ => problems.push((
                        source.pos,
                        Cow::Borrowed("<<"),
                        format!(
                            "merge key << needs a mapping or a list of mappings, found {}",
                            source.describe()
                        ),
                    )),
                }
            }
        }
        if !problems.is_empty() {
            let base = self.path();
            for (pos, key, message) in problems {
                let key = path_segment(&key);
                let path = if base.is_empty() {
                    key.into_owned()
                } else {
                    format!("{base}.{key}")
                };
                self.diags.push(RawDiag { pos, path, message });
            }
        }
        out.shrink_to_fit();
        out
    }
}

/// The children of a finished collection, `stack[start..]`, as a vector of their exact size.
pub(super) fn take_from<T>(stack: &mut Vec<T>, start: usize) -> Vec<T> {
    /// Below this many children the stack keeps its buffer for the next collection: a service
    /// mapping is often the outermost open one, and handing the stack over each time made
    /// every following collection grow a new stack from nothing.
    const HAND_OVER_MIN: usize = 1024;
    if start == 0 && stack.len() >= HAND_OVER_MIN {
        // The outermost open collection (such as a long services: list): hand over the stack
        // itself rather than copy it.
        let mut all = std::mem::take(stack);
        all.shrink_to_fit();
        all
    } else if start > 0 {
        stack.split_off(start)
    } else {
        // `append` leaves the stack its buffer.
        let mut all = Vec::with_capacity(stack.len());
        all.append(stack);
        all
    }
}

/// Whether two entries of a mapping have the same key.
// Inlined: the fast reader asks for every mapping, most of them two or three keys long.
#[inline(always)]
pub(super) fn has_duplicate_key(entries: &[(Key<'_>, Node<'_>)]) -> bool {
    // Manifest mappings have a handful of keys: comparing pairs beats hashing them.
    const SMALL: usize = 16;
    if entries.len() > SMALL {
        return has_duplicate_key_hashed(entries);
    }
    // Length and first byte first: most keys differ there, without a call to memcmp.
    let same = |a: &str, b: &str| {
        a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
    };
    for (i, (k, _)) in entries.iter().enumerate() {
        for (e, _) in &entries[..i] {
            if same(&e.text, &k.text) {
                return true;
            }
        }
    }
    false
}

fn has_duplicate_key_hashed(entries: &[(Key<'_>, Node<'_>)]) -> bool {
    let mut seen: HashSet<&str> = HashSet::with_capacity(entries.len());
    !entries.iter().all(|(k, _)| seen.insert(k.text.as_ref()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn core_schema_typing() {
        assert_eq!(resolve_plain("80"), Resolved::Int(Some(80)));
        assert_eq!(resolve_plain("-3"), Resolved::Int(Some(-3)));
        assert_eq!(resolve_plain("0x10"), Resolved::Int(Some(16)));
        assert_eq!(resolve_plain("0o17"), Resolved::Int(Some(15)));
        assert_eq!(resolve_plain("~"), Resolved::Null);
        assert_eq!(resolve_plain("True"), Resolved::Bool(true));
        assert_eq!(resolve_plain("yes"), Resolved::Str("yes"));
        assert_eq!(resolve_plain("1.5"), Resolved::Float);
        assert_eq!(resolve_plain("1e3"), Resolved::Float);
        assert_eq!(
            resolve_plain("192.168.6.101"),
            Resolved::Str("192.168.6.101")
        );
        assert_eq!(resolve_plain("2001:db8::1"), Resolved::Str("2001:db8::1"));
        assert_eq!(resolve_plain("3s"), Resolved::Str("3s"));
        assert_eq!(resolve_plain("."), Resolved::Str("."));
        assert_eq!(
            resolve_plain("99999999999999999999999999999999999999999"),
            Resolved::Int(None)
        );
    }

    #[test]
    fn null_or_bool_is_what_resolve_says() {
        for text in [
            "", "~", "null", "Null", "NULL", "nul", "true", "True", "TRUE", "tRUE", "false",
            "False", "FALSE", "no", "yes", "nat", "1", "1.5", ".inf", "0x1", "f", "t", "n", "~~",
        ] {
            for plain in [true, false] {
                let s = Scalar {
                    text: Cow::Borrowed(text),
                    plain,
                };
                let want = matches!(s.resolve(), Resolved::Null | Resolved::Bool(_));
                assert_eq!(s.is_null_or_bool(), want, "{text:?} plain {plain}");
            }
        }
    }

    #[test]
    fn a_stray_line_between_list_items_names_the_item_before_it() {
        for (doc, path) in [
            (
                "services:\n  - name: web\n    vip: 10.0.0.1\n   port: 80\n",
                "services[0]",
            ),
            ("s:\n  - a: 1\n  - a: 2\n   b: 3\n", "s[1]"),
            ("s:\n  - a: 1\n  - [1, 2]\n   b: 3\n", "s[1]"),
            // A scalar that fails to scan is the item being read.
            ("s:\n  - a: 1\n  - \"open\n", "s[1]"),
            ("s: [1, \"open\n", "s[1]"),
        ] {
            let (root, diags) = parse_document(doc);
            assert!(root.is_none(), "{doc:?}");
            assert_eq!(diags.len(), 1, "{doc:?}");
            assert_eq!(diags[0].path, path, "{doc:?}: {}", diags[0].message);
        }
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_positions() {
        let (root, diags) = parse_document("a: 1\nb:\n  c: 1\n  c: 2\n");
        assert!(root.is_some());
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].path, "b.c");
        assert_eq!(diags[0].pos, Pos { line: 4, column: 3 });
        assert!(
            diags[0].message.contains("line 3, column 3"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let (root, diags) = parse_document(&doc);
        assert!(root.is_none());
        assert!(diags[0].message.contains("billion laughs"), "{:?}", diags);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = format!("{}{}", "[".repeat(500), "]".repeat(500));
        let (root, diags) = parse_document(&doc);
        assert!(root.is_none());
        assert!(diags[0].message.contains("nested more than"), "{:?}", diags);
    }

    #[test]
    fn merge_keys_fill_in_missing_keys() {
        let (root, diags) = parse_document("d: &d {w: 1, p: 2}\ne: {<<: *d, w: 5}\n");
        assert!(diags.is_empty(), "{diags:?}");
        let Value::Map(top) = root.unwrap().value else {
            panic!()
        };
        let Value::Map(e) = &top[1].1.value else {
            panic!()
        };
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|(k, v)| match &v.value {
                Value::Scalar(s) => (k.text.as_ref(), s.text.as_ref()),
                _ => panic!(),
            })
            .collect();
        assert_eq!(got, vec![("w", "5"), ("p", "2")]);
    }

    #[test]
    fn invalid_utf8_points_at_the_byte() {
        let e = decode(b"a: 1\nb: \xff\n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 4 });
        assert!(e.message.contains("0xff"));
    }
}
