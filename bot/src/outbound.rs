//! The outbound queue: every message and edit the bot sends goes through here, so the bot
//! stays inside Telegram's flood limits (about 30 messages a second overall, one a second
//! per chat) by waiting rather than dropping. Each chat has its own FIFO, and at most one
//! request per chat is in flight, so a chat sees its messages in the order they were
//! queued. A `429 retry after N` or a network error puts the message back at the head of
//! its chat's queue; only a permanent refusal (a `400` from Telegram) ends a message, and
//! that is reported to whoever waits for it and logged.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use teloxide::payloads::{EditMessageTextSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, InlineKeyboardMarkup, MessageId};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::text;

/// Flood limits; the defaults are Telegram's documented ones.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// messages in any one-second window, over all chats
    pub global_per_second: usize,
    /// the least time between two messages to one chat
    pub per_chat_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { global_per_second: 30, per_chat_interval: Duration::from_secs(1) }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    #[error("Telegram refused the message: {0}")]
    Refused(String),
    #[error("the outbound queue has shut down")]
    Closed,
}

#[derive(Debug, Clone)]
enum Op {
    Send {
        text: String,
        keyboard: Option<InlineKeyboardMarkup>,
    },
    /// `or_send`: if the message is gone, send the text as a new message instead.
    Edit {
        message_id: MessageId,
        text: String,
        keyboard: Option<InlineKeyboardMarkup>,
        or_send: bool,
    },
}

struct Job {
    chat: ChatId,
    op: Op,
    reply: Option<oneshot::Sender<Result<MessageId, OutboundError>>>,
    attempts: u32,
}

/// A handle to the queue; cheap to clone. The queue drains and stops when every handle
/// is dropped.
#[derive(Clone)]
pub struct Outbound {
    tx: mpsc::UnboundedSender<Job>,
}

impl Outbound {
    pub fn start(bot: Bot, limits: Limits) -> (Outbound, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(Scheduler::new(bot, limits).run(rx));
        (Outbound { tx }, handle)
    }

    fn push(&self, chat: ChatId, op: Op, reply: Option<oneshot::Sender<Result<MessageId, OutboundError>>>) {
        if let Err(mpsc::error::SendError(job)) = self.tx.send(Job { chat, op, reply, attempts: 0 })
            && let Some(reply) = job.reply
        {
            let _ = reply.send(Err(OutboundError::Closed));
        }
    }

    /// Queues `text` (split to Telegram's length limit); the keyboard goes on the last piece.
    pub fn send(&self, chat: ChatId, text: &str, keyboard: Option<InlineKeyboardMarkup>) {
        self.enqueue_send(chat, text, keyboard, None);
    }

    /// Like `send`, and waits until the (last piece of the) message is delivered.
    pub async fn send_and_wait(
        &self,
        chat: ChatId,
        text: &str,
        keyboard: Option<InlineKeyboardMarkup>,
    ) -> Result<MessageId, OutboundError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue_send(chat, text, keyboard, Some(tx));
        rx.await.unwrap_or(Err(OutboundError::Closed))
    }

    fn enqueue_send(
        &self,
        chat: ChatId,
        text: &str,
        keyboard: Option<InlineKeyboardMarkup>,
        reply: Option<oneshot::Sender<Result<MessageId, OutboundError>>>,
    ) {
        let mut pieces = text::split(text, text::MESSAGE_LIMIT);
        let last = pieces.pop().unwrap_or_default();
        for piece in pieces {
            self.push(chat, Op::Send { text: piece, keyboard: None }, None);
        }
        self.push(chat, Op::Send { text: last, keyboard }, reply);
    }

    /// Replaces the text (and keyboard) of a message the bot sent. A text over the limit
    /// becomes an edit with the first piece plus new messages with the rest. With
    /// `or_send`, a message that no longer exists is replaced by a new one.
    pub fn edit(
        &self,
        chat: ChatId,
        message_id: MessageId,
        text: &str,
        keyboard: Option<InlineKeyboardMarkup>,
        or_send: bool,
    ) {
        let mut pieces = text::split(text, text::MESSAGE_LIMIT).into_iter();
        let first = pieces.next().unwrap_or_default();
        let rest: Vec<String> = pieces.collect();
        let (first_keyboard, last_keyboard) = if rest.is_empty() { (keyboard, None) } else { (None, keyboard) };
        self.push(chat, Op::Edit { message_id, text: first, keyboard: first_keyboard, or_send }, None);
        let count = rest.len();
        for (i, piece) in rest.into_iter().enumerate() {
            let keyboard = if i + 1 == count { last_keyboard.clone() } else { None };
            self.push(chat, Op::Send { text: piece, keyboard }, None);
        }
    }
}

enum Outcome {
    Done,
    Retry { job: Job, after: Duration },
}

#[derive(Default)]
struct ChatQueue {
    jobs: VecDeque<Job>,
    next_at: Option<Instant>,
    in_flight: bool,
    scheduled: bool,
}

struct Scheduler {
    bot: Bot,
    limits: Limits,
    chats: HashMap<ChatId, ChatQueue>,
    ready: BinaryHeap<Reverse<(Instant, u64, i64)>>,
    seq: u64,
    /// completions in the last second
    recent: VecDeque<Instant>,
    in_flight: usize,
}

impl Scheduler {
    fn new(bot: Bot, limits: Limits) -> Scheduler {
        Scheduler {
            bot,
            limits: Limits { global_per_second: limits.global_per_second.max(1), ..limits },
            chats: HashMap::new(),
            ready: BinaryHeap::new(),
            seq: 0,
            recent: VecDeque::new(),
            in_flight: 0,
        }
    }

    fn schedule(&mut self, chat: ChatId) {
        let now = Instant::now();
        if let Some(q) = self.chats.get_mut(&chat)
            && !q.scheduled
            && !q.in_flight
            && !q.jobs.is_empty()
        {
            q.scheduled = true;
            let at = q.next_at.map_or(now, |t| t.max(now));
            self.seq += 1;
            self.ready.push(Reverse((at, self.seq, chat.0)));
        }
    }

    /// Starts every request that is due and allowed; returns when to look again.
    fn dispatch(&mut self, done: &mpsc::UnboundedSender<(ChatId, Outcome)>) -> Option<Instant> {
        loop {
            let now = Instant::now();
            let &Reverse((at, _, chat_id)) = self.ready.peek()?;
            if at > now {
                return Some(at);
            }
            while self.recent.front().is_some_and(|&t| now.duration_since(t) >= Duration::from_secs(1)) {
                self.recent.pop_front();
            }
            // Counted from completions, plus what is in flight: Telegram sees a request
            // somewhere between our sending it and our hearing back, so this keeps any
            // one-second window at Telegram's end within the limit.
            if self.in_flight + self.recent.len() >= self.limits.global_per_second {
                return self.recent.front().map(|&oldest| oldest + Duration::from_secs(1));
            }
            self.ready.pop();
            let chat = ChatId(chat_id);
            let Some(q) = self.chats.get_mut(&chat) else { continue };
            q.scheduled = false;
            let Some(job) = q.jobs.pop_front() else { continue };
            q.in_flight = true;
            self.in_flight += 1;
            let bot = self.bot.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let outcome = execute(&bot, job).await;
                let _ = done.send((chat, outcome));
            });
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(ChatId, Outcome)>();
        let mut open = true;
        loop {
            let wake = self.dispatch(&done_tx);
            let idle = self.chats.values().all(|q| q.jobs.is_empty() && !q.in_flight);
            if !open && idle {
                return;
            }
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                job = rx.recv(), if open => match job {
                    Some(job) => {
                        let chat = job.chat;
                        self.chats.entry(chat).or_default().jobs.push_back(job);
                        self.schedule(chat);
                    }
                    None => open = false,
                },
                Some((chat, outcome)) = done_rx.recv() => {
                    let now = Instant::now();
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.recent.push_back(now);
                    if let Some(q) = self.chats.get_mut(&chat) {
                        q.in_flight = false;
                        // The per-chat interval also runs from the completion, for the
                        // same reason as the global window.
                        let mut next = now + self.limits.per_chat_interval;
                        if let Outcome::Retry { job, after } = outcome {
                            next = next.max(now + after);
                            q.jobs.push_front(job);
                        }
                        q.next_at = Some(next);
                    }
                    self.schedule(chat);
                    self.forget_idle_chats();
                }
                () = sleep => {}
            }
        }
    }

    /// Keeps memory bounded by the chats with pending work or a recent message.
    fn forget_idle_chats(&mut self) {
        if self.chats.len() < 1024 {
            return;
        }
        let now = Instant::now();
        self.chats.retain(|_, q| !q.jobs.is_empty() || q.in_flight || q.next_at.is_some_and(|t| t > now));
    }
}

fn network_backoff(attempts: u32) -> Duration {
    Duration::from_millis(500 * 2u64.pow(attempts.min(6))).min(Duration::from_secs(30))
}

async fn execute(bot: &Bot, mut job: Job) -> Outcome {
    let result = match &job.op {
        Op::Send { text, keyboard } => {
            let mut req = bot.send_message(job.chat, text.clone());
            if let Some(k) = keyboard {
                req = req.reply_markup(k.clone());
            }
            req.await.map(|m| m.id)
        }
        Op::Edit { message_id, text, keyboard, .. } => {
            let mut req = bot.edit_message_text(job.chat, *message_id, text.clone());
            if let Some(k) = keyboard {
                req = req.reply_markup(k.clone());
            }
            req.await.map(|m| m.id)
        }
    };
    let method = match &job.op {
        Op::Send { .. } => "sendMessage",
        Op::Edit { .. } => "editMessageText",
    };
    let sent =
        |result: &'static str| metrics::counter!("crm_telegram_sends_total", "method" => method, "result" => result);
    let outcome = match result {
        Ok(id) => {
            sent("ok").increment(1);
            Ok(id)
        }
        Err(RequestError::RetryAfter(s)) => {
            // Telegram's 429: the message waits its turn again, so it is counted, not lost.
            sent("too_many_requests").increment(1);
            tracing::warn!(chat = job.chat.0, seconds = s.seconds(), "Telegram asked to slow down");
            job.attempts += 1;
            return Outcome::Retry { after: s.duration(), job };
        }
        Err(RequestError::Network(e)) => {
            sent("network_error").increment(1);
            tracing::warn!(chat = job.chat.0, error = %e, "network error talking to Telegram; will retry");
            job.attempts += 1;
            return Outcome::Retry { after: network_backoff(job.attempts), job };
        }
        Err(RequestError::Api(ApiError::MessageNotModified)) => match &job.op {
            // The text is already what we want it to be.
            Op::Edit { message_id, .. } => Ok(*message_id),
            Op::Send { .. } => Err(OutboundError::Refused(ApiError::MessageNotModified.to_string())),
        },
        Err(RequestError::Api(ApiError::MessageToEditNotFound)) => match job.op {
            Op::Edit { text, keyboard, or_send: true, .. } => {
                job.op = Op::Send { text, keyboard };
                return Outcome::Retry { after: Duration::ZERO, job };
            }
            _ => Err(OutboundError::Refused(ApiError::MessageToEditNotFound.to_string())),
        },
        Err(e) => Err(OutboundError::Refused(e.to_string())),
    };
    if let Err(e) = &outcome {
        sent("refused").increment(1);
        tracing::error!(chat = job.chat.0, error = %e, "message not delivered");
    }
    if let Some(reply) = job.reply {
        let _ = reply.send(outcome);
    }
    Outcome::Done
}
