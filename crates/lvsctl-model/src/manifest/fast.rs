//! A fast reader for the plain subset of YAML that manifests are written in: block mappings and
//! sequences, one-line flow collections, one-line plain and quoted scalars, comments.
//!
//! Why: on a 10,000-service manifest the general parser is most of the load's cost. This reader
//! answers only when it is sure: `Some(tree)` exactly when the general path (`yaml.rs`) would
//! build the same tree, positions included, with no diagnostic. Anything else (anchors, tags,
//! block scalars, multi-line scalars, escapes, duplicate keys, odd indentation, any doubt) is
//! `None`, and the general path reads the file and reports its problems as it always did. The
//! differential tests below hold it to that promise.

use std::borrow::Cow;

use super::yaml::{Key, Node, Pos, Scalar, Value, has_duplicate_key, take_from};

/// Deepest nesting this reader follows; deeper documents go to the general path (which
/// enforces its own, larger limit with a diagnostic).
const MAX_DEPTH: usize = 32;
/// Longest key read here: YAML caps implicit keys at 1024 characters.
const MAX_KEY_BYTES: usize = 1000;

/// The tree of `text`, when `text` is in the subset and the general path would agree.
pub(crate) fn parse_fast(text: &str) -> Option<Node<'_>> {
    let bytes = text.as_bytes();
    // Control characters (tabs and CRs among them) and DEL: the general path decides.
    let mut bad = false;
    let mut non_ascii = false;
    for &b in bytes {
        bad |= (b < 0x20 && b != b'\n') | (b == 0x7f);
        non_ascii |= b >= 0x80;
    }
    if bad {
        return None;
    }
    let mut p = Fast {
        src: text,
        next: 0,
        next_no: 1,
        line: "",
        no: 0,
        ascii: true,
        indent: 0,
        eof: false,
        any_non_ascii: non_ascii,
        items: Vec::new(),
        entries: Vec::new(),
        depth: 0,
    };
    p.advance()?;
    if p.eof {
        return None;
    }
    if p.line.starts_with("---") {
        // An explicit document start, alone on its line (a comment may follow).
        let rest = p.line[3..].trim_start_matches(' ');
        if !(rest.is_empty() || (rest.starts_with('#') && p.line.len() > 3 + rest.len())) {
            return None;
        }
        p.advance()?;
        if p.eof {
            return None;
        }
    }
    if p.indent != 0 {
        return None;
    }
    let root = p.block_collection(0)?;
    p.eof.then_some(root)
}

struct Fast<'a> {
    src: &'a str,
    /// Byte offset and number of the first line not read yet.
    next: usize,
    next_no: u32,
    /// The current significant line (neither blank nor only a comment), without its newline.
    line: &'a str,
    no: u32,
    ascii: bool,
    indent: usize,
    eof: bool,
    any_non_ascii: bool,
    /// Children of the open sequences and mappings, innermost last: each finished collection
    /// is one allocation of its exact size.
    items: Vec<Node<'a>>,
    entries: Vec<(Key<'a>, Node<'a>)>,
    depth: usize,
}

/// The index of the first newline in `b` from `start` on, or `b.len()`; eight bytes at a time
/// (the line scan was an eighth of reading a large manifest).
fn find_newline(b: &[u8], start: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut i = start;
    while let Some(chunk) = b.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default()) ^ NEWLINES;
        // A byte is zero where the newline is; the lowest flagged byte is the first zero one
        // (a borrow can only flag bytes above a zero byte).
        let zero = word.wrapping_sub(ONES) & !word & HIGHS;
        if zero != 0 {
            return i + (zero.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    b.get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
        .map_or(b.len(), |p| i + p)
}

fn is_dash_entry(rest: &[u8]) -> bool {
    rest.first() == Some(&b'-') && rest.get(1).is_none_or(|&b| b == b' ')
}

impl<'a> Fast<'a> {
    /// Moves to the next significant line.
    fn advance(&mut self) -> Option<()> {
        let bytes = self.src.as_bytes();
        while self.next < bytes.len() {
            let start = self.next;
            let end = find_newline(bytes, start);
            let no = self.next_no;
            self.next = end + 1;
            self.next_no = self.next_no.checked_add(1)?;
            let line = &self.src[start..end];
            let indent = line.bytes().take_while(|&b| b == b' ').count();
            match line.as_bytes().get(indent) {
                None | Some(b'#') => continue,
                Some(_) => {}
            }
            let ascii = !self.any_non_ascii || line.is_ascii();
            if !ascii
                && line.chars().any(|c| {
                    matches!(
                        c,
                        '\u{80}'
                            ..='\u{9f}'
                                | '\u{2028}'
                                | '\u{2029}'
                                | '\u{feff}'
                                | '\u{fffe}'
                                | '\u{ffff}'
                    )
                })
            {
                return None;
            }
            if indent == 0 && (line.starts_with("---") || line.starts_with("...")) && no > 1 {
                // A document marker (or something too close to one to be sure).
                return None;
            }
            self.line = line;
            self.no = no;
            self.ascii = ascii;
            self.indent = indent;
            return Some(());
        }
        self.next = bytes.len();
        self.eof = true;
        self.line = "";
        self.indent = 0;
        Some(())
    }

    // Inlined: every node asks, and nearly every line is ASCII.
    #[inline(always)]
    fn pos(&self, at: usize) -> Pos {
        let column = if self.ascii {
            at
        } else {
            self.line[..at].chars().count()
        };
        Pos {
            line: self.no,
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn skip_spaces(&self, mut at: usize) -> usize {
        let b = self.line.as_bytes();
        while b.get(at) == Some(&b' ') {
            at += 1;
        }
        at
    }

    /// After a value ends at `at`: only spaces and a comment may follow on the line.
    fn end_of_line(&self, at: usize) -> Option<()> {
        let next = self.skip_spaces(at);
        match self.line.as_bytes().get(next) {
            None => Some(()),
            Some(b'#') if next > at => Some(()),
            Some(_) => None,
        }
    }

    /// A block sequence or mapping whose first entry starts at byte `col` of the current line.
    fn block_collection(&mut self, col: usize) -> Option<Node<'a>> {
        let rest = &self.line.as_bytes()[col..];
        if is_dash_entry(rest) {
            let pos = self.pos(col);
            self.block_seq(col, pos)
        } else {
            self.block_map(col)
        }
    }

    /// Block sequence entries at column `col`; `pos` is the sequence's position.
    fn block_seq(&mut self, col: usize, pos: Pos) -> Option<Node<'a>> {
        self.enter()?;
        let start = self.items.len();
        loop {
            let content = self.skip_spaces(col + 1);
            if content == col + 1 || content >= self.line.len() {
                // `-` alone on its line, or `-x` (not an entry at all): not for this reader.
                return None;
            }
            let item = self.entry(content)?;
            self.items.push(item);
            if self.eof || self.indent < col {
                break;
            }
            if self.indent > col {
                return None;
            }
            if !is_dash_entry(&self.line.as_bytes()[col..]) {
                break;
            }
        }
        self.depth -= 1;
        Some(Node {
            pos,
            value: Value::Seq(take_from(&mut self.items, start)),
        })
    }

    /// A sequence entry's content at byte `at`: a nested sequence, a compact mapping, or one
    /// value ending on this line. Leaves the reader on the line after the entry.
    fn entry(&mut self, at: usize) -> Option<Node<'a>> {
        let rest = &self.line.as_bytes()[at..];
        if is_dash_entry(rest) {
            let pos = self.pos(at);
            return self.block_seq(at, pos);
        }
        if self.key_at(at)?.is_some() {
            return self.block_map(at);
        }
        let (node, end) = self.inline_value(at)?;
        self.end_of_line(end)?;
        self.advance()?;
        Some(node)
    }

    /// Block mapping entries with keys at column `col`.
    fn block_map(&mut self, col: usize) -> Option<Node<'a>> {
        self.enter()?;
        let start = self.entries.len();
        let mut pos = None;
        loop {
            let (key, colon) = self.key_at(col)?.map(|k| (k.0, k.1))?;
            if key.text == "<<" {
                // A merge key: the general path merges.
                return None;
            }
            pos.get_or_insert(key.pos);
            let value = self.map_value(col, colon)?;
            self.entries.push((key, value));
            if self.eof || self.indent < col {
                break;
            }
            if self.indent > col || is_dash_entry(&self.line.as_bytes()[col..]) {
                return None;
            }
        }
        self.depth -= 1;
        let entries = &self.entries[start..];
        if has_duplicate_key(entries) {
            return None;
        }
        Some(Node {
            pos: pos?,
            value: Value::Map(take_from(&mut self.entries, start)),
        })
    }

    /// The value of a block mapping key at column `col` whose `:` is at byte `colon`.
    fn map_value(&mut self, col: usize, colon: usize) -> Option<Node<'a>> {
        let at = self.skip_spaces(colon + 1);
        match self.line.as_bytes().get(at) {
            None | Some(b'#') => {
                // Nothing on this line: a nested block, or null.
                let null_pos = self.pos(colon);
                self.advance()?;
                if !self.eof && self.indent > col {
                    let c = self.indent;
                    return self.block_collection(c);
                }
                if !self.eof && self.indent == col && is_dash_entry(&self.line.as_bytes()[col..]) {
                    // An unindented sequence: positioned at its first entry's content.
                    let content = self.skip_spaces(col + 1);
                    let pos = self.pos(content);
                    return self.block_seq(col, pos);
                }
                Some(null(null_pos))
            }
            Some(_) => {
                let (node, end) = self.inline_value(at)?;
                self.end_of_line(end)?;
                self.advance()?;
                Some(node)
            }
        }
    }

    /// A block mapping key at byte `at`: the key and the byte of its `:`, `None` inside when
    /// the line is not a `key: ...` line, `None` outside when the reader must give up.
    #[allow(clippy::type_complexity)]
    fn key_at(&self, at: usize) -> Option<Option<(Key<'a>, usize)>> {
        let b = self.line.as_bytes();
        let (text, end) = match b.get(at) {
            Some(b'\'' | b'"') => {
                let (text, end) = self.quoted(at)?;
                (text, end)
            }
            Some(b'[' | b'{') => return Some(None),
            _ => {
                let (text_end, stop) = scan_plain(b, at, false)?;
                if b.get(stop) != Some(&b':') {
                    return Some(None);
                }
                (Cow::Borrowed(&self.line[at..text_end]), stop)
            }
        };
        if end - at > MAX_KEY_BYTES {
            return None;
        }
        if b.get(end) != Some(&b':') || !matches!(b.get(end + 1), None | Some(b' ')) {
            return Some(None);
        }
        Some(Some((
            Key {
                text,
                pos: self.pos(at),
            },
            end,
        )))
    }

    /// A value that ends on this line: a flow collection or a scalar. Returns it and the byte
    /// after it.
    fn inline_value(&mut self, at: usize) -> Option<(Node<'a>, usize)> {
        let b = self.line.as_bytes();
        match b.get(at) {
            Some(b'[' | b'{') => self.flow_node(at),
            Some(b'\'' | b'"') => {
                let (text, end) = self.quoted(at)?;
                Some((scalar(self.pos(at), text, false), end))
            }
            _ => {
                let (text_end, stop) = scan_plain(b, at, false)?;
                if b.get(stop) == Some(&b':') {
                    return None;
                }
                let text = Cow::Borrowed(&self.line[at..text_end]);
                Some((scalar(self.pos(at), text, true), text_end))
            }
        }
    }

    /// A one-line quoted scalar at byte `at`: its text and the byte after the closing quote.
    fn quoted(&self, at: usize) -> Option<(Cow<'a, str>, usize)> {
        let line = self.line;
        let b = line.as_bytes();
        let q = b[at];
        let mut i = at + 1;
        let mut doubled = false;
        loop {
            match b.get(i) {
                None => return None,
                Some(b'\\') if q == b'"' => return None,
                Some(&c) if c == q => {
                    if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                        doubled = true;
                        i += 2;
                        continue;
                    }
                    break;
                }
                Some(_) => i += 1,
            }
        }
        let inner = &line[at + 1..i];
        let text = if doubled {
            Cow::Owned(inner.replace("''", "'"))
        } else {
            Cow::Borrowed(inner)
        };
        Some((text, i + 1))
    }

    /// What follows a flow item at byte `i`: the next item after a comma (`false`), or the
    /// closing bracket, after a comma or not (`true`, with `i` at the bracket); `None` for
    /// anything else.
    fn flow_separator(&self, i: usize, close: u8) -> Option<(usize, bool)> {
        let b = self.line.as_bytes();
        match b.get(i) {
            Some(b',') => {
                let next = self.skip_spaces(i + 1);
                Some((next, b.get(next) == Some(&close)))
            }
            Some(&c) if c == close => Some((i, true)),
            _ => None,
        }
    }

    /// A flow collection or flow scalar at byte `at`, ending on this line.
    fn flow_node(&mut self, at: usize) -> Option<(Node<'a>, usize)> {
        let b = self.line.as_bytes();
        match b.get(at) {
            Some(b'[') => {
                self.enter()?;
                let start = self.items.len();
                let mut i = self.skip_spaces(at + 1);
                if b.get(i) != Some(&b']') {
                    loop {
                        let (item, end) = self.flow_node(i)?;
                        self.items.push(item);
                        let done;
                        (i, done) = self.flow_separator(self.skip_spaces(end), b']')?;
                        if done {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                let node = Node {
                    pos: self.pos(at),
                    value: Value::Seq(take_from(&mut self.items, start)),
                };
                Some((node, i + 1))
            }
            Some(b'{') => {
                self.enter()?;
                let start = self.entries.len();
                let mut i = self.skip_spaces(at + 1);
                if b.get(i) != Some(&b'}') {
                    loop {
                        let (key, colon) = self.flow_key(i)?;
                        let v = self.skip_spaces(colon + 1);
                        let (value, end) = match b.get(v) {
                            Some(b',' | b'}') => (null(self.pos(colon)), v),
                            _ => self.flow_node(v)?,
                        };
                        self.entries.push((key, value));
                        let done;
                        (i, done) = self.flow_separator(self.skip_spaces(end), b'}')?;
                        if done {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                if has_duplicate_key(&self.entries[start..]) {
                    return None;
                }
                let node = Node {
                    pos: self.pos(at),
                    value: Value::Map(take_from(&mut self.entries, start)),
                };
                Some((node, i + 1))
            }
            Some(b'\'' | b'"') => {
                let (text, end) = self.quoted(at)?;
                Some((scalar(self.pos(at), text, false), end))
            }
            _ => {
                let (text_end, _) = scan_plain(b, at, true)?;
                let text = Cow::Borrowed(&self.line[at..text_end]);
                Some((scalar(self.pos(at), text, true), text_end))
            }
        }
    }

    /// A flow mapping key at byte `at`, followed by `: `: the key and the byte of its `:`.
    fn flow_key(&self, at: usize) -> Option<(Key<'a>, usize)> {
        let b = self.line.as_bytes();
        let (text, end) = match b.get(at) {
            Some(b'\'' | b'"') => self.quoted(at)?,
            _ => {
                let (text_end, stop) = scan_plain(b, at, true)?;
                (Cow::Borrowed(&self.line[at..text_end]), stop)
            }
        };
        if end - at > MAX_KEY_BYTES
            || text == "<<"
            || b.get(end) != Some(&b':')
            || b.get(end + 1) != Some(&b' ')
        {
            return None;
        }
        Some((
            Key {
                text,
                pos: self.pos(at),
            },
            end,
        ))
    }
}

/// A plain scalar starting at byte `at` of a line: the end of its text (trailing spaces
/// dropped) and the byte where scanning stopped (end of line, `:` of a `: `, a comment, or in
/// flow context a flow indicator). `None` when the scalar is not certainly plain here.
// Inlined: every scalar and key goes through here, and at each call `flow` is a constant.
#[inline(always)]
fn scan_plain(b: &[u8], at: usize, flow: bool) -> Option<(usize, usize)> {
    let first = *b.get(at)?;
    match first {
        // `-1`, `--fast`: a dash that is not an entry indicator.
        b'-' if b
            .get(at + 1)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') => {}
        b'-' | b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!'
        | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' | b' ' => return None,
        _ => {}
    }
    let stops = if flow { &FLOW_STOPS } else { &BLOCK_STOPS };
    let mut i = at;
    loop {
        // Most bytes of a scalar are none of the few that can end it.
        while i < b.len() && !stops[usize::from(b[i])] {
            i += 1;
        }
        let Some(&c) = b.get(i) else { break };
        match c {
            b':' => {
                let n = b.get(i + 1);
                if n.is_none_or(|&n| {
                    n == b' ' || (flow && matches!(n, b',' | b'[' | b']' | b'{' | b'}'))
                }) {
                    break;
                }
            }
            b'#' if b[i - 1] == b' ' => break,
            b'#' => {}
            // Flow indicators end a scalar in flow context. Inside a block scalar they are
            // legal, but rare enough to leave to the general path.
            _ if flow => break,
            _ => return None,
        }
        i += 1;
    }
    let mut end = i;
    while end > at && b[end - 1] == b' ' {
        end -= 1;
    }
    (end > at).then_some((end, i))
}

/// Bytes that may end a plain scalar (or make this reader give up), in flow and block context.
const FLOW_STOPS: [bool; 256] = stops(b":#,[]{}");
const BLOCK_STOPS: [bool; 256] = stops(b":#[]{}");

const fn stops(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

fn scalar(pos: Pos, text: Cow<'_, str>, plain: bool) -> Node<'_> {
    Node {
        pos,
        value: Value::Scalar(Scalar { text, plain }),
    }
}

fn null<'a>(pos: Pos) -> Node<'a> {
    scalar(pos, Cow::Borrowed("~"), true)
}

#[cfg(test)]
mod tests {
    //! The differential proof: whenever the fast reader answers, the general path gives the
    //! same tree (every position, every text, every plain flag) and no diagnostic.
    #![allow(clippy::unwrap_used)]

    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::super::yaml::{decode, parse_general};
    use super::*;

    /// Where two trees first differ, or `None` when they are the same.
    fn diff(a: &Node<'_>, b: &Node<'_>, path: &str) -> Option<String> {
        if a.pos != b.pos {
            return Some(format!("{path}: position {:?} vs {:?}", a.pos, b.pos));
        }
        match (&a.value, &b.value) {
            (Value::Scalar(x), Value::Scalar(y)) => (x.text != y.text || x.plain != y.plain)
                .then(|| format!("{path}: scalar {x:?} vs {y:?}")),
            (Value::Seq(x), Value::Seq(y)) => {
                if x.len() != y.len() {
                    return Some(format!("{path}: {} items vs {}", x.len(), y.len()));
                }
                x.iter()
                    .zip(y)
                    .enumerate()
                    .find_map(|(i, (p, q))| diff(p, q, &format!("{path}[{i}]")))
            }
            (Value::Map(x), Value::Map(y)) => {
                if x.len() != y.len() {
                    return Some(format!("{path}: {} entries vs {}", x.len(), y.len()));
                }
                x.iter().zip(y).find_map(|((kx, vx), (ky, vy))| {
                    if kx.text != ky.text || kx.pos != ky.pos {
                        return Some(format!(
                            "{path}: key {:?}@{:?} vs {:?}@{:?}",
                            kx.text, kx.pos, ky.text, ky.pos
                        ));
                    }
                    diff(vx, vy, &format!("{path}.{}", kx.text))
                })
            }
            _ => Some(format!("{path}: different kinds")),
        }
    }

    /// Checks the promise on one input; true when the fast reader answered.
    fn check(text: &str) -> bool {
        let Some(fast) = parse_fast(text) else {
            return false;
        };
        let (general, diags) = parse_general(text);
        assert!(
            diags.is_empty(),
            "fast reader accepted a document the general path reports: {diags:?}\n---\n{text}"
        );
        let general = general.unwrap_or_else(|| panic!("general path has no tree\n---\n{text}"));
        if let Some(d) = diff(&fast, &general, "") {
            panic!("fast vs general: {d}\n---\n{text}");
        }
        true
    }

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        out
    }

    fn texts(dir: &str) -> Vec<(PathBuf, String)> {
        files_in(&root().join(dir))
            .into_iter()
            .filter_map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                let text = decode(&bytes).ok()?.to_owned();
                Some((p, text))
            })
            .collect()
    }

    /// `tests/vm/scale/gen.sh` output for a few services (its full, weight and replace parts).
    fn scale_texts(n: usize) -> Vec<(PathBuf, String)> {
        // Tests run on threads of one process: each call needs its own directory, or one
        // test's gen.sh deletes the files another is writing or reading.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("lvsctl-fast-{}-{n}-{call}", std::process::id()));
        let status = std::process::Command::new("bash")
            .arg(root().join("tests/vm/scale/gen.sh"))
            .arg(n.to_string())
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        let mut out = Vec::new();
        for part in ["full", "weight", "replace"] {
            for p in files_in(&dir.join(part)) {
                out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    fn real_inputs() -> Vec<(PathBuf, String)> {
        let mut all = texts("examples");
        all.extend(texts("manifests"));
        all.extend(scale_texts(12));
        all.retain(|(p, _)| p.extension().is_some_and(|e| e == "yaml"));
        all
    }

    #[test]
    fn newlines_are_found_where_a_byte_scan_finds_them() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for len in 0..70 {
            for _ in 0..40 {
                let text: Vec<u8> = (0..len)
                    .map(|_| match r.below(6) {
                        0 => b'\n',
                        1 => 0x8a,
                        2 => 0x0b,
                        3 => 0x09,
                        _ => b'a' + r.below(26) as u8,
                    })
                    .collect();
                for start in 0..=len {
                    let want = text[start..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(len, |i| start + i);
                    assert_eq!(find_newline(&text, start), want, "{text:?} from {start}");
                }
            }
        }
    }

    #[test]
    fn real_manifests_take_the_fast_path_and_agree() {
        let all = real_inputs();
        assert!(all.len() >= 6, "{all:?}");
        for (p, text) in &all {
            assert!(check(text), "{} did not take the fast path", p.display());
        }
    }

    #[test]
    fn corpora_agree() {
        let mut taken = 0;
        let mut all = texts("tests/bad-manifests");
        all.extend(texts("tests/fuzz-corpus/manifest"));
        assert!(all.len() > 50);
        for (_, text) in &all {
            taken += usize::from(check(text));
        }
        // Most bad manifests are well-formed YAML with a wrong field: read fast.
        assert!(taken > 10, "{taken}");
    }

    #[test]
    fn positions_of_the_subset() {
        let docs = [
            "a: 1\nb:\n  c: x\n",
            "a:\nb: 2\n",
            "a:   \n\n  # c\nb: 2\n",
            "a:",
            "a: # c\n",
            "x:\n  a:\n",
            "- b: 1\n  c:\n",
            "k:\n- 1\n- 2\n",
            "k:\n- {a: 1}\n- 2\nj: 3\n",
            "k:\n-   x: 1\n    y: 2\n",
            "k:\n- - a\n  - b\n",
            "k:\n  - 1\n  - {a: b, c: [1, 2]}\n",
            "k: [a, b]\nz: {a: b}\n",
            "k: [ a , b , ]\nz: { a: b , c: }\n",
            "k: ['a', \"b\"]\n'q': \"x\"\n",
            "é: ü\nab: 'é' # ä\nc: [é, {ü: 'ö'}]\n",
            "---\na: 1\n",
            "--- # c\na: 1\n",
            "- - a\n  - b\n- - - c\n",
            "- k: v\n  l:\n    - 1\n",
            "v: [2001:db8::1, a:b, -1, --fast]\n",
            "a: b # c\nd: e#f\n",
            "a: []\nb: {}\n",
            "a: 'it''s'\n",
            "a :  b  \n",
            "a: x, y\n",
            "a: -1\n",
            "# head\n\nservices:\n  - name: x # n\n    real_servers:\n      - {address: 10.0.0.1, port: 80}\n",
        ];
        for d in docs {
            assert!(check(d), "not read fast: {d:?}");
        }
    }

    #[test]
    fn outside_the_subset_goes_to_the_general_path() {
        let docs = [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: |\n  x\n",
            "a: >\n  x\n",
            "a: b\n  c\n",
            "a: 'b\n  c'\n",
            "? a\n: b\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "a: 1\n...\n",
            "a: 1\r\n",
            "a:\t1\n",
            "a: 1\na: 2\n",
            "<<: {a: 1}\n",
            "a: \"x\\ty\"\n",
            "a: @x\n",
            "a: `x\n",
            "-\n- a\n",
            "a: b: c\n",
            "a: [1,\n  2]\n",
            "a: [b: 1]\n",
            "a: {b, c: 1}\n",
            "just a scalar\n",
            "",
            "# only a comment\n",
        ];
        for d in docs {
            assert!(parse_fast(d).is_none(), "read fast: {d:?}");
        }
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(parse_fast(&format!("a: {deep}\n")).is_none());
    }

    /// A tiny deterministic generator: proptest supplies the seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
        fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
            from[self.below(from.len())]
        }
    }

    /// Scalars manifests hold, and scalars next to the subset's edges (most of the latter
    /// must send the document to the general path, or be read the same way by both).
    const SCALARS: &[&str] = &[
        "a",
        "web",
        "80",
        "-1",
        "1.5",
        "~",
        "null",
        "true",
        "10.0.0.1",
        "2001:db8::1",
        "a:b",
        "'x'",
        "\"x y\"",
        "'it''s'",
        "''",
        "\"\"",
        "a,b",
        "--fast",
        "-.inf",
        "é",
        "ü x",
        "a b",
        "日本",
        "a#b",
        "'#'",
        "\"'\"",
        "a  b",
        "\u{a0}x",
        "0x1F",
        "a\\b",
        "/healthz",
        "1500ms",
    ];
    const TRICKY: &[&str] = &[
        "a #b",
        "\"a\\nb\"",
        "{",
        "}",
        "[",
        "]",
        "x: y",
        "&a",
        "*a",
        "!t",
        "|",
        ">",
        "-",
        "- a",
        "?",
        "? a",
        "<<",
        "%x",
        "@x",
        "`x",
        "a:",
        ":a",
        "a[1]",
        "#",
        "'a'b",
        "x\u{2028}y",
        "-x",
        "?x",
        ":x",
        "a\u{85}b",
    ];
    const KEYS: &[&str] = &[
        "a",
        "b",
        "name",
        "port",
        "a b",
        "'q'",
        "\"d\"",
        "é",
        "a:b",
        "-k",
        "1",
        "~",
        "'a'",
        "k#",
        "'k''s'",
        "\"e f\"",
        "real_servers",
        "ü",
    ];
    const TRICKY_KEYS: &[&str] = &["<<", "[k]", "? k", "&k", "k:", "-", "{k}", "'k", "k #"];

    fn scalar_text(r: &mut Rng) -> &'static str {
        if r.chance(5) {
            ""
        } else if r.chance(5) {
            r.pick(TRICKY)
        } else {
            r.pick(SCALARS)
        }
    }

    fn key_text(r: &mut Rng) -> &'static str {
        if r.chance(4) {
            r.pick(TRICKY_KEYS)
        } else {
            r.pick(KEYS)
        }
    }

    enum Tree {
        Scalar(&'static str),
        Seq(Vec<Tree>),
        Map(Vec<(&'static str, Tree)>),
    }

    fn tree(r: &mut Rng, depth: usize) -> Tree {
        let kind = match depth {
            0 => 1 + r.below(2),
            1..4 => r.below(3),
            _ => 0,
        };
        let len = r.below(4) + usize::from(depth == 0);
        match kind {
            0 => Tree::Scalar(scalar_text(r)),
            1 => Tree::Seq((0..len).map(|_| tree(r, depth + 1)).collect()),
            _ => Tree::Map(
                (0..len)
                    .map(|_| (key_text(r), tree(r, depth + 1)))
                    .collect(),
            ),
        }
    }

    fn flow(r: &mut Rng, t: &Tree, out: &mut String) {
        let sp = |r: &mut Rng| {
            if r.chance(15) {
                "  "
            } else if r.chance(10) {
                ""
            } else {
                " "
            }
        };
        match t {
            Tree::Scalar(s) => out.push_str(s),
            Tree::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(sp(r));
                    }
                    flow(r, item, out);
                }
                if r.chance(10) {
                    out.push(',');
                }
                out.push(']');
            }
            Tree::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(sp(r));
                    }
                    out.push_str(k);
                    out.push(':');
                    out.push_str(sp(r));
                    flow(r, v, out);
                }
                out.push('}');
            }
        }
    }

    fn line_end(r: &mut Rng, out: &mut String) {
        if r.chance(10) {
            out.push_str(r.pick(&[" # c", "  #x", "#y", " ", " # é"]));
        }
        out.push('\n');
        if r.chance(8) {
            out.push_str(r.pick(&["\n", "# comment\n", "   # deep\n", "  \n"]));
        }
    }

    /// Writes `t` as the value that follows `key:` or `- ` (the cursor is after the indicator).
    fn value(r: &mut Rng, t: &Tree, indent: usize, in_map: bool, out: &mut String) {
        match t {
            Tree::Scalar(s) => {
                if !s.is_empty() {
                    out.push(' ');
                }
                out.push_str(s);
                line_end(r, out);
            }
            _ if r.chance(30) => {
                out.push(' ');
                flow(r, t, out);
                line_end(r, out);
            }
            Tree::Seq(items) if items.is_empty() => out.push_str(" []\n"),
            Tree::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
            Tree::Seq(_) if in_map && r.chance(40) => {
                line_end(r, out);
                block(r, t, indent, out);
            }
            _ if !in_map && r.chance(90) => {
                // Compact: the first entry on the dash's line.
                let extra = 1 + r.below(2);
                out.push_str(&" ".repeat(extra));
                block_inline(r, t, indent + 1 + extra, out);
            }
            _ => {
                line_end(r, out);
                let deeper = indent + 1 + r.below(3);
                block(r, t, deeper, out);
            }
        }
    }

    fn block(r: &mut Rng, t: &Tree, indent: usize, out: &mut String) {
        out.push_str(&" ".repeat(indent));
        block_inline(r, t, indent, out);
    }

    /// A block collection whose first entry starts at the cursor, at column `indent`.
    fn block_inline(r: &mut Rng, t: &Tree, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match t {
            Tree::Scalar(s) => {
                out.push_str(s);
                line_end(r, out);
            }
            Tree::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&pad);
                    }
                    out.push('-');
                    value(r, item, indent, false, out);
                }
                if items.is_empty() {
                    out.push_str("[]\n");
                }
            }
            Tree::Map(entries) => {
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&pad);
                    }
                    out.push_str(k);
                    out.push_str(if r.chance(5) { " :" } else { ":" });
                    value(r, v, indent, true, out);
                }
                if entries.is_empty() {
                    out.push_str("{}\n");
                }
            }
        }
    }

    fn document(seed: u64) -> String {
        let mut r = Rng(seed | 1);
        let t = tree(&mut r, 0);
        let mut out = String::new();
        if r.chance(10) {
            out.push_str("---\n");
        }
        if r.chance(20) {
            out.push_str("# generated\n");
        }
        block(&mut r, &t, 0, &mut out);
        out
    }

    const MUTATIONS: &[char] = &[
        ' ', ':', '-', '#', '\'', '"', '[', ']', '{', '}', ',', '\n', '\t', '&', '*', '!', '|',
        '>', '?', 'é', 'a', '1', '\\', '%', '\r', '.',
    ];

    fn mutate(text: &str, seed: u64) -> String {
        let mut r = Rng(seed | 1);
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..1 + r.below(3) {
            let at = r.below(chars.len() + 1);
            let c = MUTATIONS[r.below(MUTATIONS.len())];
            match r.below(3) {
                0 => chars.insert(at, c),
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                _ if at < chars.len() => chars[at] = c,
                _ => chars.push(c),
            }
        }
        chars.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 6000, ..ProptestConfig::default() })]

        #[test]
        fn generated_documents_agree(seed in any::<u64>()) {
            check(&document(seed));
        }

        #[test]
        fn mutated_documents_agree(seed in any::<u64>(), m in any::<u64>()) {
            check(&mutate(&document(seed), m));
        }
    }

    #[test]
    fn generated_documents_mostly_take_the_fast_path() {
        let taken = (1..2000u64)
            .filter(|&s| check(&document(s.wrapping_mul(0x9e37_79b9_7f4a_7c15))))
            .count();
        // Many generated documents hold a scalar outside the subset; a good share must not.
        assert!(taken > 600, "{taken}");
    }

    #[test]
    fn mutated_real_manifests_agree() {
        let mut inputs = real_inputs();
        inputs.extend(texts("tests/bad-manifests"));
        let mut seed = 0x1234_5678_u64;
        for (_, text) in &inputs {
            for _ in 0..300 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                check(&mutate(text, seed));
            }
        }
    }
}
