//! Handing a step to the worker whose results made it ready, in the answer to those
//! results. The worker starts it as soon as the answer arrives, rather than after a trip
//! through the shared jobs stream to whichever worker reads it next; for a run of several
//! steps that is one Redis hop and one worker wake-up less between each step and the next.
//!
//! A handed job is still on Redis first: on the handed stream, pending in the worker's
//! name (`crm_queue::Queue::hand`), before the answer leaves. If the worker dies holding
//! it, another takes it over after the visibility timeout, as for a job read from the
//! shared stream; if the engine dies before answering, the job is pending with a worker
//! that never saw it, and is taken over the same way. Only steps the committed write made
//! ready are handed, and only as many as the worker offered to take; the rest go to the
//! sender, as do all of them when the hand fails.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crm_concepts::worker_channel::HandedJob;
use crm_queue::Hand;
use uuid::Uuid;

use crate::core::Core;
use crate::dispatch::send_now;
use crate::intake::Arrival;
use crate::jobs::{self, Dispatch};

/// Hands each arrival's worker the jobs of its runs, up to what it offered, and sends
/// every other job; returns the jobs handed to each arrival, in order.
pub(crate) async fn hand_back(core: &Core, arrivals: &[Arrival], jobs: Vec<Dispatch>) -> Vec<Vec<HandedJob>> {
    let mut answers: Vec<Vec<HandedJob>> = arrivals.iter().map(|_| Vec::new()).collect();
    let mut taker: HashMap<Uuid, usize> = HashMap::new();
    for (i, a) in arrivals.iter().enumerate() {
        if a.take.as_ref().is_some_and(|t| t.most > 0) {
            for r in &a.results {
                taker.entry(r.key.run_id).or_insert(i);
            }
        }
    }
    if taker.is_empty() {
        send_now(core, jobs);
        return answers;
    }
    let mut picked: Vec<Vec<Dispatch>> = arrivals.iter().map(|_| Vec::new()).collect();
    let mut rest = Vec::new();
    for job in jobs {
        match taker.get(&job.key.0) {
            Some(&i) if picked[i].len() < arrivals[i].take.as_ref().map_or(0, |t| t.most as usize) => {
                picked[i].push(job)
            }
            _ => rest.push(job),
        }
    }
    send_now(core, rest);
    let counts: Vec<usize> = picked.iter().map(Vec::len).collect();
    if counts.iter().all(|&n| n == 0) {
        return answers;
    }
    // One signature for everything handed from this batch, as the sender does for a send.
    let (keys, signed) = jobs::sign(core, picked.into_iter().flatten().collect());
    // (arrival, first job's index in `signed`) of each hand, in the hands' order
    let mut targets = Vec::new();
    let mut hands = Vec::new();
    let mut start = 0;
    for (i, &n) in counts.iter().enumerate() {
        if n > 0 {
            let consumer = arrivals[i].take.as_ref().map_or("", |t| t.consumer.as_str());
            targets.push((i, start));
            hands.push(Hand { consumer, jobs: &signed[start..start + n] });
        }
        start += n;
    }
    let handed = core.queue.hand(&hands).await;
    let mut unhanded = Vec::new();
    let mut sent_keys = Vec::new();
    match handed {
        Ok(per_hand) => {
            for (&(i, start), entries) in targets.iter().zip(per_hand) {
                for (offset, entry) in entries.into_iter().enumerate() {
                    let at = start + offset;
                    let job = &signed[at];
                    match (entry, String::from_utf8(job.payload.clone())) {
                        (Some(e), Ok(payload)) => {
                            answers[i].push(HandedJob {
                                entry: e.id,
                                payload,
                                signature: job.signature.clone(),
                                sent_us: e.sent_us,
                            });
                            sent_keys.push(keys[at].clone());
                        }
                        // Not pending with the worker (or not text, which serde's JSON
                        // always is): the shared stream carries it instead.
                        _ => unhanded.push(at),
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = signed.len(), "handing steps to their workers failed; sending them");
            unhanded.extend(0..signed.len());
        }
    }
    core.metrics.steps_handed.fetch_add(sent_keys.len() as u64, Ordering::Relaxed);
    core.metrics.steps_sent_fast.fetch_add(sent_keys.len() as u64, Ordering::Relaxed);
    core.confirmer.sent(sent_keys);
    send_now(
        core,
        unhanded
            .into_iter()
            .map(|at| Dispatch { key: keys[at].clone(), payload: signed[at].payload.clone() })
            .collect(),
    );
    answers
}
