//! Write routes and outbound requests against hostile input (issue 11, findings 5 and 6), through
//! the real handlers and the real dispatch path on the local stack:
//! * webhooks reach only public addresses: internal targets are refused when a subscription is
//!   created and again at delivery, and a redirect is a failed delivery, never followed;
//! * write bodies: NUL characters, invalid UTF-8, oversized bodies, strings and polygons, and
//!   filters naming nothing real are 400 / 413 naming the field; a per-owner cap on active
//!   subscriptions; the subscription list pages and leaves out deactivated ones by default.

mod support;

use lambda_http::Body;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use stormwater::sync::manifest::Source;
use support::{Harness, file_url, fixture, harness};

fn facilities() -> Source {
    Source {
        dataset: "smarts_industrial_facilities".into(),
        url: file_url(&fixture("violations/industrial_facilities.txt")),
        scope: None,
    }
}

fn monitoring() -> Source {
    Source {
        dataset: "smarts_industrial_monitoring".into(),
        url: file_url(&fixture("violations/industrial_cases.txt")),
        scope: None,
    }
}

/// Sends `body` as it is (text, base64-decoded binary or empty) through `function`.
async fn send_body(
    h: &Harness,
    function: &str,
    method: &str,
    path: &str,
    body: Body,
    key: &str,
) -> (u16, Value) {
    let req = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.test{path}"))
        .header("content-type", "application/json")
        .header(stormwater::auth::API_KEY_HEADER, key)
        .body(body)
        .expect("request");
    let (status, body, _) = h.call(function, req).await;
    (status, body)
}

async fn create_subscription(h: &Harness, body: Value, key: &str) -> (u16, Value) {
    h.send(
        "api-subscriptions",
        "POST",
        "/api/subscriptions",
        Some(body),
        Some(key),
    )
    .await
}

async fn list_subscriptions(h: &Harness, query: &str, key: &str) -> (u16, Value) {
    let uri = format!("https://api.test/api/subscriptions{query}");
    let req = lambda_http::http::Request::builder()
        .method("GET")
        .uri(&uri)
        .header(stormwater::auth::API_KEY_HEADER, key)
        .body(Body::Empty)
        .expect("request");
    let mut params: std::collections::HashMap<String, Vec<String>> = Default::default();
    if let Some(q) = req.uri().query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            params
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
    }
    use lambda_http::RequestExt;
    let req = req.with_query_string_parameters(params);
    let (status, body, _) = h.call("api-subscriptions", req).await;
    (status, body)
}

fn webhook_subscription(name: &str, url: &str) -> Value {
    json!({
        "name": name,
        "mode": "jurisdiction",
        "regions": ["4"],
        "delivery": "webhook",
        "webhookUrl": url,
        "webhookSecret": "a-long-enough-shared-secret",
    })
}

fn email_subscription(name: &str) -> Value {
    json!({
        "name": name,
        "mode": "jurisdiction",
        "counties": ["Los Angeles"],
        "delivery": "email",
        "email": "someone@example.org",
    })
}

/// `(status, error.parameter)` of an answer.
fn outcome(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["error"]["parameter"].as_str())
}

/// What the local receiver saw: method and path of every request.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A local HTTP receiver on 127.0.0.1: `POST /hook` answers 200, `/redirect` answers 302 to
/// `/internal` of the same server (which records what reaches it, as every route does).
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let internal = format!("{base}/internal");
    let store = seen.clone();
    let app =
        axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
            let store = store.clone();
            let internal = internal.clone();
            async move {
                store
                    .lock()
                    .expect("lock")
                    .push((method.to_string(), uri.path().to_owned()));
                if uri.path() == "/redirect" {
                    axum::response::Response::builder()
                        .status(302)
                        .header("location", internal)
                        .body(axum::body::Body::empty())
                        .expect("response")
                } else {
                    axum::response::Response::new(axum::body::Body::from("ok"))
                }
            }
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

/// Finding 5: every spelling of an internal address is refused when the subscription is
/// created, with a 400 naming `webhookUrl`, and nothing is stored.
#[tokio::test]
async fn webhook_urls_to_internal_addresses_are_refused_at_subscription_time() {
    let h = harness("write-safety-ssrf-create", None).await;
    let key = stormwater::auth::create_key(h.pool(), "attacker", "test")
        .await
        .expect("key");
    let refused = [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/meta-data/",
        "https://2852039166/latest/meta-data/",
        "https://0xa9fea9fe/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://metadata/computeMetadata/v1/",
        "https://10.0.0.1/hook",
        "https://172.16.5.4/hook",
        "https://192.168.1.1/hook",
        "https://100.100.100.200/latest/meta-data/",
        "http://127.0.0.1:9000/api/health",
        "https://127.0.0.1/hook",
        "https://127.1/hook",
        "https://0x7f.1/hook",
        "https://0177.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[::1]/hook",
        "http://[::1]:8080/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:a9fe:a9fe]/hook",
        "https://[::127.0.0.1]/hook",
        "https://[64:ff9b::a9fe:a9fe]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[2002:7f00:1::]/hook",
        "http://localhost:8080/hook",
        "https://localhost/hook",
        "https://LOCALHOST./hook",
        "https://hooks.localhost/hook",
        "https://224.0.0.1/hook",
        "https://255.255.255.255/hook",
        "https://198.18.0.1/hook",
        "https://user:pw@hooks.example.com/hook",
        "ftp://hooks.example.com/hook",
        "http://93.184.215.14/hook",
    ];
    for url in refused {
        let answer = create_subscription(&h, webhook_subscription("internal", url), &key).await;
        assert_eq!(
            outcome(&answer),
            (400, Some("webhookUrl")),
            "{url}: {}",
            answer.1
        );
    }
    assert_eq!(
        h.scalar_i64("select count(*) from subscription").await,
        0,
        "nothing refused was stored"
    );
    // A public address over https is accepted (an IP literal: this machine resolves no names).
    let answer = create_subscription(
        &h,
        webhook_subscription("public", "https://93.184.215.14/hook?token=t"),
        &key,
    )
    .await;
    assert_eq!(answer.0, 201, "{}", answer.1);
}

/// Finding 5 at delivery: subscriptions pointing at the local receiver are created while the
/// test opts in to it, then dispatched without the opt-in (as production runs): every alert is
/// failed with the reason and the receiver sees nothing. With the opt-in, the plain hook is
/// delivered while a hook answering 302 is a failed delivery whose target is never requested.
#[tokio::test]
async fn alerts_never_reach_internal_addresses_and_redirects_are_not_followed() {
    let mut h = harness("write-safety-ssrf-deliver", None).await;
    let (base, seen) = receiver().await;
    let key = stormwater::auth::create_key(h.pool(), "watcher", "test")
        .await
        .expect("key");
    // Without the opt-in the receiver is refused up front.
    let answer = create_subscription(
        &h,
        webhook_subscription("plain", &format!("{base}/hook")),
        &key,
    )
    .await;
    assert_eq!(outcome(&answer), (400, Some("webhookUrl")), "{}", answer.1);
    h.allow_outbound("127.0.0.1");
    let (s, b) = create_subscription(
        &h,
        webhook_subscription("plain", &format!("{base}/hook")),
        &key,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let plain = b["data"]["id"].as_i64().expect("id");
    let (s, b) = create_subscription(
        &h,
        webhook_subscription("redirecting", &format!("{base}/redirect")),
        &key,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let redirecting = b["data"]["id"].as_i64().expect("id");

    // The address is internal now (no allow-list, as in production). Finalize queues
    // alert-dispatch, which the runner plays with the harness' context.
    h.allow_outbound("");
    h.sync(vec![facilities(), monitoring()]).await;
    let alerts = h.scalar_i64("select count(*) from alert").await;
    assert!(alerts >= 6, "region 4 has at least 3 events, alerted twice");
    assert_eq!(
        seen.lock().expect("lock").clone(),
        Vec::<(String, String)>::new(),
        "no request reached the loopback receiver"
    );
    assert_eq!(
        h.scalar_i64(
            "select count(*) from alert where status = 'failed' and attempts = 1
               and last_error = 'webhook refused: 127.0.0.1 is not a public address: loopback (127.0.0.0/8)'"
        )
        .await,
        alerts,
        "{}",
        h.json("select jsonb_agg(distinct last_error) from alert").await
    );

    // With the opt-in: the plain hook gets every alert once; the redirect is answered, not
    // followed, and its alerts stay failed with the reason.
    h.allow_outbound("127.0.0.1");
    let done = stormwater::alerts::dispatch::dispatch(h.pool(), &h.ctx.webhooks, None)
        .await
        .expect("dispatch");
    let per_subscription = alerts / 2;
    assert_eq!(
        (done.sent, done.failed),
        (per_subscription as u64, per_subscription as u64)
    );
    let requests = seen.lock().expect("lock").clone();
    let count = |m: &str, p: &str| requests.iter().filter(|(a, b)| a == m && b == p).count() as i64;
    assert_eq!(count("POST", "/hook"), per_subscription);
    assert_eq!(count("POST", "/redirect"), per_subscription);
    assert_eq!(
        requests.len() as i64,
        2 * per_subscription,
        "nothing else, no /internal: {requests:?}"
    );
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from alert where subscription_id = {plain} and status = 'sent'"
        ))
        .await,
        per_subscription
    );
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from alert where subscription_id = {redirecting} and status = 'failed'
               and last_error = 'webhook answered HTTP 302, a redirect; redirects are not followed'"
        ))
        .await,
        per_subscription
    );
}

/// Finding 6: a NUL character in any JSON string of a write body is a 400 naming the field
/// (it used to reach Postgres and answer 500), and nothing is written.
#[tokio::test]
async fn nul_characters_and_invalid_utf8_in_write_bodies_are_400s_naming_the_field() {
    let h = harness("write-safety-nul", None).await;
    h.sync(vec![facilities(), monitoring()]).await;
    let key = stormwater::auth::create_key(h.pool(), "reviewer", "test")
        .await
        .expect("key");
    let event = h
        .scalar_i64("select min(id) from violation_event where retracted_at is null")
        .await;
    let status_path = format!("/api/violations/{event}/status");
    let facility = h
        .scalar_i64("select min(facility_id) from facility_link where source = 'smarts_industrial'")
        .await;
    let links_path = format!("/api/facilities/{facility}/links");
    let source_key: String = sqlx::query_scalar(
        "select source_key from facility_link where facility_id = $1 and source = 'smarts_industrial' limit 1",
    )
    .bind(facility)
    .fetch_one(h.pool())
    .await
    .expect("record");
    let audits = "select count(*) from audit_log where action <> 'api_key.create'";

    let nul = "checking\u{0}; drop table x";
    let cases: Vec<(&str, &str, &str, Value, &str)> = vec![
        (
            "api-violation-status",
            "PATCH",
            &status_path,
            json!({"status": "under_review", "notes": nul}),
            "notes",
        ),
        (
            "api-violation-status",
            "PATCH",
            &status_path,
            json!({"status": "under_review", "expectedStatus": "open\u{0}"}),
            "expectedStatus",
        ),
        (
            "api-facility-links",
            "POST",
            &links_path,
            json!({"action": "link", "source": "smarts_industrial", "sourceKey": source_key, "notes": nul}),
            "notes",
        ),
        (
            "api-subscriptions",
            "POST",
            "/api/subscriptions",
            {
                let mut s = email_subscription("x");
                s["name"] = json!(nul);
                s
            },
            "name",
        ),
        (
            "api-subscriptions",
            "POST",
            "/api/subscriptions",
            {
                let mut s = email_subscription("x");
                s["counties"] = json!(["Los Angeles", "Orange\u{0}"]);
                s
            },
            "counties",
        ),
    ];
    for (function, method, path, body, field) in cases {
        let answer = h
            .send(function, method, path, Some(body.clone()), Some(&key))
            .await;
        assert_eq!(
            outcome(&answer),
            (400, Some(field)),
            "{path} {body}: {}",
            answer.1
        );
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("NUL")),
            "{}",
            answer.1
        );
    }
    assert_eq!(h.scalar_i64(audits).await, 0, "nothing was written");

    // Invalid UTF-8 (API Gateway hands a base64 body over as binary): a 400 naming `body`.
    let mut bad = br#"{"status": "under_review", "notes": "caf"#.to_vec();
    bad.extend_from_slice(&[0xe9, 0xff]);
    bad.extend_from_slice(br#""}"#);
    for (function, method, path) in [
        ("api-violation-status", "PATCH", status_path.as_str()),
        ("api-facility-links", "POST", links_path.as_str()),
        ("api-subscriptions", "POST", "/api/subscriptions"),
    ] {
        let answer = send_body(&h, function, method, path, Body::Binary(bad.clone()), &key).await;
        assert_eq!(
            outcome(&answer),
            (400, Some("body")),
            "{path}: {}",
            answer.1
        );
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("UTF-8")),
            "{}",
            answer.1
        );
    }
    assert_eq!(h.scalar_i64(audits).await, 0, "nothing was written");

    // A valid body sent as binary (base64 on the wire) is read like text.
    let ok = send_body(
        &h,
        "api-violation-status",
        "PATCH",
        &status_path,
        Body::Binary(
            json!({"status": "under_review", "notes": "café ok"})
                .to_string()
                .into_bytes(),
        ),
        &key,
    )
    .await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_event where id = {event} and status = 'under_review'"
        ))
        .await,
        1
    );
}

/// Finding 6: bodies, strings and polygons have size limits (413 for a body over 64 KiB, in
/// the JSON error shape; 400 naming the field otherwise), and a 13 MB polygon never reaches
/// the database.
#[tokio::test]
async fn oversized_bodies_strings_and_polygons_are_refused() {
    let h = harness("write-safety-sizes", None).await;
    let key = stormwater::auth::create_key(h.pool(), "mapper", "test")
        .await
        .expect("key");
    // A 13 MB polygon: a ring of 600,000 positions.
    let n = 600_000;
    let ring: Vec<Value> = (0..=n)
        .map(|i| {
            let a = std::f64::consts::TAU * (i % n) as f64 / n as f64;
            json!([-118.25 + 0.5 * a.cos(), 34.05 + 0.5 * a.sin()])
        })
        .collect();
    let mut huge = email_subscription("huge");
    huge["mode"] = json!("polygon");
    huge["polygon"] = json!({"type": "Polygon", "coordinates": [ring]});
    let text = huge.to_string();
    assert!(text.len() > 13_000_000, "{}", text.len());
    let answer = send_body(
        &h,
        "api-subscriptions",
        "POST",
        "/api/subscriptions",
        Body::Text(text),
        &key,
    )
    .await;
    assert_eq!(answer.0, 413, "{}", answer.1);
    assert_eq!(answer.1["error"]["status"], 413);
    assert_eq!(answer.1["error"]["code"], "payload_too_large");
    assert!(answer.1["error"]["message"].as_str().is_some());

    // The other write routes share the limit.
    let notes = "n".repeat(70 * 1024);
    for (function, method, path, body) in [
        (
            "api-violation-status",
            "PATCH",
            "/api/violations/1/status",
            json!({"status": "under_review", "notes": notes}),
        ),
        (
            "api-facility-links",
            "POST",
            "/api/facilities/1/links",
            json!({"action": "link", "source": "esmr", "sourceKey": "1", "notes": notes}),
        ),
    ] {
        let answer = h.send(function, method, path, Some(body), Some(&key)).await;
        assert_eq!(answer.0, 413, "{path}: {}", answer.1);
    }

    // Under the body limit, every string field has its own.
    let long = |n: usize| "x".repeat(n);
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut s = email_subscription("x");
    s["name"] = json!(long(201));
    cases.push((s, "name"));
    let mut s = email_subscription("x");
    s["email"] = json!(format!("{}@example.org", long(300)));
    cases.push((s, "email"));
    let mut s = webhook_subscription("x", &format!("https://93.184.215.14/{}", long(3000)));
    cases.push((s.clone(), "webhookUrl"));
    s["webhookUrl"] = json!("https://93.184.215.14/hook");
    s["webhookSecret"] = json!(long(1000));
    cases.push((s, "webhookSecret"));
    let mut s = email_subscription("x");
    s["counties"] = json!([long(5000)]);
    cases.push((s, "counties"));
    // Polygons: at most 2,000 positions, at most 32 KiB.
    let zigzag: Vec<Value> = (0..3000)
        .map(|i| json!([-118 - (i % 2), 34]))
        .chain(std::iter::once(json!([-118, 34])))
        .collect();
    let mut s = email_subscription("x");
    s["mode"] = json!("polygon");
    s["polygon"] = json!({"type": "Polygon", "coordinates": [zigzag]});
    cases.push((s, "polygon"));
    let fine_ring: Vec<Value> = (0..=1500)
        .map(|i| {
            let a = std::f64::consts::TAU * (i % 1500) as f64 / 1500.0;
            json!([
                -118.25 + 0.123456789012 * a.cos(),
                34.05 + 0.123456789012 * a.sin()
            ])
        })
        .collect();
    let mut s = email_subscription("x");
    s["mode"] = json!("polygon");
    s["polygon"] = json!({"type": "Polygon", "coordinates": [fine_ring]});
    assert!(s.to_string().len() < 64 * 1024);
    assert!(s["polygon"].to_string().len() > 32 * 1024);
    cases.push((s, "polygon"));
    for (body, field) in cases {
        let answer = create_subscription(&h, body, &key).await;
        assert_eq!(outcome(&answer), (400, Some(field)), "{}", answer.1);
    }
    for (function, method, path, body) in [
        (
            "api-violation-status",
            "PATCH",
            "/api/violations/1/status",
            json!({"status": "under_review", "notes": long(4001)}),
        ),
        (
            "api-facility-links",
            "POST",
            "/api/facilities/1/links",
            json!({"action": "link", "source": "esmr", "sourceKey": "1", "notes": long(4001)}),
        ),
        (
            "api-facility-links",
            "POST",
            "/api/facilities/1/links",
            json!({"action": "link", "source": "esmr", "sourceKey": long(201)}),
        ),
    ] {
        let field = if body.get("notes").is_some() {
            "notes"
        } else {
            "sourceKey"
        };
        let answer = h.send(function, method, path, Some(body), Some(&key)).await;
        assert_eq!(outcome(&answer), (400, Some(field)), "{path}: {}", answer.1);
    }
    assert_eq!(h.scalar_i64("select count(*) from subscription").await, 0);
}

/// Finding 6: filters must name real places and shapes: California's 58 counties (as the data
/// spells them), the regional board codes of the data, valid polygons.
#[tokio::test]
async fn subscription_filters_must_name_real_counties_regions_and_valid_polygons() {
    let h = harness("write-safety-filters", None).await;
    let key = stormwater::auth::create_key(h.pool(), "resident", "test")
        .await
        .expect("key");
    let with = |field: &str, value: Value| {
        let mut s = email_subscription("filters");
        s["counties"] = Value::Null;
        s[field] = value;
        s
    };
    let bowtie = json!({"type": "Polygon", "coordinates": [[
        [-118.3, 34.0], [-118.2, 34.1], [-118.2, 34.0], [-118.3, 34.1], [-118.3, 34.0]
    ]]});
    let mut bad_polygon = email_subscription("bowtie");
    bad_polygon["mode"] = json!("polygon");
    bad_polygon["polygon"] = bowtie;
    let la_box = json!([
        [-118.3, 34.0],
        [-118.2, 34.0],
        [-118.2, 34.1],
        [-118.3, 34.1],
        [-118.3, 34.0]
    ]);
    let mut overlapping = email_subscription("overlap");
    overlapping["mode"] = json!("polygon");
    overlapping["polygon"] = json!({"type": "MultiPolygon", "coordinates": [[la_box], [la_box]]});
    for (body, field) in [
        (with("counties", json!(["Atlantis"])), "counties"),
        (
            with("counties", json!(["Los Angeles", "Gotham County"])),
            "counties",
        ),
        (with("regions", json!(["99"])), "regions"),
        (with("regions", json!(["6"])), "regions"),
        (with("regions", json!(["Region 10"])), "regions"),
        (bad_polygon, "polygon"),
        (overlapping, "polygon"),
        // Fields another mode or delivery would use are not stored silently.
        (
            {
                let mut s = email_subscription("stray polygon");
                s["polygon"] = json!({"type": "Point", "coordinates": [0, 0]});
                s
            },
            "polygon",
        ),
        (
            {
                let mut s = email_subscription("stray hook");
                s["webhookUrl"] = json!("https://93.184.215.14/hook");
                s
            },
            "webhookUrl",
        ),
    ] {
        let answer = create_subscription(&h, body.clone(), &key).await;
        assert_eq!(outcome(&answer), (400, Some(field)), "{body}: {}", answer.1);
    }
    assert_eq!(h.scalar_i64("select count(*) from subscription").await, 0);
    // Real ones in the spellings people use are stored as the data spells them.
    let answer = create_subscription(
        &h,
        {
            let mut s = with(
                "counties",
                json!(["los angeles county", "SAN LUIS OBISPO", "Del Norte"]),
            );
            s["regions"] = json!(["region 5f", "6B", "4"]);
            s
        },
        &key,
    )
    .await;
    assert_eq!(answer.0, 201, "{}", answer.1);
    assert_eq!(
        answer.1["data"]["counties"],
        json!(["Los Angeles", "San Luis Obispo", "Del Norte"])
    );
    assert_eq!(answer.1["data"]["regions"], json!(["5F", "6B", "4"]));
}

/// Finding 6: an owner has at most 100 active subscriptions (409 beyond, with the reason);
/// the list pages with `cursor` + `limit` and leaves out deactivated subscriptions unless
/// `includeInactive=true`.
#[tokio::test]
async fn active_subscriptions_are_capped_and_the_list_pages_without_inactive_ones() {
    let h = harness("write-safety-list", None).await;
    let key = stormwater::auth::create_key(h.pool(), "busy", "test")
        .await
        .expect("key");
    let other = stormwater::auth::create_key(h.pool(), "someone-else", "test")
        .await
        .expect("key");
    for i in 0..100 {
        let answer = create_subscription(&h, email_subscription(&format!("s{i}")), &key).await;
        assert_eq!(answer.0, 201, "{i}: {}", answer.1);
    }
    let answer = create_subscription(&h, email_subscription("one too many"), &key).await;
    assert_eq!(answer.0, 409, "{}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("100 active subscriptions")),
        "{}",
        answer.1
    );
    // Another owner is not affected.
    let answer = create_subscription(&h, email_subscription("theirs"), &other).await;
    assert_eq!(answer.0, 201, "{}", answer.1);
    // Deactivating one makes room for one.
    let first = h
        .scalar_i64("select min(id) from subscription where owner = 'key:busy'")
        .await;
    let (s, b) = h
        .send(
            "api-subscriptions",
            "DELETE",
            &format!("/api/subscriptions/{first}"),
            None,
            Some(&key),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let answer = create_subscription(&h, email_subscription("replacement"), &key).await;
    assert_eq!(answer.0, 201, "{}", answer.1);

    // The list: active only, newest first, in pages.
    let (s, page) = list_subscriptions(&h, "", &key).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(50));
    assert_eq!(page["page"]["limit"], 50);
    assert_eq!(page["page"]["total"], 100);
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=30&cursor={c}"),
            None => "?limit=30".to_owned(),
        };
        let (s, page) = list_subscriptions(&h, &query, &key).await;
        assert_eq!(s, 200, "{page}");
        for item in page["data"].as_array().expect("data") {
            assert_eq!(item["active"], true);
            assert_eq!(item["owner"], "key:busy");
            ids.push(item["id"].as_i64().expect("id"));
        }
        match page["page"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(ids.len(), 100);
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    assert!(!ids.contains(&first), "the deactivated one is left out");
    // Every sort walks the same 100 once (a bare `id` sort once failed in the database).
    for sort in ["-id", "id", "name", "-name", "createdAt", "-createdAt"] {
        let mut walked = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                Some(c) => format!("?limit=30&sort={sort}&cursor={c}"),
                None => format!("?limit=30&sort={sort}"),
            };
            let (s, page) = list_subscriptions(&h, &query, &key).await;
            assert_eq!(s, 200, "{sort}: {page}");
            walked.extend(
                page["data"]
                    .as_array()
                    .expect("data")
                    .iter()
                    .map(|i| i["id"].as_i64().unwrap()),
            );
            match page["page"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut sorted = walked.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 100, "{sort}: each once");
        if sort == "-id" {
            assert_eq!(walked, ids, "-id is newest first");
        }
    }
    let (s, page) = list_subscriptions(&h, "?includeInactive=true&limit=200", &key).await;
    assert_eq!(s, 400, "limit is at most 100: {page}");
    let (s, page) = list_subscriptions(&h, "?includeInactive=true&limit=100", &key).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["page"]["total"], 101);
    let (s, page) = list_subscriptions(&h, "?includeInactive=maybe", &key).await;
    assert_eq!(
        (s, page["error"]["parameter"].as_str()),
        (400, Some("includeInactive"))
    );
    let (s, page) = list_subscriptions(&h, "?cursor=nonsense", &key).await;
    assert_eq!(
        (s, page["error"]["parameter"].as_str()),
        (400, Some("cursor"))
    );
}
