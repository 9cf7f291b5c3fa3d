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
