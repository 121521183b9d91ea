//! `gregor topics create|list|describe|delete`.

use super::client::{topic_name, Client, Target, TopicMeta};
use super::{error_text, out, out_json, Common, Error, Table};
use clap::{Args, Subcommand};
use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use gregor_protocol::messages::delete_topics_request::DeleteTopicState;
use gregor_protocol::messages::describe_configs_request::DescribeConfigsResource;
use gregor_protocol::messages::{CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest};
use gregor_protocol::protocol::StrBytes;
use serde_json::json;

#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    cmd: TopicsCmd,
}

#[derive(Debug, Subcommand)]
enum TopicsCmd {
    /// Create topics.
    Create {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(short = 'p', long = "partitions", default_value_t = -1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(short = 'r', long = "replicas", default_value_t = -1, allow_negative_numbers = true)]
        replicas: i16,
        /// Topic config key=value (repeatable), e.g. -c cleanup.policy=compact.
        #[arg(short = 'c', long = "config", value_parser = parse_kv)]
        config: Vec<(String, String)>,
    },
    /// List topics: name, partitions, replicas.
    List {
        /// Include internal topics (__consumer_offsets, ...).
        #[arg(short = 'i', long)]
        internal: bool,
    },
    /// Describe a topic: id, partitions (leader, replicas, ISR, offsets) and non-default configs.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `key=value`.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

pub async fn run(args: TopicsArgs) -> Result<(), Error> {
    let mut client = args.common.client()?;
    let json = args.common.json;
    match args.cmd {
        TopicsCmd::Create {
            names,
            partitions,
            replicas,
            config,
        } => create(&mut client, json, &names, partitions, replicas, &config).await,
        TopicsCmd::List { internal } => list(&mut client, json, internal).await,
        TopicsCmd::Describe { name } => describe(&mut client, json, &name).await,
        TopicsCmd::Delete { names } => delete(&mut client, json, &names).await,
    }
}

/// Print per-topic results, then fail if any failed.
fn report(json: bool, op: &str, results: Vec<(String, i16, Option<String>)>) -> Result<(), Error> {
    let failed = results.iter().filter(|r| r.1 != 0).count();
    if json {
        let v: Vec<_> = results
            .iter()
            .map(|(t, code, msg)| {
                let mut e = serde_json::Value::Null;
                if *code != 0 {
                    if let Error::Kafka { name, message, .. } = Error::kafka("", *code, msg.clone())
                    {
                        e = json!({"code": code, "name": name, "message": message});
                    }
                }
                json!({"topic": t, "error": e})
            })
            .collect();
        out_json(&serde_json::Value::Array(v))?;
    } else {
        let mut t = Table::new(&["TOPIC", "STATUS"]);
        for (name, code, msg) in &results {
            t.row(vec![name.clone(), error_text(*code, msg.as_deref())]);
        }
        t.print()?;
    }
    match results.into_iter().find(|r| r.1 != 0) {
        Some((t, code, msg)) if failed == 1 => {
            Err(Error::kafka(&format!("{op} topic {t}"), code, msg))
        }
        Some((t, code, msg)) => Err(Error::kafka(
            &format!("{op} {failed} topics failed; topic {t}"),
            code,
            msg,
        )),
        None => Ok(()),
    }
}

async fn create(
    client: &mut Client,
    json: bool,
    names: &[String],
    partitions: i32,
    replicas: i16,
    config: &[(String, String)],
) -> Result<(), Error> {
    let timeout_ms = client.timeout().as_millis().min(i32::MAX as u128) as i32;
    let (_, resp) = client
        .call(Target::Any, |_| {
            CreateTopicsRequest::default()
                .with_timeout_ms(timeout_ms)
                .with_topics(
                    names
                        .iter()
                        .map(|n| {
                            CreatableTopic::default()
                                .with_name(topic_name(n))
                                .with_num_partitions(partitions)
                                .with_replication_factor(replicas)
                                .with_configs(
                                    config
                                        .iter()
                                        .map(|(k, v)| {
                                            CreatableTopicConfig::default()
                                                .with_name(StrBytes::from_string(k.clone()))
                                                .with_value(Some(StrBytes::from_string(v.clone())))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )
        })
        .await?;
    let results = resp
        .topics
        .into_iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.error_code,
                t.error_message.map(|m| m.to_string()),
            )
        })
        .collect();
    report(json, "creating", results)
}

async fn delete(client: &mut Client, json: bool, names: &[String]) -> Result<(), Error> {
    let timeout_ms = client.timeout().as_millis().min(i32::MAX as u128) as i32;
    let (_, resp) = client
        .call(Target::Any, |v| {
            let req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
            if v >= 6 {
                req.with_topics(
                    names
                        .iter()
                        .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                        .collect(),
                )
            } else {
                req.with_topic_names(names.iter().map(|n| topic_name(n)).collect())
            }
        })
        .await?;
    let results = resp
        .responses
        .into_iter()
        .map(|t| {
            (
                t.name.map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                t.error_message.map(|m| m.to_string()),
            )
        })
        .collect();
    report(json, "deleting", results)
}

async fn list(client: &mut Client, json: bool, internal: bool) -> Result<(), Error> {
    let resp = client.metadata(None, false).await?;
    let topics: Vec<TopicMeta> = TopicMeta::all(&resp)
        .into_iter()
        .filter(|t| internal || !t.internal)
        .collect();
    let replicas = |t: &TopicMeta| t.partitions.first().map_or(0, |p| p.replicas.len());
    if json {
        let v: Vec<_> = topics
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "id": t.id.to_string(),
                    "partitions": t.partitions.len(),
                    "replicas": replicas(t),
                    "internal": t.internal,
                })
            })
            .collect();
        return out_json(&serde_json::Value::Array(v));
    }
    let mut table = Table::new(&["NAME", "PARTITIONS", "REPLICAS"]);
    for t in &topics {
        table.row(vec![
            t.name.clone(),
            t.partitions.len().to_string(),
            replicas(t).to_string(),
        ]);
    }
    table.print()
}

/// Kafka's `ConfigSource` names (DescribeConfigs v1+).
fn config_source(s: i8) -> &'static str {
    match s {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// `[1,2,3]`.
fn ids(v: &[i32]) -> String {
    let s: Vec<String> = v.iter().map(i32::to_string).collect();
    format!("[{}]", s.join(","))
}

async fn describe(client: &mut Client, json: bool, name: &str) -> Result<(), Error> {
    let topic = client
        .topic(name)
        .await
        .map_err(|e| relabel(e, &format!("describing topic {name}")))?;
    let parts: Vec<(String, i32, i32)> = topic
        .partitions
        .iter()
        .map(|p| (topic.name.clone(), p.partition, p.leader))
        .collect();
    let start = client.list_offsets(&parts, -2).await?;
    let end = client.list_offsets(&parts, -1).await?;
    let (_, resp) = client
        .call(Target::Any, |_| {
            DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_string(name.to_string()))
                    .with_configuration_keys(None),
            ])
        })
        .await?;
    let mut configs = Vec::new();
    for r in resp.results {
        Error::check(
            &format!("describing the configs of topic {name}"),
            r.error_code,
            r.error_message.map(|m| m.to_string()),
        )?;
        for c in r.configs {
            if c.config_source == 5 {
                continue;
            }
            let value = if c.is_sensitive {
                None
            } else {
                c.value.map(|v| v.to_string())
            };
            configs.push((c.name.to_string(), value, config_source(c.config_source)));
        }
    }
    configs.sort();
    let offset = |m: &std::collections::HashMap<(String, i32), (i16, i64)>, p: i32| {
        m.get(&(topic.name.clone(), p)).copied().unwrap_or((-1, -1))
    };
    let replicas = topic.partitions.first().map_or(0, |p| p.replicas.len());
    if json {
        let partitions: Vec<_> = topic
            .partitions
            .iter()
            .map(|p| {
                let (se, s) = offset(&start, p.partition);
                let (ee, e) = offset(&end, p.partition);
                json!({
                    "partition": p.partition,
                    "leader": p.leader,
                    "replicas": p.replicas,
                    "isr": p.isr,
                    "log_start_offset": if se == 0 { json!(s) } else { json!(null) },
                    "high_watermark": if ee == 0 { json!(e) } else { json!(null) },
                    "error": if p.error_code == 0 { json!(null) } else { json!(error_text(p.error_code, None)) },
                })
            })
            .collect();
        let cfg: serde_json::Map<String, serde_json::Value> = configs
            .iter()
            .map(|(k, v, s)| (k.clone(), json!({"value": v, "source": s})))
            .collect();
        return out_json(&json!({
            "name": topic.name,
            "id": topic.id.to_string(),
            "internal": topic.internal,
            "partitions": partitions,
            "replicas": replicas,
            "configs": cfg,
        }));
    }
    let mut s = String::new();
    s.push_str("SUMMARY\n=======\n");
    let mut summary = Table::new(&["NAME", &topic.name]);
    summary.row(vec!["ID".into(), topic.id.to_string()]);
    summary.row(vec![
        "PARTITIONS".into(),
        topic.partitions.len().to_string(),
    ]);
    summary.row(vec!["REPLICAS".into(), replicas.to_string()]);
    summary.row(vec!["INTERNAL".into(), topic.internal.to_string()]);
    s.push_str(&summary.render());
    s.push_str("\nCONFIGS\n=======\n");
    let mut ct = Table::new(&["KEY", "VALUE", "SOURCE"]);
    for (k, v, src) in &configs {
        ct.row(vec![
            k.clone(),
            v.clone().unwrap_or_else(|| "-".into()),
            src.to_string(),
        ]);
    }
    s.push_str(&ct.render());
    s.push_str("\nPARTITIONS\n==========\n");
    let mut pt = Table::new(&[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG-START-OFFSET",
        "HIGH-WATERMARK",
    ]);
    let show = |(code, off): (i16, i64)| {
        if code == 0 {
            off.to_string()
        } else {
            error_text(code, None)
        }
    };
    for p in &topic.partitions {
        pt.row(vec![
            p.partition.to_string(),
            p.leader.to_string(),
            ids(&p.replicas),
            ids(&p.isr),
            show(offset(&start, p.partition)),
            show(offset(&end, p.partition)),
        ]);
    }
    s.push_str(&pt.render());
    out(&s)
}

/// Give a Kafka error a better context.
pub fn relabel(e: Error, context: &str) -> Error {
    match e {
        Error::Kafka {
            name,
            message,
            code,
            ..
        } => Error::Kafka {
            context: context.to_string(),
            name,
            message,
            code,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        assert_eq!(
            parse_kv("cleanup.policy=compact"),
            Ok(("cleanup.policy".into(), "compact".into()))
        );
        assert_eq!(parse_kv("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_kv("a="), Ok(("a".into(), String::new())));
        assert!(parse_kv("novalue").is_err());
        assert!(parse_kv("=x").is_err());
    }
}
