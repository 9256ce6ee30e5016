//! Secrets read from AWS Secrets Manager once per execution environment, so that none sits in
//! a function's environment variables: with `DATABASE_SECRET_ARN` (the database URL) or
//! `SMTP_PASSWORD_SECRET_ARN` set, [`crate::lambda::load_config`] reads them here at cold start.
//!
//! The secret's `SecretString` may be a `postgres://` URL, a JSON object with a `url`, or the
//! JSON that RDS writes for a managed master user (`username`, `password`, and possibly `host`,
//! `port`, `dbname`). `DATABASE_HOST` (the RDS Proxy endpoint) replaces the host, so that a
//! secret written for the instance is used through the proxy.

use reqwest::Url;
use secrecy::SecretString;

/// Why the database URL could not be made from the secret. Messages never contain the
/// secret's values.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {arn}: {message}")]
    Read { arn: String, message: String },
    #[error("secret {arn}: {message}")]
    Shape { arn: String, message: String },
}

/// Where the URL's parts come from when the secret does not carry them.
#[derive(Debug, Clone, Default)]
pub struct DatabaseTarget<'a> {
    /// `DATABASE_HOST`: replaces the secret's host (RDS Proxy endpoint).
    pub host: Option<&'a str>,
    /// `DATABASE_NAME`: the database when the secret names none.
    pub name: Option<&'a str>,
}

/// Reads the secret `arn` and makes the database URL of it.
pub async fn database_url(
    sdk: &aws_config::SdkConfig,
    arn: &str,
    target: &DatabaseTarget<'_>,
) -> Result<SecretString, SecretError> {
    let text = read(sdk, arn).await?;
    url_from_secret(&text, target).map_err(|message| SecretError::Shape {
        arn: arn.to_owned(),
        message,
    })
}

/// The `SecretString` of the secret `arn` (e.g. the SMTP password).
pub async fn read(sdk: &aws_config::SdkConfig, arn: &str) -> Result<String, SecretError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretError::Read {
            arn: arn.to_owned(),
            message: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?;
    out.secret_string()
        .map(str::to_owned)
        .ok_or_else(|| SecretError::Shape {
            arn: arn.to_owned(),
            message: "no SecretString".into(),
        })
}

/// The database URL a secret's text describes (see the module docs).
pub fn url_from_secret(text: &str, target: &DatabaseTarget<'_>) -> Result<SecretString, String> {
    let trimmed = text.trim();
    let mut url = if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        Url::parse(trimmed).map_err(|e| format!("not a URL: {e}"))?
    } else {
        let v: serde_json::Value = serde_json::from_str(trimmed)
            .map_err(|_| "neither a postgres:// URL nor a JSON object".to_owned())?;
        let field = |k: &str| match &v[k] {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if let Some(u) = field("url") {
            Url::parse(&u).map_err(|e| format!("url is not a URL: {e}"))?
        } else {
            let user = field("username").ok_or("no username")?;
            let password = field("password").ok_or("no password")?;
            let host = target
                .host
                .map(str::to_owned)
                .or_else(|| field("host"))
                .ok_or("no host (set DATABASE_HOST)")?;
            let port = field("port").unwrap_or_else(|| "5432".into());
            let name = field("dbname")
                .or_else(|| target.name.map(str::to_owned))
                .unwrap_or_else(|| "postgres".into());
            let mut url = Url::parse(&format!("postgres://{host}:{port}/"))
                .map_err(|e| format!("host or port do not make a URL: {e}"))?;
            url.set_path(&name);
            url.set_username(&user)
                .and_then(|()| url.set_password(Some(&password)))
                .map_err(|()| "the user or password cannot be put in a URL".to_owned())?;
            url
        }
    };
    if let Some(host) = target.host {
        url.set_host(Some(host))
            .map_err(|e| format!("DATABASE_HOST is not a host: {e}"))?;
    }
    Ok(SecretString::from(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn url(text: &str, host: Option<&str>) -> Result<String, String> {
        url_from_secret(
            text,
            &DatabaseTarget {
                host,
                name: Some("stormwater"),
            },
        )
        .map(|s| s.expose_secret().to_owned())
    }

    #[test]
    fn an_rds_managed_secret_becomes_a_url_through_the_proxy() {
        let secret = r#"{"username":"sw_admin","password":"p@ss:w/rd?#","engine":"postgres"}"#;
        assert_eq!(
            url(secret, Some("proxy.example.internal")).unwrap(),
            "postgres://sw_admin:p%40ss%3Aw%2Frd%3F%23@proxy.example.internal:5432/stormwater"
        );
        let full =
            r#"{"username":"u","password":"p","host":"db.internal","port":6432,"dbname":"x"}"#;
        assert_eq!(
            url(full, None).unwrap(),
            "postgres://u:p@db.internal:6432/x"
        );
    }

    #[test]
    fn a_url_secret_is_used_as_it_is_with_the_host_replaced_when_asked() {
        assert_eq!(
            url("postgres://u:p@db:5432/sw", None).unwrap(),
            "postgres://u:p@db:5432/sw"
        );
        assert_eq!(
            url(r#"{"url":"postgres://u:p@db:5432/sw"}"#, Some("proxy")).unwrap(),
            "postgres://u:p@proxy:5432/sw"
        );
    }

    #[test]
    fn malformed_secrets_are_errors_that_do_not_show_the_password() {
        let err = url(r#"{"username":"u","password":"hunter2"}"#, None).unwrap_err();
        assert_eq!(err, "no host (set DATABASE_HOST)");
        let err = url("hunter2", None).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(url(r#"{"password":"x"}"#, Some("h")).is_err());
    }
}
