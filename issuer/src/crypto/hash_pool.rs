//! A fixed set of OS threads that run every password hash.
//!
//! Argon2 allocates `password.argon2_memory_kib` (19 MiB by default) per hash. glibc serves each
//! thread from its own heap arena and, once a large block has been freed, raises its mmap
//! threshold, so later blocks of that size come from the arena and stay there after they are
//! freed. Hashes on `spawn_blocking` ran on whichever of Tokio's (up to 512) blocking threads
//! was idle, so the memory kept grew with the size of a burst rather than with
//! `password.max_concurrent_hashes`: with 2 slots, 300 concurrent logins took the process from
//! 120 MB to about 600 MB. Here exactly `max_concurrent_hashes` long-lived threads run the
//! hashes, so at most that many arenas ever hold Argon2 memory.
//!
//! A request first takes one of as many slots as there are threads, waiting at most
//! `password.queue_timeout_ms` (then [`PasswordError::Busy`], 503 `server_busy`); only then is
//! its job queued, so a queued job always has a thread about to take it. The slot is released
//! when the hash is done, even if the request was cancelled meanwhile.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, error};

use super::password::PasswordError;

type Job = Box<dyn FnOnce() + Send>;

/// Runs closures on a fixed number of dedicated threads, with a bounded wait for a free one.
#[derive(Debug)]
pub(crate) struct HashPool {
    /// Dropping the pool drops this sender, which ends every worker thread.
    jobs: SyncSender<Job>,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl HashPool {
    /// Starts `threads` worker threads (at least one).
    pub(crate) fn new(threads: usize, queue_timeout: Duration) -> Result<Self, PasswordError> {
        let threads = threads.max(1);
        // A job is queued only while its slot is held, so `threads` places never fill up.
        let (jobs, queue) = sync_channel::<Job>(threads);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{index}"))
                .spawn(move || work(&queue))
                .map_err(|err| {
                    PasswordError::Internal(format!("starting a hashing thread: {err}"))
                })?;
        }
        Ok(Self {
            jobs,
            slots: Arc::new(Semaphore::new(threads)),
            queue_timeout,
        })
    }

    /// Runs `job` on one of the pool's threads and returns its answer.
    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
    {
        let slot = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|err| PasswordError::Internal(err.to_string()))?;
        let (reply, answer) = oneshot::channel();
        let queued: Job = Box::new(move || {
            let outcome = job();
            drop(slot);
            if reply.send(outcome).is_err() {
                debug!("the request left before its password hash finished");
            }
        });
        self.jobs
            .try_send(queued)
            .map_err(|err| PasswordError::Internal(format!("queueing a password hash: {err}")))?;
        answer.await.map_err(|_| {
            PasswordError::Internal("the password-hashing thread dropped the job".to_owned())
        })?
    }
}

/// A worker: takes jobs until the pool is dropped. A panicking job is contained, so the pool
/// never shrinks; its requester sees the reply channel closed.
fn work(queue: &Mutex<Receiver<Job>>) {
    while let Some(job) = next_job(queue) {
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            error!("a password-hashing job panicked");
        }
    }
}

/// The next job, or `None` once the pool is gone. The lock is released before the job runs.
fn next_job(queue: &Mutex<Receiver<Job>>) -> Option<Job> {
    let receiver = queue.lock().ok()?;
    receiver.recv().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn thread_name() -> Result<String, PasswordError> {
        Ok(std::thread::current().name().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn jobs_run_only_on_the_pool_threads() {
        let pool = Arc::new(HashPool::new(2, Duration::from_secs(5)).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                    thread_name()
                })
                .await
            }));
        }
        let mut names = HashSet::new();
        for task in tasks {
            names.insert(task.await.unwrap().unwrap());
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert!(names.len() <= 2, "{names:?}");
        assert!(names.iter().all(|name| name.starts_with("password-hash-")));
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_after_the_queue_timeout() {
        let pool = HashPool::new(1, Duration::from_millis(20)).unwrap();
        let held = pool.slots.clone().acquire_owned().await.unwrap();
        assert!(matches!(
            pool.run(thread_name).await,
            Err(PasswordError::Busy)
        ));
        drop(held);
        assert!(pool.run(thread_name).await.is_ok());
    }

    #[tokio::test]
    async fn a_panicking_job_neither_kills_its_thread_nor_keeps_its_slot() {
        let pool = HashPool::new(1, Duration::from_millis(500)).unwrap();
        let failed = pool
            .run(|| -> Result<(), PasswordError> { panic!("argon2 exploded") })
            .await;
        assert!(matches!(failed, Err(PasswordError::Internal(_))));
        assert_eq!(pool.run(thread_name).await.unwrap(), "password-hash-0");
    }

    #[tokio::test]
    async fn a_cancelled_request_keeps_its_slot_until_the_job_ends() {
        let pool = HashPool::new(1, Duration::from_millis(20)).unwrap();
        let slow = pool.run(|| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        // Queue the job, then abandon the request.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), slow)
                .await
                .is_err()
        );
        assert!(matches!(
            pool.run(thread_name).await,
            Err(PasswordError::Busy)
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(pool.run(thread_name).await.is_ok());
    }
}
