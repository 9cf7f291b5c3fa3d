//! Route matching through the server: hundreds of routes, precedence, parameters as ids and
//! properties, unmatched paths, and a catch-all that lets the policy decide the rest.

use std::fmt::Write as _;

use crate::server::{PolicyDir, Reply, TestServer, config};

async fn ask(server: &TestServer, method: &str, uri: &str, user: &str) -> Reply {
    server
        .http
        .send(
            "GET",
            "/forward-auth/nginx",
            &[
                ("x-original-method", method),
                ("x-original-uri", uri),
                ("x-user", user),
            ],
            "",
        )
        .await
}

async fn start(policy: &str) -> (PolicyDir, TestServer) {
    let dir = PolicyDir::new(&[("routes.warden", policy)]);
    let mut config = config(&dir.path());
    config.watch = false;
    config.gateway.identity_header = Some("x-user".to_string());
    config.gateway.upstream_headers = vec![
        ("X-Action".to_string(), "action".to_string()),
        ("X-Resource".to_string(), "resource_id".to_string()),
        ("X-Route".to_string(), "route".to_string()),
    ];
    let server = TestServer::start(config).await;
    (dir, server)
}

#[tokio::test]
async fn hundreds_of_routes_with_precedence_and_parameters() {
    let mut policy = String::from(
        "entity User\nentity Item { properties: { svc?: String, owner?: User } }\n\
         action get, put, special, any on Item\n\
         allow get, special, any on Item\n\
         allow put on Item if resource.properties has owner and resource.properties.owner == subject\n",
    );
    for i in 0..300 {
        let _ = writeln!(
            policy,
            "route GET \"/svc{i}/items/{{item}}\" => get on Item::{{item}} with {{ svc: \"svc{i}\" }}"
        );
        let _ = writeln!(
            policy,
            "route PUT \"/svc{i}/users/{{user}}/items/{{item}}\" => put on Item::{{item}} with {{ owner: {{user}} }}"
        );
    }
    policy.push_str("route GET \"/svc7/items/special\" => special on Item::\"special\"\n");
    policy.push_str("route * \"/svc7/items/{item}\" => any on Item::{item}\n");
    let (_dir, server) = start(&policy).await;

    let reply = ask(&server, "GET", "/svc250/items/i-9", "alice").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-action"), Some("get"));
    assert_eq!(reply.header("x-resource"), Some("i-9"));
    assert_eq!(reply.header("x-route"), Some("/svc250/items/{item}"));
    // A literal segment beats a parameter; the request's method beats `*`.
    let special = ask(&server, "GET", "/svc7/items/special", "alice").await;
    assert_eq!(special.header("x-action"), Some("special"));
    let get = ask(&server, "GET", "/svc7/items/other", "alice").await;
    assert_eq!(get.header("x-action"), Some("get"));
    let any = ask(&server, "PATCH", "/svc7/items/other", "alice").await;
    assert_eq!(any.header("x-action"), Some("any"));
    // Parameters become properties: only the owner named in the path may put.
    assert_eq!(
        ask(&server, "PUT", "/svc3/users/alice/items/x", "alice")
            .await
            .status,
        200
    );
    assert_eq!(
        ask(&server, "PUT", "/svc3/users/bob/items/x", "alice")
            .await
            .status,
        403
    );
    // Decoded parameters: the id is `a b`.
    let spaced = ask(&server, "GET", "/svc1/items/a%20b", "alice").await;
    assert_eq!(spaced.header("x-resource"), Some("a b"));
    // Unmatched: unknown service, missing segment, wrong method.
    for (method, uri) in [
        ("GET", "/svc300/items/x"),
        ("GET", "/svc1/items"),
        ("DELETE", "/svc1/items/x"),
        ("GET", "/"),
    ] {
        assert_eq!(
            ask(&server, method, uri, "alice").await.status,
            403,
            "{method} {uri}"
        );
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_catch_all_route_lets_the_policy_decide_the_rest() {
    let policy = "entity User\nentity Path\naction access on Path\n\
        allow access on Path if subject == User::\"admin\"\n\
        allow access on Path if resource == Path::\"public/index.html\"\n\
        route * \"/{*path}\" => access on Path::{path}\n";
    let (_dir, server) = start(policy).await;
    assert_eq!(
        ask(&server, "GET", "/anything/at/all", "admin")
            .await
            .status,
        200
    );
    assert_eq!(
        ask(&server, "GET", "/anything/at/all", "bob").await.status,
        403
    );
    assert_eq!(
        ask(&server, "GET", "/public/index.html", "bob")
            .await
            .status,
        200
    );
    assert_eq!(
        ask(&server, "GET", "/public/./x/../index.html", "bob")
            .await
            .status,
        200
    );
    server.running.shutdown().await;
}

mod normal_form {
    use proptest::prelude::*;
    use warden::check::route_table::{Case, normalize, normalize_in};

    /// Paths made of the pieces that normalisation treats specially.
    fn path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("a".to_string()),
            Just("Admin".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("".to_string()),
            Just("%2e".to_string()),
            Just("%41".to_string()),
            Just("%c3%a9".to_string()),
            Just("x.".to_string()),
            Just("b;c".to_string()),
            Just("d#e".to_string()),
            Just("f.g".to_string()),
        ];
        prop::collection::vec(piece, 0..6).prop_map(|pieces| format!("/{}", pieces.join("/")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A trailing `/` never changes the normal form (nor whether the path is refused), the
        /// normal form is its own normal form, and ignoring case, the case of the letters
        /// written changes nothing.
        #[test]
        fn one_normal_form(path in path()) {
            let once = normalize(&path);
            prop_assert_eq!(&normalize(&format!("{path}/")), &once, "{}/", path);
            if let Ok(normal) = &once {
                prop_assert_eq!(normalize(normal), Ok(normal.clone()));
                prop_assert!(normal == "/" || !normal.ends_with('/'), "{}", normal);
            }
            let folded = normalize_in(Case::Ignore, &path);
            prop_assert_eq!(
                &normalize_in(Case::Ignore, &path.to_ascii_uppercase()),
                &folded,
                "{}",
                path
            );
            if let Ok(folded) = &folded {
                prop_assert_eq!(normalize_in(Case::Ignore, folded), Ok(folded.clone()));
            }
        }
    }
}
