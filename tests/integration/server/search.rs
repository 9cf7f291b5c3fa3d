//! AuthZEN search: subjects, resources and actions, transitive and paginated.

use serde_json::{Value as JsonValue, json};

use super::*;

const SUBJECT: &str = "/access/v1/search/subject";
const RESOURCE: &str = "/access/v1/search/resource";
const ACTION: &str = "/access/v1/search/action";

async fn standard() -> (PolicyDir, TestServer) {
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        watch: false,
        ..config(&dir.path())
    })
    .await;
    (dir, server)
}

async fn results(server: &TestServer, path: &str, body: JsonValue) -> JsonValue {
    let reply = server.http.post_json(path, &body).await;
    assert_eq!(reply.status, 200, "{body}: {}", reply.body);
    assert!(reply.header("warden-policy-version").is_some());
    reply.json()
}

#[tokio::test]
async fn subject_search_is_transitive_through_groups() {
    let (_dir, server) = standard().await;
    // alice owns d1; bob reads through staff ⊂ readers; carol may not.
    let answer = results(
        &server,
        SUBJECT,
        json!({
            "subject": { "type": "User", "id": "ignored" },
            "action": { "name": "read" },
            "resource": entity("Doc", "d1"),
        }),
    )
    .await;
    assert_eq!(
        answer,
        json!({ "results": [entity("User", "alice"), entity("User", "bob")] })
    );
    // Only the searched type; `in` is reflexive and transitive, so both groups read.
    let answer = results(
        &server,
        SUBJECT,
        json!({ "subject": { "type": "Group" }, "action": { "name": "read" }, "resource": entity("Doc", "d1") }),
    )
    .await;
    assert_eq!(
        answer,
        json!({ "results": [entity("Group", "readers"), entity("Group", "staff")] })
    );
}

#[tokio::test]
async fn resource_search_pages_with_tokens() {
    let (_dir, server) = standard().await;
    let search = |token: Option<&str>| {
        let mut page = json!({ "limit": 2 });
        if let Some(token) = token {
            page["token"] = json!(token);
        }
        json!({
            "subject": entity("User", "bob"),
            "action": { "name": "read" },
            "resource": { "type": "Doc" },
            "page": page,
        })
    };
    let first = results(&server, RESOURCE, search(None)).await;
    assert_eq!(
        first["results"],
        json!([entity("Doc", "d1"), entity("Doc", "d2")])
    );
    assert_eq!(first["page"]["count"], 2);
    assert_eq!(first["page"]["total"], 3);
    let token = first["page"]["next_token"].as_str().unwrap().to_string();
    assert!(!token.is_empty());
    let second = results(&server, RESOURCE, search(Some(&token))).await;
    assert_eq!(second["results"], json!([entity("Doc", "d3")]));
    assert_eq!(second["page"]["next_token"], "");

    // Without `page`, everything fits in one answer of exactly the spec's fields.
    let mut all = search(None);
    all.as_object_mut().unwrap().remove("page");
    let answer = results(&server, RESOURCE, all.clone()).await;
    assert_eq!(
        answer,
        json!({ "results": [entity("Doc", "d1"), entity("Doc", "d2"), entity("Doc", "d3")] })
    );
    // A token belongs to its own search.
    let mut other = search(Some(&token));
    other["action"] = json!({ "name": "write" });
    let reply = server.http.post_json(RESOURCE, &other).await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("another search"), "{}", reply.body);
    let reply = server
        .http
        .post_json(RESOURCE, &search(Some("made-up")))
        .await;
    assert_eq!(reply.status, 400);
    for page in [json!({ "limit": 0 }), json!({ "limit": "2" }), json!(3)] {
        let mut body = search(None);
        body["page"] = page;
        assert_eq!(server.http.post_json(RESOURCE, &body).await.status, 400);
    }
}

#[tokio::test]
async fn the_server_caps_page_size() {
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        watch: false,
        search_page_limit: 1,
        ..config(&dir.path())
    })
    .await;
    // No page asked, but more results than a page holds: the answer says how to go on.
    let answer = results(
        &server,
        RESOURCE,
        json!({ "subject": entity("User", "carol"), "action": { "name": "read" }, "resource": { "type": "Doc" } }),
    )
    .await;
    assert_eq!(answer["results"], json!([entity("Doc", "d2")]));
    assert_eq!(answer["page"]["total"], 2);
    assert_ne!(answer["page"]["next_token"], "");
}

#[tokio::test]
async fn action_search_lists_the_allowed_declared_actions() {
    let (_dir, server) = standard().await;
    let search = |subject: &str, resource: &str, context: JsonValue| json!({ "subject": entity("User", subject), "resource": entity("Doc", resource), "context": context });
    let answer = results(&server, ACTION, search("alice", "d1", json!({}))).await;
    assert_eq!(
        answer,
        json!({ "results": [{ "name": "read" }, { "name": "write" }] })
    );
    let answer = results(&server, ACTION, search("bob", "d1", json!({}))).await;
    assert_eq!(answer, json!({ "results": [{ "name": "read" }] }));
    // Context counts; an `action` key, if sent, is ignored.
    let mut body = search("carol", "d1", json!({ "ok": true }));
    body["action"] = json!({ "name": "read" });
    let answer = results(&server, ACTION, body).await;
    assert_eq!(answer, json!({ "results": [{ "name": "write" }] }));
}

#[tokio::test]
async fn unknown_things_find_nothing() {
    let (_dir, server) = standard().await;
    for (path, body) in [
        // An unknown resource.
        (
            SUBJECT,
            json!({ "subject": { "type": "User" }, "action": { "name": "read" }, "resource": entity("Doc", "nope") }),
        ),
        // An unknown subject.
        (
            RESOURCE,
            json!({ "subject": entity("User", "mallory"), "action": { "name": "read" }, "resource": { "type": "Doc" } }),
        ),
        (
            ACTION,
            json!({ "subject": entity("User", "mallory"), "resource": entity("Doc", "d1") }),
        ),
        (
            ACTION,
            json!({ "subject": entity("User", "alice"), "resource": entity("Doc", "nope") }),
        ),
        // An unknown type or action.
        (
            RESOURCE,
            json!({ "subject": entity("User", "alice"), "action": { "name": "read" }, "resource": { "type": "Picture" } }),
        ),
        (
            SUBJECT,
            json!({ "subject": { "type": "Robot" }, "action": { "name": "read" }, "resource": entity("Doc", "d1") }),
        ),
        (
            RESOURCE,
            json!({ "subject": entity("User", "alice"), "action": { "name": "shred" }, "resource": { "type": "Doc" } }),
        ),
    ] {
        let reply = server.http.post_json(path, &body).await;
        assert_eq!(reply.status, 200, "{body}");
        assert_eq!(reply.json(), json!({ "results": [] }), "{path} {body}");
    }
}

#[tokio::test]
async fn malformed_searches_are_400() {
    let (_dir, server) = standard().await;
    for (path, body, expected) in [
        (
            SUBJECT,
            json!({ "action": { "name": "read" }, "resource": entity("Doc", "d1") }),
            "missing `subject`",
        ),
        (
            SUBJECT,
            json!({ "subject": { "id": "x" }, "action": { "name": "read" }, "resource": entity("Doc", "d1") }),
            "missing `subject.type`",
        ),
        (
            SUBJECT,
            json!({ "subject": { "type": "User" }, "resource": entity("Doc", "d1") }),
            "missing `action`",
        ),
        (
            SUBJECT,
            json!({ "subject": { "type": "User" }, "action": { "name": "read" }, "resource": { "type": "Doc" } }),
            "missing `resource.id`",
        ),
        (
            RESOURCE,
            json!({ "subject": { "type": "User" }, "action": { "name": "read" }, "resource": { "type": "Doc" } }),
            "missing `subject.id`",
        ),
        (
            RESOURCE,
            json!({ "subject": entity("User", "bob"), "action": { "name": 5 }, "resource": { "type": "Doc" } }),
            "`action.name` must be a string",
        ),
        (
            ACTION,
            json!({ "subject": entity("User", "bob") }),
            "missing `resource`",
        ),
        (
            ACTION,
            json!({ "subject": entity("User", "bob"), "resource": { "type": "Doc" } }),
            "missing `resource.id`",
        ),
        (
            ACTION,
            json!({ "subject": "bob", "resource": entity("Doc", "d1") }),
            "`subject` must be an object",
        ),
    ] {
        let reply = server.http.post_json(path, &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.body.contains(expected), "{body}: {}", reply.body);
    }
    let reply = server.http.post(RESOURCE, "not json").await;
    assert_eq!(reply.status, 400);
}

/// Results are written as the spec's examples write them, `type` before `id`, and `page` after
/// `results` with `next_token` first: interop harnesses compare the text.
#[tokio::test]
async fn results_are_written_type_first_byte_for_byte() {
    let (_dir, server) = standard().await;
    let reply = server
        .http
        .post(
            SUBJECT,
            r#"{"subject":{"type":"User"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"}}"#,
        )
        .await;
    assert_eq!(
        reply.body,
        r#"{"results":[{"type":"User","id":"alice"},{"type":"User","id":"bob"}]}"#
    );
    let reply = server
        .http
        .post(
            RESOURCE,
            r#"{"subject":{"type":"User","id":"carol"},"action":{"name":"read"},"resource":{"type":"Doc"},"page":{"limit":1}}"#,
        )
        .await;
    let (results, page) = reply.body.split_once(r#","page":"#).unwrap();
    assert_eq!(results, r#"{"results":[{"type":"Doc","id":"d2"}]"#);
    assert!(page.starts_with(r#"{"next_token":""#), "{page}");
    assert!(page.ends_with(r#"","count":1,"total":2}}"#), "{page}");
    let reply = server
        .http
        .post(
            ACTION,
            r#"{"subject":{"type":"User","id":"alice"},"resource":{"type":"Doc","id":"d1"}}"#,
        )
        .await;
    assert_eq!(
        reply.body,
        r#"{"results":[{"name":"read"},{"name":"write"}]}"#
    );
}
