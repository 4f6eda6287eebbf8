//! When N tabs of the clock page have settled, read from the tabs themselves rather than
//! after a fixed wait.
//!
//! Each tab is read on a task of its own, so a tab whose page is queued behind a full
//! connection (it answers no evaluation until its page comes) holds up no other tab and no
//! round of reading; a read that has gone unanswered for [`READ_PATIENCE`] counts as a tab
//! with no page yet, and is not asked again until it answers. The tabs have settled when
//! every tab is ticking, or when one is, none is half-way (open, not ticking yet) and no tab
//! has moved to another [`Stage`] for a quiet spell: [`QUIET`], or half the time it took to get
//! there when that is longer, so a slow, busy machine gets a longer look. That is what the
//! HTTP/1.1 wall looks like (six tabs ticking, four stuck without a page or with a stream
//! still connecting), and the HTTP/2 one at the server's stream limit. The caller's `settle`
//! is only the upper bound.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Tab, eval};

/// How long a tab may take to say how its page is doing before it counts as having none.
const READ_PATIENCE: Duration = Duration::from_secs(2);

/// How often each tab is asked, and how often the stages are looked at.
const POLL: Duration = Duration::from_millis(200);

/// The shortest spell with no tab changing stage that counts as settled: a wall holds still
/// for good, while tabs on their way change stage every few milliseconds on a loaded machine
/// — but not always: with 1 s, a clean CI run (other tests beside it) saw WebKit's TLS
/// HTTP/1.1 tabs read as a wall of 2 while its next four streams were being opened (the
/// server held 6 a moment later).
const QUIET: Duration = Duration::from_secs(2);

/// Events an open stream has delivered when it counts as ticking: the clock's first tick comes
/// at once, the second shows the stream flows.
const TICKING_EVENTS: u64 = 2;

/// What the clock page exposes as `window.sselab` (the part read here).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct ClockPage {
    pub events: u64,
    /// The EventSource's readyState: 1 is open.
    #[serde(rename = "readyState")]
    pub ready_state: u8,
    /// The server's connection id, from the `connected` event.
    pub connection: Option<u64>,
    /// The stream's protocol as the server saw it, from the `connected` event.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// The part of `window.sselab` read, small whatever the page has received.
const READ: &str = "window.sselab ? { events: window.sselab.events, \
    readyState: window.sselab.readyState, connection: window.sselab.connection, \
    protocol: window.sselab.protocol } : null";

/// Where a tab is on its way to a ticking stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// No clock page yet (queued behind the connection limit, still loading, or not
    /// answering).
    NoPage,
    /// The page came; its stream is not open (waiting for a connection or a stream, or
    /// reconnecting).
    Waiting,
    /// The stream is open and has not delivered [`TICKING_EVENTS`] yet.
    Opened,
    /// The stream is open and has delivered [`TICKING_EVENTS`] or more.
    Ticking,
}

impl Stage {
    fn of(clock: Option<&ClockPage>) -> Self {
        match clock {
            None => Stage::NoPage,
            Some(clock) if clock.ready_state != 1 => Stage::Waiting,
            Some(clock) if clock.events < TICKING_EVENTS => Stage::Opened,
            Some(_) => Stage::Ticking,
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Stage::Opened | Stage::Ticking)
    }
}

/// The last answer of one tab, and whether a question is still out.
#[derive(Debug, Clone, Default)]
struct Reading {
    clock: Option<ClockPage>,
    asked_at: Option<Instant>,
}

impl Reading {
    /// What the tab says at `now`: a question out for longer than [`READ_PATIENCE`] is no
    /// page, whatever it said before.
    fn clock(&self, now: Instant) -> Option<&ClockPage> {
        match self.asked_at {
            Some(asked) if now.duration_since(asked) > READ_PATIENCE => None,
            _ => self.clock.as_ref(),
        }
    }
}

/// How each tab ended up, and when they settled.
pub(super) struct Settled {
    /// Per tab, in order: its stage and what its page said (`None`: no page, or no answer).
    pub tabs: Vec<(Stage, Option<ClockPage>)>,
    /// How long after the reading began the tabs settled; `None` when `settle` ran out first.
    pub after: Option<Duration>,
}

/// Read `tabs` concurrently until they settle, for at most `settle`.
pub(super) async fn settle(tabs: &[Tab], settle: Duration) -> Settled {
    let started = Instant::now();
    let mut readers = JoinSet::new();
    let readings: Vec<watch::Receiver<Reading>> = tabs
        .iter()
        .map(|tab| {
            let (tell, reading) = watch::channel(Reading::default());
            readers.spawn(read_until_dropped(tab.clone(), tell));
            reading
        })
        .collect();
    let mut rule = SettleRule::new(started, tabs.len());
    let after = loop {
        tokio::time::sleep(POLL).await;
        let now = Instant::now();
        let stages: Vec<Stage> = readings
            .iter()
            .map(|r| Stage::of(r.borrow().clock(now)))
            .collect();
        if rule.settled(&stages, now) {
            break Some(now - started);
        }
        if now - started >= settle {
            break None;
        }
    };
    // Dropping the set stops the readers; a question still out is left unanswered.
    drop(readers);
    let now = Instant::now();
    let tabs = readings
        .iter()
        .map(|r| {
            let clock = r.borrow().clock(now).cloned();
            (Stage::of(clock.as_ref()), clock)
        })
        .collect();
    Settled { tabs, after }
}

/// Ask `tab` how its page is doing, again and again, one question at a time.
async fn read_until_dropped(tab: Tab, tell: watch::Sender<Reading>) {
    loop {
        tell.send_modify(|r| r.asked_at = Some(Instant::now()));
        let clock: Option<ClockPage> = eval(&tab, READ).await.ok().flatten();
        tell.send_replace(Reading {
            clock,
            asked_at: None,
        });
        tokio::time::sleep(POLL).await;
    }
}

/// The settle rule over successive looks at the tabs' stages.
struct SettleRule {
    started: Instant,
    last: Vec<Stage>,
    changed_at: Instant,
}

impl SettleRule {
    fn new(started: Instant, tabs: usize) -> Self {
        Self {
            started,
            last: vec![Stage::NoPage; tabs],
            changed_at: started,
        }
    }

    /// Look at the stages at `now`: true once every tab ticks, or once one ticks, none is
    /// half-way and none has changed for [`QUIET`] (or half the time until the last change,
    /// if longer).
    fn settled(&mut self, stages: &[Stage], now: Instant) -> bool {
        if stages != self.last {
            self.last = stages.to_vec();
            self.changed_at = now;
        }
        if stages.iter().all(|s| *s == Stage::Ticking) {
            return true;
        }
        // Half-way, or nothing ticking yet: a start, not a wall.
        if stages.contains(&Stage::Opened) || !stages.contains(&Stage::Ticking) {
            return false;
        }
        let quiet = QUIET.max(self.changed_at.duration_since(self.started) / 2);
        now.duration_since(self.changed_at) >= quiet
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stage::{NoPage, Opened, Ticking, Waiting};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The wall: six tick, four never get a page.
    fn wall() -> Vec<Stage> {
        [vec![Ticking; 6], vec![NoPage; 4]].concat()
    }

    #[test]
    fn every_tab_ticking_is_settled_at_once() {
        let t0 = Instant::now();
        let mut rule = SettleRule::new(t0, 3);
        assert!(!rule.settled(&[Ticking, Ticking, Waiting], t0 + ms(200)));
        assert!(rule.settled(&[Ticking; 3], t0 + ms(400)));
    }

    #[test]
    fn a_wall_is_settled_once_it_held_still_for_the_quiet_spell() {
        let t0 = Instant::now();
        let mut rule = SettleRule::new(t0, 10);
        assert!(!rule.settled(&wall(), t0 + ms(800)));
        assert!(!rule.settled(&wall(), t0 + ms(2600)));
        assert!(rule.settled(&wall(), t0 + ms(2800)));
    }

    #[test]
    fn any_change_starts_the_quiet_spell_again() {
        let t0 = Instant::now();
        let mut rule = SettleRule::new(t0, 10);
        let mut five = wall();
        five[5] = Waiting;
        assert!(!rule.settled(&five, t0 + ms(400)));
        assert!(!rule.settled(&wall(), t0 + ms(1200)));
        assert!(!rule.settled(&wall(), t0 + ms(3000)));
        assert!(rule.settled(&wall(), t0 + ms(3200)));
    }

    #[test]
    fn a_tab_open_and_not_ticking_yet_is_never_settled() {
        let t0 = Instant::now();
        let mut rule = SettleRule::new(t0, 2);
        for at in [200, 2000, 20_000] {
            assert!(!rule.settled(&[Ticking, Opened], t0 + ms(at)));
        }
    }

    #[test]
    fn tabs_that_never_got_a_page_are_not_settled() {
        let t0 = Instant::now();
        let mut rule = SettleRule::new(t0, 2);
        for at in [200, 2000, 20_000] {
            assert!(!rule.settled(&[NoPage, NoPage], t0 + ms(at)));
            assert!(!rule.settled(&[NoPage, Waiting], t0 + ms(at + 100)));
        }
    }

    #[test]
    fn a_slow_start_gets_a_longer_quiet_spell() {
        let t0 = Instant::now();
        let mut rule = SettleRule::new(t0, 10);
        // The wall took 6 s to form: it must then hold for 3 s, not 2.
        assert!(!rule.settled(&wall(), t0 + ms(6000)));
        assert!(!rule.settled(&wall(), t0 + ms(8000)));
        assert!(rule.settled(&wall(), t0 + ms(9000)));
    }

    #[test]
    fn a_question_out_too_long_is_no_page() {
        let t0 = Instant::now();
        let clock = ClockPage {
            events: 3,
            ready_state: 1,
            connection: Some(7),
            protocol: Some("HTTP/1.1".into()),
        };
        let answered = Reading {
            clock: Some(clock.clone()),
            asked_at: None,
        };
        assert_eq!(Stage::of(answered.clock(t0)), Ticking);
        let asking = Reading {
            clock: Some(clock),
            asked_at: Some(t0),
        };
        assert_eq!(Stage::of(asking.clock(t0 + ms(500))), Ticking);
        assert_eq!(Stage::of(asking.clock(t0 + READ_PATIENCE + ms(1))), NoPage);
    }
}
