//! PostgreSQL pushes besides the idle consumers' wake-up: the end of an
//! awaited job to the threads waiting for it ([`Ends`]), and cancel
//! requests for running jobs to the processors ([`PgCancelFeed`]). Each
//! listens on a connection of its own, outside the pool, as the
//! consumers' wake-up does.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use outband::{CancelFeed, Error, JobId};

use crate::queue::{conn_error, db_error};

/// The longest a wait lasts, whatever it was asked for: a wait may end
/// early, and its caller looks at the job again either way.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// The ends of awaited jobs, heard on one connection per queue that
/// listens on [`finished_channel`](crate::sql::finished_channel) while
/// anyone waits, whatever the number of waiters.
///
/// A waiter registers its job, starts the reader thread if none runs, and
/// once the reader's connection listens marks the job awaited
/// ([`Statements::await_end`](crate::sql::Statements::await_end)): the
/// job's end, committed after the mark, is then notified after the
/// reader listened, and heard. The reader reads what the server sent
/// every millisecond (a look that costs no round trip), wakes the waiters
/// of the jobs it hears of, and stops listening, and ends, when the last
/// waiter has gone: a listening session costs the server a wake-up at
/// every notifying commit of the database, enqueues included.
pub(crate) struct Ends {
    url: String,
    channel: String,
    waits: Mutex<Waits>,
    /// Signalled when the reader listens, hears an end, or fails.
    changed: Condvar,
}

#[derive(Default)]
struct Waits {
    /// How many threads wait for each job.
    waiting: HashMap<i64, usize>,
    /// The waited-for jobs the reader heard end.
    ended: HashSet<i64>,
    /// Whether a reader thread runs.
    reading: bool,
    /// Whether the reader's connection listens.
    listening: bool,
    /// How many readers failed, and why the last one did.
    failures: u64,
    failure: Option<Failure>,
    /// A connection that listened and no longer does, for the next reader.
    idle: Option<PgConnection>,
}

/// Why a reader failed, for each of the waiters it leaves.
struct Failure {
    unavailable: bool,
    message: String,
}

impl Failure {
    fn of(error: &Error) -> Self {
        match error {
            Error::Unavailable(why) => Self {
                unavailable: true,
                message: why.to_string(),
            },
            Error::Backend(why) => Self {
                unavailable: false,
                message: why.to_string(),
            },
            other => Self {
                unavailable: false,
                message: other.to_string(),
            },
        }
    }

    fn error(&self) -> Error {
        if self.unavailable {
            Error::unavailable(self.message.clone())
        } else {
            Error::backend(self.message.clone())
        }
    }
}

impl Ends {
    /// How often the reader looks at its connection.
    const POLL: Duration = Duration::from_millis(1);

    pub(crate) fn new(url: String, channel: String) -> Self {
        Self {
            url,
            channel,
            waits: Mutex::new(Waits::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waits> {
        self.waits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until job `id` ends, up to `timeout`. `mark` marks the job
    /// awaited and tells whether it has yet to end; it runs once the
    /// reader listens.
    pub(crate) fn wait(
        self: &Arc<Self>,
        id: i64,
        timeout: Duration,
        mark: impl FnOnce() -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout.min(LONGEST_WAIT);
        let mut waits = self.lock();
        *waits.waiting.entry(id).or_default() += 1;
        let failures = waits.failures;
        let result = match self.start_reader(&mut waits) {
            Ok(()) => {
                drop(waits);
                self.wait_registered(id, failures, deadline, mark)
            }
            Err(error) => {
                drop(waits);
                Err(error)
            }
        };
        let mut waits = self.lock();
        if let Some(count) = waits.waiting.get_mut(&id) {
            *count -= 1;
            if *count == 0 {
                waits.waiting.remove(&id);
                waits.ended.remove(&id);
            }
        }
        result
    }

    /// The wait of a registered waiter: until the reader listens, then the
    /// mark, then until the job's end is heard.
    fn wait_registered(
        &self,
        id: i64,
        failures: u64,
        deadline: Instant,
        mark: impl FnOnce() -> Result<bool, Error>,
    ) -> Result<(), Error> {
        if !self.pause_until(failures, deadline, |waits| waits.listening)? {
            return Ok(());
        }
        if !mark()? {
            return Ok(());
        }
        self.pause_until(failures, deadline, |waits| waits.ended.contains(&id))?;
        Ok(())
    }

    /// Waits until `done` holds (`true`) or `deadline` passes (`false`);
    /// an error once a reader failed after `failures` readers had.
    fn pause_until(
        &self,
        failures: u64,
        deadline: Instant,
        done: impl Fn(&Waits) -> bool,
    ) -> Result<bool, Error> {
        let mut waits = self.lock();
        loop {
            if done(&waits) {
                return Ok(true);
            }
            if waits.failures != failures {
                let failure = waits.failure.as_ref().map(Failure::error);
                return Err(failure.unwrap_or_else(|| Error::backend("listening failed")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            waits = self
                .changed
                .wait_timeout(waits, left)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
        }
    }

    /// Starts the reader thread, unless one runs.
    fn start_reader(self: &Arc<Self>, waits: &mut Waits) -> Result<(), Error> {
        if waits.reading {
            return Ok(());
        }
        let reader = Arc::clone(self);
        std::thread::Builder::new()
            .name("outband-pg-ends".into())
            .spawn(move || reader.read())
            .map_err(|e| Error::backend(format!("cannot start a thread to listen on: {e}")))?;
        waits.reading = true;
        waits.listening = false;
        Ok(())
    }

    /// The reader thread: listens, then hands the ids it hears to their
    /// waiters until none is left.
    fn read(&self) {
        let idle = self.lock().idle.take();
        let listening = match idle {
            Some(conn) => Ok(conn),
            None => PgConnection::establish(&self.url).map_err(|e| conn_error(&self.url, &e)),
        }
        .and_then(|mut conn| {
            conn.batch_execute(&format!("LISTEN \"{}\"", self.channel))
                .map_err(db_error)?;
            Ok(conn)
        });
        let mut conn = match listening {
            Ok(conn) => conn,
            Err(error) => return self.fail(&error),
        };
        self.lock().listening = true;
        self.changed.notify_all();
        loop {
            let mut heard = Vec::new();
            for note in conn.notifications_iter() {
                match note {
                    // a payload that is no id wakes no one
                    Ok(note) => heard.extend(note.payload.parse::<i64>().ok()),
                    Err(error) => return self.fail(&db_error(error)),
                }
            }
            let mut waits = self.lock();
            let mut woken = false;
            for id in heard {
                if waits.waiting.contains_key(&id) {
                    woken |= waits.ended.insert(id);
                }
            }
            if woken {
                self.changed.notify_all();
            }
            if waits.waiting.is_empty() {
                // a waiter that comes now starts a reader of its own
                waits.reading = false;
                waits.listening = false;
                drop(waits);
                if conn
                    .batch_execute(&format!("UNLISTEN \"{}\"", self.channel))
                    .is_ok()
                {
                    self.lock().idle.get_or_insert(conn);
                }
                return;
            }
            drop(waits);
            std::thread::sleep(Self::POLL);
        }
    }

    /// Ends the reader: its waiters return the error; the next waiter
    /// starts a reader on a new connection.
    fn fail(&self, error: &Error) {
        let mut waits = self.lock();
        waits.reading = false;
        waits.listening = false;
        waits.failures += 1;
        waits.failure = Some(Failure::of(error));
        drop(waits);
        self.changed.notify_all();
    }
}

/// A processor's feed of cancel requests on PostgreSQL: a connection of
/// its own that listens on [`cancels_channel`](crate::sql::cancels_channel)
/// for as long as the feed is open. The server keeps what it notifies
/// while no one reads, and the feed reads it every few milliseconds while
/// [`next`](CancelFeed::next) waits, a look that costs no round trip.
pub(crate) struct PgCancelFeed {
    conn: PgConnection,
}

impl PgCancelFeed {
    /// How often a waiting feed looks at its connection.
    const POLL: Duration = Duration::from_millis(10);

    /// A feed listening from now on.
    pub(crate) fn open(url: &str, channel: &str) -> Result<Self, Error> {
        let mut conn = PgConnection::establish(url).map_err(|e| conn_error(url, &e))?;
        conn.batch_execute(&format!("LISTEN \"{channel}\""))
            .map_err(db_error)?;
        Ok(Self { conn })
    }
}

impl CancelFeed for PgCancelFeed {
    /// A lost connection is an error, [`Error::Unavailable`]; a payload
    /// that is no id is skipped.
    fn next(&mut self, timeout: Duration) -> Result<Vec<JobId>, Error> {
        let deadline = Instant::now() + timeout.min(LONGEST_WAIT);
        let mut ids = Vec::new();
        loop {
            for note in self.conn.notifications_iter() {
                let note = note.map_err(db_error)?;
                ids.extend(note.payload.parse::<u64>().ok().map(JobId));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !ids.is_empty() || left.is_zero() {
                return Ok(ids);
            }
            std::thread::sleep(left.min(Self::POLL));
        }
    }
}
