//! Source locations and the diagnostics a manifest produces.

use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// Where something was written: file (as the caller named it), 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: Arc<str>,
    pub line: usize,
    pub column: usize,
}

/// `manifests/web.yaml:12:17`.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a manifest. Displays as `<file>:<line>:<col>: <field.path>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}:{column}: {path}: {message}")]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Field path such as `services[0].real_servers[1].weight`; `document` for the file as a
    /// whole (empty file, invalid UTF-8, not a mapping).
    pub path: String,
    pub message: String,
}

/// Every problem found in a set of manifest files, one per line when displayed, ordered by
/// file (in the order given), then line and column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// How many diagnostics are kept at most; a generated file with a systematic mistake should
    /// not turn into a million-line error report.
    pub const MAX: usize = 1000;

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics while reading; sorted and capped by [`Sink::finish`].
#[derive(Debug, Default)]
pub(crate) struct Sink {
    /// (source index, diagnostic, emission order)
    items: Vec<(usize, Diagnostic)>,
    dropped: usize,
}

impl Sink {
    pub fn push(&mut self, source: usize, loc: &Location, path: &str, message: String) {
        self.push_at(source, &loc.file, loc.line, loc.column, path, message);
    }

    pub fn push_at(
        &mut self,
        source: usize,
        file: &str,
        line: usize,
        column: usize,
        path: &str,
        message: String,
    ) {
        if self.items.len() >= 10 * Diagnostics::MAX {
            self.dropped += 1;
            return;
        }
        self.items.push((
            source,
            Diagnostic {
                file: file.to_owned(),
                line,
                column,
                path: if path.is_empty() {
                    "document".to_owned()
                } else {
                    path.to_owned()
                },
                message,
            },
        ));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds what `later` collected after what this sink holds, as if it had been pushed here
    /// (the same cap, the same order).
    pub fn append(&mut self, later: Sink) {
        let room = (10 * Diagnostics::MAX).saturating_sub(self.items.len());
        let kept = later.items.len().min(room);
        self.dropped += later.dropped + (later.items.len() - kept);
        self.items.extend(later.items.into_iter().take(kept));
    }

    pub fn finish(mut self) -> Diagnostics {
        // Stable: diagnostics at the same place keep the order they were found in.
        self.items
            .sort_by(|(sa, a), (sb, b)| (sa, a.line, a.column).cmp(&(sb, b.line, b.column)));
        let total = self.items.len() + self.dropped;
        let mut out: Vec<Diagnostic> = self
            .items
            .into_iter()
            .take(Diagnostics::MAX)
            .map(|(_, d)| d)
            .collect();
        if total > Diagnostics::MAX
            && let Some(last) = out.last().cloned()
        {
            out.push(Diagnostic {
                message: format!(
                    "stopping after {} errors ({} more not shown)",
                    Diagnostics::MAX,
                    total - Diagnostics::MAX
                ),
                path: "document".to_owned(),
                ..last
            });
        }
        Diagnostics(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(sink: &mut Sink, source: usize, n: usize) {
        for i in 0..n {
            sink.push_at(source, "f.yaml", i + 1, 1, "", format!("problem {i}"));
        }
    }

    #[test]
    fn appending_sinks_is_pushing_into_one() {
        let cap = 10 * Diagnostics::MAX;
        for sizes in [
            vec![0, 3, 2],
            vec![cap - 1, 5, 0, 2],
            vec![cap + 7, 4],
            vec![3, cap + 2, 9],
        ] {
            let mut one = Sink::default();
            let mut merged = Sink::default();
            for (source, n) in sizes.iter().enumerate() {
                pushed(&mut one, source, *n);
                let mut own = Sink::default();
                pushed(&mut own, source, *n);
                merged.append(own);
            }
            assert_eq!(merged.items, one.items, "{sizes:?}");
            assert_eq!(merged.dropped, one.dropped, "{sizes:?}");
            assert_eq!(merged.finish(), one.finish());
        }
    }
}
