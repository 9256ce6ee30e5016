//! Alert delivery: signed webhooks and plain-text email.
//!
//! # Webhook signing
//!
//! Every webhook is an HTTP `POST` with `Content-Type: application/json` and these headers:
//!
//! | Header | Value |
//! |---|---|
//! | `X-Stormwater-Timestamp` | Unix time in seconds when the request was signed. |
//! | `X-Stormwater-Delivery` | The alert id. It is the same on every retry, so receivers can dedupe. |
//! | `X-Stormwater-Signature` | `sha256=<hex>`, only when the subscription has a secret. |
//!
//! `<hex>` is the lowercase hex HMAC-SHA256, keyed with the shared secret, of the bytes
//! `"{timestamp}.{body}"`: the timestamp header value, a `.`, and the raw request body exactly
//! as received. A receiver recomputes it over the body bytes before parsing the JSON, compares
//! in constant time (see [`verify`]), and should reject timestamps too far from its own clock
//! to limit replays.
//!
//! Errors and logs never contain the secret. Network errors also drop the URL, because webhook
//! URLs often carry tokens of their own.
//!
//! # Where webhooks go
//!
//! Only to public addresses, through [`crate::outbound::Client`]: the URL is checked when the
//! subscription is created and again for every delivery; a target that is not (or no longer)
//! public is a failed delivery with the reason. Redirects are not followed: a 3xx answer is a
//! failed delivery. Total time is bounded by `WEBHOOK_TIMEOUT_SECS`, and at most
//! [`EXCERPT_BYTES`] of a failed answer's body are read.

pub use crate::config::{InvalidSmtpTls, SmtpSettings, SmtpTls};
use crate::outbound::{self, OutboundError};

use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::header::CONTENT_TYPE;
use secrecy::ExposeSecret;
use sha2::Sha256;

/// Header carrying `sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub const SIGNATURE_HEADER: &str = "X-Stormwater-Signature";
/// Header carrying the signing time in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Stormwater-Timestamp";
/// Header carrying the alert id, stable across retries.
pub const DELIVERY_HEADER: &str = "X-Stormwater-Delivery";

/// How much of a failed response body is kept in [`DeliveryError::Status`].
const EXCERPT_CHARS: usize = 200;
/// How much of a failed response body is read at most.
pub const EXCERPT_BYTES: usize = 4096;
const SIGNATURE_PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Why an alert could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("invalid webhook URL: {0}")]
    InvalidUrl(String),
    #[error("invalid email address: {0}")]
    InvalidAddress(String),
    #[error("webhook refused: {0}")]
    Refused(#[from] OutboundError),
    #[error("webhook request failed: {0}")]
    Http(String),
    #[error("webhook answered HTTP {status}: {body_excerpt}")]
    Status { status: u16, body_excerpt: String },
    #[error("webhook answered HTTP {status}, a redirect; redirects are not followed")]
    Redirect { status: u16 },
    #[error("email delivery failed: {0}")]
    Smtp(String),
}

impl DeliveryError {
    /// True when trying again later may succeed: network and SMTP failures, HTTP 5xx and 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http(_) | Self::Smtp(_) => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            Self::InvalidUrl(_)
            | Self::InvalidAddress(_)
            | Self::Refused(_)
            | Self::Redirect { .. } => false,
        }
    }
}

fn keyed_mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed), so this never fails.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The full [`SIGNATURE_HEADER`] value (`sha256=<hex>`) for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = keyed_mac(secret, timestamp, body).finalize().into_bytes();
    format!("{SIGNATURE_PREFIX}{}", hex::encode(tag))
}

/// Checks a [`SIGNATURE_HEADER`] value in constant time; false for malformed headers.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex_tag) = header.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Ok(tag) = hex::decode(hex_tag) else {
        return false;
    };
    keyed_mac(secret, timestamp, body)
        .verify_slice(&tag)
        .is_ok()
}

/// POSTs `body` as JSON to `url` through `client` (public addresses only, no redirects),
/// signed when `secret` is given; returns the 2xx status code.
///
/// The body is serialized once and those exact bytes are both signed and sent.
pub async fn post_webhook(
    client: &outbound::Client,
    url: &str,
    secret: Option<&str>,
    delivery_id: &str,
    body: &serde_json::Value,
) -> Result<u16, DeliveryError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| DeliveryError::Http(format!("serializing body: {e}")))?;
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(url)?
        .header(CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(DELIVERY_HEADER, delivery_id);
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, sign(secret.as_bytes(), timestamp, &bytes));
    }
    let response = request
        .body(bytes)
        .send()
        .await
        .map_err(|e| match outbound::refusal(&e) {
            Some(refused) => DeliveryError::Refused(refused.clone()),
            None => DeliveryError::Http(describe(e)),
        })?;
    let status = response.status();
    if status.is_success() {
        tracing::debug!(status = status.as_u16(), delivery_id, "webhook delivered");
        return Ok(status.as_u16());
    }
    if status.is_redirection() {
        tracing::warn!(
            status = status.as_u16(),
            delivery_id,
            "webhook redirected; not followed"
        );
        return Err(DeliveryError::Redirect {
            status: status.as_u16(),
        });
    }
    let text = outbound::read_capped(response, EXCERPT_BYTES).await;
    let body_excerpt: String = String::from_utf8_lossy(&text)
        .chars()
        .take(EXCERPT_CHARS)
        .collect();
    tracing::warn!(status = status.as_u16(), delivery_id, "webhook rejected");
    Err(DeliveryError::Status {
        status: status.as_u16(),
        body_excerpt,
    })
}

/// A request error and its causes (timed out, connection refused, …), without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Checks that `addr` is a bare email address such as `someone@example.org`.
pub fn check_email(addr: &str) -> Result<(), DeliveryError> {
    parse_address(addr).map(|_| ())
}

fn parse_address(addr: &str) -> Result<Address, DeliveryError> {
    addr.trim()
        .parse::<Address>()
        .map_err(|e| DeliveryError::InvalidAddress(format!("{addr:?}: {e}")))
}

/// Sends one plain-text email to `to`.
pub async fn send_email(
    settings: &SmtpSettings,
    to: &str,
    subject: &str,
    text_body: &str,
) -> Result<(), DeliveryError> {
    let from: Mailbox =
        settings.from.trim().parse().map_err(|e| {
            DeliveryError::InvalidAddress(format!("sender {:?}: {e}", settings.from))
        })?;
    let to = Mailbox::new(None, parse_address(to)?);
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(text_body.to_owned())
        .map_err(|e| DeliveryError::Smtp(format!("building message: {e}")))?;

    let smtp_err = |e: lettre::transport::smtp::Error| DeliveryError::Smtp(e.to_string());
    let mut builder = match settings.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
            .map_err(smtp_err)?,
        SmtpTls::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host).map_err(smtp_err)?
        }
    }
    .port(settings.port);
    if let Some(user) = &settings.username {
        let password = settings
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    builder.build().send(message).await.map_err(smtp_err)?;
    tracing::debug!(host = %settings.host, "alert email sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    /// A webhook client allowed to reach the test servers on 127.0.0.1.
    fn local_client(timeout: Duration) -> outbound::Client {
        outbound::Client::new("127.0.0.1".parse().unwrap(), timeout).unwrap()
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let body = br#"{"alert_id":7}"#;
        let header = sign(b"secret", 1_700_000_123, body);
        assert!(header.starts_with("sha256="));
        assert!(verify(b"secret", 1_700_000_123, body, &header));
    }

    #[test]
    fn verify_rejects_tampering_wrong_secret_and_malformed_headers() {
        let body = br#"{"alert_id":7}"#;
        let header = sign(b"secret", 1_700_000_123, body);
        assert!(!verify(
            b"secret",
            1_700_000_123,
            br#"{"alert_id":8}"#,
            &header
        ));
        assert!(!verify(b"secret", 1_700_000_124, body, &header));
        assert!(!verify(b"other", 1_700_000_123, body, &header));
        let hex_only = header.trim_start_matches("sha256=");
        for bad in [
            "",
            "sha256=",
            "sha256=zz",
            hex_only,
            "sha1=abcd",
            &header[..20],
        ] {
            assert!(!verify(b"secret", 1_700_000_123, body, bad), "{bad:?}");
        }
    }

    #[test]
    fn sign_matches_known_vector() {
        // python3: hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign(b"k", 1_700_000_000, b"{}"),
            "sha256=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146"
        );
    }

    #[test]
    fn retryable_errors_are_transient_ones() {
        let status = |status| DeliveryError::Status {
            status,
            body_excerpt: String::new(),
        };
        assert!(status(500).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(DeliveryError::Http("timeout".into()).is_retryable());
        assert!(DeliveryError::Smtp("421".into()).is_retryable());
        assert!(!DeliveryError::InvalidUrl("x".into()).is_retryable());
    }

    #[test]
    fn smtp_tls_parses_known_modes() {
        assert_eq!("none".parse::<SmtpTls>().ok(), Some(SmtpTls::None));
        assert_eq!(
            " StartTLS ".parse::<SmtpTls>().ok(),
            Some(SmtpTls::StartTls)
        );
        assert_eq!("tls".parse::<SmtpTls>().ok(), Some(SmtpTls::Tls));
        assert!("ssl".parse::<SmtpTls>().is_err());
    }

    #[test]
    fn check_email_accepts_addresses_and_rejects_garbage() {
        assert!(check_email("someone@example.org").is_ok());
        for bad in ["", "nobody", "a@", "@b.org", "a b@c.org"] {
            assert!(
                matches!(check_email(bad), Err(DeliveryError::InvalidAddress(_))),
                "{bad:?}"
            );
        }
    }

    /// What the test HTTP server saw: lowercase header names and the raw body.
    struct Received {
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    /// Serves one request on 127.0.0.1 and answers with `status_line` and `reply`.
    async fn one_shot_http(
        status_line: &'static str,
        reply: &'static str,
    ) -> (String, JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut reader = BufReader::new(stream);
            let mut headers = HashMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert!(line.starts_with("POST /hook "), "{line}");
            loop {
                line.clear();
                reader.read_line(&mut line).await.unwrap();
                let trimmed = line.trim_end();
                if trimmed.is_empty() {
                    break;
                }
                let (name, value) = trimmed.split_once(':').unwrap();
                headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
            }
            let len: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0; len];
            reader.read_exact(&mut body).await.unwrap();
            let response = format!(
                "HTTP/1.1 {status_line}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
            reader
                .get_mut()
                .write_all(response.as_bytes())
                .await
                .unwrap();
            reader.get_mut().shutdown().await.unwrap();
            Received { headers, body }
        });
        (url, handle)
    }

    #[tokio::test]
    async fn post_webhook_sends_signed_json_with_delivery_headers() {
        let (url, server) = one_shot_http("200 OK", "ok").await;
        let http = local_client(Duration::from_secs(5));
        let body = serde_json::json!({"alert_id": 42, "facility": "Port of LA"});
        let status = post_webhook(&http, &url, Some("s3cret"), "42", &body)
            .await
            .unwrap();
        assert_eq!(status, 200);

        let got = server.await.unwrap();
        assert_eq!(got.headers["content-type"], "application/json");
        assert_eq!(got.headers["x-stormwater-delivery"], "42");
        assert_eq!(got.headers["user-agent"], "stormwater-watch-alerts/0.1");
        let ts: i64 = got.headers["x-stormwater-timestamp"].parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        let signature = &got.headers["x-stormwater-signature"];
        assert!(verify(b"s3cret", ts, &got.body, signature));
        let sent: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(sent, body);
    }

    #[tokio::test]
    async fn post_webhook_without_secret_sends_no_signature() {
        let (url, server) = one_shot_http("204 No Content", "").await;
        let http = local_client(Duration::from_secs(5));
        let status = post_webhook(&http, &url, None, "7", &serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(status, 204);
        let got = server.await.unwrap();
        assert!(!got.headers.contains_key("x-stormwater-signature"));
        assert_eq!(got.headers["x-stormwater-delivery"], "7");
    }

    #[tokio::test]
    async fn post_webhook_reports_server_errors_as_retryable_status() {
        let (url, server) = one_shot_http("500 Internal Server Error", "boom").await;
        let http = local_client(Duration::from_secs(5));
        let err = post_webhook(&http, &url, Some("s3cret"), "1", &serde_json::json!({}))
            .await
            .unwrap_err();
        server.await.unwrap();
        match &err {
            DeliveryError::Status {
                status,
                body_excerpt,
            } => {
                assert_eq!(*status, 500);
                assert_eq!(body_excerpt, "boom");
            }
            other => panic!("expected Status, got {other:?}"),
        }
        assert!(err.is_retryable());
        assert!(!err.to_string().contains("s3cret"));
    }

    #[tokio::test]
    async fn post_webhook_network_error_is_http_without_url() {
        // Bind then drop, so the port is (almost certainly) closed.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?token=abc", listener.local_addr().unwrap());
        drop(listener);
        let http = local_client(Duration::from_secs(5));
        let err = post_webhook(&http, &url, Some("s3cret"), "1", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Http(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("token=abc"),
            "{text}"
        );
    }

    /// Answers every connection with `head` (status line and headers), then an 80 MiB chunked
    /// body when `endless`, or nothing at all for a minute when `head` is empty (a server that
    /// never answers). Counts connections.
    async fn raw_server(head: &'static str, endless: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    if head.is_empty() {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    let _ = stream.write_all(head.as_bytes()).await;
                    // "Endless": 80 MiB, far more than a client may read; stops when it hangs up.
                    let chunks = if endless { 10_240 } else { 0 };
                    let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
                    for _ in 0..chunks {
                        if stream.write_all(chunk.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (url, connections)
    }

    #[tokio::test]
    async fn post_webhook_refuses_loopback_without_the_allow_list_and_never_connects() {
        let (url, connections) =
            raw_server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).await;
        let strict =
            outbound::Client::new(outbound::Policy::default(), Duration::from_secs(5)).unwrap();
        let err = post_webhook(&strict, &url, None, "1", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Refused(OutboundError::NotPublic { .. })),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .contains("127.0.0.1 is not a public address"),
            "{err}"
        );
        assert_eq!(connections.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn post_webhook_does_not_follow_redirects() {
        let (url, connections) = raw_server(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/internal\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .await;
        let err = post_webhook(
            &local_client(Duration::from_secs(5)),
            &url,
            Some("s3cret-s3cret-s3cret"),
            "1",
            &serde_json::json!({}),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Redirect { status: 302 }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(
            connections.load(Ordering::SeqCst),
            1,
            "one request, no second one"
        );
    }

    #[tokio::test]
    async fn post_webhook_reads_a_bounded_part_of_an_endless_error_body() {
        let (url, _) = raw_server(
            "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
        .await;
        let started = std::time::Instant::now();
        let err = post_webhook(
            &local_client(Duration::from_secs(20)),
            &url,
            None,
            "1",
            &serde_json::json!({}),
        )
        .await
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        match err {
            DeliveryError::Status {
                status,
                body_excerpt,
            } => {
                assert_eq!(status, 500);
                assert_eq!(body_excerpt, "x".repeat(EXCERPT_CHARS));
            }
            other => panic!("expected Status, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn post_webhook_gives_up_after_the_total_timeout() {
        let (url, _) = raw_server("", false).await;
        let started = std::time::Instant::now();
        let err = post_webhook(
            &local_client(Duration::from_millis(500)),
            &url,
            None,
            "1",
            &serde_json::json!({}),
        )
        .await
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, DeliveryError::Http(_)), "{err:?}");
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn send_email_rejects_bad_recipient_before_connecting() {
        let settings = SmtpSettings {
            host: "127.0.0.1".into(),
            port: 9,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "alerts@example.org".into(),
        };
        let err = send_email(&settings, "not an address", "s", "b")
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::InvalidAddress(_)), "{err:?}");
    }
}
