//! Permissions proven, not assumed: every AWS call a function makes while a sync runs through
//! the pipeline (stage → S3 → SQS → import → finalize → alerts, an unchanged re-run, a file
//! that fails whole) is recorded with the function that made it, and checked against that
//! function's own IAM policy in the SAM-transformed template. The SQS receives and deletes of
//! an event source mapping count as its function's (Lambda uses the function's role for them).
//! What the fan-out of a finalize step needs (sync-finalize queues parts, sync-finalize-part
//! consumes them and queues the step's finish) and every mapping's receive and delete are
//! checked against the policies too, whether or not the sync made those calls.

mod support;

use aws_sdk_sqs::config::ConfigBag;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stormwater::sync::Context;
use stormwater::sync::manifest::Source;
use stormwater::sync::runner::{self, Resources};
use stormwater::sync::stage::{self, StageRequest};
use stormwater::sync::wiring::Wiring;
use support::{Harness, file_url, harness, root, shared_data, transformed};

/// One AWS call: who made it, the IAM action it needs and the resource it touches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    function: String,
    action: String,
    resource: String,
}

/// Records every request an SDK client sends, for one function.
#[derive(Debug, Clone)]
struct Recorder {
    function: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "aws-call-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let meta = cfg.load::<Metadata>().ok_or("no operation metadata")?;
        let request = context.request();
        let (action, resource) = match meta.service() {
            "s3" | "S3" => {
                // Path-style: http://host:port/bucket/key?query
                let uri = request.uri();
                let path = uri.split_once("://").map_or(uri, |(_, r)| r);
                let path = path.split_once('/').map_or("", |(_, p)| p);
                let path = path.split('?').next().unwrap_or_default();
                let action = match meta.name() {
                    "HeadObject" => "GetObject".to_owned(),
                    "ListObjectsV2" | "ListObjects" => "ListBucket".to_owned(),
                    other => other.to_owned(),
                };
                (format!("s3:{action}"), format!("arn:aws:s3:::{path}"))
            }
            _ => {
                let body: serde_json::Value = request
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or_default();
                let resource = match body["QueueUrl"].as_str() {
                    Some(url) => runner::queue_arn(url),
                    None => format!(
                        "arn:aws:sqs:us-east-1:123456789012:{}",
                        body["QueueName"].as_str().unwrap_or("*")
                    ),
                };
                (format!("sqs:{}", meta.name()), resource)
            }
        };
        self.calls.lock().unwrap().push(Call {
            function: self.function.clone(),
            action,
            resource,
        });
        Ok(())
    }
}

/// The harness's context with SDK clients that record every call as `function`'s.
fn as_function(h: &Harness, function: &str, calls: &Arc<Mutex<Vec<Call>>>) -> Context {
    let recorder = Recorder {
        function: function.to_owned(),
        calls: calls.clone(),
    };
    Context {
        cfg: h.ctx.cfg.clone(),
        pool: h.ctx.pool.clone(),
        s3: aws_sdk_s3::Client::from_conf(
            h.ctx
                .s3
                .config()
                .to_builder()
                .interceptor(recorder.clone())
                .build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            h.ctx
                .sqs
                .config()
                .to_builder()
                .interceptor(recorder)
                .build(),
        ),
        cache: h.ctx.cache.clone(),
        http: h.ctx.http.clone(),
        webhooks: h.ctx.webhooks.clone(),
    }
}

/// Plays the template's mappings, each under its own function's recorded context, until the
/// queues are empty.
async fn drain(h: &Harness, contexts: &BTreeMap<String, Context>) {
    let mappings = runner::mappings(&h.res, 0).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let mut got = 0;
        for m in &mappings {
            got += runner::poll_once(&contexts[&m.function], m).await.unwrap();
        }
        if got == 0 {
            let mut left = 0;
            for m in &mappings {
                left += runner::backlog(&h.ctx.sqs, &m.queue_url).await.unwrap();
            }
            if left == 0 {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "queues not drained");
    }
}

/// The calls that `wiring` does not allow, as "function may not action on resource".
fn refused(wiring: &Wiring, res: &Resources, calls: &[Call]) -> Vec<String> {
    let mut out: Vec<String> = calls
        .iter()
        .filter(|c| !wiring.allows(&c.function, &c.action, &c.resource, &|id| res.arn_of(id)))
        .map(|c| format!("{} may not {} on {}", c.function, c.action, c.resource))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aws_call_is_allowed_by_its_functions_policy() {
    let h = harness("permissions", Some(40)).await;
    let wiring = h.res.wiring.clone();
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let contexts: BTreeMap<String, Context> = [
        "sync-stage",
        "sync-stage-file",
        "sync-import",
        "sync-finalize",
        "sync-finalize-part",
        "alert-dispatch",
    ]
    .iter()
    .map(|binary| {
        let function = wiring.function_of_binary(binary).unwrap().to_owned();
        let ctx = as_function(&h, &function, &calls);
        (function, ctx)
    })
    .collect();
    let stage_fn = wiring.function_of_binary("sync-stage").unwrap().to_owned();
    let file_fn = wiring
        .function_of_binary("sync-stage-file")
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read_to_string(shared_data(
        "real/NAS-Stormwater-Tool/Industrial_Application_Specific_Data_2019-03-12.csv",
    ))
    .unwrap();
    let lines: Vec<&str> = real.lines().take(101).collect();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, lines.join("\n") + "\n").unwrap();
    let sources = vec![
        Source {
            dataset: "smarts_industrial_facilities".into(),
            url: file_url(&good),
            scope: None,
        },
        Source {
            dataset: "smarts_industrial_monitoring".into(),
            url: file_url(&shared_data(
                "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_Ad_Hoc_Reports_-_Parameter_Data.txt",
            )),
            scope: None,
        },
    ];
    // sync-stage queues the files, sync-stage-file stages each (played under its own role by
    // `drain`, with every mapping); the files' outcomes are read once the queues are empty.
    let run = |sources: Vec<Source>| {
        let (ctx, h, contexts) = (&contexts[&stage_fn], &h, &contexts);
        async move {
            let planned = stage::run(
                ctx,
                StageRequest {
                    trigger: "test".into(),
                    sources: Some(sources),
                    force: false,
                },
            )
            .await
            .unwrap();
            drain(h, contexts).await;
            stage::file_outcomes(h.pool(), planned.run_id)
                .await
                .unwrap()
        }
    };
    // A first sync, the usual weekly run with nothing changed (the stager finalizes it), and
    // a file that fails whole (the stager deletes the chunks it had staged).
    run(sources.clone()).await;
    let unchanged = run(sources.clone()).await;
    assert!(
        unchanged.iter().all(|f| f.status == "skipped"),
        "{unchanged:?}"
    );
    let damaged: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                (*l).to_owned()
            } else {
                format!("{l},X")
            }
        })
        .collect();
    std::fs::write(&good, damaged.join("\n") + "\n").unwrap();
    let failed = run(sources[..1].to_vec()).await;
    assert_eq!(failed[0].status, "failed", "{failed:?}");

    let calls = calls.lock().unwrap().clone();
    let finalize_arn = runner::queue_arn(&h.res.finalize_queue_url);
    let part_arn = runner::queue_arn(&h.res.finalize_part_queue_url);
    let file_arn = runner::queue_arn(&h.res.stage_file_queue_url);
    for (function, action, resource) in [
        (
            stage_fn.as_str(),
            "sqs:SendMessage",
            Some(file_arn.as_str()),
        ),
        (
            file_fn.as_str(),
            "sqs:ReceiveMessage",
            Some(file_arn.as_str()),
        ),
        (file_fn.as_str(), "s3:PutObject", None),
        (file_fn.as_str(), "s3:DeleteObject", None),
        // The last file of the unchanged run finalizes it.
        (
            file_fn.as_str(),
            "sqs:SendMessage",
            Some(finalize_arn.as_str()),
        ),
        ("SyncImportFunction", "s3:GetObject", None),
        ("SyncImportFunction", "sqs:DeleteMessage", None),
        // Each finalize step queues the next.
        (
            "SyncFinalizeFunction",
            "sqs:SendMessage",
            Some(finalize_arn.as_str()),
        ),
        // The finalize part mapping is played under its own function's role.
        (
            "SyncFinalizePartFunction",
            "sqs:ReceiveMessage",
            Some(part_arn.as_str()),
        ),
    ] {
        assert!(
            calls.iter().any(|c| c.function == function
                && c.action == action
                && resource.is_none_or(|r| c.resource == r)),
            "the test covers {function} {action} {resource:?}: {calls:#?}"
        );
    }
    let mut seen: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c.function.as_str(), c.action.as_str()))
        .collect();
    seen.sort();
    seen.dedup();
    eprintln!("{} calls checked: {seen:?}", calls.len());
    assert_eq!(refused(&wiring, &h.res, &calls), Vec::<String>::new());

    // What the fan-out of a finalize step needs, whether or not this sync made those calls:
    // sync-finalize queues the parts, sync-finalize-part consumes them and its last part
    // queues the step's finish; and every event source mapping's function may receive, delete
    // and read the attributes of its queue (Lambda polls with the function's role).
    let mut needed: Vec<Call> = [
        ("SyncFinalizeFunction", "sqs:SendMessage", &part_arn),
        ("SyncFinalizePartFunction", "sqs:ReceiveMessage", &part_arn),
        ("SyncFinalizePartFunction", "sqs:DeleteMessage", &part_arn),
        (
            "SyncFinalizePartFunction",
            "sqs:GetQueueAttributes",
            &part_arn,
        ),
        (
            "SyncFinalizePartFunction",
            "sqs:ChangeMessageVisibility",
            &part_arn,
        ),
        ("SyncFinalizePartFunction", "sqs:SendMessage", &finalize_arn),
    ]
    .iter()
    .map(|(function, action, resource)| Call {
        function: (*function).to_owned(),
        action: (*action).to_owned(),
        resource: (*resource).clone(),
    })
    .collect();
    for m in &wiring.mappings {
        let queue = runner::queue_arn(&h.res.queue_urls[&m.queue]);
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ] {
            needed.push(Call {
                function: m.function.clone(),
                action: action.to_owned(),
                resource: queue.clone(),
            });
        }
    }
    assert!(
        wiring
            .mappings
            .iter()
            .any(|m| m.function == "SyncFinalizePartFunction" && m.queue == "FinalizePartQueue")
    );
    assert_eq!(refused(&wiring, &h.res, &needed), Vec::<String>::new());
    // Least privilege: a part neither consumes the FIFO finalize queue nor fans out parts.
    let beyond: Vec<Call> = [
        ("sqs:ReceiveMessage", &finalize_arn),
        ("sqs:SendMessage", &part_arn),
    ]
    .iter()
    .map(|(action, resource)| Call {
        function: "SyncFinalizePartFunction".to_owned(),
        action: (*action).to_owned(),
        resource: (*resource).clone(),
    })
    .collect();
    assert_eq!(refused(&wiring, &h.res, &beyond).len(), beyond.len());

    // The check names what a policy lacks: without it, the last file of a run with nothing to
    // import could not send the run's finalize request.
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let statement = "            - Sid: SignalFinalize\n              Effect: Allow\n              Action:\n                - sqs:SendMessage\n              Resource: !GetAtt FinalizeQueue.Arn\n";
    let stage_at = template.find("  SyncStageFileFunction:").unwrap();
    let at = stage_at + template[stage_at..].find(statement).unwrap();
    let without = format!("{}{}", &template[..at], &template[at + statement.len()..]);
    assert_eq!(
        refused(&transformed(&without), &h.res, &calls),
        vec![format!(
            "SyncStageFileFunction may not sqs:SendMessage on {finalize_arn}"
        )]
    );
    // Likewise for the fan-out: without its statement sync-finalize may not queue the parts.
    let statement = "            - Sid: FanOutFinalizeParts\n              Effect: Allow\n              Action:\n                - sqs:SendMessage\n              Resource: !GetAtt FinalizePartQueue.Arn\n";
    let finalize_at = template.find("  SyncFinalizeFunction:").unwrap();
    let at = finalize_at + template[finalize_at..].find(statement).unwrap();
    let without = format!("{}{}", &template[..at], &template[at + statement.len()..]);
    assert_eq!(
        refused(&transformed(&without), &h.res, &needed),
        vec![format!(
            "SyncFinalizeFunction may not sqs:SendMessage on {part_arn}"
        )]
    );
}
