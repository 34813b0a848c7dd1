//! Request rules and route rules (0004, steps 1 and 2, and "Route rules", "Paths"): what is
//! refused before any token is looked at, and a configuration the edge cannot trust.

use reqwest::Method;
use serde_json::json;
use tokio::task::JoinSet;

use crate::harness::{
    Edge, EdgeConfig, ROUTES, Setup, Stack, assert_passed, assert_refusal, detail, edge_tools,
    routes,
};

#[tokio::test]
async fn blocked_methods_are_method_not_allowed() {
    let setup = Setup::new().var("PORTCULLIS_BLOCKED_METHODS", "TRACE,CONNECT,DELETE,PATCH");
    let Some(stack) = Stack::start(setup).await else {
        return;
    };
    let tokens = stack.login().await;

    // Before the route rule: even a public route, even with a valid token.
    let trace = stack
        .edge
        .raw(b"TRACE /public/x HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n".to_vec())
        .await;
    assert_refusal(&trace, 405, "method_not_allowed");
    let delete = stack
        .edge
        .request(Method::DELETE, "/api/orders/1")
        .bearer_auth(&tokens.access_token);
    assert_refusal(&stack.edge.send(delete).await, 405, "method_not_allowed");
    // `PATCH` is no method the runtime normalises; blocked all the same.
    let bearer = format!("Bearer {}", tokens.access_token);
    let request = |method: &str| {
        format!(
            "{method} /api/orders/1 HTTP/1.1\r\nHost: edge\r\nAuthorization: {bearer}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    let patch = stack.edge.raw(request("PATCH")).await;
    assert_refusal(&patch, 405, "method_not_allowed");
    // Other spellings: workerd's HTTP server itself answers 501 to a method it does not know
    // (it knows only upper-case names), so they never reach the worker; if one ever did, the
    // worker compares methods case-insensitively (0004, "Decisions": methods).
    for method in ["patch", "Delete", "trace"] {
        let response = stack.edge.raw(request(method)).await;
        match response.status {
            405 => assert_refusal(&response, 405, "method_not_allowed"),
            501 => {}
            _ => panic!("{method}: want 405 (or the runtime's 501), got {response:?}"),
        }
    }
    assert_eq!(stack.origin.count(), 0, "{}", stack.origin.summary());

    let get = stack
        .edge
        .get_bearer("/api/orders/1", &tokens.access_token)
        .await;
    assert_passed(&get);
}

/// The built-in default block list is `TRACE,CONNECT` (0004, "Configuration"); wrangler.toml
/// spells it out too, so the variable is removed to see the worker's own default.
#[tokio::test]
async fn trace_is_blocked_by_default() {
    let Some(stack) = Stack::start(Setup::new().without("PORTCULLIS_BLOCKED_METHODS")).await else {
        return;
    };
    let trace = stack
        .edge
        .raw(b"TRACE /healthz HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n".to_vec())
        .await;
    assert_refusal(&trace, 405, "method_not_allowed");
    assert_eq!(stack.origin.count(), 0);
}

#[tokio::test]
async fn blocked_paths_are_forbidden_whatever_the_route_rule_says() {
    let blocked = json!(["/public/internal/**", "/api/*/debug"]).to_string();
    let setup = Setup::new().var("PORTCULLIS_BLOCKED_PATHS", &blocked);
    let Some(stack) = Stack::start(setup).await else {
        return;
    };
    let tokens = stack.login().await;

    assert_refusal(
        &stack.edge.get("/public/internal/metrics").await,
        403,
        "forbidden",
    );
    assert_refusal(&stack.edge.get("/public/internal").await, 403, "forbidden");
    // Patterns see decoded segments, as rules do: an encoded letter does not dodge them.
    let encoded = stack.edge.raw_get("/public/%69nternal/metrics", &[]).await;
    assert_refusal(&encoded, 403, "forbidden");
    let debug = stack
        .edge
        .get_bearer("/api/orders/debug", &tokens.access_token)
        .await;
    assert_refusal(&debug, 403, "forbidden");
    assert_eq!(stack.origin.count(), 0, "{}", stack.origin.summary());

    // Neighbours of the blocked patterns are not blocked.
    assert_passed(&stack.edge.get("/public/internals").await);
    let ok = stack
        .edge
        .get_bearer("/api/orders/debug/more", &tokens.access_token)
        .await;
    assert_passed(&ok);
}

#[tokio::test]
async fn unmatched_requests_are_denied_by_default() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let tokens = stack.login().await;

    assert_refusal(&stack.edge.get("/elsewhere").await, 403, "forbidden");
    assert_refusal(&stack.edge.get("/").await, 403, "forbidden");
    // `/admin/**` only names POST, PUT and DELETE: a GET matches no rule at all.
    let get_admin = stack
        .edge
        .get_bearer("/admin/users", &tokens.access_token)
        .await;
    assert_refusal(&get_admin, 403, "forbidden");
    // Literal segments are case-sensitive: `/API/x` is not `/api/x`.
    let upper = stack
        .edge
        .get_bearer("/API/orders", &tokens.access_token)
        .await;
    assert_refusal(&upper, 403, "forbidden");
    // `**` as the last segment matches zero segments too, so `/public` is public.
    assert_passed(&stack.edge.get("/public").await);
    assert_eq!(stack.origin.count(), 1, "{}", stack.origin.summary());
}

/// Rules match percent-decoded segments, as origins route on them: an encoded letter is no
/// way around a rule (0004, "Decisions": paths).
#[tokio::test]
async fn encoded_letters_meet_the_rule_they_decode_to() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let tokens = stack.login().await;

    let api = stack.edge.raw_get("/%61pi/orders", &[]).await;
    assert_refusal(&api, 401, "unauthenticated");
    let bearer = format!("Bearer {}", tokens.access_token);
    let post = |target: &str| {
        format!(
            "POST {target} HTTP/1.1\r\nHost: edge\r\nAuthorization: {bearer}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    for target in ["/%61dmin/users", "/admin/%75sers", "/%61%64%6D%69%6E/users"] {
        let response = stack.edge.raw(post(target)).await;
        assert_refusal(&response, 403, "forbidden");
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("insufficient_scope"),
            "{target}: want the users:write rule's refusal, got {response:?}"
        );
    }
    // `A` is not `a`: `/Admin/users` matches no rule, so it is denied by default.
    assert_refusal(
        &stack.edge.raw(post("/%41dmin/users")).await,
        403,
        "forbidden",
    );
    assert_eq!(stack.origin.count(), 0, "{}", stack.origin.summary());

    assert_passed(&stack.edge.raw_get("/public/%61bc", &[]).await);
}

/// A rule that lists `GET` decides `HEAD` too: a `HEAD` must never reach a resource through a
/// weaker rule further down (0004, "Decisions": methods).
#[tokio::test]
async fn head_is_decided_by_the_get_rule() {
    let rules = routes(&[
        json!({"path": "/secret/**", "methods": ["GET"], "permission": "secrets:read"}),
        json!({"path": "/**", "access": "public"}),
    ]);
    let Some(stack) = Stack::start(Setup::new().var("PORTCULLIS_ROUTES", &rules)).await else {
        return;
    };
    let tokens = stack.login().await;

    let head = stack
        .edge
        .send(stack.edge.request(Method::HEAD, "/secret/x"))
        .await;
    assert_eq!(head.status, 401, "{head:?}");
    let head = stack
        .edge
        .request(Method::HEAD, "/secret/x")
        .bearer_auth(&tokens.access_token);
    assert_eq!(stack.edge.send(head).await.status, 403);
    assert_eq!(stack.origin.count(), 0, "{}", stack.origin.summary());

    // The public rule still serves other methods there, and HEAD elsewhere.
    let post = stack.edge.request(Method::POST, "/secret/x");
    assert_passed(&stack.edge.send(post).await);
    let head = stack
        .edge
        .send(stack.edge.request(Method::HEAD, "/open"))
        .await;
    assert_eq!(head.status, 200, "{head:?}");
}

/// Paths the edge and the origin could read differently are refused before any rule sees
/// them (0004, "Paths"). Written raw: a URL library would normalise most of them away.
#[tokio::test]
async fn paths_not_in_normal_form_are_refused() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };

    let strict = [
        "/public//x",
        "//public/x",
        "/public/a%2Fb",
        "/public/a%2fb",
        "/public/a%5Cb",
        "/public/a%5cb",
        "/public/a%2Eb",
        "/public/a%2eb",
        "/public/a%25b",
        "/public/a%252Fb",
        // 0004 "Decisions": path parameters, broken escapes, encoded controls, not UTF-8.
        "/public/a;b",
        "/public/a%3Bb",
        "/public/a%3bb",
        "/public/a%zzb",
        "/public/a%2",
        "/public/a%00b",
        "/public/a%0Ab",
        "/public/a%FFb",
    ];
    for target in strict {
        let response = stack.edge.raw_get(target, &[]).await;
        assert_refusal(&response, 400, "invalid_request");
        assert_eq!(stack.origin.count(), 0, "{target} reached the origin");
    }
}

/// workerd itself resolves `.` and `..` segments (also as `%2e`, and `\` as `/`) before the
/// worker runs, as the WHATWG URL parser does, so 0004's 400 for them cannot be observed under
/// workerd; what must hold either way is that no such path slips past a rule. Each target
/// below climbs from a public prefix into an authenticated one: without a token it must be
/// refused (400 as 0004 says, or 401 as the resolved path's rule says), never forwarded.
#[tokio::test]
async fn dot_segments_never_climb_out_of_a_public_prefix() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };

    let climbing = [
        "/public/../api/orders",
        "/public/%2e%2e/api/orders",
        "/public/%2E%2E/api/orders",
        "/public/.%2e/api/orders",
        "/public/./../api/orders",
        "/public\\..\\api\\orders",
    ];
    for target in climbing {
        let response = stack.edge.raw_get(target, &[]).await;
        match response.status {
            400 => assert_refusal(&response, 400, "invalid_request"),
            401 => assert_refusal(&response, 401, "unauthenticated"),
            _ => panic!("{target}: want 400 or 401, got {response:?}"),
        }
        assert_eq!(stack.origin.count(), 0, "{target} reached the origin");
    }

    // A dot segment that stays inside the public prefix: refused, or forwarded resolved.
    let response = stack.edge.raw_get("/public/a/./b/../c", &[]).await;
    if response.status == 200 {
        assert_eq!(stack.origin.last().path, "/public/a/c", "{response:?}");
    } else {
        assert_refusal(&response, 400, "invalid_request");
    }
    for seen in stack.origin.seen() {
        assert!(
            !seen.path.contains("/.") && !seen.path.to_ascii_lowercase().contains("%2e"),
            "a dot segment reached the origin: {seen:?}"
        );
    }
}

#[tokio::test]
async fn oversized_request_head_is_headers_too_large() {
    let setup = Setup::new().var("PORTCULLIS_MAX_HEADER_BYTES", "2048");
    let Some(stack) = Stack::start(setup).await else {
        return;
    };

    let small = "s".repeat(1000);
    assert_passed(
        &stack
            .edge
            .raw_get("/public/x", &[("X-Filler", &small)])
            .await,
    );
    assert_eq!(stack.origin.count(), 1);

    let large = "l".repeat(3000);
    let response = stack
        .edge
        .raw_get("/public/x", &[("X-Filler", &large)])
        .await;
    assert_refusal(&response, 431, "headers_too_large");
    // Many small headers add up the same way.
    let line = "m".repeat(100);
    let many: Vec<(String, &str)> = (0..30)
        .map(|i| (format!("X-Many-{i}"), line.as_str()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let response = stack.edge.raw_get("/public/x", &many).await;
    assert_refusal(&response, 431, "headers_too_large");
    // A long request line counts too.
    let target = format!("/public/x?q={}", "q".repeat(3000));
    assert_refusal(
        &stack.edge.raw_get(&target, &[]).await,
        431,
        "headers_too_large",
    );
    assert_eq!(stack.origin.count(), 1, "{}", stack.origin.summary());
}

/// A POST of `body` to a public route, framed by `Content-Length` or in 256-byte chunks.
fn post(path: &str, body: &[u8], chunked: bool) -> Vec<u8> {
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n");
    if chunked {
        request.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut bytes = request.into_bytes();
        for chunk in body.chunks(256) {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        bytes
    } else {
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }
}

#[tokio::test]
async fn oversized_body_is_payload_too_large_declared_or_counted() {
    let setup = Setup::new().var("PORTCULLIS_MAX_BODY_BYTES", "1024");
    let Some(stack) = Stack::start(setup).await else {
        return;
    };

    for chunked in [false, true] {
        let response = stack
            .edge
            .raw(post("/public/upload", &[b'a'; 1000], chunked))
            .await;
        assert_passed(&response);
        let seen = stack.origin.last();
        assert_eq!(seen.body_len, Some(1000), "chunked {chunked}: {seen:?}");
        assert_eq!(seen.method, "POST");
    }
    let before = stack.origin.count();

    for chunked in [false, true] {
        let response = stack
            .edge
            .raw(post("/public/upload", &[b'b'; 4096], chunked))
            .await;
        assert_refusal(&response, 413, "payload_too_large");
        assert_eq!(
            stack.origin.count(),
            before,
            "chunked {chunked}: the oversized body reached the origin: {}",
            stack.origin.summary()
        );
    }

    // A declared length over the limit is refused before any body arrives.
    let head = b"POST /public/upload HTTP/1.1\r\nHost: edge\r\nContent-Length: 1048576\r\n\
                 Connection: close\r\n\r\n"
        .to_vec();
    assert_refusal(&stack.edge.raw(head).await, 413, "payload_too_large");
    assert_eq!(stack.origin.count(), before);
}

/// Starts one worker per configuration (at once: most of the time is workerd starting) and
/// returns each answer to `GET /healthz`, in order.
async fn healthz_under(configs: Vec<EdgeConfig>) -> Vec<crate::support::Response> {
    let mut tasks = JoinSet::new();
    for (index, config) in configs.into_iter().enumerate() {
        tasks.spawn(async move {
            let edge = Edge::start(&config).await;
            (index, edge.get("/healthz").await)
        });
    }
    let mut answers = tasks.join_all().await;
    answers.sort_by_key(|(index, _)| *index);
    answers.into_iter().map(|(_, response)| response).collect()
}

/// A configuration with everything required; nothing listens at either URL, and nothing needs
/// to: a misconfigured edge answers before it forwards or fetches anything.
fn configured() -> EdgeConfig {
    EdgeConfig::empty()
        .var("PORTCULLIS_ORIGIN_URL", "http://127.0.0.1:9")
        .var("PORTCULLIS_ISSUER_URL", "http://127.0.0.1:9")
        .var("PORTCULLIS_ROUTES", ROUTES)
}

/// 0004: "A document that does not parse, an unknown member, a malformed permission or
/// pattern is `edge_misconfigured`, never a silently skipped rule."
#[tokio::test]
async fn invalid_route_rules_are_edge_misconfigured() {
    if edge_tools().is_none() {
        return;
    }
    let public = json!({"path": "/healthz", "access": "public"});
    let documents = [
        "not json [".to_owned(),
        json!({"path": "/healthz", "access": "public"}).to_string(),
        routes(&[
            json!({"path": "/x", "access": "public", "cache": true}),
            public.clone(),
        ]),
        routes(&[json!({"path": "/x", "permission": "users"}), public.clone()]),
        routes(&[
            json!({"path": "/x", "permission": "users:write:all"}),
            public.clone(),
        ]),
        routes(&[
            json!({"path": "/x", "access": "public", "permission": "a:b"}),
            public.clone(),
        ]),
        routes(&[json!({"path": "/x"}), public.clone()]),
        routes(&[json!({"path": "/x", "access": "admin"}), public.clone()]),
        routes(&[
            json!({"path": "/a/**/b", "access": "public"}),
            public.clone(),
        ]),
        routes(&[json!({"path": "x/y", "access": "public"}), public.clone()]),
        routes(&[
            json!({"path": "/x", "methods": "GET", "access": "public"}),
            public.clone(),
        ]),
        routes(&[
            public.clone(),
            json!({"path": "/x", "access": "public", "extra": 1}),
        ]),
    ];
    let configs = documents
        .iter()
        .map(|document| configured().var("PORTCULLIS_ROUTES", document))
        .collect();

    let answers = healthz_under(configs).await;
    for (document, response) in documents.iter().zip(&answers) {
        assert_refusal(response, 503, "edge_misconfigured");
        assert!(
            detail(response).contains("PORTCULLIS_ROUTES"),
            "the detail must name the variable; document {document}: {response:?}"
        );
        assert!(
            !response.text.contains(document.as_str()),
            "the refusal repeats the document: {response:?}"
        );
    }
}

#[tokio::test]
async fn missing_or_invalid_variables_are_edge_misconfigured() {
    if edge_tools().is_none() {
        return;
    }
    let cases = [
        (
            "PORTCULLIS_ORIGIN_URL",
            configured().without("PORTCULLIS_ORIGIN_URL"),
        ),
        (
            "PORTCULLIS_ISSUER_URL",
            configured().without("PORTCULLIS_ISSUER_URL"),
        ),
        (
            "PORTCULLIS_ROUTES",
            configured().without("PORTCULLIS_ROUTES"),
        ),
        (
            "PORTCULLIS_ORIGIN_URL",
            configured().var("PORTCULLIS_ORIGIN_URL", "ftp://127.0.0.1/secret-path"),
        ),
        (
            "PORTCULLIS_LEEWAY_SECS",
            configured().var("PORTCULLIS_LEEWAY_SECS", "61"),
        ),
        (
            "PORTCULLIS_REVOCATION_STALE_MODE",
            configured().var("PORTCULLIS_REVOCATION_STALE_MODE", "sometimes"),
        ),
        (
            "PORTCULLIS_MAX_BODY_BYTES",
            configured().var("PORTCULLIS_MAX_BODY_BYTES", "lots"),
        ),
        (
            "PORTCULLIS_BLOCKED_PATHS",
            configured().var("PORTCULLIS_BLOCKED_PATHS", "/admin"),
        ),
        (
            "PORTCULLIS_HS256_KEYS",
            configured().var("PORTCULLIS_HS256_KEYS", "[{\"kid\": \"k\"}]"),
        ),
        // 0004 "Decisions": configuration values.
        (
            "PORTCULLIS_ORIGIN_URL",
            configured().var("PORTCULLIS_ORIGIN_URL", "http://127.0.0.1:9/secret-path"),
        ),
        (
            "PORTCULLIS_ORIGIN_URL",
            configured().var("PORTCULLIS_ORIGIN_URL", "http://user:sometimes@127.0.0.1:9"),
        ),
        (
            "PORTCULLIS_ISSUER_URL",
            configured().var("PORTCULLIS_ISSUER_URL", "http://127.0.0.1:9?secret-path"),
        ),
        (
            "PORTCULLIS_REVOCATION_INTERVAL_MS",
            configured().var("PORTCULLIS_REVOCATION_INTERVAL_MS", "99"),
        ),
        (
            "PORTCULLIS_JWKS_MAX_AGE_SECS",
            configured().var("PORTCULLIS_JWKS_MAX_AGE_SECS", "0"),
        ),
        (
            "PORTCULLIS_HS256_KEYS",
            configured()
                .var("PORTCULLIS_JWKS_URL", "off")
                .without("PORTCULLIS_HS256_KEYS"),
        ),
    ];
    let configs = cases.iter().map(|(_, config)| config.clone()).collect();

    let answers = healthz_under(configs).await;
    for ((variable, _), response) in cases.iter().zip(&answers) {
        assert_refusal(response, 503, "edge_misconfigured");
        assert!(
            detail(response).contains(variable),
            "the detail must name {variable}: {response:?}"
        );
        assert!(
            !response.text.contains("secret-path") && !response.text.contains("sometimes"),
            "the refusal repeats a value: {response:?}"
        );
    }
}
