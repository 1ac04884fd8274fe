//! outband's SQL backend: [`DatabaseQueue`] keeps the whole
//! [`BaseQueue`](outband::BaseQueue) contract in SQLite, PostgreSQL or
//! MySQL/MariaDB, through diesel.
//!
//! SQLite is the embedded default (`sqlite://outband.db`): it is compiled in,
//! so a new user has nothing to install.
//!
//! ```
//! use outband::{BaseQueue, NewJob};
//! use outband_diesel::DatabaseQueue;
//! use std::time::Duration;
//!
//! # let dir = std::env::temp_dir().join(format!("outband-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let url = format!("sqlite://{}/jobs.db", dir.display());
//! // `sqlite://outband.db` in real life; `sqlite::memory:` for a throw-away one
//! let backend = DatabaseQueue::open(&url)?;
//! let id = backend.enqueue(NewJob::new("app::ping", outband::codec::encode(&())?))?;
//! let claimed = backend.claim("default", 10, Duration::from_secs(30))?;
//! assert_eq!(claimed[0].job.id, id);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), outband::Error>(())
//! ```
//!
//! With this crate linked (see the linking rule in [`outband`]),
//! [`outband::open`] and `OUTBAND_URL` open its URLs too.
//!
//! Two settings may ride in any of its URLs' query, for the places that only
//! take a URL (the daemon's `--url`, `OUTBAND_URL`): `prefix=<table prefix>`
//! and `retention=<seconds>`, as in `postgres://host/app?prefix=billing_`.
//! [`DatabaseQueue::open`] takes them out before the rest of the URL reaches
//! the driver; the [`Builder`] takes the URL as it is.
//!
//! # Feature flags
//!
//! | feature | default | database | URL | needs |
//! |---|---|---|---|---|
//! | `sqlite` | yes | SQLite | `sqlite://path/to/file.db`, `sqlite:///abs/path.db`, `sqlite::memory:` | nothing: SQLite is compiled in |
//! | `postgres` | no | PostgreSQL ≥ 11 | `postgres://user@host:port/db` (or `postgresql://`) | libpq (`libpq-dev`) |
//! | `mysql` | no | MariaDB ≥ 10.6, MySQL ≥ 8 | `mysql://user:pass@host:port/db` (or `mariadb://`) | libmysqlclient (`default-libmysqlclient-dev`) |
//!
//! # How it keeps the contract
//!
//! - **Schema.** Embedded diesel migrations create the tables on first open
//!   (turn that off with [`Builder::run_migrations`] and run
//!   [`DatabaseQueue::migrate`] yourself). Table names start with a prefix,
//!   `outband_` by default ([`Builder::prefix`]); it must be an identifier,
//!   and it is the only text ever spliced into SQL.
//! - **Claim.** PostgreSQL: one statement, `UPDATE … FROM (SELECT … FOR UPDATE
//!   SKIP LOCKED) RETURNING`. MySQL/MariaDB: one short `READ COMMITTED`
//!   transaction, `SELECT … FOR UPDATE SKIP LOCKED` then `UPDATE`. SQLite (WAL
//!   mode, a busy timeout): one `UPDATE … RETURNING` in an immediate
//!   transaction. Priority, enqueue order, ordering keys and pauses are part
//!   of the claim's `WHERE` and `ORDER BY`, and a partial index of pending
//!   jobs in claim order keeps its cost flat however many jobs are pending.
//!   A claim takes up to `max` jobs at once.
//! - **Consumer registry.** Migration `0015_consumers` adds
//!   `<prefix>consumers`, a row per registered consumer: `id`, `info` (its
//!   [`ConsumerInfo`](outband::ConsumerInfo) as JSON), `seen_at` and
//!   `expires_at` (µs of the database's clock). A registration is one upsert
//!   after a delete of the rows gone for
//!   [`CONSUMER_FORGET_AFTER`](outband::CONSUMER_FORGET_AFTER); a listing
//!   reads the table with the database's clock, which decides who is alive.
//! - **Pausing.** A paused queue has a row in `<prefix>paused` (migration
//!   `0010_paused`): its name, the primary key, and `paused_at`, when it was
//!   paused, in microseconds on the database's clock.
//!   [`pause`](outband::BaseQueue::pause) inserts it (PostgreSQL: `ON
//!   CONFLICT DO NOTHING`; SQLite: `INSERT OR IGNORE`; MySQL: a plain
//!   insert, whose duplicate key means the queue was paused already) and
//!   [`resume`](outband::BaseQueue::resume) deletes it, each telling
//!   whether it changed a row; on PostgreSQL both commit durably, as an
//!   enqueue does. Every claim statement (a claim, the claim half of
//!   [`complete_and_claim`](outband::BaseQueue::complete_and_claim),
//!   MySQL's locking select) names its queue as `(SELECT ? WHERE NOT EXISTS
//!   (SELECT 1 FROM <prefix>paused WHERE queue = ?))` (MySQL: `FROM DUAL`
//!   before the `WHERE`): the queue's name, or NULL while it is paused. The
//!   database evaluates that once per statement, a primary-key lookup in a
//!   table of a few rows, and searches the ready index for the name it
//!   gives, so the pause holds inside the claim's own statement for any
//!   number of consumers, with no round trip more, and a paused queue's
//!   claim reads no job. Jobs that are running finish as usual, and
//!   enqueues go on. [`has_jobs_waiting`](outband::BaseQueue::has_jobs_waiting)
//!   and the look for ready jobs that [`wait`](outband::BaseQueue::wait)
//!   makes before it sleeps use the same condition, so a consumer waiting
//!   on a paused queue full of ready jobs sleeps until a wake-up or its
//!   timeout. On PostgreSQL a trigger on `<prefix>paused` notifies the
//!   channel idle consumers listen on when a row is deleted, as an enqueue
//!   does; on SQLite and MySQL a resume signals the waiters of its process,
//!   and other processes find the queue's jobs by their watch or poll (see
//!   *Wake-up*). The pause is a row of the database: it holds across
//!   restarts and for every host; [`flush`](outband::BaseQueue::flush) and
//!   [`purge`](outband::BaseQueue::purge) leave it, and
//!   [`stats`](outband::BaseQueue::stats) reads it.
//!   [`paused`](outband::BaseQueue::paused) reads the table and sorts the
//!   names by their bytes, as Rust sorts strings. An operator may also
//!   insert or delete rows by hand; a row deleted on PostgreSQL wakes
//!   consumers too.
//! - **Unique jobs.** A unique key taken by
//!   [`enqueue_unique`](outband::BaseQueue::enqueue_unique) is a row of
//!   `<prefix>unique_keys` (migration `0011_unique`): the key, the primary
//!   key (on MySQL a `VARBINARY(512)`, compared byte for byte and within
//!   InnoDB's limit on an index key), and `job_id`, the last job stored
//!   with it. The enqueue is one transaction, run again when the database
//!   gives it up for a conflict (a deadlock, a serialization failure). It
//!   locks the key's row, inserting it when missing (PostgreSQL and SQLite:
//!   `INSERT … ON CONFLICT DO UPDATE … RETURNING`; MySQL: `INSERT … ON
//!   DUPLICATE KEY UPDATE`, then `SELECT … FOR UPDATE`), so that producers
//!   racing one key wait for each other at the primary key and store one
//!   job between them; SQLite's immediate transaction has the write lock
//!   already. It then reads the state and finish time of the job the row
//!   names, from `<prefix>jobs` or `<prefix>done`, with the database's
//!   clock, and applies [`UniqueUntil::holds`](outband::UniqueUntil::holds)
//!   with the new job's scope: a holder returns its id as a duplicate and
//!   nothing is stored; a job that is gone holds nothing. Otherwise the job
//!   is inserted by the statements of an enqueue, durable and waking
//!   consumers as an enqueue does, and the row names it. Keys are global,
//!   across queues. [`purge`](outband::BaseQueue::purge) deletes the rows
//!   of the done and cancelled jobs it deletes first, in its transaction,
//!   with one reading of the clock for both; a
//!   [`flush`](outband::BaseQueue::flush) locks the pending jobs it deletes
//!   (`FOR UPDATE`, which claims skip) and deletes their rows with them;
//!   [`delete_dead`](outband::BaseQueue::delete_dead) deletes the dead
//!   job's row. [`DatabaseQueue::enqueue_in`] refuses unique jobs: whether
//!   a key is held must be read as committed, which your transaction's
//!   snapshot may not be.
//! - **Finished jobs have a table of their own.** The transaction that
//!   records a job done moves its row from `<prefix>jobs` to `<prefix>done`
//!   (PostgreSQL: one `DELETE … RETURNING` feeding an `INSERT`; SQLite and
//!   MySQL: the update, then one `INSERT … SELECT` and one `DELETE` per batch
//!   of outcomes). The jobs table holds only pending, running, dead and
//!   cancelled jobs, so neither its size, its indexes, its garbage between
//!   vacuums nor the planner's statistics grow with the history of done
//!   jobs kept for the retention period: the claim costs the same beside a
//!   million finished jobs as beside none. [`job`](outband::BaseQueue::job)
//!   and [`stats`](outband::BaseQueue::stats) read both tables.
//! - **Progress.** [`progress`](outband::BaseQueue::progress) is one
//!   `UPDATE` of the job's row, fenced as a completion is (id, token,
//!   `running`), into two nullable columns, `progress` (the fraction) and
//!   `progress_note`, of both tables (migration `0006_progress`). A claim
//!   sets them to NULL; the move to `<prefix>done` carries them, and a dead
//!   job keeps them.
//! - **Cancelling.** [`cancel`](outband::BaseQueue::cancel) is one
//!   transaction that locks the job's row (`SELECT … FOR UPDATE`; SQLite
//!   holds the write lock) and acts on its state. A pending job's row turns
//!   `cancelled` (state 4) where it is, with `finished_at` and the reason as
//!   `last_error`: a cancelled job stays in `<prefix>jobs`, as a dead one
//!   does, and holds no ordering key, since the claim waits only behind
//!   pending and running jobs of a key. A running job's row gets the reason
//!   in a nullable column `cancel_reason` (migration `0008_cancel`; a second
//!   request keeps the first reason). A heartbeat reads it back with the
//!   deadline and answers
//!   [`CancelRequested`](outband::Heartbeat::CancelRequested). The
//!   statements that retry or release a job, alone, in a batch or with the
//!   next claim, send such a job to `cancelled` instead, with the request's
//!   reason, by a `CASE` on the column in the same `UPDATE`; a recovery
//!   step first cancels the expired leases of such jobs, and requeues or
//!   kills only the others. A done or dead outcome forgets the request.
//!   On PostgreSQL the transaction that marks a running job also notifies
//!   the processors' cancel feeds (see *Pushes*).
//!   [`stats`](outband::BaseQueue::stats) counts cancelled jobs,
//!   and [`purge`](outband::BaseQueue::purge) deletes them by their finish
//!   time, as it does done jobs, through a partial index of them on
//!   PostgreSQL and SQLite (on MySQL, `jobs_lease`, which leads with
//!   `state`).
//! - **A job's own timeout.** [`NewJob::timeout`](outband::NewJob::timeout)
//!   is stored by the insert, in whole milliseconds, in a nullable column
//!   `timeout_ms` of both tables (migration `0007_timeout`), NULL when the
//!   job has none; no statement after the insert changes it, and the move to
//!   `<prefix>done` carries it.
//! - **Round trips.** A batch enqueue is one multi-row `INSERT` (PostgreSQL:
//!   one `INSERT … SELECT FROM UNNEST` of arrays, whatever the batch size,
//!   and for one job an `INSERT … SELECT` of its values).
//!   Jobs without an ordering key, enqueued outside a transaction of yours,
//!   take that statement alone, atomic and committed on its own, with no
//!   `BEGIN` or `COMMIT`: one round trip on PostgreSQL, the insert and
//!   `SELECT LAST_INSERT_ID()` on MySQL (up to 500 jobs). Jobs with a key
//!   take their key locks first, in a transaction (see *Ordering keys*). A
//!   batch of outcomes ([`complete_many`](outband::BaseQueue::complete_many))
//!   is one transaction (on SQLite and MySQL, outcomes that are all *done*
//!   are marked by a single `UPDATE`); every fixed statement is prepared once per
//!   connection and kept in diesel's statement cache. On PostgreSQL, a busy
//!   consumer's usual call, outcomes that are all *done* and the claim of
//!   the next jobs ([`complete_and_claim`](outband::BaseQueue::complete_and_claim)),
//!   is a single statement over arrays: one round trip, no `BEGIN` or
//!   `COMMIT`.
//! - **Durability.** An enqueue returns once it is committed to disk. On
//!   PostgreSQL, the enqueue's insert sets `synchronous_commit` on for its
//!   own transaction (`set_config('synchronous_commit', 'on', true)` in its
//!   `WHERE`), and the server reads the setting when that transaction
//!   commits; claims and outcomes commit with `synchronous_commit = off`:
//!   a database *crash* (not a clean restart) may forget the last few hundred
//!   milliseconds of them, which only makes those jobs run again — delivery
//!   stays at least once.
//! - **Clock.** `run_at`, lease deadlines and purge ages are read from the
//!   database's clock, in microseconds.
//! - **Wake-up.** [`wait`](outband::BaseQueue::wait) returns as soon as a
//!   job may be ready, so an idle consumer starts a new job at once, however
//!   long the processor's `wait_time`:
//!   - *PostgreSQL*: a `NOTIFY` goes out when a job may have become ready,
//!     and the waiter listens for it: from the statement itself for an
//!     insert of jobs (at its transaction's commit, so an enqueue through
//!     [`DatabaseQueue::enqueue_in`] wakes consumers when your transaction
//!     commits), from statement triggers for updates and deletes. A
//!     connection listens only while it waits: the server wakes every
//!     listening session of the database at each commit that notifies, so
//!     a session left listening would cost every enqueue a process wake-up
//!     on the server.
//!   - *In one process* (SQLite, MySQL): every queue opened on one database
//!     (on MySQL, one database and table prefix) shares one signal; an
//!     enqueue, a retried dead job, a released job, one requeued by
//!     recovery, a cancelled pending one (whose ordering key the next job
//!     may take) or a resumed queue signals it once committed, waking the
//!     process's waiters.
//!     An enqueue through [`DatabaseQueue::enqueue_in`] commits with your
//!     transaction, later: it is found as a commit of another process is.
//!   - *SQLite, across processes*: the first wait sets up a watch of the
//!     database file's directory (inotify on Linux; one per file and
//!     process), and a write to the file or its write-ahead log wakes the
//!     waiters, who claim. The claim takes the write lock, which a writer
//!     holds until its commit is visible, so none is missed. If the watch
//!     cannot be set up, a warning is logged once and a waiter sleeps its
//!     whole `wait_time`.
//!   - *MySQL/MariaDB, across processes*: nothing can push, so a waiter
//!     sleeps at most 50 ms at a time, whatever the processor asked for, and
//!     then looks for a ready job of its queues (one indexed read each). A
//!     job enqueued by another process starts about 25 ms later at the
//!     median, for some 20 reads a second per idle consumer and queue.
//!
//!   A scheduled job falling due wakes no one: it is found by the next look,
//!   at most `wait_time` later (50 ms on MySQL).
//! - **Pushes.** PostgreSQL pushes two more things, each to connections of
//!   their own outside the pool:
//!   - *A job's end*, to [`wait_finished`](outband::BaseQueue::wait_finished)
//!     (what a [`JobHandle`](outband::JobHandle) waits on between two looks
//!     at the job): a waiter marks the job's row `awaited` and reads its
//!     state in one statement, having first made sure that the queue's
//!     listening connection listens on `<prefix>finished`; it returns at
//!     once if the job has ended or is not in `<prefix>jobs` (done, or
//!     unknown). The statement triggers that wake idle consumers (migration
//!     `0009_awaited` redefines them) notify that channel with the id of an
//!     awaited job when its state leaves pending and running (dead,
//!     cancelled: an outcome, a cancel, recovery, a claim that finds its
//!     row malformed) or its pending or running row is deleted (moved to
//!     `<prefix>done`, flushed), whichever process did it. They look for
//!     such rows in the one pass over the statement's rows they made
//!     before, and read them again only when there is something to tell,
//!     so the completing and claiming statements of jobs nobody waits on
//!     run no query more than before; row triggers with a `WHEN` would
//!     prepare their condition at every statement, which costs more.
//!     However many threads wait, a queue has one such connection, read
//!     every millisecond by a thread that runs, and listens, only while
//!     someone waits. So
//!     [`Capabilities::finish_wakeups`](outband::Capabilities::finish_wakeups)
//!     is true on PostgreSQL only; on SQLite and MySQL a handle polls.
//!   - *Cancel requests*, to processors: the transaction of a
//!     [`cancel`](outband::BaseQueue::cancel) that marks a running job
//!     notifies `<prefix>cancels` with its id, and
//!     [`cancel_feed`](outband::BaseQueue::cancel_feed) opens a connection
//!     that listens on it for as long as the feed is open (a processor
//!     opens one when it starts), read every 10 ms while the processor
//!     waits on it; a lost connection is an error, and the processor opens
//!     the feed again. SQLite and MySQL have no feed: a running job learns
//!     of its cancel at its next heartbeat.
//! - **Connections.** An r2d2 pool ([`Builder::max_connections`], default 10:
//!   size it to the processor's threads plus two). A broken connection is
//!   dropped and replaced; a call that found the database unreachable returns
//!   [`outband::Error::Unavailable`] at once and the next call reconnects.
//! - **Ordering keys.** The claim takes a keyed job only when no job of its
//!   key is running or pending ahead of it. So that two enqueues of one key
//!   cannot commit out of id order (and two claims with different snapshots
//!   run both), an enqueue locks its keys until it commits: an advisory lock
//!   on PostgreSQL, a row of `<prefix>keys` on MySQL; SQLite has one writer.
//! - **Transactional enqueue.** [`DatabaseQueue::enqueue_in`] inserts through
//!   your own connection, inside your transaction: roll back and nothing was
//!   enqueued.
//! - **Listing.** [`jobs`](outband::BaseQueue::jobs) walks down the primary
//!   key of the table the state lives in (`<prefix>done` for `done`,
//!   `<prefix>jobs` for the others) and needs no index of its own, which
//!   every enqueue and claim would pay for. A first statement finds the
//!   page's floor, the id [`JobQuery::SCAN`](outband::JobQuery::SCAN) rows
//!   below where the page starts; a second reads the jobs of the queue, state
//!   and command asked for between the two, newest first, and stops when the
//!   page is full. So a page costs two range scans of the primary key, of at
//!   most `SCAN` rows each, however many jobs the tables hold; a page whose
//!   filter matches few of the rows comes back short, its `next` at the
//!   floor. Each dialect is held to the primary key (MySQL: `FORCE INDEX
//!   (PRIMARY)`; SQLite: `NOT INDEXED`; PostgreSQL: the walk in a subquery
//!   with `OFFSET 0`, which the filter cannot reach into), since an index of
//!   `queue` would read the whole queue and sort it.
//! - **Retention.** Finished jobs keep their timings for the retention period
//!   ([`Builder::retention`], [`DEFAULT_RETENTION`] = 7 days), then
//!   [`DatabaseQueue::purge_finished`] removes them: done jobs from
//!   `<prefix>done`, cancelled ones from `<prefix>jobs`. Dead jobs stay
//!   until deleted or retried. Stats are computed in SQL.
//! - **Bad records.** A pending row that cannot be a job (an empty command
//!   name, a payload over the limit, …) is moved to `dead` with the reason
//!   when a claim meets it, and the claim goes on.
//! - **Unknown states.** A row whose `state` code is none of 0 `pending`,
//!   1 `running`, 2 `done`, 3 `dead`, 4 `cancelled` (written past outband:
//!   a broken migration, a manual fix) is never claimed; meanwhile
//!   [`stats`](outband::BaseQueue::stats) counts it,
//!   [`job`](outband::BaseQueue::job) reads it and
//!   [`jobs`](outband::BaseQueue::jobs) lists it as `dead`. The next
//!   [`recover_expired`](outband::BaseQueue::recover_expired) step (the
//!   daemon's manager runs it every half lease) moves it to `dead` with the
//!   reason `malformed record: state code 9 is not one outband knows (…); set
//!   to dead`, counted in the step's `dead`; then it is listed, retried and
//!   deleted like any dead letter. The step finds such rows through a partial
//!   index of them (migration `0005_unknown_state`, redefined by
//!   `0008_cancel` when 4 became `cancelled`; on MySQL the
//!   `(state, deadline)` index), never by reading the whole table.
//!
//! On SQLite, a commit is durable against a crash of the program, not of the
//! machine (`synchronous = NORMAL` in WAL mode).
//!
//! # Concurrency limits
//!
//! [`capabilities`](outband::BaseQueue::capabilities) says
//! `concurrency_limits`: a job enqueued with a
//! [`Concurrency`](outband::Concurrency) limit is never
//! started while `max` jobs holding its key are running, in any queue,
//! whichever process claims; a claim passes it over and takes the jobs
//! after it.
//!
//! - **Tables.** Migration `0012_concurrency` adds two nullable columns to
//!   `<prefix>jobs`: `limit_key` (MySQL: `VARBINARY(512)`, compared byte for
//!   byte) and `limit_max`, NULL for a job without a limit. Every enqueue
//!   path stores them (a batch, [`enqueue_unique`](outband::BaseQueue::enqueue_unique),
//!   [`DatabaseQueue::enqueue_in`]). `<prefix>done` has neither: a done job
//!   holds no slot. Two indexes: `jobs_limit (limit_key, state)`, which
//!   counts a key's running jobs, and `jobs_limited`, the pending limited
//!   jobs of a queue in claim order (PostgreSQL and SQLite: partial
//!   indexes; MySQL: `(queue, state, limit_max)`). MySQL has one more
//!   table, `<prefix>limit_locks`, a row per key hash (`CRC32`) that claims
//!   lock. Migration `0014_limit_keys` adds `jobs_free`, the pending jobs
//!   without a limit in claim order (PostgreSQL and SQLite: partial on
//!   `limit_key IS NULL AND rate_key IS NULL`; MySQL: through a generated
//!   column `limited`, `(queue, state, limited, priority DESC, id)`), and
//!   `jobs_limit_keys` and `jobs_rate_keys`, a queue's pending jobs by key
//!   with the key's greatest `limit_max` or `rate_per_us` last.
//! - **Claim.** The claim statements of *Claim* take only jobs whose
//!   `limit_key` and `rate_key` are NULL (see *Rate limits*), through
//!   `jobs_free`, past no limited job. A claim looks for a ready limited
//!   job that may start, a read without locks, key by key: it walks the
//!   distinct keys of the queue's pending limited jobs (one probe of
//!   `jobs_limit_keys` per key), passes over a key whose running jobs
//!   reach the greatest `limit_max` of its pending ones without reading
//!   them, and searches the other keys' jobs for one with a free slot.
//!   SQLite and PostgreSQL walk the keys in one recursive query. MySQL
//!   walks them from the client, a key of each kind (concurrency, rate) a
//!   statement, and searches an open key's jobs in a statement of its own,
//!   up to 16 keys of a kind (more go through the recursive query): MariaDB
//!   optimizes every statement again at each execution, and the recursive
//!   query's many subqueries cost it more to optimize than a claim of
//!   free jobs costs in all. On PostgreSQL that look is part of the claim
//!   statement, which takes unlimited jobs only when it finds none and
//!   otherwise returns a marker row instead; SQLite and MySQL make it first,
//!   in the claim's transaction. When there is none, the claim is what it
//!   was: on PostgreSQL still one statement without `BEGIN` or `COMMIT`,
//!   one round trip. When there is one, the
//!   claim is one transaction that locks the keys of the queue's ready
//!   limited jobs, so that two claims of one key never count at once:
//!   SQLite's write lock; PostgreSQL `pg_advisory_xact_lock` on each key's
//!   `hashtext`, in ascending order; MySQL an upsert of the keys' rows of
//!   `<prefix>limit_locks`, in ascending order. Two keys of one hash merely
//!   wait for each other. Under the locks, and in a snapshot that sees every
//!   claim that held them before (`READ COMMITTED`), one statement counts
//!   each key's running jobs and takes, in claim order, the jobs for which
//!   the running ones plus those ahead of them in this claim stay under the
//!   job's own `limit_max`; then the unlimited claim takes the rest of
//!   `max`. Only the claim of limited jobs takes jobs with a key, and only
//!   under its key's lock, so the count is exact.
//! - **Freeing a slot.** A job holds its slot while it is `running`; done,
//!   dead, retried, released, cancelled or requeued by recovery, it counts
//!   no longer, with nothing more to write. [`complete_and_claim`](outband::BaseQueue::complete_and_claim)
//!   counts the slots its own completions free. On PostgreSQL it stays one
//!   statement, which also looks whether the queue has limited jobs pending;
//!   when it has, the statement records the completions and claims
//!   nothing, and the transaction above claims next.
//! - **Waiting.** The look for ready jobs of [`wait`](outband::BaseQueue::wait)
//!   and [`has_jobs_waiting`](outband::BaseQueue::has_jobs_waiting) does not
//!   count a job whose key is full, so a consumer whose queue holds only
//!   such jobs sleeps. On PostgreSQL the triggers of migration
//!   `0012_concurrency` notify idle consumers when a running limited job
//!   ends (dead, cancelled, done) while pending jobs of its key wait; a
//!   retried or requeued job is pending, and notifies as it did. SQLite and
//!   MySQL find the freed slot by their watch or poll (see *Wake-up*).
//! - **Cost.** Nothing for a queue that never had limited jobs but two
//!   index probes per claim that find no key (on PostgreSQL inside the
//!   claim statement: no round trip more). A queue whose limited jobs all
//!   wait for a slot pays, per claim, per key: two probes of
//!   `jobs_limit_keys` and a count of the key's running jobs through
//!   `jobs_limit`, however many jobs wait; then it claims as before (MySQL: in
//!   a statement per key of the kind with the most keys). A queue with limited jobs that may
//!   start pays, per claim, a read of its ready limited jobs, a count of
//!   running jobs per key, and a transaction holding its keys' locks:
//!   claims of one key take turns, and a claim locks every key of its
//!   queue's ready limited jobs (on PostgreSQL one round trip more: the
//!   claim statement that found them).
//!
//! # Rate limits
//!
//! [`capabilities`](outband::BaseQueue::capabilities) says `rate_limits`: a
//! job enqueued with a [`RateLimit`](outband::RateLimit) starts only when
//! [`RateLimit::admit`](outband::RateLimit::admit) lets it, on the key's
//! time kept in the database, in any queue, whichever process claims; a
//! claim passes it over and takes the jobs after it.
//!
//! - **Tables.** Migration `0013_rate` adds three nullable columns to
//!   `<prefix>jobs`: `rate_key` (MySQL: `VARBINARY(512)`), `rate_max` and
//!   `rate_per_us` (the period in microseconds), NULL for a job without a
//!   rate limit, stored by every enqueue path; an index `jobs_rated`, the
//!   pending rate-limited jobs of a queue in claim order (PostgreSQL and
//!   SQLite: a partial index; MySQL: `(queue, state, rate_max)`); and a
//!   table `<prefix>rates`, a row per key ever started: `rate_key`, the
//!   primary key, and `tat`, its theoretical arrival time in microseconds
//!   on the database's clock. A key without a row never started.
//! - **Claim.** A rate-limited job is a limited job: the claim statements
//!   of *Claim* pass it over, and the look every claim makes for ready
//!   limited jobs (one statement) also walks the distinct rate keys of the
//!   queue's pending jobs (`jobs_rate_keys`), passes over a key whose `tat`
//!   is further ahead than a tenth of its pending jobs' greatest period
//!   (more than any job's tolerance) without reading them, and searches the
//!   other keys' jobs for one whose key's `tat` less the job's tolerance has
//!   come. When it finds one,
//!   the step of *Concurrency limits* runs, and locks rate keys as it locks
//!   concurrency keys (one lock per hash, both kinds in one ascending
//!   order). Under the locks one statement reads the queue's ready limited
//!   jobs in claim order with each key's running count, `tat` and the
//!   database's clock, leaving out jobs whose key is full or whose turn has
//!   not come and those beyond a key's slots or burst; the claim walks them
//!   in Rust, applying `admit` per rate key and the slot count per
//!   concurrency key (a job with both starts only when both let it), claims
//!   the jobs picked by id, and upserts the new `tat` of each key from the
//!   jobs it actually started. A job passed over takes no turn; a retry
//!   counts as a start like any claim.
//! - **Waiting.** The look for ready jobs of [`wait`](outband::BaseQueue::wait)
//!   and [`has_jobs_waiting`](outband::BaseQueue::has_jobs_waiting) does not
//!   count a job whose turn has not come. Nothing is written when a turn
//!   comes, so `wait` first reads when the earliest turn of the queues'
//!   ready rate-limited jobs comes (one statement per queue through
//!   `jobs_rated`) and waits no longer than that: on PostgreSQL the
//!   `LISTEN` wait's timeout, on SQLite and MySQL the sleep before the next
//!   look.
//! - **Cost.** For a queue without rate-limited jobs, one more probe of an
//!   empty index range in the look every claim makes, and one in each
//!   `wait`. A queue whose rate-limited jobs all wait for a turn further
//!   away than a tenth of the period pays, per claim, two probes of
//!   `jobs_rate_keys` and a read of `tat` per key, however many jobs wait. A
//!   queue with ready rate-limited jobs pays what a queue with
//!   concurrency-limited ones does, plus a primary-key read of `tat` per
//!   job read and an upsert per key started. `<prefix>rates` keeps a row
//!   per key until its `tat` has passed, when it admits as no row would:
//!   [`purge`](outband::BaseQueue::purge) (and so
//!   [`DatabaseQueue::purge_finished`]) deletes such rows, a scan of the
//!   table.
//!
//! # What a PostgreSQL enqueue costs
//!
//! A durable one-row insert costs a round trip and a WAL flush. The flush is
//! most of it, and its time follows whatever else the disk is doing, so the
//! bench (`benches/databases.rs`) runs a raw one-row `INSERT`, the same in
//! `BEGIN … COMMIT`, and a one-job enqueue in turn, and prints the enqueue's
//! share of the raw insert's rate. What an enqueue adds to the raw insert:
//!
//! - *Round trips*: one, the insert itself (see *Round trips*). `BEGIN`,
//!   `SET LOCAL synchronous_commit` and `COMMIT` would each add another.
//! - *The statement*: a wider row (seventeen columns against two), two
//!   more index entries (the ready indexes `jobs_ready` and `jobs_free`) and
//!   a `NOTIFY`, which takes a lock and writes the notification queue at the
//!   commit. The insert notifies itself, a `pg_notify` in its `WHERE`
//!   clause: a statement trigger on inserts doing the same (as migrations
//!   before `0016_enqueue_notify` had) cost more than the notification and
//!   both index entries together, since firing it sets up the trigger's
//!   event queue and calls into PL/pgSQL at every enqueue. What is left of
//!   the statement's cost is the wider row and its index entries; how the
//!   statement is written (`INSERT … SELECT` with bound values, the
//!   `set_config` that makes it durable, `RETURNING id`, the clock read
//!   twice) costs nothing measurable. `benches/pgbench/run.sh` measures the
//!   statement's variants with `pgbench`; `BENCHMARKS.md` has the figures.
//! - *Listening sessions*: each one costs every notifying commit a wake-up
//!   of its server process, whatever channel it listens on, which is why
//!   waiting consumers and job waiters listen only while they wait (see
//!   *Wake-up* and *Pushes*). A processor's cancel feed listens for as long
//!   as the processor runs, so each running processor adds one such
//!   wake-up to every enqueue; the bench measures an enqueue while four
//!   feeds listen.
//! - *The pool and the cache*: a checkout costs no round trip
//!   (`test_on_check_out` is off on PostgreSQL) and the insert is prepared
//!   once per connection.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("outband-diesel needs at least one of the features `sqlite`, `postgres`, `mysql`");

#[cfg(feature = "postgres")]
mod notify;
mod prepared;
mod queue;
mod schema;
mod sql;
mod store;
#[cfg(any(feature = "sqlite", feature = "mysql"))]
mod wake;

pub use queue::{Builder, DEFAULT_RETENTION, DEFAULT_URL, DatabaseQueue};

mod private {
    /// Only this crate implements [`JobConnection`](super::JobConnection).
    pub trait Sealed {}
}

/// A diesel connection [`DatabaseQueue::enqueue_in`] can enqueue through:
/// `SqliteConnection`, `PgConnection` and `MysqlConnection`, as their
/// features are enabled. Sealed.
#[allow(private_bounds)]
pub trait JobConnection: private::Sealed + store::Store {}
