//! The outbound queue: every message and edit the bot sends goes through here, so the bot
//! stays inside Telegram's flood limits (about 30 messages a second overall; about one a
//! second per chat on average, with short bursts; 20 a minute in a group) by waiting rather
//! than dropping. Each chat has its own FIFO, and at most one request per chat is in
//! flight, so a chat sees its messages in the order they were queued. A chat that has been
//! quiet may send a burst at once — a user typing commands one after another gets each
//! answer without waiting — and only a chat really over its budget waits. A `429 retry
//! after N` or a network error puts the message back at the head of its chat's queue and
//! empties the chat's burst; only a permanent refusal (a `400` from Telegram) ends a
//! message, and that is reported to whoever waits for it and logged.

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

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// Flood limits; the defaults are Telegram's documented ones, with a burst Telegram
/// tolerates ("short bursts that go over this limit").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// messages in any one-second window, over all chats
    pub global_per_second: usize,
    /// a chat's average: one message per this interval
    pub per_chat_interval: Duration,
    /// how many messages a chat that has been quiet may send at once (1: strictly one
    /// per interval)
    pub per_chat_burst: u32,
    /// messages in any one-minute window to one group chat
    pub group_per_minute: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { global_per_second: 30, per_chat_interval: SECOND, per_chat_burst: 20, group_per_minute: 20 }
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
        self.send_tracked(chat, text, keyboard).await
    }

    /// Like `send_and_wait`, but the message takes its place in the chat's queue now, when
    /// this is called, not when the returned future is first polled: messages queued one
    /// after another reach the chat in that order, whichever task awaits them.
    pub fn send_tracked(
        &self,
        chat: ChatId,
        text: &str,
        keyboard: Option<InlineKeyboardMarkup>,
    ) -> impl Future<Output = Result<MessageId, OutboundError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.enqueue_send(chat, text, keyboard, Some(tx));
        async move { rx.await.unwrap_or(Err(OutboundError::Closed)) }
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

/// One chat's queue and budget.
#[derive(Default)]
struct ChatQueue {
    jobs: VecDeque<Job>,
    /// The chat's token bucket, kept as the time it would be full again (GCRA): a message
    /// may go when `full_at - (burst - 1) × interval` has passed, and each moves `full_at`
    /// one interval later. No timer runs for a bucket that refills.
    full_at: Option<Instant>,
    /// Telegram asked to wait (or the network failed) until then.
    blocked_until: Option<Instant>,
    /// groups only: when each message of the last minute was answered
    minute: VecDeque<Instant>,
    in_flight: bool,
    scheduled: bool,
}

impl ChatQueue {
    /// The earliest time the next message may go, given the chat's budget.
    fn next_at(&mut self, chat: ChatId, limits: &Limits, now: Instant) -> Instant {
        let mut at = now;
        if let Some(full_at) = self.full_at {
            let burst = limits.per_chat_interval * limits.per_chat_burst.saturating_sub(1);
            at = at.max(full_at.checked_sub(burst).unwrap_or(now));
        }
        if let Some(until) = self.blocked_until {
            at = at.max(until);
        }
        if is_group(chat) {
            while self.minute.front().is_some_and(|&t| now.duration_since(t) >= MINUTE) {
                self.minute.pop_front();
            }
            if self.minute.len() >= limits.group_per_minute {
                let oldest = self.minute.len() - limits.group_per_minute;
                at = at.max(self.minute[oldest] + MINUTE);
            }
        }
        at
    }

    /// Spends one message of the budget.
    fn spend(&mut self, limits: &Limits, now: Instant) {
        self.full_at = Some(self.full_at.map_or(now, |t| t.max(now)) + limits.per_chat_interval);
    }

    /// After a `429`: nothing before `until`, and no burst after it either.
    fn block(&mut self, limits: &Limits, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |t| t.max(until)));
        let burst = limits.per_chat_interval * limits.per_chat_burst.saturating_sub(1);
        let empty = until + burst;
        self.full_at = Some(self.full_at.map_or(empty, |t| t.max(empty)));
    }

    fn idle(&self, now: Instant) -> bool {
        self.jobs.is_empty()
            && !self.in_flight
            && self.full_at.is_none_or(|t| t <= now)
            && self.blocked_until.is_none_or(|t| t <= now)
            && self.minute.back().is_none_or(|&t| now.duration_since(t) >= MINUTE)
    }
}

/// Group and channel ids are negative; a private chat's id is its user's.
fn is_group(chat: ChatId) -> bool {
    chat.0 < 0
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
            limits: Limits {
                global_per_second: limits.global_per_second.max(1),
                per_chat_burst: limits.per_chat_burst.max(1),
                group_per_minute: limits.group_per_minute.max(1),
                ..limits
            },
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
            // Nothing else changes this chat's budget until its message is dispatched.
            let at = q.next_at(chat, &self.limits, now);
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
            q.spend(&self.limits, now);
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
                        // A group's minute also runs from the completion, for the same
                        // reason as the global window.
                        if is_group(chat) {
                            q.minute.push_back(now);
                        }
                        if let Outcome::Retry { job, after } = outcome {
                            // A zero wait is an edit turned into a send, not a refusal.
                            if !after.is_zero() {
                                q.block(&self.limits, now + after);
                            }
                            q.jobs.push_front(job);
                        }
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
        self.chats.retain(|_, q| !q.idle(now));
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
