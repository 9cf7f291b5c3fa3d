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
pub enum Segment {
    Literal(String),
    /// `{name}`: exactly one segment.
    Param(String),
    /// `{*name}`: the rest of the path (last segment only).
    Rest(String),
}

/// Parses a path template: `/albums/{album}/photos/{*rest}`.
pub fn parse_template(template: &str) -> Result<Vec<Segment>, String> {
    let Some(body) = template.strip_prefix('/') else {
        return Err("a route path starts with `/`".to_string());
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
                return Err("a route path does not end with `/`".to_string());
            }
            return Err("a route path has no empty segment (`//`)".to_string());
        }
        if *part == "." || *part == ".." {
            return Err(format!(
                "`{part}` cannot be a segment: paths are normalised before matching"
            ));
        }
        if let Some(inner) = part.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return Err(format!(
                    "`{part}`: a parameter is a whole segment, `{{name}}`"
                ));
            };
            let (rest, name) = match inner.strip_prefix('*') {
                Some(name) => (true, name),
                None => (false, inner),
            };
            if !is_param_name(name) {
                return Err(format!(
                    "`{part}`: a parameter name is a letter or `_` followed by letters, digits or `_`"
                ));
            }
            if rest && !last {
                return Err(format!(
                    "`{part}`: a `{{*rest}}` parameter must be the last segment"
                ));
            }
            if segments
                .iter()
                .any(|s| matches!(s, Segment::Param(n) | Segment::Rest(n) if n == name))
            {
                return Err(format!("parameter `{name}` is captured twice"));
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
            return Err(format!(
                "`{part}`: `{bad}` cannot stand in a literal segment (write it percent-encoded only if it is not unreserved; braces only around a whole parameter; no `;` path parameters)"
            ));
        }
        if part.ends_with('.') {
            return Err(format!(
                "`{part}`: a segment cannot end with `.` (such paths are refused: some servers strip trailing dots)"
            ));
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
pub fn is_method(method: &str) -> bool {
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
    CaseConflict(String),
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
    folded: std::sync::OnceLock<Result<Box<RouteTable>, String>>,
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
    pub fn insert(&mut self, route: Route) -> Result<(), (Option<usize>, String)> {
        let key = route.template.to_string();
        self.insert_as(route, key)
    }

    /// Adds a route under `key`, its template as the router matches it.
    fn insert_as(&mut self, route: Route, key: String) -> Result<(), (Option<usize>, String)> {
        parse_template(&key).map_err(|e| (None, e))?;
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
            let message = match &error {
                matchit::InsertError::Conflict { with } if with == route.template.as_ref() => {
                    format!("`{}` is routed twice", route.template)
                }
                matchit::InsertError::Conflict { with } => format!(
                    "`{}` and `{with}` match the same paths with the same precedence",
                    route.template
                ),
                other => other.to_string(),
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
            Err(message) => Err(PathError::CaseConflict(message.clone())),
        }
    }

    /// Finds the route for a method and a path that [`normalize`] returned (with `case`).
    pub fn lookup_in(
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
pub fn fold_case(path: &str) -> String {
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
mod tests {
    use super::*;

    fn route(method: Option<&str>, template: &str, action: &str) -> Route {
        let segments = parse_template(template).unwrap_or_default();
        let id = segments
            .iter()
            .rev()
            .find_map(|s| match s {
                Segment::Param(n) | Segment::Rest(n) => Some(Part::Param(n.as_str().into())),
                Segment::Literal(_) => None,
            })
            .unwrap_or(Part::Literal("all".into()));
        Route {
            method: method.map(Into::into),
            template: template.into(),
            action: action.into(),
            resource_type: "T".into(),
            resource_id: id,
            properties: Vec::new(),
            location: "test".into(),
        }
    }

    fn table(routes: &[(Option<&str>, &str, &str)]) -> RouteTable {
        let mut table = RouteTable::default();
        for (m, t, a) in routes {
            assert!(table.insert(route(*m, t, a)).is_ok(), "{t}");
        }
        table
    }

    fn action(table: &RouteTable, method: &str, path: &str) -> Option<(String, Vec<String>)> {
        let path = normalize(path).ok()?;
        let matched = table.lookup(method, &path).ok()??;
        Some((
            matched.route.action.to_string(),
            matched.params.iter().map(|(_, v)| v.clone()).collect(),
        ))
    }

    #[test]
    fn normalises_like_a_gateway() {
        assert_eq!(normalize("/a//b/./c/../d?x=1").as_deref(), Ok("/a/b/d"));
        assert_eq!(normalize("/").as_deref(), Ok("/"));
        assert_eq!(normalize("/a/").as_deref(), Ok("/a"));
        assert_eq!(normalize("/%61lbums/%7e%2Dx").as_deref(), Ok("/albums/~-x"));
        assert_eq!(normalize("/a/%20b").as_deref(), Ok("/a/%20b"));
        assert_eq!(normalize("/a/%c3%a9").as_deref(), Ok("/a/%C3%A9"));
        assert_eq!(normalize("/a/b/..").as_deref(), Ok("/a"));
        assert_eq!(normalize("/a/%2e%2e/b"), Err(PathError::EncodedDot));
        assert_eq!(normalize("/a/.%2E/b"), Err(PathError::EncodedDot));
        assert_eq!(normalize("/a/%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalize("/a/%5cb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalize("/a\\b"), Err(PathError::EncodedSeparator));
        assert_eq!(normalize("/a/%00"), Err(PathError::Control));
        assert_eq!(normalize("/a/\0"), Err(PathError::Control));
        assert_eq!(normalize("/a/%zz"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a/%4"), Err(PathError::BadEscape));
        assert_eq!(normalize("/../a"), Err(PathError::AboveRoot));
        assert_eq!(normalize("a"), Err(PathError::NotAbsolute));
        assert_eq!(normalize("/a/x%2ey").as_deref(), Ok("/a/x.y"));
    }

    #[test]
    fn one_normal_form_for_what_upstreams_read_alike() {
        // A trailing slash, however written, is the path without it.
        for path in [
            "/admin/",
            "/admin/.",
            "/admin//",
            "/admin/x/..",
            "/admin/./",
        ] {
            assert_eq!(normalize(path).as_deref(), Ok("/admin"), "{path}");
        }
        assert_eq!(normalize("//").as_deref(), Ok("/"));
        assert_eq!(normalize("/.").as_deref(), Ok("/"));
        // What some servers strip and others keep is refused.
        assert_eq!(
            normalize("/admin;jsessionid=x"),
            Err(PathError::PathParameter)
        );
        assert_eq!(normalize("/a;b/c"), Err(PathError::PathParameter));
        assert_eq!(normalize("/admin#x"), Err(PathError::Fragment));
        assert_eq!(normalize("/public#/../admin"), Err(PathError::Fragment));
        assert_eq!(normalize("/a?x=#"), Err(PathError::Fragment));
        assert_eq!(normalize("/admin."), Err(PathError::TrailingDot));
        assert_eq!(normalize("/admin./x"), Err(PathError::TrailingDot));
        assert_eq!(normalize("/admin%2e"), Err(PathError::TrailingDot));
        assert_eq!(normalize("/admin.../x"), Err(PathError::TrailingDot));
        // An encoded `;` is data, not a path parameter; a dot inside a segment is plain.
        assert_eq!(normalize("/a%3Bb").as_deref(), Ok("/a%3Bb"));
        assert_eq!(normalize("/a/b.c").as_deref(), Ok("/a/b.c"));
        assert_eq!(normalize("/a?x=;y").as_deref(), Ok("/a"));
        // Ignoring case lower-cases letters, not the hex digits of escapes.
        assert_eq!(
            normalize_in(Case::Ignore, "/Admin/%c3%A9X/").as_deref(),
            Ok("/admin/%C3%A9x")
        );
        assert_eq!(
            normalize_in(Case::Sensitive, "/Admin").as_deref(),
            Ok("/Admin")
        );
    }

    #[test]
    fn a_trailing_slash_meets_the_same_route() {
        let t = table(&[
            (None, "/admin", "admin"),
            (None, "/admin/{*rest}", "admin-rest"),
            (None, "/{*path}", "other"),
        ]);
        for path in ["/admin", "/admin/", "/admin/.", "/admin//", "/x/../admin/"] {
            assert_eq!(
                action(&t, "GET", path).map(|(a, _)| a).as_deref(),
                Some("admin"),
                "{path}"
            );
        }
        assert_eq!(
            action(&t, "GET", "/admin/users/"),
            Some(("admin-rest".into(), vec!["users".into()]))
        );
    }

    #[test]
    fn ignoring_case_matches_literals_and_lower_cases_parameters() {
        let t = table(&[
            (Some("GET"), "/Admin/{Item}", "admin"),
            (None, "/{*path}", "other"),
        ]);
        let folded = |path: &str| {
            let path = normalize_in(Case::Ignore, path).ok()?;
            let matched = t.lookup_in(Case::Ignore, "GET", &path).ok()??;
            Some((
                matched.route.action.to_string(),
                matched
                    .params
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>(),
            ))
        };
        for path in ["/admin/X", "/ADMIN/x", "/aDmIn/x/"] {
            assert_eq!(
                folded(path),
                Some(("admin".into(), vec!["Item=x".into()])),
                "{path}"
            );
        }
        assert_eq!(
            folded("/Public/Index.HTML"),
            Some(("other".into(), vec!["path=public/index.html".into()]))
        );
        // Case-sensitive, `/admin/x` is not the `/Admin` route.
        assert_eq!(
            action(&t, "GET", "/admin/x").map(|(a, _)| a).as_deref(),
            Some("other")
        );
        // Two routes that differ only by case cannot be told apart: every lookup is refused.
        let clash = table(&[(None, "/admin", "a"), (None, "/ADMIN", "b")]);
        assert!(matches!(
            clash.lookup_in(Case::Ignore, "GET", "/admin"),
            Err(PathError::CaseConflict(_))
        ));
        assert!(clash.lookup_in(Case::Sensitive, "GET", "/ADMIN").is_ok());
    }

    #[test]
    fn templates_are_validated() {
        assert!(parse_template("/albums/{album}/photos/{*rest}").is_ok());
        assert!(parse_template("/").is_ok());
        for bad in [
            "albums",
            "/a//b",
            "/a/",
            "/a/{x",
            "/a/x{y}",
            "/a/{*r}/b",
            "/a/{x}/{x}",
            "/a/{1x}",
            "/a/./b",
            "/a b",
            "/a;b",
            "/admin.",
            "/a/.../b",
        ] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn precedence_parameters_and_unmatched() {
        let t = table(&[
            (Some("GET"), "/albums/{album}", "view-album"),
            (Some("GET"), "/albums/new", "new-form"),
            (Some("GET"), "/albums/{album}/photos/{photo}", "view-photo"),
            (Some("DELETE"), "/albums/{album}", "delete"),
            (None, "/albums/{album}", "any"),
            (None, "/files/{*path}", "file"),
            (Some("GET"), "/files/readme", "readme"),
        ]);
        let got = |m, p| action(&t, m, p);
        assert_eq!(
            got("GET", "/albums/a1"),
            Some(("view-album".into(), vec!["a1".into()]))
        );
        assert_eq!(got("GET", "/albums/new"), Some(("new-form".into(), vec![])));
        assert_eq!(
            got("GET", "/albums/a%201/photos/p%2B1"),
            Some(("view-photo".into(), vec!["a 1".into(), "p+1".into()]))
        );
        assert_eq!(
            got("DELETE", "/albums/a1"),
            Some(("delete".into(), vec!["a1".into()]))
        );
        assert_eq!(
            got("PATCH", "/albums/a1"),
            Some(("any".into(), vec!["a1".into()]))
        );
        assert_eq!(
            got("HEAD", "/albums/a1"),
            Some(("view-album".into(), vec!["a1".into()]))
        );
        assert_eq!(
            got("PUT", "/files/a/b/c.txt"),
            Some(("file".into(), vec!["a/b/c.txt".into()]))
        );
        assert_eq!(got("GET", "/files/readme"), Some(("readme".into(), vec![])));
        assert_eq!(got("GET", "/albums"), None);
        assert_eq!(got("GET", "/albums/a1/photos"), None);
        assert_eq!(got("GET", "/nothing"), None);
        assert_eq!(
            got("GET", "/albums/x/../a1"),
            Some(("view-album".into(), vec!["a1".into()]))
        );
    }

    #[test]
    fn conflicts_are_refused() {
        let mut t = table(&[(Some("GET"), "/a/{x}", "a")]);
        assert!(t.insert(route(Some("GET"), "/a/{y}", "b")).is_err());
        assert!(t.insert(route(Some("GET"), "/a/{x}", "b")).is_err());
        assert!(t.insert(route(Some("POST"), "/a/{y}", "b")).is_ok());
        assert!(t.insert(route(None, "/a/{y}", "b")).is_ok());
        assert!(t.insert(route(Some("GET"), "/a/b", "b")).is_ok());
    }

    #[test]
    fn hundreds_of_routes() {
        let mut routes = Vec::new();
        for i in 0..500 {
            routes.push((
                Some("GET"),
                format!("/svc{i}/items/{{item}}"),
                format!("a{i}"),
            ));
            routes.push((Some("POST"), format!("/svc{i}/items"), format!("c{i}")));
        }
        let mut t = RouteTable::default();
        for (m, p, a) in &routes {
            assert!(t.insert(route(*m, p, a)).is_ok());
        }
        assert_eq!(t.len(), 1000);
        for i in [0, 1, 250, 499] {
            assert_eq!(
                action(&t, "GET", &format!("/svc{i}/items/x{i}")),
                Some((format!("a{i}"), vec![format!("x{i}")]))
            );
            assert_eq!(
                action(&t, "POST", &format!("/svc{i}/items")),
                Some((format!("c{i}"), vec![]))
            );
        }
        assert_eq!(action(&t, "GET", "/svc500/items/x"), None);
    }
}
