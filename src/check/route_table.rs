//! `route` declarations, compiled: HTTP method + normalised path → action and resource.
//!
//! Templates are matched by a radix tree (`matchit`), one per method plus one for `*`, so a
//! lookup costs the length of the path, not the number of routes. Precedence:
//!
//! 1. a route for the request's method beats a `*` route, whatever their templates (a `GET`
//!    route also answers `HEAD`, unless a `HEAD` route matches);
//! 2. within one method, a literal segment beats a `{param}`, which beats a final `{*rest}`.
//!
//! Two routes that could match the same path with the same precedence (`/a/{x}` and `/a/{y}`,
//! or one template declared twice) are a check error, never resolved by declaration order.
//!
//! Paths are normalised before matching, as a gateway routes them: `//` and `.` segments
//! vanish, `..` removes the segment before it, percent-encoded unreserved characters are
//! decoded, and a trailing `/` is dropped (`/admin/` is `/admin`: most upstreams serve both
//! alike, so both must meet the same route). What could be read two ways is refused, never
//! guessed: an encoded `/` or `\`, an encoded or raw NUL or control character, an encoded `.`
//! that makes a `.`/`..` segment, a `..` above the root, malformed percent-escapes, a `;`
//! (path parameters, which some servers strip and others keep), a `#` (a fragment has no
//! place in a request target; some servers cut it off, others keep it in the path), and a
//! segment that ends in `.` (some servers strip trailing dots). With [`Case::Ignore`] the path
//! is matched with its ASCII letters lower-cased, for upstreams that ignore case.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

/// One segment of a path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    /// `{name}`: exactly one segment.
    Param(String),
    /// `{*name}`: the rest of the path (last segment only).
    Rest(String),
}

/// Why a path template is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("a route path starts with `/`")]
    NotAbsolute,
    #[error("a route path does not end with `/`")]
    TrailingSlash,
    #[error("a route path has no empty segment (`//`)")]
    EmptySegment,
    #[error("`{0}` cannot be a segment: paths are normalised before matching")]
    DotSegment(String),
    #[error("`{0}`: a parameter is a whole segment, `{{name}}`")]
    PartialParameter(String),
    #[error("`{0}`: a parameter name is a letter or `_` followed by letters, digits or `_`")]
    ParameterName(String),
    #[error("`{0}`: a `{{*rest}}` parameter must be the last segment")]
    RestNotLast(String),
    #[error("parameter `{0}` is captured twice")]
    CapturedTwice(String),
    #[error(
        "`{segment}`: `{character}` cannot stand in a literal segment (write it percent-encoded only if it is not unreserved; braces only around a whole parameter; no `;` path parameters)"
    )]
    Character { segment: String, character: char },
    #[error(
        "`{0}`: a segment cannot end with `.` (such paths are refused: some servers strip trailing dots)"
    )]
    TrailingDot(String),
}

/// Parses a path template: `/albums/{album}/photos/{*rest}`.
pub(crate) fn parse_template(template: &str) -> Result<Vec<Segment>, TemplateError> {
    let Some(body) = template.strip_prefix('/') else {
        return Err(TemplateError::NotAbsolute);
    };
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let last = index + 1 == parts.len();
        if part.is_empty() {
            if last {
                return Err(TemplateError::TrailingSlash);
            }
            return Err(TemplateError::EmptySegment);
        }
        if *part == "." || *part == ".." {
            return Err(TemplateError::DotSegment(part.to_string()));
        }
        if let Some(inner) = part.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return Err(TemplateError::PartialParameter(part.to_string()));
            };
            let (rest, name) = match inner.strip_prefix('*') {
                Some(name) => (true, name),
                None => (false, inner),
            };
            if !is_param_name(name) {
                return Err(TemplateError::ParameterName(part.to_string()));
            }
            if rest && !last {
                return Err(TemplateError::RestNotLast(part.to_string()));
            }
            if segments
                .iter()
                .any(|s| matches!(s, Segment::Param(n) | Segment::Rest(n) if n == name))
            {
                return Err(TemplateError::CapturedTwice(name.to_string()));
            }
            segments.push(if rest {
                Segment::Rest(name.to_string())
            } else {
                Segment::Param(name.to_string())
            });
            continue;
        }
        if let Some(bad) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,=:@".contains(*c)))
        {
            return Err(TemplateError::Character {
                segment: part.to_string(),
                character: bad,
            });
        }
        if part.ends_with('.') {
            return Err(TemplateError::TrailingDot(part.to_string()));
        }
        segments.push(Segment::Literal(part.to_string()));
    }
    Ok(segments)
}

fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True for a method name the route table accepts: an HTTP token (`GET`, `PROPFIND`).
pub(crate) fn is_method(method: &str) -> bool {
    !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A value a route fills in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Param(Box<str>),
    Literal(Box<str>),
}

/// One compiled route.
#[derive(Clone, Debug)]
pub struct Route {
    /// `None` for `*`.
    pub method: Option<Box<str>>,
    pub template: Box<str>,
    pub action: Arc<str>,
    pub resource_type: Arc<str>,
    pub resource_id: Part,
    pub properties: Vec<(Arc<str>, Part)>,
    /// `file:line`, for logs.
    pub location: Arc<str>,
}

/// A route that matched, with its decoded parameters.
#[derive(Debug)]
pub struct Matched<'r> {
    pub route: &'r Route,
    pub params: Vec<(&'r str, String)>,
}

impl Matched<'_> {
    /// The text a [`Part`] stands for.
    pub fn fill<'a>(&'a self, part: &'a Part) -> Option<&'a str> {
        match part {
            Part::Literal(text) => Some(text),
            Part::Param(name) => self
                .params
                .iter()
                .find(|(n, _)| *n == name.as_ref())
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// Why a path was refused before matching.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with `/`")]
    NotAbsolute,
    #[error("malformed percent-escape")]
    BadEscape,
    #[error("an encoded `/` or `\\` is ambiguous")]
    EncodedSeparator,
    #[error("an encoded `.` in a dot segment is ambiguous")]
    EncodedDot,
    #[error("NUL or a control character in the path")]
    Control,
    #[error("`..` above the root")]
    AboveRoot,
    #[error("a parameter is not UTF-8 once decoded")]
    NotUtf8,
    #[error("a `;` path parameter is ambiguous (some servers strip it, others keep it)")]
    PathParameter,
    #[error("a `#` in the request target is ambiguous (some servers cut it off, others keep it)")]
    Fragment,
    #[error("a segment that ends with `.` is ambiguous (some servers strip trailing dots)")]
    TrailingDot,
    #[error("{0}, once the case of the path is ignored (`routes_ignore_case`)")]
    CaseConflict(InsertError),
}

/// Why a route cannot join a [`RouteTable`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("`{template}` is routed twice")]
    Twice { template: String },
    #[error("`{template}` and `{with}` match the same paths with the same precedence")]
    Overlap { template: String, with: String },
    /// A template the router refuses that [`parse_template`] let through.
    #[error(transparent)]
    Router(matchit::InsertError),
}

/// Why a gateway's call makes no AuthZEN request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("path `{target}` refused: {reason}")]
    Refused { target: String, reason: PathError },
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("the route's resource id is not captured")]
    Uncaptured,
}

/// Whether route literals compare with the path's case, or without it (`routes_ignore_case`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Case {
    #[default]
    Sensitive,
    /// ASCII letters compare lower-cased, parameters included: the upstream reads `/Admin/X` as
    /// `/admin/x`, and so does the policy.
    Ignore,
}

/// Every declared route, indexed for matching.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    by_method: HashMap<Box<str>, matchit::Router<usize>>,
    any: matchit::Router<usize>,
    /// The same routes with their literal segments lower-cased, built on the first
    /// [`Case::Ignore`] lookup; `Err` when two routes differ only by case.
    folded: std::sync::OnceLock<Result<Box<RouteTable>, InsertError>>,
}

impl RouteTable {
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Adds a route; on a conflict, returns the index of the route it conflicts with (when
    /// known) and why.
    pub fn insert(&mut self, route: Route) -> Result<(), (Option<usize>, InsertError)> {
        let key = route.template.to_string();
        self.insert_as(route, key)
    }

    /// Adds a route under `key`, its template as the router matches it.
    fn insert_as(&mut self, route: Route, key: String) -> Result<(), (Option<usize>, InsertError)> {
        parse_template(&key).map_err(|e| (None, e.into()))?;
        let index = self.routes.len();
        let router = match &route.method {
            Some(method) => self.by_method.entry(method.clone()).or_default(),
            None => &mut self.any,
        };
        if let Err(error) = router.insert(key, index) {
            let other = match &error {
                matchit::InsertError::Conflict { with } => self
                    .routes
                    .iter()
                    .position(|r| r.method == route.method && r.template.as_ref() == with),
                _ => None,
            };
            let message = match error {
                matchit::InsertError::Conflict { with } if with == route.template.as_ref() => {
                    InsertError::Twice {
                        template: route.template.to_string(),
                    }
                }
                matchit::InsertError::Conflict { with } => InsertError::Overlap {
                    template: route.template.to_string(),
                    with,
                },
                other => InsertError::Router(other),
            };
            return Err((other, message));
        }
        self.routes.push(route);
        Ok(())
    }

    /// The table that matches paths lower-cased: every literal segment lower-cased.
    fn folded(&self) -> Result<&RouteTable, PathError> {
        let folded = self.folded.get_or_init(|| {
            let mut table = RouteTable::default();
            for route in &self.routes {
                let key = route
                    .template
                    .split('/')
                    .map(|segment| {
                        if segment.starts_with('{') {
                            segment.to_string()
                        } else {
                            segment.to_ascii_lowercase()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                table
                    .insert_as(route.clone(), key)
                    .map_err(|(_, message)| message)?;
            }
            Ok(Box::new(table))
        });
        match folded {
            Ok(table) => Ok(table),
            Err(error) => Err(PathError::CaseConflict(error.clone())),
        }
    }

    /// Finds the route for a method and a path that [`normalize`] returned (with `case`).
    pub(crate) fn lookup_in(
        &self,
        case: Case,
        method: &str,
        path: &str,
    ) -> Result<Option<Matched<'_>>, PathError> {
        match case {
            Case::Sensitive => self.lookup(method, path),
            Case::Ignore => self.folded()?.lookup(method, path),
        }
    }

    /// Finds the route for a method and a path that [`normalize`] returned.
    pub fn lookup(&self, method: &str, path: &str) -> Result<Option<Matched<'_>>, PathError> {
        let at = |method: &str| {
            self.by_method
                .get(method)
                .and_then(|router| router.at(path).ok())
        };
        // HEAD is GET without the body: a GET route answers it unless a HEAD route does.
        let found = at(method)
            .or_else(|| if method == "HEAD" { at("GET") } else { None })
            .or_else(|| self.any.at(path).ok());
        let Some(found) = found else {
            return Ok(None);
        };
        let Some(route) = self.routes.get(*found.value) else {
            return Ok(None);
        };
        let mut params = Vec::with_capacity(found.params.len());
        for (name, raw) in found.params.iter() {
            let name = route_param_name(route, name);
            params.push((name, decode_param(raw)?));
        }
        Ok(Some(Matched { route, params }))
    }
}

/// The parameter name as stored in the route (borrowed from it, not from the path).
fn route_param_name<'r>(route: &'r Route, name: &str) -> &'r str {
    let template: &'r str = &route.template;
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|s| s.trim_start_matches('*'))
        .find(|s| *s == name)
        .unwrap_or("")
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// ASCII letters lower-cased, except the hex digits of percent-escapes (which stay as
/// [`normalize`] writes them).
pub(crate) fn fold_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut escape = 0;
    for c in path.chars() {
        if escape > 0 {
            escape -= 1;
            out.push(c);
        } else if c == '%' {
            escape = 2;
            out.push(c);
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Normalises a request target (path, with any query) the way a gateway routes it, to the
/// form routes match: the query is dropped, and so is a trailing `/`; with [`Case::Ignore`],
/// ASCII letters are lower-cased.
pub fn normalize_in(case: Case, target: &str) -> Result<String, PathError> {
    let path = normalize(target)?;
    Ok(match case {
        Case::Sensitive => path,
        Case::Ignore => fold_case(&path),
    })
}

/// Normalises a request target (path, with any query) the way a gateway routes it. The query
/// is dropped, and so is a trailing `/` (the root stays `/`).
pub fn normalize(target: &str) -> Result<String, PathError> {
    if target.contains('#') {
        return Err(PathError::Fragment);
    }
    let path = target.split('?').next().unwrap_or_default();
    let Some(body) = path.strip_prefix('/') else {
        return Err(PathError::NotAbsolute);
    };
    if body.contains(';') {
        return Err(PathError::PathParameter);
    }
    let mut segments: Vec<String> = Vec::new();
    for raw in body.split('/') {
        let mut segment = String::with_capacity(raw.len());
        let mut encoded_dot = false;
        let bytes = raw.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == b'%' {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let decoded = h * 16 + l;
                match decoded {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0..=0x1f | 0x7f => return Err(PathError::Control),
                    b'.' => {
                        encoded_dot = true;
                        segment.push('.');
                    }
                    d if is_unreserved(d) => segment.push(char::from(d)),
                    d => {
                        segment.push('%');
                        segment.push(char::from(b"0123456789ABCDEF"[usize::from(d >> 4)]));
                        segment.push(char::from(b"0123456789ABCDEF"[usize::from(d & 15)]));
                    }
                }
                i += 3;
                continue;
            }
            if b < 0x20 || b == 0x7f {
                return Err(PathError::Control);
            }
            if b == b'\\' {
                return Err(PathError::EncodedSeparator);
            }
            // Multi-byte UTF-8 passes through as it is (the input is a `str`).
            let len = utf8_len(b);
            segment.push_str(raw.get(i..i + len).ok_or(PathError::NotUtf8)?);
            i += len;
        }
        match segment.as_str() {
            "" | "." if !encoded_dot => {}
            "." | ".." if encoded_dot => return Err(PathError::EncodedDot),
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            _ if segment.ends_with('.') => return Err(PathError::TrailingDot),
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// A matched parameter, fully percent-decoded (the path was normalised, so no encoded `/`
/// or NUL remains).
fn decode_param(raw: &str) -> Result<String, PathError> {
    if !raw.contains('%') {
        return Ok(raw.to_string());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathError::BadEscape);
            };
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

#[cfg(test)]
mod tests;
