//! The ground floor: source files, spans, and diagnostics shared by every stage.
//!
//! A [`SourceFile`] owns its text as `Arc<str>`, so syntax trees, diagnostics and compiled
//! programs can all point back into it without copying. A [`Span`] is a byte range inside one
//! file. A [`Diagnostic`] wraps any stage's `thiserror` + `miette` error together with the file
//! it points into, and renders either like rustc (human) or as JSON (editors and tools).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, Severity, SourceCode};
use serde::Serialize;

/// A byte range `start..end` inside one source file.
///
/// Spans are position metadata, not meaning: two spans always compare equal and hash alike, so
/// syntax trees that say the same thing are equal wherever they were written (as `syn` does).
/// Compare [`Span::range`] when the position itself matters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// The smallest span that covers both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Eq for Span {}

impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> miette::SourceSpan {
        (span.start as usize, span.len()).into()
    }
}

/// One policy or data file: its name as the user should see it, and its text.
#[derive(Clone)]
pub struct SourceFile {
    name: Arc<str>,
    text: Arc<str>,
    /// The byte offset of each line's start, computed on the first [`SourceFile::line_col`]:
    /// locating each of many rules or problems by scanning the text from its start would take
    /// time growing with the square of the file's size.
    line_starts: Arc<OnceLock<Box<[usize]>>>,
}

impl SourceFile {
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
            line_starts: Arc::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn shared_text(&self) -> Arc<str> {
        self.text.clone()
    }

    /// The text under `span`, or `""` if the span lies outside the file.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let (line, line_start) = self.line_of(offset);
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        (line + 1, column)
    }

    /// The 0-based line of a byte offset, and the offset where that line starts.
    fn line_of(&self, offset: usize) -> (usize, usize) {
        let starts = self.line_starts.get_or_init(|| {
            // Every unnamed rule's id asks for its line, so the first ask scans the whole
            // file: memchr finds the line ends many bytes at a time.
            std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', self.text.as_bytes()).map(|i| i + 1))
                .collect()
        });
        // The line starts at or before `offset`, less one, are the lines before it.
        let line = starts.partition_point(|&start| start <= offset).max(1) - 1;
        (line, starts.get(line).copied().unwrap_or(0))
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceFile({:?})", self.name)
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        // Only the text near the span is read: miette scans what it is given from its start
        // to find the context lines, and a data file of one long line would otherwise be
        // scanned whole, and shown whole, for every problem in it.
        let text: &'a str = &self.text;
        let from = char_boundary(text, span.offset().saturating_sub(CONTEXT_BYTES));
        let to = char_boundary(
            text,
            (span.offset() + span.len()).saturating_add(CONTEXT_BYTES),
        );
        let window = text.get(from..to).unwrap_or("");
        let inner = miette::SourceSpan::from((span.offset().saturating_sub(from), span.len()));
        let contents = window.read_span(&inner, context_lines_before, context_lines_after)?;
        // Back to positions in the whole file (0-based lines, byte columns, as miette counts).
        let (from_line, from_line_start) = self.line_of(from);
        let column = if contents.line() == 0 {
            from - from_line_start + contents.column()
        } else {
            contents.column()
        };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.to_string(),
            contents.data(),
            miette::SourceSpan::from((contents.span().offset() + from, contents.span().len())),
            from_line + contents.line(),
            column,
            contents.line_count(),
        )))
    }
}

/// The most bytes of text around a span that a rendered diagnostic reads on each side.
const CONTEXT_BYTES: usize = 512;

/// `offset`, or the nearest character boundary before it.
fn char_boundary(text: &str, offset: usize) -> usize {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Reads a file as UTF-8 text, naming it as given.
pub fn read_source(path: &Path, display_name: &str) -> Result<SourceFile, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|error| {
        Diagnostic::new(FileError::Unreadable {
            file: display_name.to_string(),
            reason: error.to_string(),
        })
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(display_name, text)),
        Err(error) => {
            let valid_up_to = error.utf8_error().valid_up_to();
            let bytes = error.into_bytes();
            let prefix = String::from_utf8_lossy(bytes.get(..valid_up_to).unwrap_or(&[]));
            let file = SourceFile::new(display_name, prefix.into_owned());
            let at = Span::new(valid_up_to, valid_up_to);
            Err(Diagnostic::in_file(
                FileError::NotUtf8 {
                    span: at,
                    offset: valid_up_to,
                },
                &file,
            ))
        }
    }
}

/// Problems with a file as a whole, before its contents mean anything.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum FileError {
    #[error("cannot read `{file}`: {reason}")]
    #[diagnostic(code(warden::io), help("check that the path exists and is readable"))]
    Unreadable { file: String, reason: String },
    #[error("file is not valid UTF-8 (first bad byte at offset {offset})")]
    #[diagnostic(
        code(warden::encoding),
        help("policy and data files must be UTF-8 text; is this a binary file?")
    )]
    NotUtf8 {
        #[label("invalid UTF-8 starts here")]
        span: Span,
        offset: usize,
    },
}

/// Any stage's error or warning, together with the file it points into.
pub struct Diagnostic {
    file: Option<SourceFile>,
    inner: Box<dyn miette::Diagnostic + Send + Sync + 'static>,
}

impl Diagnostic {
    /// A diagnostic about no file in particular (a bad flag, an unreadable directory).
    pub fn new(error: impl miette::Diagnostic + Send + Sync + 'static) -> Diagnostic {
        Diagnostic {
            file: None,
            inner: Box::new(error),
        }
    }

    /// A diagnostic whose labels point into `file`.
    pub(crate) fn in_file(
        error: impl miette::Diagnostic + Send + Sync + 'static,
        file: &SourceFile,
    ) -> Diagnostic {
        Diagnostic {
            file: Some(file.clone()),
            inner: Box::new(error),
        }
    }

    pub fn file(&self) -> Option<&SourceFile> {
        self.file.as_ref()
    }

    pub fn message(&self) -> String {
        self.inner.to_string()
    }

    pub fn is_error(&self) -> bool {
        !matches!(
            self.inner.severity(),
            Some(Severity::Warning) | Some(Severity::Advice)
        )
    }

    pub fn code(&self) -> Option<String> {
        self.inner.code().map(|c| c.to_string())
    }

    pub fn help_text(&self) -> Option<String> {
        self.inner.help().map(|h| h.to_string())
    }

    /// The first (primary) label's span, if any.
    pub fn primary_span(&self) -> Option<Span> {
        let mut labels = self.inner.labels()?;
        let first = labels.next()?;
        Some(Span::new(first.offset(), first.offset() + first.len()))
    }

    /// `file:line:column`, as editors and terminals link it.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        let (line, column) = match self.primary_span() {
            Some(span) => file.line_col(span.start as usize),
            None => return Some(file.name().to_string()),
        };
        Some(format!("{}:{line}:{column}", file.name()))
    }

    /// Renders like rustc: message, location, the source line with an underline, and help.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!("{}\n", self.message());
        }
        out
    }

    /// The machine-readable form, one object per diagnostic.
    pub fn to_json(&self) -> JsonDiagnostic {
        let (line, column) = match (&self.file, self.primary_span()) {
            (Some(file), Some(span)) => {
                let (l, c) = file.line_col(span.start as usize);
                (Some(l), Some(c))
            }
            _ => (None, None),
        };
        let (end_line, end_column) = match (&self.file, self.primary_span()) {
            (Some(file), Some(span)) => {
                let (l, c) = file.line_col(span.end as usize);
                (Some(l), Some(c))
            }
            _ => (None, None),
        };
        JsonDiagnostic {
            severity: if self.is_error() { "error" } else { "warning" },
            code: self.code(),
            message: self.message(),
            file: self.file.as_ref().map(|f| f.name().to_string()),
            line,
            column,
            end_line,
            end_column,
            label: self
                .inner
                .labels()
                .and_then(|mut labels| labels.next())
                .and_then(|label| label.label().map(str::to_string)),
            help: self.help_text(),
        }
    }
}

/// A diagnostic as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub severity: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub label: Option<String>,
    pub help: Option<String>,
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some(location) => write!(f, "{location}: {}", self.message()),
            None => write!(f, "{}", self.message()),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<Severity> {
        self.inner.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.url()
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        match &self.file {
            Some(file) => Some(file),
            None => self.inner.source_code(),
        }
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.inner.related()
    }
}

/// Sorts diagnostics by file and position so output is stable whatever order stages ran in.
pub fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    // Cached: a diagnostic's span is found by formatting its labels, too slow to redo at each
    // of the n log n comparisons when a data file has an error on every entity.
    diagnostics.sort_by_cached_key(|d| {
        (
            d.file().map(|f| f.name().to_string()),
            d.primary_span().map(|s| s.start),
        )
    });
}

/// The candidate closest to `name`, if one is close enough to be a plausible typo: "did you
/// mean `x`?" for every stage.
///
/// A candidate that differs only in letter case always wins; otherwise the edit distance (with
/// transpositions) must be at most a third of the name's length, and at least 1, so that short
/// names are not "corrected" into unrelated ones.
pub(crate) fn suggest<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'c str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let distance = if candidate.eq_ignore_ascii_case(name) {
            0
        } else {
            strsim::damerau_levenshtein(name, candidate)
        };
        if distance <= limit && best.is_none_or(|(d, c)| (distance, candidate) < (d, c)) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}
