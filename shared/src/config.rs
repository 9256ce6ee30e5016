//! Typed configuration, read from the environment once per execution environment.
//! No other module reads environment variables.

use secrecy::SecretString;
use std::fmt;
use std::str::FromStr;

/// A variable is missing or unreadable; the message names it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} must be set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Everything the functions and local tools need. Sections a function does not use may be
/// absent; the accessor for them fails with the variable's name.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL` (a secret: it carries the password). On AWS prefer
    /// `DATABASE_SECRET_ARN`: [`crate::lambda::load_config`] then reads the URL from Secrets Manager.
    pub database_url: SecretString,
    /// `DATABASE_SECRET_ARN`, `DATABASE_HOST` (the RDS Proxy endpoint), `DATABASE_NAME`: where
    /// [`crate::lambda::load_config`] finds the database URL (see [`crate::lambda::secrets`]).
    pub database_secret_arn: Option<String>,
    pub database_host: Option<String>,
    pub database_name: Option<String>,
    /// `SMTP_PASSWORD_SECRET_ARN`: the secret [`crate::lambda::load_config`] reads the SMTP password from.
    pub smtp_password_secret_arn: Option<String>,
    /// `DB_MAX_CONNECTIONS`, default 2: one execution environment serves one request at a time.
    pub db_max_connections: u32,
    /// `DB_ACQUIRE_TIMEOUT_MS`, default 1500: how long a request waits for a database
    /// connection (an idle one, or a new one while the server refuses or does not answer)
    /// before it is answered 503 with `Retry-After` (see `db::pool`).
    pub db_acquire_timeout: std::time::Duration,
    /// `REDIS_URL`; without it the read API serves from Postgres only.
    pub redis_url: Option<String>,
    /// `AWS_ENDPOINT_URL`: set locally to the S3/SQS emulator.
    pub aws_endpoint_url: Option<String>,
    /// `S3_FORCE_PATH_STYLE`: path-style S3 URLs (needed by emulators on `localhost`).
    pub s3_force_path_style: bool,
    staging_bucket: Option<String>,
    import_queue_url: Option<String>,
    finalize_queue_url: Option<String>,
    finalize_part_queue_url: Option<String>,
    stage_file_queue_url: Option<String>,
    /// `ENGINE_ROWS_PER_PART`: source rows one part of a fanned-out engine pass reads (the
    /// number of parts follows from the rows to compute; see [`crate::sync::parts`]).
    pub engine_rows_per_part: u64,
    /// `CHUNK_ROWS`: records per staged chunk (default chosen by measurement, see docs/BENCHMARKS.md).
    pub chunk_rows: usize,
    /// `CKAN_API_URL`: the CKAN action API that lists the eSMR years (`package_show`) and
    /// resolves `ckan:` sources (`resource_show`).
    pub ckan_api_url: String,
    /// `QUARANTINE_MAX_SHARE`, `COLLAPSE_MIN_SHARE`, `WITHDRAW_MIN_SHARE`,
    /// `RUN_DEADLINE_MINUTES`: what a bad file or a stuck run may do (see [`Guards`]).
    pub guards: Guards,
    /// `ND_POLICY`: how non-detects enter NAL annual averages (`zero`, `half_mdl`, `dropped`).
    pub nd_policy: NdPolicy,
    alert_queue_url: Option<String>,
    /// `STORMWATER_TEMPLATE_JSON`: the SAM-transformed template.yaml (local stack and tests
    /// only: the runner builds queues and event source mappings from it).
    template_json: Option<std::path::PathBuf>,
    /// `SMTP_HOST`, `SMTP_PORT` (default 587), `SMTP_TLS` (`starttls` default, `tls`, `none`),
    /// `SMTP_USERNAME`, `SMTP_PASSWORD` (secret), `SMTP_FROM`: email alert delivery. Without
    /// `SMTP_HOST`, email alerts fail with a clear error and stay pending for a later retry.
    pub smtp: Option<SmtpSettings>,
    /// `WEBHOOK_TIMEOUT_SECS` (default 10): total time of one webhook delivery.
    pub webhook_timeout: std::time::Duration,
    /// `OUTBOUND_ALLOW_HOSTS`: comma-separated host names, IP addresses or CIDR ranges that
    /// webhooks may reach although they are not public addresses, and over plain `http`
    /// (see [`crate::outbound`]). Only for local tests whose receiver listens on loopback
    /// (`127.0.0.1`); production never sets it (template.yaml does not). Empty by default.
    pub outbound: crate::outbound::Policy,
    /// `MAX_ACTIVE_SUBSCRIPTIONS` (default 100): active alert subscriptions per owner.
    pub max_active_subscriptions: u32,
    /// `LINK_RADIUS_M` (default 100), `LINK_THRESHOLD` (0.85), `LINK_FLOOR` (0.5): facility
    /// linking (docs/LINKING.md).
    pub link: LinkSettings,
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

fn smtp() -> Result<Option<SmtpSettings>, ConfigError> {
    let Some(host) = var("SMTP_HOST") else {
        return Ok(None);
    };
    let from = var("SMTP_FROM").ok_or(ConfigError::Missing("SMTP_FROM"))?;
    Ok(Some(SmtpSettings {
        host,
        port: parsed("SMTP_PORT", 587u16)?,
        tls: parsed("SMTP_TLS", SmtpTls::StartTls)?,
        username: var("SMTP_USERNAME"),
        password: var("SMTP_PASSWORD").map(SecretString::from),
        from,
    }))
}

fn link_settings() -> Result<LinkSettings, ConfigError> {
    let d = LinkSettings::default();
    LinkSettings {
        radius_m: parsed("LINK_RADIUS_M", d.radius_m)?,
        threshold: parsed("LINK_THRESHOLD", d.threshold)?,
        floor: parsed("LINK_FLOOR", d.floor)?,
    }
    .validate()
    .map_err(|reason| ConfigError::Invalid {
        name: "LINK_RADIUS_M / LINK_THRESHOLD / LINK_FLOOR",
        reason,
    })
}

fn guards() -> Result<Guards, ConfigError> {
    let d = Guards::default();
    let share = |name: &'static str, default: f64| -> Result<f64, ConfigError> {
        let v = parsed(name, default)?;
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(ConfigError::Invalid {
                name,
                reason: format!("{v} is not a share between 0 and 1"),
            })
        }
    };
    let run_deadline_minutes = parsed("RUN_DEADLINE_MINUTES", d.run_deadline_minutes)?;
    if run_deadline_minutes == 0 {
        return Err(ConfigError::Invalid {
            name: "RUN_DEADLINE_MINUTES",
            reason: "must be at least 1".into(),
        });
    }
    Ok(Guards {
        quarantine_max_share: share("QUARANTINE_MAX_SHARE", d.quarantine_max_share)?,
        collapse_min_share: share("COLLAPSE_MIN_SHARE", d.collapse_min_share)?,
        withdraw_min_share: share("WITHDRAW_MIN_SHARE", d.withdraw_min_share)?,
        run_deadline_minutes,
    })
}

impl Config {
    /// Reads the environment. Call once, in `main`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let database_secret_arn = var("DATABASE_SECRET_ARN");
        // With a secret, the URL is read from it in `load` (an empty placeholder until then).
        let database_url = match (var("DATABASE_URL"), &database_secret_arn) {
            (Some(url), _) => url,
            (None, Some(_)) => String::new(),
            (None, None) => return Err(ConfigError::Missing("DATABASE_URL")),
        };
        // 50,000: near the best rows/s with a flat ~22 MiB peak RSS (docs/BENCHMARKS.md).
        let chunk_rows = parsed("CHUNK_ROWS", 50_000usize)?;
        if chunk_rows == 0 {
            return Err(ConfigError::Invalid {
                name: "CHUNK_ROWS",
                reason: "must be at least 1".into(),
            });
        }
        let max_active_subscriptions = parsed("MAX_ACTIVE_SUBSCRIPTIONS", 100u32)?;
        if max_active_subscriptions == 0 {
            return Err(ConfigError::Invalid {
                name: "MAX_ACTIVE_SUBSCRIPTIONS",
                reason: "must be at least 1".into(),
            });
        }
        let db_acquire_timeout = match parsed("DB_ACQUIRE_TIMEOUT_MS", 1500u64)? {
            0 => {
                return Err(ConfigError::Invalid {
                    name: "DB_ACQUIRE_TIMEOUT_MS",
                    reason: "must be at least 1".into(),
                });
            }
            ms => std::time::Duration::from_millis(ms),
        };
        Ok(Self {
            database_url: database_url.into(),
            database_secret_arn,
            database_host: var("DATABASE_HOST"),
            database_name: var("DATABASE_NAME"),
            smtp_password_secret_arn: var("SMTP_PASSWORD_SECRET_ARN"),
            db_max_connections: parsed("DB_MAX_CONNECTIONS", 2u32)?,
            db_acquire_timeout,
            redis_url: var("REDIS_URL"),
            aws_endpoint_url: var("AWS_ENDPOINT_URL"),
            s3_force_path_style: matches!(
                var("S3_FORCE_PATH_STYLE").as_deref(),
                Some("1" | "true" | "TRUE" | "yes")
            ),
            staging_bucket: var("STAGING_BUCKET"),
            import_queue_url: var("IMPORT_QUEUE_URL"),
            finalize_queue_url: var("FINALIZE_QUEUE_URL"),
            finalize_part_queue_url: var("FINALIZE_PART_QUEUE_URL"),
            stage_file_queue_url: var("STAGE_FILE_QUEUE_URL"),
            engine_rows_per_part: parsed("ENGINE_ROWS_PER_PART", 1_000_000u64)?.max(1),
            chunk_rows,
            guards: guards()?,
            ckan_api_url: var("CKAN_API_URL").unwrap_or_else(|| CKAN_API.to_owned()),
            nd_policy: parsed("ND_POLICY", NdPolicy::default())?,
            alert_queue_url: var("ALERT_QUEUE_URL"),
            template_json: var("STORMWATER_TEMPLATE_JSON").map(std::path::PathBuf::from),
            smtp: smtp()?,
            webhook_timeout: std::time::Duration::from_secs(parsed("WEBHOOK_TIMEOUT_SECS", 10u64)?),
            outbound: parsed("OUTBOUND_ALLOW_HOSTS", crate::outbound::Policy::default())?,
            max_active_subscriptions,
            link: link_settings()?,
        })
    }

    /// Names the secret [`crate::lambda::with_secrets`] reads the database URL from.
    pub fn with_database_secret(
        mut self,
        arn: &str,
        host: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        self.database_secret_arn = Some(arn.to_owned());
        self.database_host = host.map(str::to_owned);
        self.database_name = name.map(str::to_owned);
        self
    }

    /// `ALERT_QUEUE_URL`: finalize asks the alert-dispatch function to run through it.
    pub fn alert_queue_url(&self) -> Option<&str> {
        self.alert_queue_url.as_deref()
    }

    /// Replaces the alert queue (tests create their own).
    pub fn with_alert_queue(mut self, url: Option<String>) -> Self {
        self.alert_queue_url = url;
        self
    }

    /// `STORMWATER_TEMPLATE_JSON`: the SAM-transformed template the local stack is built from
    /// (see [`crate::sync::wiring::Wiring::from_config`]).
    pub fn template_json(&self) -> Result<&std::path::Path, ConfigError> {
        self.template_json
            .as_deref()
            .ok_or(ConfigError::Missing("STORMWATER_TEMPLATE_JSON"))
    }

    /// `STAGING_BUCKET`: where staged chunks go.
    pub fn staging_bucket(&self) -> Result<&str, ConfigError> {
        self.staging_bucket
            .as_deref()
            .ok_or(ConfigError::Missing("STAGING_BUCKET"))
    }

    /// `IMPORT_QUEUE_URL`: one message per staged chunk.
    pub fn import_queue_url(&self) -> Result<&str, ConfigError> {
        self.import_queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("IMPORT_QUEUE_URL"))
    }

    /// `FINALIZE_QUEUE_URL`: a FIFO queue; one message per completed run.
    pub fn finalize_queue_url(&self) -> Result<&str, ConfigError> {
        self.finalize_queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("FINALIZE_QUEUE_URL"))
    }

    /// `FINALIZE_PART_QUEUE_URL`: a standard queue; one message per part of a fanned-out
    /// finalize step.
    pub fn finalize_part_queue_url(&self) -> Result<&str, ConfigError> {
        self.finalize_part_queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("FINALIZE_PART_QUEUE_URL"))
    }

    /// Replaces the finalize part queue (tests create their own).
    pub fn with_finalize_part_queue(mut self, url: &str) -> Self {
        self.finalize_part_queue_url = Some(url.to_owned());
        self
    }

    /// `STAGE_FILE_QUEUE_URL`: a standard queue; one message per source file of a run.
    pub fn stage_file_queue_url(&self) -> Result<&str, ConfigError> {
        self.stage_file_queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("STAGE_FILE_QUEUE_URL"))
    }

    /// Replaces the stage-file queue (tests create their own).
    pub fn with_stage_file_queue(mut self, url: &str) -> Self {
        self.stage_file_queue_url = Some(url.to_owned());
        self
    }

    /// Replaces the AWS resource names (tests create their own bucket and queues).
    pub fn with_aws_resources(
        mut self,
        bucket: &str,
        import_queue: &str,
        finalize_queue: &str,
    ) -> Self {
        self.staging_bucket = Some(bucket.to_owned());
        self.import_queue_url = Some(import_queue.to_owned());
        self.finalize_queue_url = Some(finalize_queue.to_owned());
        self
    }

    /// Replaces the database URL (tests use one throw-away database each).
    pub fn with_database_url(mut self, url: String) -> Self {
        self.database_url = url.into();
        self
    }
}

// The sections of the config, each with its defaults and checks.

/// How many times an import message may be received before it goes to the DLQ: the
/// ImportQueue's `maxReceiveCount` in template.yaml (a test checks they agree). The importer
/// records a chunk failed at its last delivery.
pub const IMPORT_MAX_RECEIVES: u32 = 5;

/// How many times a finalize part's message may be received before it goes to the DLQ: the
/// FinalizePartQueue's `maxReceiveCount` in template.yaml (a test checks they agree). The
/// part's last delivery records it failed, so its step still finishes.
pub const FINALIZE_PART_MAX_RECEIVES: u32 = 3;

/// How many times a stage-file message may be received before it goes to the DLQ: the
/// StageFileQueue's `maxReceiveCount` in template.yaml (a test checks they agree). The last
/// delivery records the file failed, so its run still finishes.
pub const STAGE_FILE_MAX_RECEIVES: u32 = 3;

/// The publisher's CKAN action API (`CKAN_API_URL` overrides it, e.g. for a local test server;
/// a URL of one of its actions, `…/action/resource_show`, is read as its base).
pub const CKAN_API: &str = "https://data.ca.gov/api/3/action";

/// What a bad file or a stuck run may do. A row that could not be read is never evidence that
/// its record disappeared, and a file that is mostly unreadable changes nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// A file in which more than this share of the rows cannot be stored (wrong field count,
    /// no identifier) fails whole before anything is queued: nothing of it is imported.
    pub quarantine_max_share: f64,
    /// A file that would store fewer rows than this share of the last good file of its dataset
    /// (and scope) fails whole the same way: a truncated download is not the new truth.
    pub collapse_min_share: f64,
    /// A file that stores fewer rows than this share of the last good file is imported, but
    /// withdraws nothing (the run says why).
    pub withdraw_min_share: f64,
    /// A run not finished this many minutes after it started is closed (`failed`, with the
    /// reason) by the next run.
    pub run_deadline_minutes: u32,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            quarantine_max_share: 0.5,
            collapse_min_share: 0.5,
            withdraw_min_share: 0.9,
            run_deadline_minutes: 720,
        }
    }
}

/// How non-detects enter an annual average (shared/data/benchmarks/README.md section 3).
///
/// A non-detect is never an exceedance on its own, whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NdPolicy {
    /// ND counts as 0 and stays in the denominator (the project's default convention).
    #[default]
    Zero,
    /// ND counts as half its MDL (RL when no MDL is given; 0 when neither is).
    HalfMdl,
    /// NDs are left out of the average.
    Dropped,
}

impl NdPolicy {
    pub const ALL: [NdPolicy; 3] = [NdPolicy::Zero, NdPolicy::HalfMdl, NdPolicy::Dropped];

    pub fn as_str(self) -> &'static str {
        match self {
            NdPolicy::Zero => "zero",
            NdPolicy::HalfMdl => "half_mdl",
            NdPolicy::Dropped => "dropped",
        }
    }
}

impl fmt::Display for NdPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NdPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NdPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| format!("expected one of zero, half_mdl, dropped; got {s:?}"))
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text; only for local relays and tests.
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587); fails if not offered.
    StartTls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

/// An SMTP TLS mode other than `none`, `starttls` or `tls`.
#[derive(Debug, thiserror::Error)]
#[error("SMTP TLS mode must be none, starttls or tls, got {0:?}")]
pub struct InvalidSmtpTls(pub String);

impl FromStr for SmtpTls {
    type Err = InvalidSmtpTls;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            _ => Err(InvalidSmtpTls(s.to_owned())),
        }
    }
}

/// Where and as whom alert emails are sent.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Sender, either `alerts@example.org` or `Stormwater Watch <alerts@example.org>`.
    pub from: String,
}

/// Linker settings (`LINK_RADIUS_M`, `LINK_THRESHOLD`, `LINK_FLOOR`; docs/LINKING.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkSettings {
    /// Coordinates closer than this agree on the place (default 100 m).
    pub radius_m: f64,
    /// Confidence at or above which a link is made without review (default 0.85).
    pub threshold: f32,
    /// Confidence below which a candidate is not even proposed (default 0.5).
    pub floor: f32,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            radius_m: 100.0,
            threshold: 0.85,
            floor: 0.5,
        }
    }
}

impl LinkSettings {
    /// Checks the ranges (radius > 0, 0 < floor ≤ threshold ≤ 1).
    pub fn validate(self) -> Result<Self, String> {
        if !(self.radius_m > 0.0 && self.radius_m.is_finite()) {
            return Err("the radius must be a positive number of metres".into());
        }
        if !(self.floor > 0.0 && self.floor <= self.threshold && self.threshold <= 1.0) {
            return Err("need 0 < floor <= threshold <= 1".into());
        }
        Ok(self)
    }
}
