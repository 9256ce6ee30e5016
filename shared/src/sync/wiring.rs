//! The wiring template.yaml declares, read from its SAM-transformed form (the CloudFormation
//! JSON that `scripts/sam_transform.py` writes, i.e. exactly what AWS deploys, SAM defaults
//! included): the queues with their visibility timeouts, FIFO settings and redrive policies,
//! the event source mappings (queue → function, batch size, batching window, response types,
//! maximum concurrency), each function's binary and timeout, and each function's IAM policy.
//!
//! The local stack builds its bucket and queues and plays the event source mappings from this,
//! never from a second declaration, so that what passes locally holds on AWS.

use serde_json::Value;
use std::collections::BTreeMap;

/// The template could not be read as the wiring of this project.
#[derive(Debug, thiserror::Error)]
#[error("template wiring: {0}")]
pub struct WiringError(String);

fn err(message: impl Into<String>) -> WiringError {
    WiringError(message.into())
}

/// One `AWS::SQS::Queue`.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    /// The queue's name with the stack name as `{stack}` (`{stack}-import`).
    pub name: String,
    pub fifo: bool,
    pub content_based_deduplication: bool,
    /// Seconds; SQS's default (30) when the template leaves it out.
    pub visibility_timeout: u32,
    pub message_retention: Option<u32>,
    /// The dead-letter queue (logical id) and `maxReceiveCount`.
    pub redrive: Option<(String, u32)>,
}

/// One `AWS::Lambda::EventSourceMapping` on an SQS queue.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSourceMapping {
    /// Logical id of the mapping.
    pub id: String,
    /// Logical id of the queue.
    pub queue: String,
    /// Logical id of the function.
    pub function: String,
    /// Lambda's default (10) when the template leaves it out.
    pub batch_size: u32,
    pub batching_window: u32,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`: only then does Lambda read the
    /// batch response; otherwise a returned response counts as success for the whole batch.
    pub report_batch_item_failures: bool,
    pub maximum_concurrency: Option<u32>,
}

/// One `AWS::Lambda::Function`.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub timeout: u32,
    /// Logical id of its execution role.
    pub role: Option<String>,
}

/// One `Allow` statement of a function's role, with resources as the template spells them
/// (see [`Wiring::allows`] for how they are matched).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<Value>,
}

/// Everything the local stack takes from the template.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    pub queues: BTreeMap<String, Queue>,
    pub mappings: Vec<EventSourceMapping>,
    pub functions: BTreeMap<String, Function>,
    /// Allow statements per role (logical id).
    pub policies: BTreeMap<String, Vec<Statement>>,
    /// Logical ids of the `AWS::S3::Bucket`s.
    pub buckets: Vec<String>,
}

fn as_u32(v: Option<&Value>, what: &str) -> Result<Option<u32>, WiringError> {
    match v {
        Some(r) if r.get("Ref").is_some() => Err(err(format!(
            "{what} refers to {r}, which is not a parameter with a default"
        ))),
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| err(format!("{what} is not a whole number: {v}"))),
    }
}

/// Replaces every `{"Ref": parameter}` in `v` by the parameter's default.
fn with_defaults(v: &mut Value, defaults: &BTreeMap<String, Value>) {
    let default = v
        .get("Ref")
        .and_then(Value::as_str)
        .and_then(|name| defaults.get(name))
        .cloned();
    if let Some(d) = default {
        *v = d;
        return;
    }
    match v {
        Value::Array(a) => a.iter_mut().for_each(|x| with_defaults(x, defaults)),
        Value::Object(o) => o.values_mut().for_each(|x| with_defaults(x, defaults)),
        _ => {}
    }
}

/// `{"Fn::GetAtt": [id, "Arn"]}` or `{"Ref": id}` → id.
fn logical_id(v: &Value) -> Option<String> {
    v.get("Ref")
        .and_then(Value::as_str)
        .or_else(|| {
            v.get("Fn::GetAtt")
                .and_then(|a| a.get(0))
                .and_then(Value::as_str)
        })
        .map(str::to_owned)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => vec![],
    }
}

impl Wiring {
    /// Reads the SAM-transformed template (CloudFormation JSON).
    pub fn from_json(text: &str) -> Result<Self, WiringError> {
        let template: Value =
            serde_json::from_str(text).map_err(|e| err(format!("not JSON: {e}")))?;
        let resources = template
            .get("Resources")
            .and_then(Value::as_object)
            .ok_or_else(|| err("no Resources"))?;
        // Parameters are read at their defaults (what `sam deploy --guided` proposes).
        let defaults: BTreeMap<String, Value> = template
            .get("Parameters")
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .filter_map(|(k, v)| v.get("Default").map(|d| (k.clone(), d.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let mut w = Wiring::default();
        for (id, r) in resources {
            let mut props = r.get("Properties").cloned().unwrap_or(Value::Null);
            with_defaults(&mut props, &defaults);
            match r.get("Type").and_then(Value::as_str).unwrap_or_default() {
                "AWS::SQS::Queue" => {
                    let name = match props.get("QueueName") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v
                            .get("Fn::Sub")
                            .and_then(Value::as_str)
                            .map(|s| s.replace("${AWS::StackName}", "{stack}"))
                            .ok_or_else(|| err(format!("{id}: QueueName {v}")))?,
                        None => format!("{{stack}}-{id}"),
                    };
                    let redrive = match props.get("RedrivePolicy") {
                        None => None,
                        Some(p) => Some((
                            p.get("deadLetterTargetArn")
                                .and_then(logical_id)
                                .ok_or_else(|| err(format!("{id}: deadLetterTargetArn")))?,
                            as_u32(p.get("maxReceiveCount"), "maxReceiveCount")?
                                .ok_or_else(|| err(format!("{id}: maxReceiveCount")))?,
                        )),
                    };
                    let flag = |k: &str| {
                        props
                            .get(k)
                            .is_some_and(|v| v == &Value::Bool(true) || v == "true")
                    };
                    w.queues.insert(
                        id.clone(),
                        Queue {
                            name,
                            fifo: flag("FifoQueue"),
                            content_based_deduplication: flag("ContentBasedDeduplication"),
                            visibility_timeout: as_u32(
                                props.get("VisibilityTimeout"),
                                "VisibilityTimeout",
                            )?
                            .unwrap_or(30),
                            message_retention: as_u32(
                                props.get("MessageRetentionPeriod"),
                                "MessageRetentionPeriod",
                            )?,
                            redrive,
                        },
                    );
                }
                "AWS::Lambda::EventSourceMapping" => {
                    let queue = props
                        .get("EventSourceArn")
                        .and_then(logical_id)
                        .ok_or_else(|| err(format!("{id}: EventSourceArn")))?;
                    let function = props
                        .get("FunctionName")
                        .and_then(logical_id)
                        .ok_or_else(|| err(format!("{id}: FunctionName")))?;
                    w.mappings.push(EventSourceMapping {
                        id: id.clone(),
                        queue,
                        function,
                        batch_size: as_u32(props.get("BatchSize"), "BatchSize")?.unwrap_or(10),
                        batching_window: as_u32(
                            props.get("MaximumBatchingWindowInSeconds"),
                            "MaximumBatchingWindowInSeconds",
                        )?
                        .unwrap_or(0),
                        report_batch_item_failures: strings(props.get("FunctionResponseTypes"))
                            .iter()
                            .any(|t| t == "ReportBatchItemFailures"),
                        maximum_concurrency: as_u32(
                            props
                                .get("ScalingConfig")
                                .and_then(|s| s.get("MaximumConcurrency")),
                            "MaximumConcurrency",
                        )?,
                    });
                }
                "AWS::Lambda::Function" => {
                    let binary = r
                        .pointer("/Metadata/BuildProperties/Binary")
                        .and_then(Value::as_str)
                        .ok_or_else(|| err(format!("{id}: no Metadata.BuildProperties.Binary")))?;
                    w.functions.insert(
                        id.clone(),
                        Function {
                            binary: binary.to_owned(),
                            timeout: as_u32(props.get("Timeout"), "Timeout")?.unwrap_or(3),
                            role: props.get("Role").and_then(logical_id),
                        },
                    );
                }
                "AWS::IAM::Role" => {
                    let mut statements = Vec::new();
                    for p in props
                        .get("Policies")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        for s in p
                            .pointer("/PolicyDocument/Statement")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
                                continue;
                            }
                            statements.push(Statement {
                                actions: strings(s.get("Action")),
                                resources: match s.get("Resource") {
                                    Some(Value::Array(a)) => a.clone(),
                                    Some(v) => vec![v.clone()],
                                    None => vec![],
                                },
                            });
                        }
                    }
                    w.policies.insert(id.clone(), statements);
                }
                "AWS::S3::Bucket" => w.buckets.push(id.clone()),
                _ => {}
            }
        }
        for m in &w.mappings {
            if !w.queues.contains_key(&m.queue) || !w.functions.contains_key(&m.function) {
                return Err(err(format!(
                    "{}: maps {} to {}, which the template does not declare",
                    m.id, m.queue, m.function
                )));
            }
        }
        Ok(w)
    }

    /// Reads the SAM-transformed template at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, WiringError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json(&text)
    }

    /// The template `STORMWATER_TEMPLATE_JSON` names (the local stack's).
    pub fn from_config(cfg: &crate::config::Config) -> Result<Self, super::SyncError> {
        Self::from_file(cfg.template_json()?).map_err(|e| super::SyncError::Message(e.to_string()))
    }

    /// The function (logical id) built from `binary`.
    pub fn function_of_binary(&self, binary: &str) -> Option<&str> {
        self.functions
            .iter()
            .find(|(_, f)| f.binary == binary)
            .map(|(id, _)| id.as_str())
    }

    /// Whether the role of `function` allows `action` on the resource `arn`, given the ARN of
    /// each resource the template names (`arn_of(logical id)`, used for `Ref`, `Fn::GetAtt`
    /// and `${…}` in `Fn::Sub`). Wildcards (`*`) in actions and resources match any run of
    /// characters.
    pub fn allows(
        &self,
        function: &str,
        action: &str,
        arn: &str,
        arn_of: &dyn Fn(&str) -> Option<String>,
    ) -> bool {
        let Some(role) = self.functions.get(function).and_then(|f| f.role.as_deref()) else {
            return false;
        };
        self.policies.get(role).into_iter().flatten().any(|s| {
            s.actions
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && s.resources
                    .iter()
                    .filter_map(|r| resolve(r, arn_of))
                    .any(|r| glob(&r, arn))
        })
    }
}

/// A template resource expression as an ARN pattern.
fn resolve(v: &Value, arn_of: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        _ if v.get("Fn::GetAtt").is_some() || v.get("Ref").is_some() => {
            logical_id(v).and_then(|id| arn_of(&id))
        }
        _ => {
            let sub = v.get("Fn::Sub").and_then(Value::as_str)?;
            let mut out = String::new();
            let mut rest = sub;
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find('}')? + start;
                let name = &rest[start + 2..end];
                let value = match name {
                    "AWS::Partition" => "aws".to_owned(),
                    "AWS::Region" => "us-east-1".to_owned(),
                    "AWS::AccountId" => "123456789012".to_owned(),
                    other => {
                        let (id, attr) = other.split_once('.').unwrap_or((other, ""));
                        let arn = arn_of(id)?;
                        // A bucket's Ref is its name; `.Arn` (and queues' Ref) are ARNs.
                        if attr.is_empty() {
                            arn.rsplit(':').next().unwrap_or_default().to_owned()
                        } else {
                            arn
                        }
                    }
                };
                out.push_str(&value);
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Some(out)
        }
    }
}

/// `*` matches any run of characters (IAM's wildcard; `?` is not used by the template).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_iam() {
        assert!(glob(
            "arn:aws:s3:::b/chunks/*",
            "arn:aws:s3:::b/chunks/1/x.csv"
        ));
        assert!(!glob(
            "arn:aws:s3:::b/chunks/*",
            "arn:aws:s3:::b/other/x.csv"
        ));
        assert!(glob("sqs:*", "sqs:sendmessage"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abde"));
        assert!(glob("exact", "exact"));
    }

    #[test]
    fn sub_expressions_resolve_bucket_names_and_arns() {
        let arn_of = |id: &str| match id {
            "StagingBucket" => Some("arn:aws:s3:::t1-staging".to_owned()),
            _ => None,
        };
        let v =
            serde_json::json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${StagingBucket}/chunks/*"});
        assert_eq!(
            resolve(&v, &arn_of).as_deref(),
            Some("arn:aws:s3:::t1-staging/chunks/*")
        );
        let v = serde_json::json!({"Fn::Sub": "${StagingBucket.Arn}/*"});
        assert_eq!(
            resolve(&v, &arn_of).as_deref(),
            Some("arn:aws:s3:::t1-staging/*")
        );
    }
}
