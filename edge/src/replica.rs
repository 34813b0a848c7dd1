//! `RevocationReplica`, the Durable Object that is the only component reading the issuer's
//! revocation feed (design note 0004, *Revocation replication*). One instance, named
//! `global`, serves every isolate.
//!
//! - An alarm polls the feed every interval, following `has_more` pages, so the replica stays
//!   fresh without traffic.
//! - `GET /sync?since=<cursor>` answers `{entries, cursor, fetched_at_ms}`. A sync that finds
//!   the data older than half the interval polls first; one poll runs at a time and syncs
//!   arriving meanwhile wait for it.
//! - While the issuer is failing, syncs answer at once with what the replica has (the
//!   staleness limit in the isolates decides), and only the alarm keeps trying, so a hung
//!   issuer costs at most one request a page deadline, not every sync.
//!
//! The data lives in memory: after a restart the replica reads the feed from the start, and
//! isolates keep their own copies meanwhile.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use worker::{
    Date, DurableObject, Env, Request, Response, Result, State, console_log, console_warn,
    durable_object,
};

use crate::config::ReplicaConfig;
use crate::error::{Problem, Refusal};
use crate::feed::{FeedPage, Replica, parse_cursor};
use crate::handler::problem_response;
use crate::http::{self, CallError};
use crate::isolate::var;

/// The binding name of the replica's namespace in `wrangler.toml`.
pub(crate) const BINDING: &str = "REVOCATION_REPLICA";
/// The one instance's name.
pub(crate) const INSTANCE: &str = "global";

/// Entries per feed page (the issuer's maximum).
const PAGE_LIMIT: u16 = 1_000;
/// The deadline for one feed page.
const PAGE_DEADLINE: Duration = Duration::from_secs(2);
/// The most pages one poll follows; the next poll continues from the cursor reached.
const MAX_PAGES: usize = 50;
/// The largest feed page accepted (1,000 entries are about 200 KB).
const PAGE_BYTES: u64 = 4 * 1024 * 1024;
/// How long past two intervals without a poll attempt counts as a stopped alarm.
const ALARM_GRACE_MS: u64 = 2_000;
/// A poll asks for no new page after this long; the next poll continues from its cursor.
const POLL_BUDGET_MS: u64 = 10_000;
/// A poll still marked running after this long is taken as lost (its future was dropped
/// without finishing), so the replica can never stay stuck on it.
const POLL_LOST_MS: u64 = POLL_BUDGET_MS + 5_000;

/// The Durable Object.
#[durable_object]
#[derive(Debug)]
pub struct RevocationReplica {
    state: State,
    env: Env,
    inner: Rc<RefCell<Inner>>,
}

/// The replica's memory. Borrowed only between awaits.
#[derive(Debug, Default)]
struct Inner {
    feed: Replica,
    /// Whether a poll is running.
    polling: bool,
    /// Syncs waiting for the running poll.
    waiters: Vec<oneshot::Sender<()>>,
    /// When the last poll started, and whether the last finished poll failed.
    attempted_at_ms: Option<u64>,
    failing: bool,
    /// Whether this instance has made sure an alarm is scheduled.
    alarm_armed: bool,
}

impl Inner {
    /// Whether the data is older than half the interval (or was never complete).
    fn is_due(&self, now_ms: u64, interval_ms: u64) -> bool {
        self.feed
            .fetched_at_ms()
            .is_none_or(|at| now_ms.saturating_sub(at) >= interval_ms / 2)
    }

    /// Whether a poll is running (and not lost).
    fn is_polling(&self, now_ms: u64) -> bool {
        self.polling
            && self
                .attempted_at_ms
                .is_some_and(|at| now_ms.saturating_sub(at) < POLL_LOST_MS)
    }

    /// Whether a sync should start a poll before answering. While the issuer is failing the
    /// alarm alone retries, so syncs answer at once; only if no poll has been attempted for
    /// [`ALARM_GRACE_MS`] beyond two intervals (the alarm is evidently not running) does a
    /// sync try.
    fn should_poll(&self, now_ms: u64, interval_ms: u64) -> bool {
        let alarm_overdue = self.attempted_at_ms.is_none_or(|at| {
            now_ms.saturating_sub(at)
                >= interval_ms.saturating_mul(2).saturating_add(ALARM_GRACE_MS)
        });
        !self.is_polling(now_ms)
            && (!self.failing || alarm_overdue)
            && self.is_due(now_ms, interval_ms)
    }

    /// Whether a sync should wait for the running poll: only while the issuer answers, so a
    /// hung issuer does not hold every sync for a poll's deadline.
    fn should_wait(&self, now_ms: u64, interval_ms: u64) -> bool {
        self.is_polling(now_ms) && !self.failing && self.is_due(now_ms, interval_ms)
    }
}

/// Marks a poll as running for as long as it lives. Dropping it, whether the poll finished or
/// its future was cancelled, clears the mark and wakes every waiting sync, so a cancelled poll
/// cannot leave syncs waiting on nothing.
struct PollGuard {
    inner: Rc<RefCell<Inner>>,
}

impl PollGuard {
    fn start(inner: &Rc<RefCell<Inner>>, now_ms: u64) -> Self {
        {
            let mut state = inner.borrow_mut();
            state.polling = true;
            state.attempted_at_ms = Some(now_ms);
        }
        Self {
            inner: Rc::clone(inner),
        }
    }
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        let waiters = match self.inner.try_borrow_mut() {
            Ok(mut state) => {
                state.polling = false;
                std::mem::take(&mut state.waiters)
            }
            // Unreachable while borrows never span an await; the lost-poll timeout covers it.
            Err(_) => return,
        };
        for waiter in waiters {
            // A sync that stopped waiting has nothing left to wake.
            waiter.send(()).ok();
        }
    }
}

impl DurableObject for RevocationReplica {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            inner: Rc::new(RefCell::new(Inner::default())),
        }
    }

    async fn fetch(&self, request: Request) -> Result<Response> {
        let config = match ReplicaConfig::parse(|name| var(&self.env, name)) {
            Ok(config) => config,
            Err(error) => {
                console_warn!("revocation replica misconfigured: {error}");
                return problem_response(&Refusal::Misconfigured(error.variable).problem());
            }
        };
        let Some(since) = sync_since(&request) else {
            let refusal = Refusal::InvalidRequest("expected GET /sync?since=<cursor>");
            return problem_response(&refusal.problem());
        };
        self.arm_alarm(config.revocation_interval_ms).await;

        let now_ms = Date::now().as_millis();
        let (poll, wait) = {
            let inner = self.inner.borrow();
            let poll = inner.should_poll(now_ms, config.revocation_interval_ms);
            (
                poll,
                !poll && inner.should_wait(now_ms, config.revocation_interval_ms),
            )
        };
        if poll {
            self.poll(&config).await;
        } else if wait {
            let (sender, receiver) = oneshot::channel();
            self.inner.borrow_mut().waiters.push(sender);
            // A dropped sender (the poll's future was cancelled) ends the wait too.
            receiver.await.ok();
        }

        let answer = self.inner.borrow().feed.answer(since);
        match answer {
            Some(answer) => Response::from_json(&answer),
            None => problem_response(&Problem {
                status: 503,
                code: "service_unavailable",
                title: "Service unavailable",
                detail: String::from("the replica has not read the whole revocation feed yet"),
                www_authenticate: None,
                retry_after_secs: Some(1),
            }),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let config = match ReplicaConfig::parse(|name| var(&self.env, name)) {
            Ok(config) => config,
            Err(error) => {
                console_warn!("revocation replica misconfigured, alarm stopped: {error}");
                return Response::empty();
            }
        };
        // Scheduled first, so a poll that never returns cannot stop the polling.
        let next = Duration::from_millis(config.revocation_interval_ms);
        if self.state.storage().set_alarm(next).await.is_err() {
            console_warn!("revocation replica could not schedule its next alarm");
            self.inner.borrow_mut().alarm_armed = false;
        }
        let polling = self.inner.borrow().is_polling(Date::now().as_millis());
        if !polling {
            self.poll(&config).await;
        }
        Response::empty()
    }
}

impl RevocationReplica {
    /// Makes sure an alarm is scheduled (once per instance: the alarm reschedules itself).
    async fn arm_alarm(&self, interval_ms: u64) {
        if self.inner.borrow().alarm_armed {
            return;
        }
        let storage = self.state.storage();
        let scheduled = match storage.get_alarm().await {
            Ok(Some(_)) => true,
            Ok(None) => storage
                .set_alarm(Duration::from_millis(interval_ms))
                .await
                .is_ok(),
            Err(_) => false,
        };
        if scheduled {
            self.inner.borrow_mut().alarm_armed = true;
        } else {
            console_warn!("revocation replica could not schedule its alarm");
        }
    }

    /// One poll: pages from the current cursor until `has_more` is false, the page or time
    /// budget is spent or a page fails. Wakes every waiting sync when done.
    async fn poll(&self, config: &ReplicaConfig) {
        let started_ms = Date::now().as_millis();
        let guard = PollGuard::start(&self.inner, started_ms);
        let outcome = self.follow_pages(config, started_ms).await;
        {
            let mut inner = self.inner.borrow_mut();
            inner.failing = outcome.is_err();
            inner.feed.prune(Date::now().as_millis() / 1_000);
        }
        drop(guard);
        if let Err(reason) = outcome {
            console_warn!("revocation feed poll failed: {reason}");
        }
    }

    async fn follow_pages(
        &self,
        config: &ReplicaConfig,
        started_ms: u64,
    ) -> core::result::Result<(), String> {
        for _ in 0..MAX_PAGES {
            if Date::now().as_millis().saturating_sub(started_ms) >= POLL_BUDGET_MS {
                break;
            }
            let since = self.inner.borrow().feed.cursor();
            let url = format!(
                "{}/v1/revocations?since={since}&limit={PAGE_LIMIT}",
                config.issuer_url
            );
            // The time before asking: the data is at least this fresh, never fresher.
            let asked_at_ms = Date::now().as_millis();
            let page: FeedPage = http::get_json(&url, PAGE_DEADLINE, PAGE_BYTES)
                .await
                .map_err(|error: CallError| format!("the issuer {}", error.describe()))?;
            let has_more = page.has_more;
            let mut inner = self.inner.borrow_mut();
            inner
                .feed
                .apply_page(page)
                .map_err(|error| error.reason().to_owned())?;
            if !has_more {
                let first = inner.feed.fetched_at_ms().is_none();
                inner.feed.mark_fetched(asked_at_ms);
                if first {
                    console_log!("revocation replica loaded {} entries", inner.feed.len());
                }
                return Ok(());
            }
        }
        // Not a failure: the next poll continues from the cursor reached.
        Ok(())
    }
}

/// `since` of `GET /sync?since=<cursor>`: `Some(None)` without it, `None` for any other
/// request.
fn sync_since(request: &Request) -> Option<Option<u64>> {
    let url = request.url().ok()?;
    if request.inner().method() != "GET" || url.path() != "/sync" {
        return None;
    }
    let mut since = None;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "since" if since.is_none() => since = Some(parse_cursor(&value).ok()?),
            _ => return None,
        }
    }
    Some(since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::FeedPage;

    const INTERVAL: u64 = 1_000;

    fn fetched_at(at: u64) -> Inner {
        let mut inner = Inner::default();
        let page = FeedPage {
            entries: Vec::new(),
            next_cursor: "0".to_owned(),
            has_more: false,
        };
        inner.feed.apply_page(page).unwrap();
        inner.feed.mark_fetched(at);
        inner.attempted_at_ms = Some(at);
        inner
    }

    #[test]
    fn should_poll_cold_and_after_half_an_interval() {
        assert!(Inner::default().should_poll(0, INTERVAL));
        let inner = fetched_at(10_000);
        assert!(!inner.should_poll(10_499, INTERVAL));
        assert!(inner.should_poll(10_500, INTERVAL));
    }

    #[test]
    fn should_poll_one_poll_at_a_time_and_waits_while_healthy() {
        let mut inner = fetched_at(10_000);
        inner.polling = true;
        assert!(!inner.should_poll(20_000, INTERVAL));
        assert!(inner.should_wait(20_000, INTERVAL));
        assert!(
            !inner.should_wait(10_100, INTERVAL),
            "fresh data needs no waiting"
        );
    }

    #[test]
    fn should_poll_a_lost_poll_does_not_block_for_ever() {
        let mut inner = fetched_at(10_000);
        inner.polling = true;
        assert!(!inner.should_poll(10_000 + POLL_LOST_MS - 1, INTERVAL));
        assert!(inner.should_poll(10_000 + POLL_LOST_MS, INTERVAL));
        assert!(!inner.should_wait(10_000 + POLL_LOST_MS, INTERVAL));
    }

    #[test]
    fn poll_guard_clears_the_mark_and_wakes_waiters_when_dropped() {
        let inner = Rc::new(RefCell::new(Inner::default()));
        let guard = PollGuard::start(&inner, 5);
        let (sender, mut receiver) = oneshot::channel();
        inner.borrow_mut().waiters.push(sender);
        assert!(inner.borrow().is_polling(6));
        drop(guard);
        assert!(!inner.borrow().polling);
        assert_eq!(receiver.try_recv(), Ok(Some(())));
    }

    #[test]
    fn should_poll_failing_issuer_is_left_to_the_alarm() {
        let mut inner = fetched_at(10_000);
        inner.failing = true;
        assert!(!inner.should_poll(13_999, INTERVAL));
        assert!(
            inner.should_poll(14_000, INTERVAL),
            "the alarm has evidently stopped"
        );
        inner.polling = true;
        assert!(
            !inner.should_wait(11_000, INTERVAL),
            "never wait on a failing issuer"
        );
    }
}
