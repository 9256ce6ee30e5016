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
            Self::Db(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON error response: `{"error": {"status", "code", "message", "parameter"?}}`.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error.message = %self, error.cause_chain = ?self, "request failed");
        }
        let mut error = json!({
            "status": status.as_u16(),
            "code": status.canonical_reason().unwrap_or("error").to_lowercase().replace(' ', "_"),
            "message": self.to_string(),
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

/// The numeric id in `path` right after `prefix` (`/api/violations/` + `42/status` → 42).
pub fn path_id(path: &str, prefix: &str) -> Result<i64, ApiError> {
    let rest = path.strip_prefix(prefix).unwrap_or_default();
    let raw = rest.split('/').next().unwrap_or_default();
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

    /// A cursor produced by [`encode_cursor`].
    pub fn cursor(&self) -> Result<Option<i64>, ApiError> {
        self.text("cursor")?
            .map(|c| {
                decode_cursor(&c)
                    .ok_or_else(|| ApiError::bad("cursor", "not a cursor from a previous page"))
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

/// Opaque keyset cursor over an id.
pub fn encode_cursor(after_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("a:{after_id}"))
}

/// Opaque cursor over a composite key written as text (`2024-01-31|violation|42`).
pub fn encode_cursor_text(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("t:{key}"))
}

/// The key of a cursor made by [`encode_cursor_text`].
pub fn decode_cursor_text(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    Some(
        std::str::from_utf8(&bytes)
            .ok()?
            .strip_prefix("t:")?
            .to_owned(),
    )
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("a:")?
        .parse()
        .ok()
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

    #[test]
    fn cursors_round_trip_and_junk_is_a_bad_request() {
        let c = encode_cursor(42);
        assert_eq!(query(&[("cursor", &c)]).cursor().unwrap(), Some(42));
        let err = query(&[("cursor", "nope")]).cursor().unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { ref parameter, .. } if parameter == "cursor"));
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
}
