//! `gregor groups list|describe|delete`, and the committed-offset helpers `consume -g` uses.

use super::client::{topic_name, Client, Target, TopicMeta};
use super::{error_text, out, out_json, Common, Error, Table};
use bytes::Buf;
use clap::{Args, Subcommand};
use gregor_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use gregor_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use gregor_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use gregor_protocol::protocol::{Decodable, StrBytes};
use gregor_protocol::ErrorCode;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    cmd: GroupsCmd,
}

#[derive(Debug, Subcommand)]
enum GroupsCmd {
    /// List groups: name, state, protocol type.
    List,
    /// Describe a group: state, members and their assignments, committed offsets and lag.
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete groups (they must have no active members).
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

pub async fn run(args: GroupsArgs) -> Result<(), Error> {
    let mut client = args.common.client()?;
    let json = args.common.json;
    match args.cmd {
        GroupsCmd::List => list(&mut client, json).await,
        GroupsCmd::Describe { group } => describe(&mut client, json, &group).await,
        GroupsCmd::Delete { groups } => delete(&mut client, json, &groups).await,
    }
}

fn gid(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

/// Committed offsets of `group` (for `topics`, or all topics with `None`), by (topic, partition);
/// partitions without a commit are left out.
pub async fn committed_offsets(
    client: &mut Client,
    coordinator: i32,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Result<BTreeMap<(String, i32), i64>, Error> {
    let context = format!("fetching the committed offsets of group {group}");
    let (v, resp) = client
        .call(Target::Node(coordinator), |v| {
            if v >= 8 {
                OffsetFetchRequest::default()
                    .with_topics(Some(vec![]))
                    .with_groups(vec![OffsetFetchRequestGroup::default()
                        .with_group_id(gid(group))
                        .with_member_epoch(-1)
                        .with_topics(topics.map(|ts| {
                            ts.iter()
                                .map(|(t, ps)| {
                                    OffsetFetchRequestTopics::default()
                                        .with_name(topic_name(t))
                                        .with_partition_indexes(ps.clone())
                                })
                                .collect()
                        }))])
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(gid(group))
                    .with_topics(topics.map(|ts| {
                        ts.iter()
                            .map(|(t, ps)| {
                                OffsetFetchRequestTopic::default()
                                    .with_name(topic_name(t))
                                    .with_partition_indexes(ps.clone())
                            })
                            .collect()
                    }))
            }
        })
        .await?;
    let mut out = BTreeMap::new();
    let mut add = |t: String, p: i32, off: i64, code: i16| -> Result<(), Error> {
        if code == ErrorCode::UnknownTopicOrPartition.code() {
            return Ok(());
        }
        Error::check(&format!("{context} ({t}[{p}])"), code, None)?;
        if off >= 0 {
            out.insert((t, p), off);
        }
        Ok(())
    };
    if v >= 8 {
        for g in resp.groups {
            Error::check(&context, g.error_code, None)?;
            for t in g.topics {
                for p in t.partitions {
                    add(
                        t.name.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        }
    } else {
        Error::check(&context, resp.error_code, None)?;
        for t in resp.topics {
            for p in t.partitions {
                add(
                    t.name.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )?;
            }
        }
    }
    Ok(out)
}

/// Commit `offsets` of one topic for `group` as an admin tool does: generation -1, no member.
pub async fn commit_offsets(
    client: &mut Client,
    coordinator: i32,
    group: &str,
    topic: &TopicMeta,
    offsets: &[(i32, i64)],
) -> Result<(), Error> {
    let (_, resp) = client
        .call(Target::Node(coordinator), |_| {
            OffsetCommitRequest::default()
                .with_group_id(gid(group))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(StrBytes::from_static_str(""))
                .with_retention_time_ms(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&topic.name))
                    .with_topic_id(topic.id)
                    .with_partitions(
                        offsets
                            .iter()
                            .map(|(p, o)| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(*p)
                                    .with_committed_offset(*o)
                                    .with_committed_leader_epoch(-1)
                                    .with_committed_metadata(Some(StrBytes::from_static_str("")))
                            })
                            .collect(),
                    )])
        })
        .await?;
    for t in resp.topics {
        for p in t.partitions {
            Error::check(
                &format!(
                    "committing offsets of {}[{}] for group {group}",
                    topic.name, p.partition_index
                ),
                p.error_code,
                None,
            )?;
        }
    }
    Ok(())
}

async fn list(client: &mut Client, json: bool) -> Result<(), Error> {
    client.metadata(Some(&[]), false).await?;
    let nodes: Vec<i32> = client.brokers.keys().copied().collect();
    let mut groups: BTreeMap<String, (String, String)> = BTreeMap::new();
    for n in nodes {
        let (_, resp) = client
            .call(Target::Node(n), |_| ListGroupsRequest::default())
            .await?;
        Error::check(
            &format!("listing groups on broker {n}"),
            resp.error_code,
            None,
        )?;
        for g in resp.groups {
            groups.insert(
                g.group_id.to_string(),
                (g.group_state.to_string(), g.protocol_type.to_string()),
            );
        }
    }
    if json {
        let v: Vec<_> = groups
            .iter()
            .map(|(g, (s, p))| json!({"group": g, "state": s, "protocol_type": p}))
            .collect();
        return out_json(&serde_json::Value::Array(v));
    }
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let mut t = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
    for (g, (s, p)) in &groups {
        t.row(vec![g.clone(), dash(s), dash(p)]);
    }
    t.print()
}

struct Member {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    assignment: BTreeMap<String, Vec<i32>>,
}

struct Described {
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
}

/// Decode a classic consumer group member's assignment (`ConsumerProtocolAssignment`).
fn decode_assignment(mut b: bytes::Bytes) -> BTreeMap<String, Vec<i32>> {
    let mut out = BTreeMap::new();
    if b.len() < 2 {
        return out;
    }
    let version = b.get_i16().clamp(0, 3);
    if let Ok(a) = ConsumerProtocolAssignment::decode(&mut b, version) {
        for tp in a.assigned_partitions {
            out.entry(tp.topic.to_string())
                .or_insert_with(Vec::new)
                .extend(tp.partitions);
        }
    }
    for ps in out.values_mut() {
        ps.sort_unstable();
    }
    out
}

async fn describe_group(
    client: &mut Client,
    coordinator: i32,
    group: &str,
) -> Result<Described, Error> {
    let context = format!("describing group {group}");
    let (_, resp) = client
        .call(Target::Node(coordinator), |_| {
            DescribeGroupsRequest::default().with_groups(vec![gid(group)])
        })
        .await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| Error::Protocol("DescribeGroups returned no group".into()))?;
    if g.error_code == ErrorCode::GroupIdNotFound.code()
        && client
            .supports(Target::Node(coordinator), ApiKey::ConsumerGroupDescribe)
            .await?
    {
        // A KIP-848 consumer group: DescribeGroups only knows classic groups.
        let (_, resp) = client
            .call(Target::Node(coordinator), |_| {
                ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid(group)])
            })
            .await?;
        if let Some(c) = resp.groups.into_iter().next() {
            if c.error_code == 0 {
                return Ok(Described {
                    state: c.group_state.to_string(),
                    protocol_type: "consumer".into(),
                    protocol: c.assignor_name.to_string(),
                    members: c
                        .members
                        .into_iter()
                        .map(|m| Member {
                            member_id: m.member_id.to_string(),
                            instance_id: m.instance_id.map(|i| i.to_string()),
                            client_id: m.client_id.to_string(),
                            host: m.client_host.to_string(),
                            assignment: m
                                .assignment
                                .topic_partitions
                                .into_iter()
                                .map(|tp| {
                                    let mut ps = tp.partitions;
                                    ps.sort_unstable();
                                    (tp.topic_name.to_string(), ps)
                                })
                                .collect(),
                        })
                        .collect(),
                });
            }
        }
    }
    Error::check(
        &context,
        g.error_code,
        g.error_message.map(|m| m.to_string()),
    )?;
    let consumer = g.protocol_type.as_str() == "consumer";
    Ok(Described {
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        members: g
            .members
            .into_iter()
            .map(|m| Member {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: if consumer {
                    decode_assignment(m.member_assignment)
                } else {
                    BTreeMap::new()
                },
            })
            .collect(),
    })
}

async fn describe(client: &mut Client, json: bool, group: &str) -> Result<(), Error> {
    let coordinator = client.coordinator(group).await?;
    let d = describe_group(client, coordinator, group).await?;
    let committed = committed_offsets(client, coordinator, group, None).await?;
    if d.state == "Dead" && committed.is_empty() {
        return Err(Error::kafka(
            &format!("describing group {group}"),
            ErrorCode::GroupIdNotFound.code(),
            Some(format!("Group {group} not found.")),
        ));
    }
    // Every partition that is committed or assigned, with its owner.
    let mut rows: BTreeMap<(String, i32), Option<usize>> = BTreeMap::new();
    for k in committed.keys() {
        rows.insert(k.clone(), None);
    }
    for (i, m) in d.members.iter().enumerate() {
        for (t, ps) in &m.assignment {
            for p in ps {
                rows.insert((t.clone(), *p), Some(i));
            }
        }
    }
    let topics: BTreeSet<String> = rows.keys().map(|(t, _)| t.clone()).collect();
    let mut ends = std::collections::HashMap::new();
    if !topics.is_empty() {
        let names: Vec<String> = topics.into_iter().collect();
        let meta = client.metadata(Some(&names), false).await?;
        let metas = TopicMeta::all(&meta);
        let parts: Vec<(String, i32, i32)> = rows
            .keys()
            .map(|(t, p)| {
                let leader = metas
                    .iter()
                    .find(|m| &m.name == t)
                    .map_or(-1, |m| m.leader(*p));
                (t.clone(), *p, leader)
            })
            .collect();
        ends = client.list_offsets(&parts, -1).await?;
    }
    let mut total_lag: i64 = 0;
    let mut offsets = Vec::new();
    for ((t, p), owner) in &rows {
        let committed = committed.get(&(t.clone(), *p)).copied();
        let end = ends
            .get(&(t.clone(), *p))
            .and_then(|(code, off)| (*code == 0).then_some(*off));
        let lag = match (committed, end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        total_lag += lag.unwrap_or(0);
        offsets.push((
            t.clone(),
            *p,
            committed,
            end,
            lag,
            owner.map(|i| &d.members[i]),
        ));
    }
    if json {
        let members: Vec<_> = d
            .members
            .iter()
            .map(|m| {
                let assignment: Vec<_> = m
                    .assignment
                    .iter()
                    .map(|(t, ps)| json!({"topic": t, "partitions": ps}))
                    .collect();
                json!({"member_id": m.member_id, "instance_id": m.instance_id,
                       "client_id": m.client_id, "host": m.host, "assignment": assignment})
            })
            .collect();
        let offs: Vec<_> = offsets
            .iter()
            .map(|(t, p, c, e, l, m)| {
                json!({"topic": t, "partition": p, "committed_offset": c, "log_end_offset": e,
                       "lag": l, "member_id": m.map(|m| &m.member_id)})
            })
            .collect();
        return out_json(&json!({
            "group": group,
            "coordinator": coordinator,
            "state": d.state,
            "protocol_type": d.protocol_type,
            "protocol": d.protocol,
            "members": members,
            "offsets": offs,
            "total_lag": total_lag,
        }));
    }
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let mut s = String::new();
    let mut summary = Table::new(&["GROUP", group]);
    summary.row(vec!["COORDINATOR".into(), coordinator.to_string()]);
    summary.row(vec!["STATE".into(), dash(&d.state)]);
    summary.row(vec!["PROTOCOL-TYPE".into(), dash(&d.protocol_type)]);
    summary.row(vec!["PROTOCOL".into(), dash(&d.protocol)]);
    summary.row(vec!["MEMBERS".into(), d.members.len().to_string()]);
    summary.row(vec!["TOTAL-LAG".into(), total_lag.to_string()]);
    s.push_str(&summary.render());
    if !d.members.is_empty() {
        s.push('\n');
        let mut mt = Table::new(&[
            "MEMBER-ID",
            "INSTANCE-ID",
            "CLIENT-ID",
            "HOST",
            "ASSIGNMENT",
        ]);
        for m in &d.members {
            let assignment: Vec<String> = m
                .assignment
                .iter()
                .map(|(t, ps)| {
                    let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                    format!("{t}[{}]", ps.join(","))
                })
                .collect();
            mt.row(vec![
                m.member_id.clone(),
                m.instance_id.clone().unwrap_or_else(|| "-".into()),
                dash(&m.client_id),
                dash(&m.host),
                if assignment.is_empty() {
                    "-".into()
                } else {
                    assignment.join(" ")
                },
            ]);
        }
        s.push_str(&mt.render());
    }
    s.push('\n');
    let mut ot = Table::new(&[
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "MEMBER-ID",
        "CLIENT-ID",
        "HOST",
    ]);
    for (t, p, c, e, l, m) in &offsets {
        ot.row(vec![
            t.clone(),
            p.to_string(),
            opt(*c),
            opt(*e),
            opt(*l),
            m.map_or("-".into(), |m| m.member_id.clone()),
            m.map_or("-".into(), |m| dash(&m.client_id)),
            m.map_or("-".into(), |m| dash(&m.host)),
        ]);
    }
    s.push_str(&ot.render());
    out(&s)
}

async fn delete(client: &mut Client, json: bool, groups: &[String]) -> Result<(), Error> {
    let mut results: Vec<(String, i16)> = Vec::new();
    for g in groups {
        let coordinator = client.coordinator(g).await?;
        let (_, resp) = client
            .call(Target::Node(coordinator), |_| {
                DeleteGroupsRequest::default().with_groups_names(vec![gid(g)])
            })
            .await?;
        for r in resp.results {
            results.push((r.group_id.to_string(), r.error_code));
        }
    }
    if json {
        let v: Vec<_> = results
            .iter()
            .map(|(g, code)| {
                let e = if *code == 0 {
                    serde_json::Value::Null
                } else {
                    json!(error_text(*code, None))
                };
                json!({"group": g, "error": e})
            })
            .collect();
        out_json(&serde_json::Value::Array(v))?;
    } else {
        let mut t = Table::new(&["GROUP", "STATUS"]);
        for (g, code) in &results {
            t.row(vec![g.clone(), error_text(*code, None)]);
        }
        t.print()?;
    }
    match results.into_iter().find(|r| r.1 != 0) {
        Some((g, code)) => Err(Error::kafka(&format!("deleting group {g}"), code, None)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use gregor_protocol::protocol::Encodable;

    #[test]
    fn classic_assignments_decode() {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(topic_name("t"))
                .with_partitions(vec![2, 0]),
        ]);
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut buf, 1);
        a.encode(&mut buf, 1).unwrap();
        let got = decode_assignment(buf.freeze());
        assert_eq!(got, BTreeMap::from([("t".to_string(), vec![0, 2])]));
        assert!(decode_assignment(bytes::Bytes::new()).is_empty());
        assert!(decode_assignment(bytes::Bytes::from_static(&[0, 1, 0xff])).is_empty());
    }
}
