//! Waiting steps: what holding a run at one means (its `run_waits` row: wake time, what it
//! waits for, the record it listens to) and what ending the wait makes of the step (its
//! output and the successors it takes). Pure, so the rules are tested without a database.

use chrono::{DateTime, Utc};
use crm_concepts::manifest::{StepSpec, parse_duration};
use crm_concepts::template::Template;
use crm_concepts::wait::{Decision, StepKind};
use crm_store::run_waits::NewWait;
use serde_json::{Value, json};
use uuid::Uuid;

/// Why a wait ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Wake {
    /// its wake time came: a `wait` is over, anything else timed out
    Time,
    /// the record change a `wait_event` listened for (the run input a record-event trigger
    /// would get)
    Event(Value),
    /// a person's decision on an `approval`
    Decision { decision: Decision, by: i64, comment: Option<String> },
}

/// The `run_waits` row of `spec` starting to hold run `run_id` at `now`; `ctx` is what its
/// templates read (`input`, `steps.<id>.output`, `run_id`, `workflow`). `Err` says why the
/// step cannot wait (a template that renders no time or no id).
pub fn hold(run_id: Uuid, spec: &StepSpec, ctx: &Value, now: DateTime<Utc>) -> Result<NewWait, String> {
    let after = |d: &str| -> Result<DateTime<Utc>, String> {
        let d = parse_duration(d)?;
        Ok(now + chrono::Duration::from_std(d).map_err(|e| e.to_string())?)
    };
    let render = |t: &str| Template::parse(t).map(|t| t.render(ctx).trim().to_string()).map_err(|e| e.to_string());
    let new = |kind: &str, wake_at: DateTime<Utc>, what: String| NewWait {
        run_id,
        step: spec.id.clone(),
        kind: kind.into(),
        wake_at,
        what,
        record: None,
        detail: json!({}),
    };
    match spec.kind() {
        StepKind::Component(_) => Err(format!("step {:?} runs a component; it does not wait", spec.id)),
        StepKind::Wait(w) => {
            let wake_at = match (&w.duration, &w.until) {
                (Some(d), _) => after(d)?,
                (None, Some(u)) => {
                    let text = render(u)?;
                    DateTime::parse_from_rfc3339(&text)
                        .map_err(|_| {
                            format!("`until` {u:?} rendered {text:?}, which is not a time such as 2026-12-24T09:00:00Z")
                        })?
                        .with_timezone(&Utc)
                }
                (None, None) => return Err("a wait needs `duration` or `until`".into()),
            };
            let Some(hours) = &w.business_hours else {
                return Ok(new("wait", wake_at, format!("until {}", wake_at.format("%Y-%m-%d %H:%M:%S UTC"))));
            };
            let opening = hours.opening()?;
            let (wake_at, zone) = (opening.next_open(wake_at), opening.zone());
            let what = format!(
                "until {} ({} in {}, within business hours)",
                wake_at.format("%Y-%m-%d %H:%M:%S UTC"),
                wake_at.with_timezone(&zone).format("%a %H:%M"),
                zone.name()
            );
            Ok(new("wait", wake_at, what))
        }
        StepKind::WaitEvent(w) => {
            let text = render(&w.id)?;
            let id: i64 =
                text.parse().map_err(|_| format!("`id` {:?} rendered {text:?}, which is not a record id", w.id))?;
            let wake_at = after(&w.timeout)?;
            let mut filter = Vec::new();
            if !w.actions.is_empty() {
                filter.push(w.actions.join("/"));
            }
            for f in &w.filter.changed {
                filter.push(format!("{f} changed"));
            }
            for (f, v) in &w.filter.equals {
                filter.push(format!("{f} = {v}"));
            }
            let filter = if filter.is_empty() { String::new() } else { format!(" ({})", filter.join(", ")) };
            let mut wait = new(
                "wait_event",
                wake_at,
                format!("for a change of {} {id}{filter} until {}", w.record, wake_at.format("%Y-%m-%d %H:%M:%S UTC")),
            );
            wait.record = Some((w.record.clone(), id));
            wait.detail = json!({"actions": w.actions, "filter": w.filter});
            Ok(wait)
        }
        StepKind::Approval(a) => {
            let text = render(&a.text)?;
            let wake_at = after(&a.timeout)?;
            let mut wait = new(
                "approval",
                wake_at,
                format!(
                    "for a {}'s approval of \"{text}\" until {} (then {})",
                    a.role,
                    wake_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    a.on_timeout.as_str()
                ),
            );
            wait.detail = json!({"role": a.role, "text": text, "on_timeout": a.on_timeout});
            if let Some(o) = &a.owner_of {
                let rendered = render(&o.id)?;
                let id: i64 = rendered
                    .parse()
                    .map_err(|_| format!("`owner_of.id` {:?} rendered {rendered:?}, which is not a record id", o.id))?;
                wait.detail["owner_of"] = json!({"record": o.record, "id": id});
            }
            Ok(wait)
        }
    }
}

/// The output and the chosen successors (`None`: all of them) of a step whose wait ended.
pub fn woken(spec: &StepSpec, successors: &[&str], wake: &Wake, now: DateTime<Utc>) -> (Value, Option<Vec<String>>) {
    match (spec.kind(), wake) {
        (StepKind::WaitEvent(w), Wake::Time) => {
            (json!({"timed_out": true, "at": now}), w.on_timeout.as_ref().map(|t| vec![t.clone()]))
        }
        (StepKind::WaitEvent(w), Wake::Event(event)) => {
            let next =
                w.on_timeout.as_ref().map(|t| successors.iter().filter(|s| *s != t).map(|s| s.to_string()).collect());
            (json!({"timed_out": false, "at": now, "event": event}), next)
        }
        (StepKind::Approval(a), wake) => {
            let (decision, by, comment) = match wake {
                Wake::Decision { decision, by, comment } => (*decision, Some(*by), comment.clone()),
                _ => (a.on_timeout, None, None),
            };
            let next = a.on_reject.as_ref().map(|r| match decision {
                Decision::Rejected => vec![r.clone()],
                Decision::Approved => successors.iter().filter(|s| *s != r).map(|s| s.to_string()).collect(),
            });
            let output = json!({
                "decision": decision, "decided_by": by, "decided_at": now,
                "comment": comment, "timed_out": by.is_none(),
            });
            (output, next)
        }
        _ => (json!({"woke_at": now}), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_concepts::manifest::Manifest;

    const WAITS: &str = r#"
name = "w"
version = "1"
[[steps]]
id = "score"
component = "c"
[[steps]]
id = "pause"
needs = ["score"]
wait = { duration = "3d" }
[[steps]]
id = "until"
needs = ["score"]
wait = { until = "{{steps.score.output.at}}" }
[[steps]]
id = "moved"
needs = ["score"]
wait_event = { record = "deal", id = "{{input.deal_id}}", filter = { changed = ["stage_id"] }, timeout = "2h", on_timeout = "remind" }
[[steps]]
id = "remind"
component = "c"
needs = ["moved"]
[[steps]]
id = "thank"
component = "c"
needs = ["moved"]
"#;

    fn ctx(at: &str) -> Value {
        json!({"input": {"deal_id": 7}, "steps": {"score": {"output": {"at": at}}}})
    }

    #[test]
    fn a_duration_wakes_that_long_after_now_and_until_at_the_rendered_time() {
        let m = Manifest::parse(WAITS).unwrap();
        let now = Utc::now();
        let w = hold(Uuid::nil(), m.step("pause").unwrap(), &ctx(""), now).unwrap();
        assert_eq!((w.kind.as_str(), w.wake_at), ("wait", now + chrono::Duration::days(3)));
        let w = hold(Uuid::nil(), m.step("until").unwrap(), &ctx("2030-01-02T03:04:05+01:00"), now).unwrap();
        assert_eq!(w.wake_at.to_rfc3339(), "2030-01-02T02:04:05+00:00");
        assert_eq!(w.what, "until 2030-01-02 02:04:05 UTC");
        let e = hold(Uuid::nil(), m.step("until").unwrap(), &ctx("tomorrow"), now).unwrap_err();
        assert!(e.contains("rendered \"tomorrow\", which is not a time"), "{e}");
    }

    #[test]
    fn a_wait_within_business_hours_wakes_at_the_next_opening() {
        let m = Manifest::parse(
            r#"
name = "w"
version = "1"
[[steps]]
id = "later"
wait = { until = "{{input.at}}", business_hours = { zone = "Europe/Berlin", from = "09:00", to = "17:00" } }
"#,
        )
        .unwrap();
        let step = m.step("later").unwrap();
        let at = |t: &str| json!({"input": {"at": t}});
        // Saturday 5 December 2026, 12:00 in Berlin: the wait ends Monday at 09:00 there.
        let w = hold(Uuid::nil(), step, &at("2026-12-05T12:00:00+01:00"), Utc::now()).unwrap();
        assert_eq!(w.wake_at.to_rfc3339(), "2026-12-07T08:00:00+00:00");
        assert_eq!(w.what, "until 2026-12-07 08:00:00 UTC (Mon 09:00 in Europe/Berlin, within business hours)");
        // Inside the hours it keeps its time.
        let w = hold(Uuid::nil(), step, &at("2026-12-07T10:15:00+01:00"), Utc::now()).unwrap();
        assert_eq!(w.wake_at.to_rfc3339(), "2026-12-07T09:15:00+00:00");
    }

    #[test]
    fn a_wait_event_listens_to_one_record_until_its_timeout() {
        let m = Manifest::parse(WAITS).unwrap();
        let now = Utc::now();
        let w = hold(Uuid::nil(), m.step("moved").unwrap(), &ctx(""), now).unwrap();
        assert_eq!(w.record, Some(("deal".to_string(), 7)));
        assert_eq!(w.wake_at, now + chrono::Duration::hours(2));
        assert!(w.what.starts_with("for a change of deal 7 (stage_id changed) until"), "{}", w.what);
        let e = hold(Uuid::nil(), m.step("moved").unwrap(), &json!({"input": {}}), now).unwrap_err();
        assert!(e.contains("not a record id"), "{e}");
    }

    #[test]
    fn the_timeout_takes_its_branch_and_the_event_takes_the_others() {
        let m = Manifest::parse(WAITS).unwrap();
        let spec = m.step("moved").unwrap();
        let now = Utc::now();
        let (out, next) = woken(spec, &["remind", "thank"], &Wake::Time, now);
        assert_eq!((out["timed_out"].clone(), next), (json!(true), Some(vec!["remind".to_string()])));
        let (out, next) = woken(spec, &["remind", "thank"], &Wake::Event(json!({"deal_id": 7})), now);
        assert_eq!(out["event"]["deal_id"], 7);
        assert_eq!(next, Some(vec!["thank".to_string()]));
        let (_, next) = woken(m.step("pause").unwrap(), &[], &Wake::Time, now);
        assert_eq!(next, None);
    }
}
