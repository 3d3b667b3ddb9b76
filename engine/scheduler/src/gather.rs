//! Where requests wait to be taken in batches by a few tasks side by side. A task that
//! finds another batch still on its way gathers behind it, and starts when that batch is
//! done, its own is full, or it has waited its patience: only full batches, or batches
//! behind a slow one, travel side by side.
//!
//! Taking whatever was waiting and starting at once made batches small as soon as several
//! tasks were idle: under 10,000 runs a second each admission's insert carried a handful of
//! runs beside two others, and every statement, commit and fsync is paid per batch. One
//! batch in flight while the next gathers behind it is group commit; a full batch beside it
//! keeps a machine whose load fills batches from waiting on one statement at a time. The
//! patience keeps one slow batch (an insert waiting for a lock) from holding up the rest.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::sync::CancellationToken;

pub(crate) struct Gather<T> {
    rx: Mutex<mpsc::Receiver<T>>,
    /// batches taken and not yet done
    in_flight: AtomicUsize,
    done: Notify,
    /// how long a batch gathers behind one in flight before it goes beside it
    patience: Duration,
}

/// A batch taken from a [`Gather`]; dropping it says the batch is done.
pub(crate) struct Batch<'a, T> {
    pub items: Vec<T>,
    gather: &'a Gather<T>,
}

impl<T> Drop for Batch<'_, T> {
    fn drop(&mut self) {
        self.gather.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.gather.done.notify_waiters();
    }
}

impl<T> Gather<T> {
    pub(crate) fn new(rx: mpsc::Receiver<T>, patience: Duration) -> Gather<T> {
        Gather { rx: Mutex::new(rx), in_flight: AtomicUsize::new(0), done: Notify::new(), patience }
    }

    /// The next batch of at most `max` items; `None` once every sender is gone and nothing
    /// is left, or once `stop` is cancelled while no item has come. Waits for a first
    /// item, then gathers while another batch is in flight (a stop then ends nothing
    /// halfway: what was taken is returned once that batch is done).
    pub(crate) async fn next(&self, max: usize, stop: &CancellationToken) -> Option<Batch<'_, T>> {
        let max = max.max(1);
        let mut rx = self.rx.lock().await;
        let first = tokio::select! {
            item = rx.recv() => item,
            () = stop.cancelled() => None,
        };
        let mut items = vec![first?];
        let give_up = tokio::time::sleep(self.patience);
        tokio::pin!(give_up);
        loop {
            while items.len() < max {
                match rx.try_recv() {
                    Ok(item) => items.push(item),
                    Err(_) => break,
                }
            }
            if items.len() >= max {
                break;
            }
            // Registered before the count is read, so a batch ending in between still wakes us.
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            tokio::select! {
                item = rx.recv() => match item {
                    Some(item) => items.push(item),
                    None => break,
                },
                () = &mut done => {}
                () = &mut give_up => break,
            }
        }
        // Counted before the next task may take the lock, so it sees this batch in flight.
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(Batch { items, gather: self })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Longer than any test waits, for the tests that are not about patience.
    const PATIENT: Duration = Duration::from_secs(60);

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn with_nothing_in_flight_a_batch_starts_with_what_is_waiting() {
        let (tx, rx) = mpsc::channel(16);
        let gather = Gather::new(rx, PATIENT);
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        let batch = gather.next(10, &CancellationToken::new()).await.unwrap();
        assert_eq!(batch.items, vec![1, 2]);
    }

    #[tokio::test]
    async fn behind_a_batch_in_flight_the_next_gathers_until_it_is_done() {
        let (tx, rx) = mpsc::channel(16);
        let gather = Arc::new(Gather::new(rx, PATIENT));
        tx.send(1).await.unwrap();
        let first = gather.next(10, &CancellationToken::new()).await.unwrap();
        assert_eq!(first.items, vec![1]);

        let next = tokio::spawn({
            let gather = gather.clone();
            async move { gather.next(10, &CancellationToken::new()).await.map(|b| b.items.clone()) }
        });
        tx.send(2).await.unwrap();
        settle().await;
        tx.send(3).await.unwrap();
        settle().await;
        assert!(!next.is_finished(), "started beside a batch in flight");
        drop(first);
        assert_eq!(next.await.unwrap(), Some(vec![2, 3]));
    }

    #[tokio::test]
    async fn a_full_batch_starts_beside_one_in_flight() {
        let (tx, rx) = mpsc::channel(16);
        let gather = Gather::new(rx, PATIENT);
        tx.send(1).await.unwrap();
        let _first = gather.next(2, &CancellationToken::new()).await.unwrap();
        for i in 2..=4 {
            tx.send(i).await.unwrap();
        }
        let stop = CancellationToken::new();
        let second = tokio::time::timeout(Duration::from_secs(5), gather.next(2, &stop)).await.unwrap().unwrap();
        assert_eq!(second.items, vec![2, 3]);
    }

    #[tokio::test]
    async fn behind_a_slow_batch_the_next_goes_once_its_patience_is_spent() {
        let (tx, rx) = mpsc::channel(16);
        let gather = Gather::new(rx, Duration::from_millis(50));
        let stop = CancellationToken::new();
        tx.send(1).await.unwrap();
        let _stuck = gather.next(10, &stop).await.unwrap();
        tx.send(2).await.unwrap();
        let started = std::time::Instant::now();
        let next = tokio::time::timeout(Duration::from_secs(5), gather.next(10, &stop)).await.unwrap().unwrap();
        assert_eq!(next.items, vec![2]);
        assert!(started.elapsed() >= Duration::from_millis(50), "went beside it before its patience was spent");
    }

    #[tokio::test]
    async fn a_stop_ends_the_wait_for_a_first_item() {
        let (_tx, rx) = mpsc::channel::<u32>(16);
        let gather = Gather::new(rx, PATIENT);
        let stop = CancellationToken::new();
        stop.cancel();
        assert!(gather.next(10, &stop).await.is_none());
    }

    #[tokio::test]
    async fn it_ends_when_every_sender_is_gone() {
        let (tx, rx) = mpsc::channel::<u32>(16);
        let gather = Gather::new(rx, PATIENT);
        tx.send(7).await.unwrap();
        drop(tx);
        assert_eq!(gather.next(10, &CancellationToken::new()).await.unwrap().items, vec![7]);
        assert!(gather.next(10, &CancellationToken::new()).await.is_none());
    }
}
