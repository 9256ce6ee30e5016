//! HTTP helpers for the API functions: one error type whose variants are HTTP outcomes, one
//! JSON error shape, typed query-parameter readers that answer 400 naming the parameter, and
//! opaque cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::json;

/// Every way an API request can fail. Client mistakes carry a message for the client; internal
/// failures are logged once with their cause and answered with a generic message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid parameter {parameter}: {message}")]
    BadRequest { parameter: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Conflict(String),
    /// A request body over [`MAX_BODY_BYTES`]: 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The resource lives elsewhere now (a facility merged into another): 308 with `Location`.
    #[error("{message}")]
    Moved { message: String, location: String },
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// `Retry-After` of a 503 (seconds): about the time a restarting database needs.
    pub const RETRY_AFTER_SECS: u32 = 2;

    /// A 400 naming the parameter.
    pub fn bad(parameter: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Moved { .. } => StatusCode::PERMANENT_REDIRECT,
            // The database is down, restarting or out of connections: worth retrying.
            Self::Db(e) if crate::db::is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Db(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON error response: `{"error": {"status", "code", "message", "parameter"?}}`; a 503
    /// carries `Retry-After` ([`Self::RETRY_AFTER_SECS`]).
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
        if unavailable {
            // An outage, not a bug: logged once per request, without the noise of an error.
            tracing::warn!(error.cause_chain = ?self, "database unavailable; answered 503");
        } else if status.is_server_error() {
            tracing::error!(error.message = %self, error.cause_chain = ?self, "request failed");
        }
        let message = if unavailable {
            "the database is unavailable; retry shortly".to_owned()
        } else {
            self.to_string()
        };
        let mut error = json!({
            "status": status.as_u16(),
            "code": status.canonical_reason().unwrap_or("error").to_lowercase().replace(' ', "_"),
            "message": message,
        });
        if let Self::BadRequest { parameter, .. } = &self {
            error["parameter"] = json!(parameter);
        }
        let mut response = json_response(status, &json!({ "error": error }), "no-store");
        if let Self::Moved { location, .. } = &self
            && let Ok(v) = header::HeaderValue::from_str(location)
        {
            response.headers_mut().insert(header::LOCATION, v);
        }
        if unavailable {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(Self::RETRY_AFTER_SECS),
            );
        }
        response
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Db(db) => Self::Db(db),
            other => Self::Unauthorized(other.to_string()),
        }
    }
}

/// Largest request body a write endpoint reads: 64 KiB (larger is a 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Parses a JSON request body into `T`, whether API Gateway handed it over as text or as
/// binary (a base64-encoded body). Larger than [`MAX_BODY_BYTES`] is a 413; not UTF-8, not
/// JSON or not the expected shape is a 400 naming `body`; a NUL character in any string (which
/// Postgres cannot store) is a 400 naming the top-level field holding it.
pub fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    // `Body::Empty` / `Text` / `Binary` (lambda_http has already decoded a base64 body).
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "the request body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::bad(
            "body",
            format!("not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::bad("body", "a JSON body is required"));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ApiError::bad("body", e.to_string()))?;
    if let Some(field) = field_with_nul(&value) {
        return Err(ApiError::bad(
            &field,
            "must not contain NUL (\\u0000) characters",
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad("body", e.to_string()))
}

/// The top-level field of `body` holding a string (or a key) with a NUL character; `body`
/// when it is not under a field.
fn field_with_nul(body: &serde_json::Value) -> Option<String> {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(has_nul),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    match body {
        serde_json::Value::Object(o) => o.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some("body".to_owned())
            } else {
                has_nul(v).then(|| k.clone())
            }
        }),
        other => has_nul(other).then(|| "body".to_owned()),
    }
}

/// The route's `{id}` path parameter, a positive integer (API Gateway puts it in the event's
/// `pathParameters`; [`crate::api::routes::Function::handle`] fills it for a request without).
pub fn path_id(req: &Request) -> Result<i64, ApiError> {
    let raw = req
        .path_parameters()
        .first("id")
        .unwrap_or_default()
        .to_owned();
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad("id", format!("{raw:?} is not a positive integer id")))
}

/// A CSV response (RFC 4180, header row first) with a `Cache-Control` header.
pub fn csv_response(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
    cache_control: &str,
) -> Response<Body> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let written =
        w.write_record(header).is_ok() && rows.into_iter().all(|r| w.write_record(&r).is_ok());
    let body = match (written, w.into_inner()) {
        (true, Ok(bytes)) => String::from_utf8(bytes).unwrap_or_default(),
        _ => return ApiError::Internal("CSV serialization failed".into()).into_response(),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CACHE_CONTROL, cache_control)
        .body(Body::Text(body))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// A JSON response with a `Cache-Control` header.
pub fn json_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    cache_control: &str,
) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, cache_control)
        .body(Body::Text(text))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Typed access to a request's query string.
pub struct Query {
    params: lambda_http::aws_lambda_events::query_map::QueryMap,
}

impl Query {
    /// The query parameters of `req` (API Gateway has already decoded them).
    pub fn of(req: &Request) -> Self {
        Self {
            params: req.query_string_parameters(),
        }
    }

    /// The parameters of a query string (`a=1&b=x%20y`), decoded as API Gateway decodes them.
    pub fn parse(query: &str) -> Self {
        let mut params: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            params
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        Self {
            params: params.into(),
        }
    }

    /// A text parameter; blank counts as absent. Repeated parameters are a 400.
    pub fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.params.all(name) {
            None => Ok(None),
            Some(v) if v.len() > 1 => Err(ApiError::bad(name, "given more than once")),
            Some(v) => {
                let t = v[0].trim();
                if t.len() > 200 {
                    return Err(ApiError::bad(name, "longer than 200 characters"));
                }
                if t.chars().any(char::is_control) {
                    return Err(ApiError::bad(name, "must not contain control characters"));
                }
                Ok((!t.is_empty()).then(|| t.to_owned()))
            }
        }
    }

    /// `limit`: 1..=max, `default` when absent.
    pub fn limit(&self, default: i64, max: i64) -> Result<i64, ApiError> {
        match self.text("limit")? {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad(
                    "limit",
                    format!("must be a whole number from 1 to {max}"),
                )),
            },
        }
    }

    /// A parameter restricted to a fixed set of values (compared case-insensitively);
    /// returns the canonical spelling.
    pub fn one_of(
        &self,
        name: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        let Some(v) = self.text(name)? else {
            return Ok(None);
        };
        allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&v))
            .copied()
            .map(Some)
            .ok_or_else(|| ApiError::bad(name, format!("must be one of: {}", allowed.join(", "))))
    }

    /// An ISO date (`2024-01-31`); a 400 naming the parameter otherwise.
    pub fn date(&self, name: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
        self.text(name)?
            .map(|v| {
                chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map_err(|_| ApiError::bad(name, "must be an ISO date such as 2024-01-31"))
            })
            .transpose()
    }

    /// An integer within `range`; a 400 naming the parameter otherwise.
    pub fn int(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ApiError> {
        self.text(name)?
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        ApiError::bad(
                            name,
                            format!(
                                "must be an integer from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        )
                    })
            })
            .transpose()
    }

    /// The parameters as a stable string (cache keys).
    pub fn canonical(&self) -> String {
        let mut pairs: Vec<(String, String)> = self
            .params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        pairs.sort();
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The key that signs this deployment's list cursors (HMAC-SHA256). It is generated inside the
/// deployment's own database (table `signing_key`, by a migration) and read from there once per
/// execution environment (`ApiState::cursor_key`), so it is per deployment, never in the
/// environment, the template or a log (`Debug` prints `[REDACTED]`).
#[derive(Debug, Clone)]
pub struct CursorKey(secrecy::SecretSlice<u8>);

impl CursorKey {
    /// A key from its bytes (at least 16).
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= 16).then(|| Self(bytes.into()))
    }

    /// The cursors of one list: `list` names the route and the order it pages in
    /// (`"GET /api/facilities by id ascending"`); a cursor made for one list is refused by
    /// every other.
    pub fn list(&self, list: impl Into<String>) -> ListCursors<'_> {
        ListCursors {
            key: self,
            list: list.into(),
        }
    }

    fn mac(&self, list: &str, payload: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        use secrecy::ExposeSecret;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes a key of any length");
        mac.update(b"stormwater cursor v1\0");
        mac.update(list.as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }
}

/// Bytes of the HMAC kept in a cursor (128 bits).
const CURSOR_TAG: usize = 16;

/// The opaque, signed cursors of one list ([`CursorKey::list`]): base64url of the position and
/// an HMAC over the list's name and the position, so a cursor cannot be altered, invented, or
/// taken from another list (another route, order, or facility's timeline).
pub struct ListCursors<'a> {
    key: &'a CursorKey,
    list: String,
}

impl ListCursors<'_> {
    fn seal(&self, payload: String) -> String {
        use hmac::Mac;
        let tag = self
            .key
            .mac(&self.list, payload.as_bytes())
            .finalize()
            .into_bytes();
        let mut bytes = payload.into_bytes();
        bytes.extend_from_slice(&tag[..CURSOR_TAG]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn open(&self, cursor: &str) -> Option<String> {
        use hmac::Mac;
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let split = bytes.len().checked_sub(CURSOR_TAG)?;
        let (payload, tag) = bytes.split_at(split);
        self.key
            .mac(&self.list, payload)
            .verify_truncated_left(tag)
            .ok()?;
        String::from_utf8(payload.to_vec()).ok()
    }

    /// The cursor of the page after the row keyed `after_id`.
    pub fn encode(&self, after_id: i64) -> String {
        self.seal(format!("a:{after_id}"))
    }

    /// The cursor after a composite key written as text (`2024-01-31|violation|42`).
    pub fn encode_text(&self, key: &str) -> String {
        self.seal(format!("t:{key}"))
    }

    /// The id position of the request's `cursor` (none without one); a 400 naming `cursor`
    /// when it was not made by [`Self::encode`] for this list.
    pub fn after(&self, q: &Query) -> Result<Option<i64>, ApiError> {
        self.read(q, |p| p.strip_prefix("a:")?.parse().ok())
    }

    /// The text position of the request's `cursor`, made by [`Self::encode_text`] for this
    /// list; a 400 naming `cursor` otherwise.
    pub fn after_text(&self, q: &Query) -> Result<Option<String>, ApiError> {
        self.read(q, |p| p.strip_prefix("t:").map(str::to_owned))
    }

    fn read<T>(&self, q: &Query, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ApiError> {
        q.text("cursor")?
            .map(|c| {
                self.open(&c).as_deref().and_then(parse).ok_or_else(|| {
                    ApiError::bad(
                        "cursor",
                        "not a cursor of this list: pass page.nextCursor of the previous page unchanged",
                    )
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn query(pairs: &[(&str, &str)]) -> Query {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Query { params: map.into() }
    }

    fn key(byte: u8) -> CursorKey {
        CursorKey::new(vec![byte; 32]).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_junk_is_a_bad_request() {
        let (k, list) = (key(1), "GET /api/violations by e.id descending");
        let c = k.list(list).encode(42);
        assert_eq!(
            k.list(list).after(&query(&[("cursor", &c)])).unwrap(),
            Some(42)
        );
        assert_eq!(k.list(list).after(&query(&[])).unwrap(), None);
        let t = k.list(list).encode_text("2024-01-31|violation|42");
        assert_eq!(
            k.list(list)
                .after_text(&query(&[("cursor", &t)]))
                .unwrap()
                .as_deref(),
            Some("2024-01-31|violation|42")
        );
        // `YTotMQ` is `a:-1` as the unsigned cursors wrote it.
        for junk in ["nope", "", "YTotMQ"] {
            let q = query(&[("cursor", junk)]);
            if junk.is_empty() {
                assert_eq!(k.list(list).after(&q).unwrap(), None, "blank is absent");
                continue;
            }
            let err = k.list(list).after(&q).unwrap_err();
            assert!(
                matches!(err, ApiError::BadRequest { ref parameter, .. } if parameter == "cursor"),
                "{junk}"
            );
        }
    }

    #[test]
    fn a_cursor_from_another_list_another_key_or_altered_is_refused() {
        let k = key(1);
        let c = k.list("GET /api/violations by e.id descending").encode(42);
        let bad = |cursors: ListCursors, c: &str| cursors.after(&query(&[("cursor", c)])).is_err();
        // Another route, another order, another deployment's key.
        assert!(bad(
            k.list("GET /api/smarts/violations by t.id descending"),
            &c
        ));
        assert!(bad(k.list("GET /api/violations by e.id ascending"), &c));
        assert!(bad(
            key(2).list("GET /api/violations by e.id descending"),
            &c
        ));
        // Any changed byte, a truncated tag, or the id swapped for another.
        let mut bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert!(
                bad(
                    k.list("GET /api/violations by e.id descending"),
                    &URL_SAFE_NO_PAD.encode(&bytes)
                ),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        assert!(bad(
            k.list("GET /api/violations by e.id descending"),
            &c[..c.len() - 2]
        ));
        // An id cursor is not a text cursor of the same list, nor the reverse.
        let list = k.list("GET /api/facilities/4/timeline by date descending");
        let t = list.encode_text("2024-01-31|violation|42");
        assert!(list.after(&query(&[("cursor", &t)])).is_err());
        // A key too short to sign anything is refused.
        assert!(CursorKey::new(vec![0; 8]).is_none());
        assert!(!format!("{k:?}").contains("[1, 1"), "the key never prints");
    }

    #[test]
    fn limit_outside_range_names_the_parameter() {
        assert_eq!(query(&[]).limit(50, 1000).unwrap(), 50);
        assert_eq!(query(&[("limit", "1000")]).limit(50, 1000).unwrap(), 1000);
        for bad in ["0", "1001", "-3", "ten"] {
            let err = query(&[("limit", bad)]).limit(50, 1000).unwrap_err();
            assert!(err.to_string().contains("limit"), "{bad}");
        }
    }

    #[test]
    fn enum_parameters_answer_with_the_allowed_values() {
        let q = query(&[("status", "active")]);
        assert_eq!(
            q.one_of("status", &["Active", "Terminated"]).unwrap(),
            Some("Active")
        );
        let err = query(&[("status", "gone")])
            .one_of("status", &["Active"])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid parameter status: must be one of: Active"
        );
    }

    fn post(body: Body) -> Request {
        lambda_http::http::Request::builder()
            .method("POST")
            .uri("https://api.test/x")
            .body(body)
            .unwrap()
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Note {
        name: String,
        tags: Option<Vec<String>>,
    }

    fn parameter(r: Result<Note, ApiError>) -> String {
        match r {
            Err(ApiError::BadRequest { parameter, .. }) => parameter,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn json_bodies_are_read_from_text_and_binary() {
        let text: Note = json_body(&post(Body::Text(r#"{"name":"a"}"#.into()))).unwrap();
        assert_eq!(text.name, "a");
        let binary: Note = json_body(&post(Body::Binary(r#"{"name":"café"}"#.into()))).unwrap();
        assert_eq!(binary.name, "café");
        assert_eq!(parameter(json_body(&post(Body::Empty))), "body");
        assert_eq!(parameter(json_body(&post(Body::Text("  ".into())))), "body");
    }

    #[test]
    fn nul_characters_name_their_field_and_invalid_utf8_names_the_body() {
        let body = |t: &str| post(Body::Text(t.to_owned()));
        assert_eq!(
            parameter(json_body(&body(r#"{"name":"a\u0000b"}"#))),
            "name"
        );
        assert_eq!(
            parameter(json_body(&body(r#"{"name":"a","tags":["x","\u0000"]}"#))),
            "tags"
        );
        assert_eq!(parameter(json_body(&body(r#"{"na\u0000me":"a"}"#))), "body");
        assert_eq!(parameter(json_body(&body(r#""\u0000""#))), "body");
        let err =
            json_body::<Note>(&post(Body::Binary(b"{\"name\":\"caf\xe9\"}".to_vec()))).unwrap_err();
        assert!(
            err.to_string().contains("not valid UTF-8 (at byte 12)"),
            "{err}"
        );
        assert_eq!(parameter(Err(err)), "body");
    }

    #[test]
    fn bodies_over_the_limit_are_413s_in_the_json_error_shape() {
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        let err = json_body::<Note>(&post(Body::Text(big))).unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge(_)), "{err:?}");
        let resp = err.into_response();
        assert_eq!(resp.status(), 413);
        let Body::Text(t) = resp.body() else {
            panic!("text body")
        };
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["error"]["status"], 413);
        assert_eq!(v["error"]["code"], "payload_too_large");
        let fits = format!(r#"{{"name":"{}"}}"#, "x".repeat(MAX_BODY_BYTES - 11));
        assert!(json_body::<Note>(&post(Body::Text(fits))).is_ok());
    }

    #[test]
    fn error_responses_share_one_json_shape() {
        let resp = ApiError::bad("limit", "too big").into_response();
        assert_eq!(resp.status(), 400);
        let Body::Text(t) = resp.body() else {
            panic!("text body")
        };
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["error"]["parameter"], "limit");
        assert_eq!(v["error"]["status"], 400);
        let resp = ApiError::Internal("secret detail".into()).into_response();
        let Body::Text(t) = resp.body() else {
            panic!("text body")
        };
        assert!(!t.contains("secret detail"));
    }

    #[test]
    fn an_unavailable_database_is_a_503_with_retry_after_and_a_query_bug_a_500() {
        let resp = ApiError::Db(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "2");
        let Body::Text(t) = resp.body() else {
            panic!("text body")
        };
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["error"]["code"], "service_unavailable");
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            ApiError::Db(sqlx::Error::Io(refused))
                .into_response()
                .status(),
            503
        );
        let resp = ApiError::Db(sqlx::Error::ColumnNotFound("x".into())).into_response();
        assert_eq!(resp.status(), 500);
        assert!(resp.headers().get("retry-after").is_none());
    }
}
