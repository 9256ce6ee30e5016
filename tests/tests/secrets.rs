//! The database URL from Secrets Manager (the emulator's), as a deployed function reads it at
//! cold start: an RDS-managed master-user secret (user and password only) plus the proxy host,
//! a secret holding a URL, and the SMTP password. Nothing of it is in the environment.

mod support;

use secrecy::ExposeSecret;
use support::harness;

async fn put_secret(sdk: &aws_config::SdkConfig, name: &str, text: &str) -> String {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(text)
        .send()
        .await
        .expect("create the secret in the emulator")
        .arn()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_read_the_database_url_from_secrets_manager() {
    let h = harness("secrets", None).await;
    let sdk = stormwater::lambda::aws::sdk_config(&h.ctx.cfg).await;
    let url = h.database_url().await;
    let db = url.rsplit('/').next().unwrap().to_owned();
    let port = url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // The shape RDS writes for a managed master user; the local server trusts the password.
    let managed = put_secret(
        &sdk,
        &format!("{}-managed", h.prefix),
        r#"{"username":"postgres","password":"p@ss:w/rd?#"}"#,
    )
    .await;
    // DATABASE_HOST: the "proxy" is the local server.
    let host = "127.0.0.1";
    let cfg = h
        .ctx
        .cfg
        .clone()
        .with_database_url(String::new())
        .with_database_secret(&managed, Some(host), Some(&db));
    let cfg = stormwater::lambda::with_secrets(cfg)
        .await
        .expect("the secret is read");
    // The port is the secret's default (5432) unless the secret names one: this secret names
    // none, so the URL says 5432; a secret with the local port is checked next.
    assert_eq!(
        cfg.database_url.expose_secret(),
        &format!("postgres://postgres:p%40ss%3Aw%2Frd%3F%23@{host}:5432/{db}")
    );
    let full = put_secret(
        &sdk,
        &format!("{}-full", h.prefix),
        &format!(r#"{{"username":"postgres","password":"x","host":"db.invalid","port":{port},"dbname":"{db}"}}"#),
    )
    .await;
    let cfg = h
        .ctx
        .cfg
        .clone()
        .with_database_url(String::new())
        .with_database_secret(&full, Some(host), None);
    let cfg = stormwater::lambda::with_secrets(cfg)
        .await
        .expect("the secret is read");
    let pool = stormwater::db::pool(&cfg).unwrap();
    let current: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&pool)
        .await
        .expect("connects through the URL made from the secret");
    assert_eq!(current, db);
    // What cannot be read is a configuration error naming the variable, not the secret.
    let missing = h.ctx.cfg.clone().with_database_secret(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:none",
        None,
        None,
    );
    let missing = stormwater::lambda::with_secrets(missing)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing
            .starts_with("environment variable DATABASE_SECRET_ARN is invalid: cannot read secret"),
        "{missing}"
    );
    assert!(
        !format!("{cfg:?}").contains("p@ss"),
        "Config's Debug shows no secret"
    );

    // The SMTP password, likewise.
    let smtp_secret = put_secret(&sdk, &format!("{}-smtp", h.prefix), "smtp-s3cret").await;
    let mut cfg = h.ctx.cfg.clone();
    cfg.smtp = Some(stormwater::alerts::deliver::SmtpSettings {
        host: "127.0.0.1".into(),
        port: 2525,
        tls: stormwater::alerts::deliver::SmtpTls::None,
        username: Some("alerts".into()),
        password: None,
        from: "alerts@example.org".into(),
    });
    cfg.smtp_password_secret_arn = Some(smtp_secret);
    let cfg = stormwater::lambda::with_secrets(cfg)
        .await
        .expect("the SMTP secret is read");
    assert_eq!(
        cfg.smtp
            .as_ref()
            .and_then(|s| s.password.as_ref())
            .map(|p| p.expose_secret().to_owned()),
        Some("smtp-s3cret".to_owned())
    );
}
