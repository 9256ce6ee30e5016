//! Alert dispatch: match violation events against subscriptions, write the alert outbox, deliver.
//!
//! * An event alerts a subscription when it was detected after the subscription was created
//!   (`new`), or when its severity rose after both (`escalated`, once per severity reached).
//!   The outbox's unique key makes a re-run insert nothing: each alert is created once.
//! * Filters: the area (polygon, buffer, jurisdiction) against the event's canonical facility,
//!   `min_ratio`, `min_severity`, `repeat_threshold` (the facility has at least that many
//!   current events) and `level` (the facility x pollutant ERA Level is at least that).
//! * Delivery: webhook (JSON POST signed with HMAC-SHA256, `deliver` module) or email (SMTP).
//!   Webhooks go only to public addresses, checked again at delivery ([`crate::outbound`]): a
//!   target that is not public, or that answers with a redirect, is a failed delivery with the
//!   reason, never `sent`. A failed delivery stays in the outbox with its error and is retried
//!   by the next dispatch, up to [`MAX_ATTEMPTS`] times.

use super::area::{self, Area, Place};
use super::deliver::{self, SmtpSettings};
use crate::outbound;
use serde_json::{Value, json};
use sqlx::PgPool;

/// Deliveries tried per alert before it is left as failed.
pub const MAX_ATTEMPTS: i32 = 5;
/// Alerts delivered per dispatch call (the rest wait for the next call).
const BATCH: i64 = 500;

/// Errors that stop a dispatch (delivery failures do not: they are recorded per alert).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// What one dispatch did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispatched {
    pub subscriptions: usize,
    pub created: u64,
    pub sent: u64,
    pub failed: u64,
}

#[derive(sqlx::FromRow)]
struct Subscription {
    id: i64,
    name: String,
    mode: String,
    polygon: Option<Value>,
    center_lat: Option<f64>,
    center_lon: Option<f64>,
    radius_m: Option<f64>,
    counties: Option<Vec<String>>,
    regions: Option<Vec<String>>,
    min_ratio: Option<f64>,
    repeat_threshold: Option<i32>,
    min_severity: Option<String>,
    level: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    trigger: String,
    severity: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    county: Option<String>,
    region: Option<String>,
    payload: Value,
}

impl Subscription {
    fn area(&self) -> Option<Area> {
        area::from_stored(
            &self.mode,
            self.polygon.as_ref(),
            self.center_lat.zip(self.center_lon),
            self.radius_m,
            self.counties.as_deref(),
            self.regions.as_deref(),
        )
    }
}

/// `alert-dispatch`: one dispatch per SQS batch (the messages only say "a run finished"; what to
/// send is in the database). A failed dispatch fails the whole batch so SQS redelivers it.
pub async fn handle(
    ctx: &crate::sync::Context,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    if let Err(e) = dispatch(&ctx.pool, &ctx.webhooks, ctx.cfg.smtp.as_ref()).await {
        tracing::error!(error = %e, "alert dispatch failed");
        for m in event.records {
            response.add_failure(m.message_id.unwrap_or_default());
        }
    }
    response
}

/// Matches, records and delivers (see the module docs).
pub async fn dispatch(
    pool: &PgPool,
    webhooks: &outbound::Client,
    smtp: Option<&SmtpSettings>,
) -> Result<Dispatched, DispatchError> {
    let subs: Vec<Subscription> = sqlx::query_as!(
        Subscription,
        "select id, name, mode, polygon, center_lat, center_lon, radius_m, counties, regions,
                min_ratio::float8 as min_ratio, repeat_threshold, min_severity, level, created_at
         from subscription where active order by id"
    )
    .fetch_all(pool)
    .await?;
    let mut out = Dispatched {
        subscriptions: subs.len(),
        ..Dispatched::default()
    };
    for sub in &subs {
        let Some(area) = sub.area() else {
            tracing::warn!(
                subscription = sub.id,
                "subscription area is invalid; skipped"
            );
            continue;
        };
        let candidates = candidates(pool, sub).await?;
        let chosen: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| {
                area.contains(&Place {
                    lat: c.latitude,
                    lon: c.longitude,
                    county: c.county.as_deref(),
                    region: c.region.as_deref(),
                })
            })
            .collect();
        let (mut ids, mut triggers, mut severities, mut payloads) =
            (vec![], vec![], vec![], vec![]);
        for c in chosen {
            ids.push(c.id);
            triggers.push(c.trigger.clone());
            severities.push(c.severity.clone());
            let mut p = c.payload.clone();
            p["trigger"] = json!(c.trigger);
            p["subscription"] = json!({ "id": sub.id, "name": sub.name });
            payloads.push(p);
        }
        out.created += sqlx::query!("insert into alert (subscription_id, event_id, trigger, severity, payload)
             select $1, e, t, s, p from unnest($2::bigint[], $3::text[], $4::text[], $5::jsonb[]) as x(e, t, s, p)
             on conflict (subscription_id, event_id, trigger, coalesce(severity, '')) do nothing", sub.id, &ids, &triggers, &severities as _, &payloads)
        .execute(pool)
        .await?
        .rows_affected();
    }
    let (sent, failed) = deliver_pending(pool, webhooks, smtp).await?;
    out.sent = sent;
    out.failed = failed;
    tracing::info!(
        subscriptions = out.subscriptions,
        created = out.created,
        sent,
        failed,
        "alerts dispatched"
    );
    Ok(out)
}

/// Events passing the subscription's non-spatial filters, with the trigger they would alert as.
async fn candidates(pool: &PgPool, sub: &Subscription) -> Result<Vec<Candidate>, sqlx::Error> {
    sqlx::query_as!(Candidate, r#"with ev as (
             select e.*, f.name as facility_name, f.latitude, f.longitude, f.county, f.region,
                    p.name as pollutant_name, lc.level,
                    (select count(*) from violation_event x
                      where x.facility_id = e.facility_id and x.retracted_at is null) as facility_events
             from violation_event e
             join facility f on f.id = e.facility_id
             join pollutant p on p.key = e.pollutant_key
             left join nal_level_current lc on lc.facility_id = e.facility_id
                                           and lc.pollutant_key = e.pollutant_key
             where e.retracted_at is null
               and (e.detected_at > $1 or e.escalated_at > $1)
               and ($2::float8 is null or e.max_ratio >= $2::numeric)
               and ($3::text is null or severity_rank(e.severity) >= severity_rank($3))
               and ($5::text is null or lc.level = 'level_2' or (lc.level = 'level_1' and $5 = 'level_1'))
         ), t as (
             select ev.*, 'new' as trigger, null::text as alert_severity from ev where ev.detected_at > $1
             union all
             select ev.*, 'escalated', ev.severity from ev
             where ev.escalated_at > $1 and ev.escalated_at > ev.detected_at
         )
         select t.id as "id!", t.trigger as "trigger!", t.alert_severity as severity, t.latitude, t.longitude, t.county,
                t.region,
                jsonb_build_object(
                    'event', jsonb_build_object(
                        'id', t.id, 'facilityId', t.facility_id, 'facilityName', t.facility_name,
                        'county', t.county, 'region', t.region,
                        'pollutant', t.pollutant_key, 'pollutantName', t.pollutant_name,
                        'reportingYear', t.reporting_year, 'benchmarkType', t.benchmark_type,
                        'measure', t.measure, 'source', t.source, 'value', t.value, 'unit', t.unit,
                        'maxRatio', t.max_ratio, 'severity', t.severity,
                        'sampleCount', t.sample_count, 'exceedanceCount', t.exceedance_count,
                        'firstDate', t.first_date, 'lastDate', t.last_date,
                        'screening', t.screening, 'unverified', t.unverified,
                        'ndPolicy', t.nd_policy, 'level', coalesce(t.level, 'baseline'),
                        'status', t.status, 'detectedAt', t.detected_at,
                        'escalatedAt', t.escalated_at)) as "payload!"
         from t
         where $4::integer is null or t.facility_events >= $4
         order by t.id"#, sub.created_at, sub.min_ratio, sub.min_severity.as_deref(), sub.repeat_threshold, sub.level.as_deref())
    .fetch_all(pool)
    .await
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    attempts: i32,
    delivery: String,
    email: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    payload: Value,
}

/// Delivers pending alerts (and retries failed ones); returns (sent, failed) of this call.
async fn deliver_pending(
    pool: &PgPool,
    webhooks: &outbound::Client,
    smtp: Option<&SmtpSettings>,
) -> Result<(u64, u64), sqlx::Error> {
    let pending: Vec<Pending> = sqlx::query_as!(
        Pending,
        "select a.id, a.attempts, s.delivery, s.email, s.webhook_url, s.webhook_secret, a.payload
         from alert a join subscription s on s.id = a.subscription_id
         where s.active and (a.status = 'pending' or (a.status = 'failed' and a.attempts < $1))
         order by a.id limit $2",
        MAX_ATTEMPTS,
        BATCH
    )
    .fetch_all(pool)
    .await?;
    let (mut sent, mut failed) = (0, 0);
    for a in pending {
        let body = json!({ "alertId": a.id, "alert": a.payload });
        let result = match (a.delivery.as_str(), &a.webhook_url, &a.email) {
            ("webhook", Some(url), _) => deliver::post_webhook(
                webhooks,
                url,
                a.webhook_secret.as_deref(),
                &a.id.to_string(),
                &body,
            )
            .await
            .map(|_| ()),
            ("email", _, Some(to)) => match smtp {
                Some(settings) => {
                    let (subject, text) = email_text(&a.payload);
                    deliver::send_email(settings, to, &subject, &text).await
                }
                None => Err(deliver::DeliveryError::Smtp(
                    "SMTP is not configured (SMTP_HOST)".into(),
                )),
            },
            _ => Err(deliver::DeliveryError::InvalidUrl(
                "subscription has no delivery target".into(),
            )),
        };
        match result {
            Ok(()) => {
                sent += 1;
                sqlx::query!(
                    "update alert set status = 'sent', sent_at = now(), attempts = attempts + 1,
                                      last_error = null where id = $1",
                    a.id
                )
                .execute(pool)
                .await?;
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(alert = a.id, attempts = a.attempts + 1, error = %e, "alert delivery failed");
                sqlx::query!(
                    "update alert set status = 'failed', attempts = attempts + 1, last_error = $2
                     where id = $1",
                    a.id,
                    e.to_string()
                )
                .execute(pool)
                .await?;
            }
        }
    }
    Ok((sent, failed))
}

/// Subject and plain-text body of an email alert.
fn email_text(payload: &Value) -> (String, String) {
    let e = &payload["event"];
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let subject = format!(
        "[Stormwater Watch] {} {}: {} at {}",
        s(&payload["trigger"]),
        s(&e["severity"]),
        s(&e["pollutantName"]),
        s(&e["facilityName"]),
    );
    let text = format!(
        "Subscription: {sub}\nFacility: {fac} (id {fid}), {county} county, region {region}\n\
         Pollutant: {pol}\nReporting year: {year} (July 1 - June 30)\nBenchmark: {bt} ({measure})\n\
         Value: {value} {unit}, {ratio} x the benchmark, severity {sev}\n\
         Samples: {n}, first {first}, last {last}\nERA level: {level}\nScreening comparison: {screen}\n\
         Benchmark unverified: {unv}\nEvent id: {id}\n",
        sub = s(&payload["subscription"]["name"]),
        fac = s(&e["facilityName"]),
        fid = s(&e["facilityId"]),
        county = s(&e["county"]),
        region = s(&e["region"]),
        pol = s(&e["pollutantName"]),
        year = s(&e["reportingYear"]),
        bt = s(&e["benchmarkType"]),
        measure = s(&e["measure"]),
        value = s(&e["value"]),
        unit = s(&e["unit"]),
        ratio = s(&e["maxRatio"]),
        sev = s(&e["severity"]),
        n = s(&e["sampleCount"]),
        first = s(&e["firstDate"]),
        last = s(&e["lastDate"]),
        level = s(&e["level"]),
        screen = s(&e["screening"]),
        unv = s(&e["unverified"]),
        id = s(&e["id"]),
    );
    (subject, text)
}
