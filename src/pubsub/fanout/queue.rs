//! A subscriber's bounded queue of encoded frames, each with its [`Mark`] (its event id, or a
//! `reset`), and how its subscriber is told to stop: what `publish` pushes into and the
//! subscription's stream reads from. The id lets a subscription that caught up from elsewhere
//! (the Redis stream) drop what it already sent.
//!
//! Guarantees: a push never waits (a full queue is refused at once, and the caller cuts that
//! subscriber as `slow`); a wake-up is never lost; once closed, the reader still drains what
//! was queued before it ends; "stop now" ends the reader at once, skipping what is queued.
//!
//! The queue has exactly one reader, so one `Waker` slot is enough, and it lives under the
//! same lock as the frames: the reader stores its waker only after finding nothing to read,
//! and a writer takes it out under that lock after changing what there is to read, so a
//! change can never fall between the reader's look and its sleep. The waker is woken after
//! the lock is let go. Frames, close and stop-now share that one path. The queue is part of
//! the one allocation a subscriber is, shared by its channel and its subscription.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::Mark;
use crate::sse::CloseReason;
use crate::sync::lock;

/// A subscriber's bounded queue of encoded frames and its end. Lighter than a channel (an
/// idle subscriber holds no buffer at all), and publishing into it never waits.
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<(Mark, Bytes)>,
    /// The reader's, stored when it found nothing to read; taken by whoever changes that.
    reader: Option<Waker>,
    /// Set when the publishing side lets go: the reader drains what is left, then ends.
    closed: bool,
    /// Set to end the reader at once, without draining (`slow`, `replaced`).
    stop_now: bool,
    /// Why the subscriber ends; the first reason given wins.
    reason: Option<CloseReason>,
}

#[derive(Debug)]
pub(super) struct QueueFull;

impl Queue {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity,
        }
    }

    /// Queue `frame`; the reader's waker, when it was waiting, is handed back to be woken by
    /// the caller once it lets go of its own locks (see [`super::channel::Wakeups`]).
    pub(super) fn push(&self, mark: Mark, frame: Bytes) -> Result<Option<Waker>, QueueFull> {
        let mut state = lock(&self.state);
        if state.items.len() >= self.capacity {
            return Err(QueueFull);
        }
        state.items.push_back((mark, frame));
        Ok(state.reader.take())
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    /// The publishing side let go: the reader drains what is queued, then ends.
    pub(super) fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        wake_after_unlock(state);
    }

    /// Tell the subscriber why it ends (unless it was told already); `immediately` ends its
    /// reader now, skipping what is queued, otherwise it ends once closed and drained.
    pub(super) fn end(&self, reason: CloseReason, immediately: bool) {
        let mut state = lock(&self.state);
        state.reason.get_or_insert(reason);
        if immediately {
            state.stop_now = true;
            wake_after_unlock(state);
        }
    }

    /// Why the subscriber ended, if it was told.
    pub(super) fn reason(&self) -> Option<CloseReason> {
        lock(&self.state).reason
    }

    /// The next frame and its [`Mark`]; `None` once told to stop now, or once closed and
    /// drained. When there is nothing yet, `cx`'s waker is woken when
    /// there is.
    pub(super) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<(Mark, Bytes)>> {
        let mut state = lock(&self.state);
        if state.stop_now {
            return Poll::Ready(None);
        }
        if let Some(frame) = state.items.pop_front() {
            return Poll::Ready(Some(frame));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        // Registered under the lock every writer takes: no wake-up can be lost.
        match &mut state.reader {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// [`Queue::poll_recv`] as a future.
    #[cfg(test)]
    pub(super) async fn recv(&self) -> Option<(Mark, Bytes)> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

/// Take the reader's waker under the lock, and wake it once the lock is let go (the reader
/// it wakes takes the same lock first thing).
fn wake_after_unlock(mut state: MutexGuard<'_, State>) {
    let reader = state.reader.take();
    drop(state);
    if let Some(reader) = reader {
        reader.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    fn frame(id: u64) -> (Mark, Bytes) {
        (Mark::Event(id), Bytes::from(format!("id: {id}\n\n")))
    }

    fn push(queue: &Queue, id: u64) {
        let (id, frame) = frame(id);
        wake(queue.push(id, frame).expect("room"));
    }

    fn wake(reader: Option<Waker>) {
        reader.into_iter().for_each(Waker::wake);
    }

    fn poll(queue: &Queue, waker: &Waker) -> Poll<Option<(Mark, Bytes)>> {
        queue.poll_recv(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_push_wakes_the_waiting_reader_and_a_push_before_it_waits_is_read_at_once() {
        let queue = Queue::new(4);
        let (count, waker) = waker();
        assert!(poll(&queue, &waker).is_pending());
        push(&queue, 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&queue, &waker), Poll::Ready(Some(frame(1))));
        // Nobody waits now: the next push finds no waker, and the reader finds the frame.
        push(&queue, 2);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&queue, &waker), Poll::Ready(Some(frame(2))));
    }

    #[test]
    fn the_reader_polled_from_another_task_is_the_one_woken() {
        let queue = Queue::new(4);
        let (first, first_waker) = waker();
        let (second, second_waker) = waker();
        assert!(poll(&queue, &first_waker).is_pending());
        assert!(poll(&queue, &second_waker).is_pending());
        push(&queue, 1);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_full_queue_is_refused_without_waiting() {
        let queue = Queue::new(2);
        push(&queue, 1);
        push(&queue, 2);
        assert!(queue.push(Mark::Event(3), Bytes::new()).is_err());
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn close_while_waiting_wakes_the_reader_and_it_drains_first() {
        let queue = Queue::new(4);
        let (count, waker) = waker();
        assert!(poll(&queue, &waker).is_pending());
        queue.close();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&queue, &waker), Poll::Ready(None));

        let queue = Queue::new(4);
        push(&queue, 1);
        queue.end(CloseReason::Bye, false);
        queue.close();
        assert_eq!(poll(&queue, &waker), Poll::Ready(Some(frame(1))));
        assert_eq!(poll(&queue, &waker), Poll::Ready(None));
        assert_eq!(queue.reason(), Some(CloseReason::Bye));
    }

    #[test]
    fn stop_now_skips_queued_frames_wakes_the_reader_and_the_first_reason_wins() {
        let queue = Queue::new(4);
        let (count, waker) = waker();
        assert!(poll(&queue, &waker).is_pending());
        queue.end(CloseReason::Replaced, true);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&queue, &waker), Poll::Ready(None));

        let queue = Queue::new(4);
        push(&queue, 1);
        push(&queue, 2);
        queue.end(CloseReason::Slow, true);
        queue.end(CloseReason::Bye, false);
        assert_eq!(poll(&queue, &waker), Poll::Ready(None));
        assert_eq!(queue.reason(), Some(CloseReason::Slow));
    }

    /// A writer on another thread pushing each frame the moment the reader took the last
    /// one, so the push races the reader registering its waker: every frame arrives, and the
    /// reader never sleeps through one (it would hang, and time out).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_wake_up_is_lost_when_pushes_race_the_reader_registering() {
        const FRAMES: u64 = 10_000;
        let queue = Arc::new(Queue::new(1));
        let writer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for id in 1..=FRAMES {
                    while queue.len() > 0 {
                        std::thread::yield_now();
                    }
                    wake(queue.push(Mark::Event(id), Bytes::new()).expect("room"));
                }
                queue.close();
            })
        };
        let reader = tokio::spawn(async move {
            let mut next = 1;
            while let Some((id, _)) = queue.recv().await {
                assert_eq!(id, Mark::Event(next));
                next += 1;
            }
            next - 1
        });
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), reader)
            .await
            .expect("the reader slept through a push")
            .expect("reader");
        writer.join().expect("writer");
        assert_eq!(read, FRAMES);
    }
}
