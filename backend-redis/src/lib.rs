//! The Redis backend of [outband]: [`RedisQueue`], for the most
//! throughput and many consumer hosts.
//!
//! Every change of a job's state is one Lua script, loaded once and called by
//! its hash, so a job is always in exactly one state; lease deadlines and due
//! times come from the server's `TIME`; consumers claim a batch of jobs in one
//! call, complete a batch in one call, and sleep in a blocking pop that an
//! enqueue wakes at once. A pending no-op job takes about 200 bytes of Redis
//! memory.
//!
//! ```
//! use outband::{BaseQueue, NewJob, Outcome};
//! use outband_redis::RedisQueue;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), outband::Error> {
//! // `connect` checks the URL; the first call reaches the server
//! let backend = RedisQueue::connect("redis://127.0.0.1:6379/0?namespace=outband-doc&retention=60")?;
//! let job = NewJob::new("app::ping", outband::codec::encode(&())?).queue("doc");
//! let id = match backend.enqueue(job) {
//!     Ok(id) => id,
//!     Err(outband::Error::Unavailable(why)) => {
//!         eprintln!("no Redis here ({why}); nothing to show");
//!         return Ok(());
//!     }
//!     Err(other) => return Err(other),
//! };
//! let claimed = backend.claim("doc", 10, Duration::from_secs(30))?;
//! assert!(claimed.iter().any(|c| c.job.id == id));
//! for c in &claimed {
//!     let done = Outcome::Done { result: None, duration: Duration::ZERO };
//!     backend.complete(&c.lease, done)?;
//! }
//! # Ok(()) }
//! ```
//!
//! A consumer runs it with a processor (`MultiProcessor::new(Arc::new(queue),
//! config)`), or with the `outband-daemon` binary and `--url redis://…`.
//!
//! Linking this crate also lets [`outband::open`] and `OUTBAND_URL` open the
//! URLs below (`use outband_redis as _;` is enough).
//!
//! # Awaited enqueues
//!
//! An awaited enqueue (`f::enqueue(…).await`, [`outband::Enqueue`]) does not
//! take a thread of outband's blocking pool: [`RedisQueue`] has a native
//! async enqueue ([`AsyncEnqueue`], through [`BaseQueue::as_async`]) that
//! sends the same script call as [`enqueue_many`](BaseQueue::enqueue_many)
//! over one async connection shared by all awaiting tasks (multiplexed on
//! one server, routed by slot on a cluster). That connection lives on a
//! runtime of the backend's own, one worker thread named `outband-redis-io`,
//! started by the first awaited enqueue, so the caller may await on any
//! runtime, including runtimes that come and go as `#[tokio::test]`'s do;
//! its thread never blocks. Failures are the sync path's: a server out of
//! reach is [`Error::Unavailable`], and the next enqueue reconnects.
//!
//! An awaited `JobHandle::result` waits for the job's end there too
//! ([`AsyncEnqueue::wait_finished_async`]), each wait on a connection of its
//! own (kept for the next wait), since its blocking pop would hold up the
//! shared connection's other requests.
//!
//! ```
//! use outband::{AsyncEnqueue, NewJob};
//! use outband_redis::RedisQueue;
//!
//! # async fn handler() -> Result<(), outband::Error> {
//! let backend = RedisQueue::connect("redis://127.0.0.1:6379/0?namespace=outband-doc")?;
//! let job = NewJob::new("app::ping", outband::codec::encode(&())?).queue("doc");
//! // what `ping::enqueue().on(&backend).await` does
//! let ids = backend.enqueue_many_async(vec![job]).await?;
//! # let _ = ids;
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | no | `rediss://` and `rediss+cluster://`: TLS through rustls, with the system's and webpki's root certificates |
//! | `bench` | no | the `redis` and `listing` benchmark binaries (`cargo bench -p outband-redis --features bench --bench redis`, `--bench listing`) |
//!
//! # URLs
//!
//! | URL | connects to |
//! |---|---|
//! | `redis://[user:password@]host:port/[db]` | one server over TCP; AUTH and the database number from the URL |
//! | `rediss://…` | the same over TLS (feature `tls`; a private CA through [`RedisOptions`]' `tls_root_certificate`) |
//! | `redis+unix:///path/to/redis.sock?db=N&pass=…` or `unix:///…` | one server over a Unix socket |
//! | `redis+cluster://[user:password@]host:port,host:port,…/` | a Redis Cluster, from any of its nodes (`rediss+cluster://` over TLS) |
//!
//! Errors show a URL with its password replaced by `***`
//! (`redis://user:***@host:6379/0`, `redis+unix:///…?pass=***`).
//!
//! These query parameters set [`RedisOptions`] and are not passed on to the
//! driver: `namespace=NAME` (default `outband`), `retention=SECONDS` (how long
//! `done` and `cancelled` jobs are kept; `0` keeps them until
//! [`purge`](BaseQueue::purge);
//! default 86400), `dead_cap=N` (the most `dead` jobs kept per queue; the
//! oldest are dropped; default: no cap).
//!
//! # Key layout
//!
//! A queue `Q` lives in one of 4,096 buckets, `b = FNV-1a(Q) mod 4096`, whose
//! keys share the hash tag `T = {namespace:b}`, so on a cluster all keys of a
//! queue are in one slot and every script runs on one node. Job ids are
//! `b × 2⁴⁰ + n`, where `n` counts the bucket's jobs, so an id names its slot.
//! With `B = T:len(Q):Q`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `T:seq` | string | the last job number of the bucket |
//! | `T:j:n` | hash | job `n`'s record, one short field each: command `c`, args `a`, queue `q`, key `k`, priority `p`, attempt `n` and max attempts `m`, state `s`, times (enqueued `e`, run at `r`, started `b`, finished `f`, ms), run time `u` (µs), error `x`, result `o`, lease token `l` (the job's claim count) and deadline `d`, progress (fraction `g` and note `t`, removed by a claim), the job's own timeout `w` (ms), the reason of a cancel requested while it runs `z` (removed when the attempt ends), the mark `h` that someone waits for the job's end (removed when it ends), the concurrency limit's key prefix `y` (`C` below) and max `v`, the rate limit's key prefix `i` (`R` below), max `iv` and period `iu` (µs); an enqueue leaves out a field at its default (priority 0, attempt 0, run at the enqueue time, no key, no timeout) |
//! | `B:r:P` | list | ready jobs of priority `P`, oldest first (a few bytes each; pops are O(1)) |
//! | `B:pr` | sorted set | the priorities that have ready jobs, highest first |
//! | `B:sched` | sorted set | pending jobs not yet due, by `run_at` |
//! | `B:run` | sorted set | running jobs, by lease deadline |
//! | `B:done`, `B:dead`, `B:cancelled` | sorted sets | finished jobs, by finish time |
//! | `B:kh`, `B:kw:K` | hash, sorted set | ordering keys: the job owning each key; the jobs waiting for key `K`, in enqueue order |
//! | `B:n` | hash | the pending count |
//! | `B:pk` | set | the queue's pending jobs parked on their concurrency or rate keys, for flushes |
//! | `B:lh` | sorted set | on a cluster, limited jobs a claim holds while it checks their keys, by the hold's end |
//! | `B:tn` | sorted set | the rate keys the queue has jobs parked on (members `R`), by the time of the key's next turn (ms), which claims and [`wait`](BaseQueue::wait) read |
//! | `C:r` | set | with `C = L:l:len(K):K` and `L` the tag of concurrency key `K`'s own bucket (`FNV-1a(K) mod 4096`): the running jobs holding `K`, as `T:n:l` (`l` the claim's token) |
//! | `C:p` | sorted set | the jobs claims passed over while `K` was full, by priority, then enqueue time (members `e:T:n:l`, `e` zero-padded, `l` the token of the parking) |
//! | `R:t` | hash | with `R = L:rt:len(K):K` and `L` the tag of rate key `K`'s own bucket: the key's theoretical arrival time `t` (µs of the server's clock), and its tolerance `o` and interval `n` (µs); expires a second after `t`, when the key is as one never started |
//! | `R:p` | sorted set | the jobs claims passed over while `K`'s turn had not come, as `C:p` |
//! | `B:rt` | list | run times of the latest 1,000 done jobs, for [`stats`](BaseQueue::stats) |
//! | `B:wake` | list | wake-up tokens that waiting consumers block on (`BLPOP`): one per enqueue, retry, key hand-over or resume; cut back to 16 once past 32 |
//! | `B:paused` | string | `1` while the queue is [paused](BaseQueue::pause); absent otherwise |
//! | `T:wf:n` | list | the token that the waiters for job `n`'s end block on, pushed when a job marked `h` ends; expires 10 s later |
//! | `U:u` | hash | unique keys whose bucket (`FNV-1a(key) mod 4096`, tag `U`) is this one: the id of the last job stored with each key, its holder while its record says so |
//! | `U:ur:K` | string | on a cluster, a producer's reservation of unique key `K` during its enqueue; expires after 5 s |
//! | `namespace:uniques` | set | the buckets whose `U:u` ever mapped a key, for the purge's sweep |
//! | `namespace:limits` | sorted set | on a cluster, the concurrency keys' prefixes (`C`) that claims took slots of or parked jobs on, by when a handle last listed them (ms), for the sweep of [`recover_expired`](BaseQueue::recover_expired) |
//! | `namespace:queues` | set | the queue names, for [`queues`](BaseQueue::queues) and the maintenance steps |
//! | `namespace:paused` | set | the names of the queues ever paused, for [`paused`](BaseQueue::paused), which lists those whose `B:paused` is set |
//! | `namespace:tick:NAME:SECS` | string | a claimed periodic tick, kept 7 days |
//! | `namespace:ticks` | sorted set | each periodic command's name, by its latest claimed tick (µs since the epoch), for [`last_tick`](BaseQueue::last_tick) |
//! | `{namespace:consumers}:info` | hash | the [consumer registry](BaseQueue::register_consumer): each consumer's id and its [`ConsumerInfo`] as JSON |
//! | `{namespace:consumers}:seen`, `{namespace:consumers}:expires` | sorted sets | each registered consumer's id, by when it last registered and by when that registration's ttl ends (µs of the server's clock); a consumer gone for [`CONSUMER_FORGET_AFTER`](outband::CONSUMER_FORGET_AFTER) is removed by the next registration or listing |
//! | `namespace:cancels` | pub/sub channel | the id of each running job whose cancel is requested, for the cancel feeds |
//!
//! Listing ([`jobs`](BaseQueue::jobs)) keeps no index of its own: within a
//! bucket, job numbers follow enqueue order, so id order is enqueue order,
//! and one script walks the numbers `n` down from the page's start (the
//! number below `before`, or `T:seq`), reads `q`, `s` and `c` of each
//! `T:j:n`, and returns the whole records of those that match. It passes
//! over the jobs of other queues of the bucket and the numbers whose records
//! are gone (purged, expired or deleted), and stops when the page is full or
//! after [`JobQuery::SCAN`] numbers that did not match; the last number it
//! examined becomes [`JobPage::next`].
//!
//! # Guarantees and their limits
//!
//! - **One state at a time.** Each transition is one script; nothing is popped
//!   and hoped for. A claim moves a job from its ready list to `B:run` in the
//!   same script that writes its lease.
//! - **Order.** Highest priority first; within a priority, in the order jobs
//!   became ready: new jobs and due scheduled ones join the back of the list,
//!   a retried, released or recovered job goes back to the front. So a job
//!   enqueued earlier but ready later (scheduled, or waiting for its ordering
//!   key) runs after the jobs already ready; but when a ready job that owns
//!   its key is cancelled, the next job of the key goes to the front, as no
//!   job of the key ran. A cancelled job leaves its entry in the list, which
//!   claims skip.
//! - **Durability** is Redis's: with `appendonly yes`, an acknowledged enqueue
//!   survives a restart of the server (and with `appendfsync always`, a crash
//!   of the machine).
//! - **Failures.** A call that cannot reach Redis fails at once with
//!   [`Error::Unavailable`], as does one the server refuses for now (`LOADING`
//!   after a restart, `TRYAGAIN`, `MASTERDOWN`, `CLUSTERDOWN`); the next call
//!   reconnects, with backoff. An enqueue is never retried in the background.
//! - **Malformed records** found by a claim (fields missing or garbled) go to
//!   `dead` with the reason `malformed record: …`; the claim goes on.
//! - **One round trip an enqueue.** A job with no ordering key, ready at
//!   once, is stored by a script of its own that makes six Redis calls
//!   (seven when its priority had no ready job); a
//!   batch is one script call, which takes consecutive jobs that differ only
//!   in their arguments as one run, so their shared fields cross the network
//!   once.
//! - **Bounded work.** No script does work in proportion to the backlog: due
//!   scheduled jobs are promoted, expired leases recovered, done and
//!   cancelled jobs purged
//!   and queues flushed in bounded steps.
//! - **Listing** reads at most a page's size plus [`JobQuery::SCAN`]
//!   records in one script call, however many jobs the namespace holds. A
//!   filter that few of the walked jobs match (a rare command, `running`
//!   among many `done` jobs, a queue sharing its bucket with a busier one)
//!   gives short or empty pages that each walk the whole bound, so a
//!   complete listing then costs in proportion to the jobs walked past.
//! - **Memory.** `done` and `cancelled` records expire after the retention
//!   (a day by default, as in River; each kept job costs a few hundred
//!   bytes, so at high rates choose a shorter one); `dead` jobs stay until
//!   retried or deleted unless `dead_cap` is set.
//! - **Cancelling.** A pending job is `cancelled` by one script, which
//!   takes it off the schedule or its key's waiting line and hands its key
//!   on as a finished job does. A running job gets the field `z`: its
//!   heartbeats answer [`Heartbeat::CancelRequested`], and the script that
//!   ends its attempt with a retry or a release, or recovers its expired
//!   lease, makes it `cancelled` instead. The same script publishes the
//!   job's id on `namespace:cancels` (only for the first request), and
//!   [`cancel_feed`](BaseQueue::cancel_feed) is a connection subscribed to
//!   it, read by a thread of the feed's own that holds what comes until the
//!   processor asks: the processor that runs the job heartbeats it at once,
//!   and stops it. Pub/sub keeps nothing, so a request published while no
//!   feed was subscribed (a feed reconnecting) reaches the job at its next
//!   regular heartbeat instead. A feed whose connection fails is an
//!   [`Error::Unavailable`], and the processor opens a new one.
//! - **Pausing.** [`pause`](BaseQueue::pause) sets `B:paused`, in the
//!   queue's slot. The claim script (alone, or as the claim half of
//!   [`complete_and_claim`](BaseQueue::complete_and_claim)) reads it with
//!   one `EXISTS` before it touches anything and hands out nothing while it
//!   is set: the check and the claim are one script, so once `pause` has
//!   returned no consumer on any host claims from the queue, and a claim
//!   pays no extra round trip for it. The key lives in Redis, so the pause
//!   outlasts consumer restarts; flushes and purges leave it. A paused queue
//!   takes enqueues, its running jobs end as usual, and its scheduled jobs
//!   stay on the schedule until a claim after the resume promotes them. The
//!   probe that [`wait`](BaseQueue::wait) and
//!   [`has_jobs_waiting`](BaseQueue::has_jobs_waiting) run counts a paused
//!   queue as holding no job, ready or due, and drops its wake-up tokens,
//!   so its consumers block instead of spinning; an enqueue during the
//!   pause still pushes a token, which ends a blocked consumer's wait once
//!   for a claim that takes nothing. [`resume`](BaseQueue::resume) deletes
//!   the key and pushes a token in one script, which wakes the waiting
//!   consumers. `namespace:paused` is only a listing: a pause adds the name
//!   before it sets the key, and nothing takes a name out, since on a
//!   cluster the set and the key are on different nodes and no order of two
//!   separate writes keeps them in step under concurrent pauses and
//!   resumes; [`paused`](BaseQueue::paused) returns the listed names whose
//!   key is set.
//! - **Waiting for a job's end** ([`wait_finished`](BaseQueue::wait_finished),
//!   which [`JobHandle::wait`](outband::JobHandle::wait) and, awaited,
//!   `JobHandle::result` use) wakes as soon as the job ends, however it ends
//!   (done, dead, cancelled, by any process) or is flushed
//!   ([`Capabilities::finish_wakeups`]). A waiter runs a script that returns
//!   at once when the job has ended or is unknown, and otherwise marks the
//!   record `h`; then it blocks in `BLMOVE T:wf:n T:wf:n LEFT LEFT`, which
//!   takes the list's token and puts it back. Every script that ends a job
//!   reads `h` with the fields it reads anyway, and for a marked job pushes
//!   the token, sets it to expire and takes the mark off: a job nobody waits
//!   for costs one more field read. Redis serves the blocked waiters one
//!   after another in the same turn, each putting the token back, so one
//!   token wakes them all, and it stays for a waiter that has registered but
//!   not blocked yet. A dead job retried is pending again: its next waiter's
//!   script deletes the token its end left. Each waiter blocks a connection
//!   of its own, a minute at most at a time: a pooled one for a thread, one
//!   of the async side's for an awaited wait (see [`AsyncEnqueue`]), so a
//!   program holds as many connections as it has waits at once.
//! - **Cluster.** An [`enqueue_many`](BaseQueue::enqueue_many) batch whose
//!   queues fall in different slots is refused (it could not be atomic); a
//!   consumer whose queues are in different slots blocks on each slot's
//!   wake-up list in turn. The cancel script's `PUBLISH` (classic, not
//!   sharded) reaches every node over the cluster bus, so a cancel feed
//!   subscribes on one node, the nodes of the URL taken in turn from one
//!   feed to the next, and a feed's node that fails is replaced by the next
//!   one that answers when the processor opens a new feed; those `PUBLISH`es
//!   cost every node a little, but only cancels of running jobs send one.
//! - **Unique jobs** ([`enqueue_unique`](BaseQueue::enqueue_unique)). A
//!   unique key maps, in `U:u`, to the last job stored with it, which holds
//!   it while `UniqueUntil::holds` says so of its record, on the server's
//!   clock; a mapped job whose record is gone (purged, expired, deleted,
//!   flushed) holds nothing. On one server one script reads the mapping and
//!   the holder's state and `TIME`, and either returns the holder or runs
//!   the enqueue script for the job and maps the key to it: one round trip
//!   (one more the first time a handle uses a key's bucket, to list it in
//!   `namespace:uniques`), and racing producers store one job. On a cluster
//!   the mapping, the holder and the new job may be on three nodes, so the
//!   enqueue takes one-slot steps under a reservation of the key (`U:ur:K`,
//!   `SET NX PX`, 5 s), which racing producers wait for: reserve it and read
//!   the mapping, read the holder's state and the server's time in its
//!   slot, store the job as [`enqueue`](BaseQueue::enqueue) does, then map
//!   the key and drop the reservation: four round trips, three when the key
//!   had no holder or for a duplicate. A producer that dies between the
//!   store and the mapping leaves its job stored and the key unmapped, and
//!   one whose steps outlast the reservation may race another: either way a
//!   second job with the key can be stored. [`purge`](BaseQueue::purge)
//!   then sweeps the listed buckets and forgets the keys whose holders'
//!   records are gone, so the mappings do not outgrow the jobs. An awaited
//!   enqueue of a unique job goes to `enqueue_unique` on outband's
//!   blocking pool, not to [`AsyncEnqueue`], whose batches refuse unique
//!   jobs as [`enqueue_many`](BaseQueue::enqueue_many)'s do
//!   ([`Error::InvalidJob`]).
//! - **Concurrency limits** ([`NewJob::concurrency`]). A limited job's
//!   record names its key's prefix `C` and its max `v`. A job takes a slot
//!   when `C:r` holds fewer than its own `v` jobs; otherwise it is parked
//!   in `C:p` (and `B:pk`), out of the ready lists, and the claim takes the
//!   jobs behind it, so a full key holds up nothing else. A claim that
//!   parked a job and left nothing ready drops the queue's wake-up tokens,
//!   so that consumers block instead of claiming parked jobs in a loop.
//!   Every script that takes a job out of `running` (done, dead, retry,
//!   release, cancel, lease recovery) removes it from `C:r`, and when that
//!   freed a slot, the first job of `C:p` goes to the front of its ready
//!   list and its queue gets a wake-up token; cancelling or flushing a
//!   parked job takes it out of `C:p`. Claim tokens in the members tell a
//!   job's claims and parkings apart, so a step that comes late finds its
//!   entry stale instead of undoing a later one.
//!
//!   On one server the scripts touch `C`'s keys themselves (another slot,
//!   which one server does not mind): the check and the claim are one
//!   script, and a completion gives the slot back in its own script. On a
//!   cluster `C`'s keys are on another node than the queue's scripts, so
//!   limited jobs take steps, and unlimited ones none: the claim script
//!   holds each limited job it pops (`B:lh`, under a new token) and
//!   returns it; one call per limits' slot takes a slot or parks each
//!   (`C:r` or `C:p`); one call in the queue's slot claims the taken ones
//!   still held under their token and lists the parked ones in `B:pk`, and
//!   a slot taken for a job no longer held goes back. So a claim that
//!   pops limited jobs of one key costs three round trips instead of one,
//!   and the jobs it held count against its `max` even when they are
//!   parked. A script that takes a limited job out of `running` (or out
//!   of a hold or `C:p`) returns the change of `C` it could not make, and
//!   the caller makes it: one call that frees the slot, then, when a job
//!   was parked on the key, one call in that job's slot that makes it
//!   ready (or, if its claim has not settled yet, takes it out of its
//!   hold) and one that drops its parked entry: a completion of a limited
//!   job costs two to four round trips. A claim that dies between its
//!   steps leaves its jobs held; [`recover_expired`](BaseQueue::recover_expired)
//!   puts holds older than the lease (at least 10 s) back at the front of
//!   their ready lists and gives back the slots they took. A process that
//!   dies, or loses the limit's node, after a completion's script and
//!   before the call that frees the slot leaves the slot taken (the failed
//!   call is logged, and the completion's answer is still what its script
//!   did), and one that dies between freeing a slot and making the parked
//!   job ready leaves that job parked; `recover_expired` repairs both by a
//!   sweep of the keys listed in `namespace:limits`, where a claim lists a
//!   key before it takes a slot or parks a job on it (one more round trip
//!   the first time a handle claims for the key, and again ten minutes
//!   on). Per key, one call reads `C:r` and the first member of `C:p`, one
//!   call per slot of the members' jobs checks each job's state and token
//!   there, and each member whose job no longer holds the slot (it ended,
//!   was retried or released, its record is gone, or it runs under a
//!   later token) is removed as a completion removes it, in the call that
//!   frees the slot and makes the first parked job ready. A member is
//!   removed only as it was read, and a job that no longer holds a slot
//!   under a token never holds it again (tokens only grow), so a member
//!   of a claim between its steps, held under its token in `B:lh`, is
//!   kept. Then, while the key has fewer running members than the first
//!   parked job's max, parked jobs are made ready, as many as it has room
//!   for. Until that sweep the key runs one job fewer at once, or its
//!   parked job waits. A key found with neither running nor parked jobs,
//!   listed more than an hour ago, leaves the list.
//! - **Rate limits** ([`NewJob::rate`]). A rated job's record names its
//!   key's prefix `R`, its max `iv` and period `iu`. The claim applies
//!   [`RateLimit::admit`] to `R:t` on the server's clock (`TIME`, in µs):
//!   a job whose turn has come starts and the key's `t` moves on, in the
//!   script that starts it, so only a job actually started counts a turn,
//!   a retry's included; a job whose turn has not come is parked in `R:p`
//!   (and `B:pk`), out of the ready lists, the claim takes the jobs behind
//!   it, and the queue's `B:tn` gets the key's next turn. A job with both
//!   limits starts only when both allow, and takes a slot only with its
//!   turn: parked on its concurrency key when that is full, on its rate
//!   key when its turn has not come. As for concurrency limits, a claim
//!   that parked a job and left nothing ready drops the queue's wake-up
//!   tokens. The probe that [`wait`](BaseQueue::wait) runs bounds the
//!   blocking pop by the earliest turn in the queues' `B:tn` (one more
//!   read in the same script, no round trip), and a claim moves the first
//!   job parked on each key whose turn has come in its queue's `B:tn` back
//!   to the front of its ready list, with a wake-up token, a bounded
//!   number of keys per claim; the claim then checks its turn like any
//!   other job's, so racing claimers never start more than the key
//!   allows. `R:p` is shared by the key's queues: a turn may make another
//!   queue's job ready, and a queue whose next look at a key comes while
//!   another took the turn looks again one interval later. Cancelling or
//!   flushing a parked job takes it out of `R:p`; an entry of `B:tn` left
//!   for a key with nothing parked goes at its next look.
//!
//!   On one server the claim script does all of it. On a cluster `R`'s
//!   keys are on another node, so rated jobs take the steps of limited
//!   ones: the claim holds them; one call per limits' slot checks the
//!   concurrency keys, then one call per rate keys' slot checks the turns
//!   of those that took a slot (a slot taken for a job whose turn has not
//!   come goes back, in two to four more round trips) and parks the
//!   others in `R:p`; the settle call in the queue's slot sets `B:tn`. A
//!   claim of rated jobs of one key so costs three round trips, four with
//!   a concurrency key too. The keys whose turn came are returned by the
//!   claim script (which pushes their look a second on meanwhile), and the
//!   caller makes the first job parked on each ready in three more: one in
//!   the key's slot that takes it off `R:p`, one in the job's slot, and one
//!   that sets the queue's next look unless a claim set it since; the job
//!   is claimed by the next claim, which its wake-up token brings. A hold
//!   lost after its turn was counted (the process died, or the job was
//!   cancelled, between the steps) leaves the turn counted.
//! - **Ids** stay below 2⁵³: a bucket numbers at most 2⁴⁰ jobs in its life.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod aio;
mod conn;
mod consumers;
mod enqueue;
mod feed;
mod limits;
mod scripts;
mod unique;

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outband::backend::hash::fnv1a;
use outband::backend::stats::fill_run_times;
use outband::backend::url::{hide_password, scrub_password, take_params, whole_number};
use outband::{
    AsyncEnqueue, BaseQueue, CancelFeed, Cancellation, Capabilities, Claimed, Completion,
    Concurrency, Consumer, ConsumerInfo, Enqueued, Error, Heartbeat, Job, JobId, JobPage, JobQuery,
    JobState, Lease, NewJob, Outcome, Progress, QueueStats, RateLimit, Recovered,
};
use redis::cluster::ClusterClient;
use redis::{ConnectionLike, RedisResult, ScriptInvocation, Value};

use conn::{Conn, Pool, Target};
use scripts::SCRIPTS;

/// Buckets (hash slots of queues): `2^BUCKET_BITS`.
const BUCKET_BITS: u32 = 12;
/// Bits of the job number within a bucket, in a job id.
const SEQ_BITS: u32 = 40;
/// Jobs a recovery, purge or flush step handles per script call.
const STEP: usize = 1000;
/// The longest one blocking pop of a wait for a job's end lasts: a longer
/// wait returns early, as [`BaseQueue::wait_finished`] allows, and its
/// caller looks at the job again.
const LONGEST_FINISH_WAIT: Duration = Duration::from_secs(60);

/// Settings of a [`RedisQueue`] beyond the server's address.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// The prefix of every key. Default `outband`. Must not contain `{` or `}`.
    pub namespace: String,
    /// How long `done` and `cancelled` jobs are kept before their records
    /// expire; `None` keeps them until [`purge`](BaseQueue::purge). Default
    /// 24 hours.
    pub retention: Option<Duration>,
    /// The most `dead` jobs kept per queue: past it, the oldest are dropped.
    /// `None` (the default) keeps every dead job until an operator acts.
    pub dead_cap: Option<u64>,
    /// How many recent run times per queue [`stats`](BaseQueue::stats) uses.
    /// Default 1,000.
    pub run_time_sample: usize,
    /// The root certificate (PEM) that `rediss://` servers must chain to,
    /// instead of the system's and webpki's roots: for servers with a
    /// private CA. Default `None`.
    #[cfg(feature = "tls")]
    pub tls_root_certificate: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            namespace: "outband".to_owned(),
            retention: Some(Duration::from_secs(24 * 3600)),
            dead_cap: None,
            run_time_sample: 1000,
            #[cfg(feature = "tls")]
            tls_root_certificate: None,
        }
    }
}

impl RedisOptions {
    /// Sets the namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the retention of `done` and `cancelled` jobs (`None`: until
    /// purged).
    #[must_use]
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Trusts `pem`, a root certificate, for `rediss://` instead of the
    /// system's and webpki's roots.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificate = Some(pem.into());
        self
    }

    /// Sets the cap on `dead` jobs per queue (`None`: no cap).
    #[must_use]
    pub fn dead_cap(mut self, dead_cap: Option<u64>) -> Self {
        self.dead_cap = dead_cap;
        self
    }
}

/// A [`BaseQueue`] in Redis or Redis Cluster. See the [crate docs](crate) for
/// URLs, the key layout and the guarantees.
///
/// The handle is cheap to share (`Arc<RedisQueue>`): it keeps a small pool of
/// connections and opens them on first use, so [`connect`](Self::connect)
/// checks the URL but not the server.
pub struct RedisQueue {
    pool: Pool,
    /// The awaited enqueues' connection, on a runtime of its own.
    aio: aio::AsyncLink,
    /// Where cancel feeds subscribe.
    subscribers: feed::Subscribers,
    options: RedisOptions,
    /// Queues this handle has already added to `namespace:queues`.
    registered: Mutex<HashSet<String>>,
    /// Buckets of unique keys this handle has already added to
    /// `namespace:uniques`.
    unique_buckets: Mutex<HashSet<u64>>,
    /// On a cluster, the concurrency keys' prefixes this handle has listed
    /// in `namespace:limits`, and when.
    limit_prefixes: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("cluster", &self.pool.is_cluster())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A URL split into what the driver gets and what outband reads.
fn split_url(url: &str, options: &mut RedisOptions) -> Result<String, Error> {
    let (address, params) = take_params(url, &["namespace", "retention", "dead_cap"]);
    for (name, value) in params {
        match name {
            "namespace" => options.namespace = value.to_owned(),
            "retention" => {
                let secs = whole_number(url, name, value)?;
                options.retention = (secs > 0).then(|| Duration::from_secs(secs));
            }
            _ => {
                let cap = whole_number(url, name, value)?;
                options.dead_cap = (cap > 0).then_some(cap);
            }
        }
    }
    Ok(address)
}

/// The node URLs of a `redis+cluster://` URL.
fn cluster_nodes(url: &str) -> Result<Vec<String>, Error> {
    let bad = |why: &str| Error::Config(format!("`{}` {why}", hide_password(url)));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("is not a URL"))?;
    let node_scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return Err(bad("is not a cluster URL")),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|host| format!("{node_scheme}://{userinfo}{host}/"))
        .collect();
    if nodes.is_empty() {
        return Err(bad("names no cluster node"));
    }
    Ok(nodes)
}

/// A client of the one server at `address`, with the root certificate of
/// `options` if it has one.
fn server_client(address: &str, options: &RedisOptions) -> RedisResult<redis::Client> {
    #[cfg(feature = "tls")]
    if let Some(pem) = &options.tls_root_certificate {
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        };
        return redis::Client::build_with_tls(address, certificates);
    }
    #[cfg(not(feature = "tls"))]
    let _ = options;
    redis::Client::open(address)
}

/// The driver's refusal of `url`, with the URL and anything the driver
/// quoted of it shown without the password.
fn config_error(url: &str, error: &redis::RedisError) -> Error {
    let hint = if url.starts_with("rediss") && !cfg!(feature = "tls") {
        " (rediss:// needs the `tls` feature of outband-redis)"
    } else {
        ""
    };
    Error::Config(format!(
        "cannot use `{}`: {}{hint}",
        hide_password(url),
        scrub_password(&error.to_string(), url)
    ))
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn time_of(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The bucket of `queue`: stable across versions and platforms, as bucket
/// numbers must be.
fn bucket_of(queue: &str) -> u64 {
    u64::from(fnv1a(queue.as_bytes()) % (1 << BUCKET_BITS))
}

/// The bucket and the job number within it of an id, if it can be one of ours.
fn split_id(id: JobId) -> Option<(u64, u64)> {
    let bucket = id.0 >> SEQ_BITS;
    let seq = id.0 & ((1 << SEQ_BITS) - 1);
    (bucket < (1 << BUCKET_BITS) && seq > 0).then_some((bucket, seq))
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        other => bytes(other).map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned()),
    }
}

fn int(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        other => text(other).parse().unwrap_or(0),
    }
}

fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// The complete script's arguments, tag included, before the first lease's.
const COMPLETE_HEAD: usize = 6;
/// The complete script's arguments per lease.
const COMPLETE_FIELDS: usize = 5;

/// The jobs in a claim script's reply: the claim's time and deadline, then
/// each job's number, its record as it was before the claim, its attempt
/// number and its fencing token; on a cluster, the limited jobs it held
/// (attempt -1) and the rate keys whose turn came (attempt -2) apart.
fn claimed_of(bucket: u64, reply: Vec<Value>) -> (Vec<Claimed>, Vec<limits::Held>) {
    let mut items = reply.into_iter();
    let mut held = Vec::new();
    let (Some(now), Some(deadline)) = (items.next(), items.next()) else {
        return (Vec::new(), held);
    };
    let (started, deadline) = (time_of(int(&now)), time_of(int(&deadline)));
    let mut claimed = Vec::with_capacity(items.len() / 4);
    while let (Some(seq), Some(record), Some(attempt), Some(token)) =
        (items.next(), items.next(), items.next(), items.next())
    {
        if int(&attempt) < 0 {
            held.push(limits::held_of(&seq, record, &attempt, &token));
            continue;
        }
        let seq = u64::try_from(int(&seq)).unwrap_or(0);
        let id = JobId((bucket << SEQ_BITS) | seq);
        let Some(mut job) = parse_job(id, array(record)) else {
            continue;
        };
        job.state = JobState::Running;
        job.attempt = u32::try_from(int(&attempt)).unwrap_or(0);
        job.started_at = Some(started);
        // the claim removed the last attempt's progress from the record
        job.progress = None;
        claimed.push(Claimed {
            job,
            lease: Lease {
                job: id,
                token: u64::try_from(int(&token)).unwrap_or(0),
                deadline,
            },
        });
    }
    (claimed, held)
}

/// The jobs of `bucket` in a script's reply of number and record pairs,
/// flattened; a pair whose record is gone is left out.
fn records_of(bucket: u64, mut items: impl Iterator<Item = Value>) -> Vec<Job> {
    let mut jobs = Vec::new();
    while let (Some(seq), Some(record)) = (items.next(), items.next()) {
        let id = JobId((bucket << SEQ_BITS) | u64::try_from(int(&seq)).unwrap_or(0));
        jobs.extend(parse_job(id, array(record)));
    }
    jobs
}

/// A job from its stored record (`HGETALL`), in one pass over the fields;
/// `None` when there is no record.
///
/// Parsing is lenient: a field that is missing or garbled reads as empty or
/// zero, so a damaged record can still be listed, retried or deleted.
fn parse_job(id: JobId, record: Vec<Value>) -> Option<Job> {
    if record.is_empty() {
        return None;
    }
    let mut job = Job::new(id, String::new(), Vec::new());
    job.queue = String::new();
    job.max_attempts = 0;
    job.state = JobState::Dead;
    let mut run_at = None;
    let (mut fraction, mut note) = (None, None);
    let (mut limit, mut limit_max) = (None, 0);
    let (mut rate, mut rate_max, mut rate_per) = (None, 0, 0);
    let mut items = record.into_iter();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        let owned = |value: Value| match value {
            Value::BulkString(b) => b,
            other => bytes(&other).map(<[u8]>::to_vec).unwrap_or_default(),
        };
        match bytes(&name).unwrap_or_default() {
            b"c" => job.command = text(&value),
            b"a" => job.args = owned(value),
            b"q" => job.queue = text(&value),
            b"k" => job.key = Some(text(&value)),
            b"p" => job.priority = i16::try_from(int(&value)).unwrap_or(0),
            b"n" => job.attempt = u32::try_from(int(&value)).unwrap_or(0),
            b"m" => job.max_attempts = u32::try_from(int(&value)).unwrap_or(0),
            b"s" => job.state = JobState::parse(&text(&value)).unwrap_or(JobState::Dead),
            b"r" => run_at = Some(time_of(int(&value))),
            b"e" => job.enqueued_at = time_of(int(&value)),
            b"b" => job.started_at = Some(time_of(int(&value))),
            b"f" => job.finished_at = Some(time_of(int(&value))),
            b"u" => {
                let micros = u64::try_from(int(&value)).unwrap_or(0);
                job.duration = Some(Duration::from_micros(micros));
            }
            b"x" => job.last_error = Some(text(&value)),
            b"o" => job.result = Some(owned(value)),
            b"g" => fraction = Some(text(&value).parse::<f32>().unwrap_or(0.0)),
            b"t" => note = Some(text(&value)),
            // a garbled timeout reads as none, not as one that ends at once
            b"w" => job.timeout = text(&value).parse().ok().map(Duration::from_millis),
            b"y" => limit = key_of_prefix(&text(&value)),
            b"v" => limit_max = u32::try_from(int(&value)).unwrap_or(0),
            b"i" => rate = key_of_prefix(&text(&value)),
            b"iv" => rate_max = u32::try_from(int(&value)).unwrap_or(0),
            b"iu" => rate_per = u64::try_from(int(&value)).unwrap_or(0),
            _ => {}
        }
    }
    // one of the two alone (a damaged record) reads with the other empty or zero
    if fraction.is_some() || note.is_some() {
        job.progress = Some(Progress::new(
            fraction.unwrap_or(0.0),
            note.unwrap_or_default(),
        ));
    }
    job.concurrency = limit.map(|key| Concurrency::new(key, limit_max));
    job.rate = rate.map(|key| RateLimit::new(key, rate_max, Duration::from_micros(rate_per)));
    // left out of the record when it is the enqueue time
    job.run_at = run_at.unwrap_or(job.enqueued_at);
    Some(job)
}

/// The concurrency or rate key a limit's key prefix (`L:l:len:K` or
/// `L:rt:len:K`, `L` a hash tag) names.
fn key_of_prefix(prefix: &str) -> Option<String> {
    let rest = &prefix[prefix.find("}:")? + 2..];
    let mut parts = rest.splitn(3, ':');
    let (_kind, _len) = (parts.next()?, parts.next()?);
    parts.next().map(str::to_owned)
}

impl RedisQueue {
    /// A queue at `url` (see the [crate docs](crate) for the forms), with
    /// options from the URL's query and defaults otherwise.
    ///
    /// Fails with [`Error::Config`] when the URL is malformed; does not
    /// contact the server.
    pub fn connect(url: &str) -> Result<Self, Error> {
        Self::with_options(url, RedisOptions::default())
    }

    /// A queue at `url` with `options`; the URL's query parameters override
    /// them.
    pub fn with_options(url: &str, mut options: RedisOptions) -> Result<Self, Error> {
        let address = split_url(url, &mut options)?;
        if options.namespace.is_empty() || options.namespace.contains(['{', '}']) {
            return Err(Error::Config(format!(
                "the namespace `{}` must be non-empty and free of `{{` and `}}`",
                options.namespace
            )));
        }
        let (target, subscribers) = if address.contains("+cluster://") {
            let nodes = cluster_nodes(&address)?;
            #[allow(unused_mut)]
            let mut builder = ClusterClient::builder(nodes.clone())
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(conn::RESPONSE_TIMEOUT);
            #[cfg(feature = "tls")]
            if let Some(pem) = &options.tls_root_certificate {
                builder = builder.certs(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                });
            }
            let cluster = builder.build().map_err(|e| config_error(url, &e))?;
            let subscribers = nodes
                .iter()
                .map(|node| server_client(node, &options).map_err(|e| config_error(url, &e)))
                .collect::<Result<Vec<_>, _>>()?;
            (Target::Cluster(cluster), subscribers)
        } else {
            let client = server_client(&address, &options).map_err(|e| config_error(url, &e))?;
            (Target::Single(client.clone()), vec![client])
        };
        let pool = Pool::new(target);
        Ok(Self {
            aio: aio::AsyncLink::new(&pool),
            subscribers: feed::Subscribers::new(subscribers),
            pool,
            options,
            registered: Mutex::new(HashSet::new()),
            unique_buckets: Mutex::new(HashSet::new()),
            limit_prefixes: Mutex::new(HashMap::new()),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    fn tag(&self, bucket: u64) -> String {
        format!("{{{}:{bucket}}}", self.options.namespace)
    }

    fn seq_key(&self, bucket: u64) -> String {
        format!("{}:seq", self.tag(bucket))
    }

    /// The prefix of a queue's keys.
    fn base(&self, queue: &str) -> String {
        format!("{}:{}:{queue}", self.tag(bucket_of(queue)), queue.len())
    }

    /// The prefix of concurrency key `key`'s keys, `L:l:len(key):key`, in
    /// the bucket of the key's own hash, as a unique key's.
    pub(crate) fn limit_base(&self, key: &str) -> String {
        format!("{}:l:{}:{key}", self.tag(bucket_of(key)), key.len())
    }

    /// The prefix of rate key `key`'s keys, `L:rt:len(key):key`, in the
    /// bucket of the key's own hash, as a concurrency key's.
    pub(crate) fn rate_base(&self, key: &str) -> String {
        format!("{}:rt:{}:{key}", self.tag(bucket_of(key)), key.len())
    }

    /// The wake-up list of the waiters for job `seq` of `bucket`.
    fn finish_key(&self, bucket: u64, seq: u64) -> String {
        format!("{}:wf:{seq}", self.tag(bucket))
    }

    /// What a wait for job `id`'s end sends, when there is something to wait
    /// for: the script that registers the waiter (its reply is 1 while the
    /// job has not ended), then the blocking pop, which rotates the token of
    /// the job's wake-up list into the same list so that every waiter takes
    /// it, for `block`, at most [`LONGEST_FINISH_WAIT`].
    fn finish_wait(
        &self,
        id: JobId,
        timeout: Duration,
    ) -> Option<(ScriptInvocation<'static>, redis::Cmd, Duration)> {
        let (bucket, seq) = split_id(id)?;
        let block = timeout.min(LONGEST_FINISH_WAIT);
        // BLMOVE reads a timeout of 0 as no timeout at all
        if block < Duration::from_millis(1) {
            return None;
        }
        let mut register = self.invocation(&SCRIPTS.wait_finished, bucket);
        register.arg(seq);
        let key = self.finish_key(bucket, seq);
        let mut pop = redis::cmd("BLMOVE");
        pop.arg(&key)
            .arg(&key)
            .arg("LEFT")
            .arg("LEFT")
            .arg(format!("{:.3}", block.as_secs_f64()));
        Some((register, pop, block))
    }

    fn queues_key(&self) -> String {
        format!("{}:queues", self.options.namespace)
    }

    /// The last claimed tick of each periodic command, which
    /// [`last_tick`](BaseQueue::last_tick) reads.
    fn ticks_key(&self) -> String {
        format!("{}:ticks", self.options.namespace)
    }

    /// The set of the queues ever paused, which [`paused`](BaseQueue::paused)
    /// reads.
    fn paused_key(&self) -> String {
        format!("{}:paused", self.options.namespace)
    }

    /// Sets (`pause`) or deletes `queue`'s pause key, in one script call in
    /// its slot; `true` when that changed the queue's state.
    fn set_paused(&self, queue: &str, pause: bool) -> Result<bool, Error> {
        let mut invocation = self.invocation(&SCRIPTS.pause, bucket_of(queue));
        invocation.arg(queue).arg(u8::from(pause));
        Ok(self.invoke::<i64>(&invocation)? == 1)
    }

    /// The channel the cancel script publishes the ids of the running jobs
    /// it marks on.
    fn cancels_channel(&self) -> String {
        format!("{}:cancels", self.options.namespace)
    }

    fn dead_cap(&self) -> u64 {
        self.options.dead_cap.unwrap_or(0)
    }

    fn retention_ms(&self) -> u64 {
        self.options.retention.map_or(0, |r| ms(r).max(1))
    }

    /// A script call routed to `bucket`'s slot, its tag first in ARGV.
    fn invocation<'a>(&self, script: &'a redis::Script, bucket: u64) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.key(self.seq_key(bucket)).arg(self.tag(bucket));
        invocation
    }

    fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, Error> {
        self.pool.with(|con| invocation.invoke(con.like()))
    }

    /// Appends the claim script's arguments after the tag.
    fn claim_args(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        queue: &str,
        max: usize,
        lease: Duration,
    ) {
        invocation
            .arg(queue)
            .arg(max)
            .arg(ms(lease))
            .arg(self.dead_cap())
            .arg(self.cluster_flag());
    }

    /// Appends the complete script's arguments after the tag for the
    /// `members` of `completions`: [`COMPLETE_HEAD`] of them, then
    /// [`COMPLETE_FIELDS`] per lease.
    fn complete_args(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        completions: &[(Lease, Outcome)],
        members: &[usize],
    ) {
        invocation
            .arg(self.retention_ms())
            .arg(self.dead_cap())
            .arg(self.options.run_time_sample.max(1))
            .arg(members.len())
            .arg(self.cluster_flag());
        for &index in members {
            let (lease, outcome) = &completions[index];
            let seq = lease.job.0 & ((1 << SEQ_BITS) - 1);
            invocation.arg(seq).arg(lease.token);
            match outcome {
                Outcome::Done {
                    result: Some(result),
                    duration,
                } => invocation.arg("D").arg(micros(*duration)).arg(&result[..]),
                Outcome::Done {
                    result: None,
                    duration,
                } => invocation.arg("d").arg(micros(*duration)).arg(""),
                Outcome::Retry { delay, error } => invocation.arg("r").arg(ms(*delay)).arg(error),
                Outcome::Dead { error } => invocation.arg("x").arg(0).arg(error),
                Outcome::Release => invocation.arg("l").arg(0).arg(""),
                // an outcome of a later outband: the job ends dead, with it
                other => invocation
                    .arg("x")
                    .arg(0)
                    .arg(format!("an outcome this backend does not know: {other:?}")),
            };
        }
    }

    /// Every queue name ever registered in the namespace.
    fn known_queues(&self) -> Result<Vec<String>, Error> {
        let key = self.queues_key();
        let mut names: Vec<String> = self
            .pool
            .with(|con| redis::cmd("SMEMBERS").arg(&key).query(con.like()))?;
        names.sort_unstable();
        Ok(names)
    }

    /// Milliseconds until a job of `queues` may be ready: 0 now, `None` when
    /// none is pending.
    fn probe(&self, queues: &[&String]) -> Result<Option<u64>, Error> {
        let Some(first) = queues.first() else {
            return Ok(None);
        };
        let mut invocation = SCRIPTS.probe.prepare_invoke();
        invocation.key(self.seq_key(bucket_of(first)));
        for queue in queues {
            invocation
                .arg(self.tag(bucket_of(queue)))
                .arg(queue.as_str());
        }
        let until: i64 = self.invoke(&invocation)?;
        Ok(u64::try_from(until).ok())
    }

    /// Queues grouped so that each group lives on one server: all of them on
    /// a single server, one bucket per group on a cluster.
    fn slot_groups<'q>(&self, queues: &'q [String]) -> Vec<Vec<&'q String>> {
        if !self.pool.is_cluster() {
            return vec![queues.iter().collect()];
        }
        let mut groups: Vec<(u64, Vec<&String>)> = Vec::new();
        for queue in queues {
            let bucket = bucket_of(queue);
            match groups.iter_mut().find(|(b, _)| *b == bucket) {
                Some((_, group)) => group.push(queue),
                None => groups.push((bucket, vec![queue])),
            }
        }
        groups.into_iter().map(|(_, group)| group).collect()
    }

    fn step_per_queue(
        &self,
        script: &redis::Script,
        extra: &[u64],
        mut add: impl FnMut(&[i64]),
    ) -> Result<(), Error> {
        for queue in self.known_queues()? {
            loop {
                let mut invocation = self.invocation(script, bucket_of(&queue));
                invocation.arg(&queue);
                for value in extra {
                    invocation.arg(*value);
                }
                let reply: Vec<i64> = match self.invoke::<Value>(&invocation)? {
                    Value::Int(n) => vec![n],
                    other => array(other).iter().map(int).collect(),
                };
                add(&reply);
                if reply.last().copied().unwrap_or(0) < STEP as i64 {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl RedisQueue {
    /// Sends an enqueue: the registration of its new queues, then its
    /// script; returns the ids.
    fn send_call(&self, call: enqueue::EnqueueCall) -> Result<Vec<JobId>, Error> {
        if let Some(register) = &call.register {
            self.pool.with(|con| register.query::<i64>(con.like()))?;
            self.registered(call.new_queues);
        }
        call.ids.of(self.invoke(&call.script)?)
    }
}

impl BaseQueue for RedisQueue {
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, Error> {
        match self.enqueue_call(&jobs)? {
            Some(call) => self.send_call(call),
            None => Ok(Vec::new()),
        }
    }

    /// One script call on one server, which looks at the key's holder and
    /// stores the job; four one-slot steps under a reservation of the key
    /// on a cluster. See the crate docs' guarantees.
    fn enqueue_unique(&self, job: NewJob) -> Result<Enqueued, Error> {
        self.enqueue_unique_job(&job)
    }

    fn as_async(&self) -> Option<&dyn AsyncEnqueue> {
        Some(self)
    }

    fn claim(&self, queue: &str, max: usize, lease: Duration) -> Result<Vec<Claimed>, Error> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let bucket = bucket_of(queue);
        let mut invocation = self.invocation(&SCRIPTS.claim, bucket);
        self.claim_args(&mut invocation, queue, max, lease);
        self.claimed_from(bucket, queue, lease, self.invoke(&invocation)?)
    }

    fn wait(&self, queues: &[String], timeout: Duration) -> Result<(), Error> {
        let groups = self.slot_groups(queues);
        if groups.is_empty() || queues.is_empty() {
            std::thread::sleep(timeout);
            return Ok(());
        }
        let mut block = timeout;
        for group in &groups {
            match self.probe(group)? {
                Some(0) => return Ok(()),
                Some(until) => block = block.min(Duration::from_millis(until)),
                None => {}
            }
        }
        let share = block / u32::try_from(groups.len()).unwrap_or(u32::MAX);
        if share < Duration::from_millis(1) {
            return Ok(());
        }
        for group in &groups {
            let keys: Vec<String> = group
                .iter()
                .map(|q| format!("{}:wake", self.base(q)))
                .collect();
            let woken: Option<(String, String)> = self.pool.with_blocking(share, |con| {
                redis::cmd("BLPOP")
                    .arg(&keys)
                    .arg(format!("{:.3}", share.as_secs_f64()))
                    .query(con.like())
            })?;
            if woken.is_some() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Two round trips: the script that registers the waiter, then a
    /// blocking pop on the job's wake-up list, which the script that ends
    /// the job pushes to; see the crate docs' guarantees.
    fn wait_finished(&self, id: JobId, timeout: Duration) -> Result<(), Error> {
        let Some((register, pop, block)) = self.finish_wait(id, timeout) else {
            return Ok(());
        };
        if self.invoke::<i64>(&register)? == 0 {
            return Ok(());
        }
        self.pool
            .with_blocking(block, |con| pop.query::<Value>(con.like()))?;
        Ok(())
    }

    fn has_jobs_waiting(&self, queue: &str) -> Result<bool, Error> {
        let queue = queue.to_owned();
        Ok(self.probe(&[&queue])? == Some(0))
    }

    fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<Heartbeat, Error> {
        let Some((bucket, seq)) = split_id(lease.job) else {
            return Ok(Heartbeat::LeaseLost);
        };
        let mut invocation = self.invocation(&SCRIPTS.heartbeat, bucket);
        invocation.arg(seq).arg(lease.token).arg(ms(lease_for));
        let (deadline, cancel_requested): (i64, i64) = self.invoke(&invocation)?;
        Ok(if deadline < 0 {
            Heartbeat::LeaseLost
        } else if cancel_requested == 1 {
            Heartbeat::CancelRequested(time_of(deadline))
        } else {
            Heartbeat::Extended(time_of(deadline))
        })
    }

    /// The fraction is sent as Rust prints an `f32`, the shortest text that
    /// reads back as the same value, so [`Job::progress`] returns it exactly.
    fn progress(&self, lease: &Lease, progress: &Progress) -> Result<Completion, Error> {
        let Some((bucket, seq)) = split_id(lease.job) else {
            return Ok(Completion::LeaseLost);
        };
        let mut invocation = self.invocation(&SCRIPTS.progress, bucket);
        invocation
            .arg(seq)
            .arg(lease.token)
            .arg(progress.fraction.to_string())
            .arg(progress.note.as_bytes());
        let applied: i64 = self.invoke(&invocation)?;
        Ok(if applied == 1 {
            Completion::Applied
        } else {
            Completion::LeaseLost
        })
    }

    fn complete(&self, lease: &Lease, outcome: Outcome) -> Result<Completion, Error> {
        let mut done = self.complete_many(vec![(lease.clone(), outcome)])?;
        done.pop()
            .ok_or_else(|| Error::backend("complete_many returned no completion"))
    }

    /// One script call per bucket (one in all for leases of one queue), so a
    /// batch of outcomes costs one round trip.
    fn complete_many(&self, completions: Vec<(Lease, Outcome)>) -> Result<Vec<Completion>, Error> {
        let mut results = vec![Completion::LeaseLost; completions.len()];
        let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
        for (index, (lease, _)) in completions.iter().enumerate() {
            let Some((bucket, _)) = split_id(lease.job) else {
                continue;
            };
            match groups.iter_mut().find(|(b, _)| *b == bucket) {
                Some((_, members)) => members.push(index),
                None => groups.push((bucket, vec![index])),
            }
        }
        for (bucket, members) in groups {
            let mut invocation = self.invocation(&SCRIPTS.complete, bucket);
            self.complete_args(&mut invocation, &completions, &members);
            let reply = array(self.invoke::<Value>(&invocation)?);
            for (&index, applied) in members.iter().zip(&reply) {
                if int(applied) == 1 {
                    results[index] = Completion::Applied;
                }
            }
            self.apply_limits(&limits::limit_changes(&reply, members.len()));
        }
        Ok(results)
    }

    /// One script call when every lease is of `queue`'s slot (a consumer's
    /// usual case); otherwise the outcomes and the claim go separately.
    fn complete_and_claim(
        &self,
        completions: Vec<(Lease, Outcome)>,
        queue: &str,
        max: usize,
        lease: Duration,
    ) -> Result<(Vec<Completion>, Vec<Claimed>), Error> {
        let bucket = bucket_of(queue);
        let one_slot = completions
            .iter()
            .all(|(lease, _)| split_id(lease.job).is_some_and(|(b, _)| b == bucket));
        if max == 0 || completions.is_empty() || !one_slot {
            let completed = self.complete_many(completions)?;
            let claimed = self.claim(queue, max, lease).unwrap_or_else(|error| {
                log::warn!("claiming from {queue} after completing jobs failed: {error}");
                Vec::new()
            });
            return Ok((completed, claimed));
        }
        let members: Vec<usize> = (0..completions.len()).collect();
        let mut invocation = SCRIPTS.complete_claim.prepare_invoke();
        invocation
            .key(self.seq_key(bucket))
            .arg(COMPLETE_HEAD + COMPLETE_FIELDS * completions.len())
            .arg(self.tag(bucket));
        self.complete_args(&mut invocation, &completions, &members);
        invocation.arg(self.tag(bucket));
        self.claim_args(&mut invocation, queue, max, lease);
        let (applied, claimed): (Vec<Value>, Vec<Value>) = self.invoke(&invocation)?;
        let mut results = vec![Completion::LeaseLost; completions.len()];
        for (result, applied) in results.iter_mut().zip(&applied) {
            if int(applied) == 1 {
                *result = Completion::Applied;
            }
        }
        // the slots given back first, for the jobs this claim held
        self.apply_limits(&limits::limit_changes(&applied, completions.len()));
        Ok((results, self.claimed_from(bucket, queue, lease, claimed)?))
    }

    fn recover_expired(&self) -> Result<Recovered, Error> {
        let mut recovered = Recovered::default();
        for queue in self.known_queues()? {
            loop {
                let mut invocation = self.invocation(&SCRIPTS.recover, bucket_of(&queue));
                invocation
                    .arg(&queue)
                    .arg(self.dead_cap())
                    .arg(self.retention_ms())
                    .arg(STEP)
                    .arg(self.cluster_flag());
                let reply = array(self.invoke::<Value>(&invocation)?);
                let count = |n: usize| reply.get(n).map_or(0, int);
                recovered.requeued += u64::try_from(count(0)).unwrap_or(0);
                recovered.dead += u64::try_from(count(1)).unwrap_or(0);
                self.apply_limits(&limits::limit_changes(&reply, 3));
                if count(2) < STEP as i64 {
                    break;
                }
            }
        }
        // what a process that died between a completion's steps left in
        // the limits' keys (on one server the scripts leave nothing)
        if self.pool.is_cluster()
            && let Err(error) = self.sweep_limits()
        {
            log::warn!("the sweep of the concurrency limits failed: {error}");
        }
        Ok(recovered)
    }

    fn len(&self, queue: &str) -> Result<u64, Error> {
        Ok(self.stats(queue)?.pending)
    }

    fn flush(&self, queue: &str) -> Result<u64, Error> {
        let mut removed = 0;
        let mut cursor = "0".to_owned();
        loop {
            let mut invocation = self.invocation(&SCRIPTS.flush, bucket_of(queue));
            invocation
                .arg(queue)
                .arg(STEP)
                .arg(&cursor)
                .arg(self.cluster_flag());
            let reply = array(self.invoke::<Value>(&invocation)?);
            let [count, next, complete, ..] = reply.as_slice() else {
                return Err(Error::backend("the flush script returned a wrong reply"));
            };
            self.apply_limits(&limits::limit_changes(&reply, 3));
            removed += u64::try_from(int(count)).unwrap_or(0);
            cursor = text(next);
            if int(complete) == 1 {
                return Ok(removed);
            }
        }
    }

    fn stats(&self, queue: &str) -> Result<QueueStats, Error> {
        let mut invocation = self.invocation(&SCRIPTS.stats, bucket_of(queue));
        invocation.arg(queue).arg(self.retention_ms());
        let reply = array(self.invoke::<Value>(&invocation)?);
        let [
            pending,
            running,
            done,
            dead,
            cancelled,
            in_window,
            sample,
            paused,
        ] = reply.as_slice()
        else {
            return Err(Error::backend("the stats script returned a wrong reply"));
        };
        let count = |v: &Value| u64::try_from(int(v)).unwrap_or(0);
        let mut stats = QueueStats::default();
        stats.pending = count(pending);
        stats.running = count(running);
        stats.done = count(done);
        stats.dead = count(dead);
        stats.cancelled = count(cancelled);
        stats.paused = int(paused) == 1;
        let run_times = array(sample.clone())
            .iter()
            .map(|v| Duration::from_micros(count(v)))
            .collect();
        fill_run_times(&mut stats, run_times, count(in_window));
        Ok(stats)
    }

    fn queues(&self) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        for queue in self.known_queues()? {
            let stats = self.stats(&queue)?;
            if stats.pending + stats.running + stats.done + stats.dead + stats.cancelled > 0 {
                names.push(queue);
            }
        }
        Ok(names)
    }

    fn job(&self, id: JobId) -> Result<Option<Job>, Error> {
        let Some((bucket, seq)) = split_id(id) else {
            return Ok(None);
        };
        let key = format!("{}:j:{seq}", self.tag(bucket));
        let record: Value = self
            .pool
            .with(|con| redis::cmd("HGETALL").arg(&key).query(con.like()))?;
        Ok(parse_job(id, array(record)))
    }

    /// One script call: see the crate docs' key layout for the walk, and
    /// the bound that keeps a page's cost independent of the backlog.
    fn jobs(&self, query: &JobQuery) -> Result<JobPage, Error> {
        let bucket = bucket_of(&query.queue);
        let last = (1 << SEQ_BITS) - 1;
        // the highest job number of the bucket below `before`: ids order by
        // bucket first, then by number
        let start = match query.before {
            None => last,
            Some(before) => match (before.0 >> SEQ_BITS).cmp(&bucket) {
                Ordering::Greater => last,
                Ordering::Equal => (before.0 & last).saturating_sub(1),
                Ordering::Less => 0,
            },
        };
        if start == 0 {
            return Ok(JobPage::new(Vec::new(), None));
        }
        let command = query
            .command
            .as_ref()
            .map_or_else(|| "0".to_owned(), |c| format!("1{c}"));
        let mut invocation = self.invocation(&SCRIPTS.list, bucket);
        invocation
            .arg(&query.queue)
            .arg(query.state.as_str())
            .arg(command)
            .arg(start)
            .arg(query.page_size())
            .arg(JobQuery::SCAN);
        let reply: Vec<Value> = self.invoke(&invocation)?;
        let mut items = reply.into_iter();
        let next = items
            .next()
            .and_then(|n| u64::try_from(int(&n)).ok())
            .filter(|&n| n > 0)
            .map(|n| JobId((bucket << SEQ_BITS) | n));
        Ok(JobPage::new(records_of(bucket, items), next))
    }

    fn dead_jobs(&self, queue: &str, offset: usize, limit: usize) -> Result<Vec<Job>, Error> {
        let bucket = bucket_of(queue);
        let mut invocation = self.invocation(&SCRIPTS.dead_list, bucket);
        invocation.arg(queue).arg(offset).arg(limit);
        let reply: Vec<Value> = self.invoke(&invocation)?;
        Ok(records_of(bucket, reply.into_iter()))
    }

    fn retry_dead(&self, id: JobId) -> Result<bool, Error> {
        self.by_id(&SCRIPTS.retry_dead, id)
    }

    fn delete_dead(&self, id: JobId) -> Result<bool, Error> {
        self.by_id(&SCRIPTS.delete_dead, id)
    }

    fn cancel(&self, id: JobId, reason: &str) -> Result<Cancellation, Error> {
        let Some((bucket, seq)) = split_id(id) else {
            return Ok(Cancellation::NotFound);
        };
        let mut invocation = self.invocation(&SCRIPTS.cancel, bucket);
        invocation
            .arg(seq)
            .arg(reason)
            .arg(self.retention_ms())
            .arg(self.cancels_channel())
            .arg(id.0)
            .arg(self.cluster_flag());
        let reply = array(self.invoke::<Value>(&invocation)?);
        let (code, state) = match reply.as_slice() {
            [code, state, ..] => (int(code), text(state)),
            _ => return Err(Error::backend("the cancel script returned a wrong reply")),
        };
        self.apply_limits(&limits::limit_changes(&reply, 2));
        match code {
            0 => Ok(Cancellation::NotFound),
            1 => Ok(Cancellation::Cancelled),
            2 => Ok(Cancellation::Requested),
            // a state this crate cannot read is `dead`, as `job` reads it
            3 => Ok(Cancellation::Finished(
                JobState::parse(&state).unwrap_or(JobState::Dead),
            )),
            _ => Err(Error::backend(format!(
                "job {id} is pending, but its record names no queue"
            ))),
        }
    }

    /// A connection subscribed to the channel the cancel script publishes
    /// on, read by a thread of the feed's own; see the crate docs'
    /// guarantees.
    fn cancel_feed(&self) -> Result<Option<Box<dyn CancelFeed>>, Error> {
        let feed = feed::open(
            &self.subscribers,
            self.pool.backoff(),
            self.cancels_channel(),
        )?;
        Ok(Some(Box::new(feed)))
    }

    /// One script call per queue and 1,000 jobs, then the sweep of the
    /// unique keys whose holders are gone (purged now, or expired, deleted
    /// or flushed before): per listed bucket and 1,000 keys, a scan, a
    /// look at the holders' records (one call on one server, one per
    /// holders' bucket on a cluster) and a call that forgets the keys. See
    /// the crate docs' guarantees.
    fn purge(&self, older_than: Duration) -> Result<u64, Error> {
        let mut purged = 0;
        self.step_per_queue(&SCRIPTS.purge, &[ms(older_than), STEP as u64], |reply| {
            purged += reply.first().map_or(0, |&n| u64::try_from(n).unwrap_or(0));
        })?;
        self.forget_gone_holders()?;
        Ok(purged)
    }

    /// Two round trips: the queue's name joins `namespace:paused`, then one
    /// script sets its pause key, which every claim script reads; see the
    /// crate docs' guarantees.
    fn pause(&self, queue: &str) -> Result<bool, Error> {
        // listed before the key is set and never taken out, so that no
        // interleaving of pauses and resumes (whose keys may be on other
        // cluster nodes than the set) leaves a paused queue unlisted
        let key = self.paused_key();
        self.pool.with(|con| {
            redis::cmd("SADD")
                .arg(&key)
                .arg(queue)
                .query::<i64>(con.like())
        })?;
        self.set_paused(queue, true)
    }

    /// One script call, which deletes the pause key and wakes the queue's
    /// waiting consumers.
    fn resume(&self, queue: &str) -> Result<bool, Error> {
        self.set_paused(queue, false)
    }

    /// The queues of `namespace:paused` whose pause key is set: one script
    /// call on one server, one per slot on a cluster.
    fn paused(&self) -> Result<Vec<String>, Error> {
        let key = self.paused_key();
        let listed: Vec<String> = self
            .pool
            .with(|con| redis::cmd("SMEMBERS").arg(&key).query(con.like()))?;
        let mut paused = Vec::new();
        for group in self.slot_groups(&listed) {
            let Some(first) = group.first() else {
                continue;
            };
            let mut invocation = SCRIPTS.paused.prepare_invoke();
            invocation.key(self.seq_key(bucket_of(first)));
            for queue in &group {
                invocation
                    .arg(self.tag(bucket_of(queue)))
                    .arg(queue.as_str());
            }
            paused.extend(self.invoke::<Vec<String>>(&invocation)?);
        }
        paused.sort_unstable();
        Ok(paused)
    }

    fn claim_tick(&self, name: &str, tick: SystemTime) -> Result<bool, Error> {
        let since = tick.duration_since(UNIX_EPOCH).unwrap_or_default();
        let key = format!(
            "{}:tick:{name}:{}.{:09}",
            self.options.namespace,
            since.as_secs(),
            since.subsec_nanos()
        );
        let set: Option<String> = self.pool.with(|con| {
            redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(7 * 24 * 3600)
                .query(con.like())
        })?;
        if set.is_none() {
            return Ok(false);
        }
        // the claimed tick as the command's last, unless a later one is:
        // for `last_tick`, which cannot find the tick keys without a scan.
        // The tick is this caller's whatever happens here: a failure only
        // leaves `last_tick` behind.
        let micros = u64::try_from(since.as_micros()).unwrap_or(u64::MAX);
        let noted = self.pool.with(|con| {
            redis::cmd("ZADD")
                .arg(self.ticks_key())
                .arg("GT")
                .arg(micros)
                .arg(name)
                .query::<i64>(con.like())
        });
        if let Err(error) = noted {
            log::warn!("the last tick of {name} was not noted: {error}");
        }
        Ok(true)
    }

    fn last_tick(&self, name: &str) -> Result<Option<SystemTime>, Error> {
        let micros: Option<u64> = self.pool.with(|con| {
            redis::cmd("ZSCORE")
                .arg(self.ticks_key())
                .arg(name)
                .query(con.like())
        })?;
        Ok(micros.map(|us| UNIX_EPOCH + Duration::from_micros(us)))
    }

    /// One script in the registry's slot, on the server's clock.
    fn register_consumer(&self, info: &ConsumerInfo, ttl: Duration) -> Result<(), Error> {
        self.register(info, ttl)
    }

    fn unregister_consumer(&self, id: &str) -> Result<(), Error> {
        self.unregister(id)
    }

    /// One script in the registry's slot, on the server's clock.
    fn consumers(&self) -> Result<Vec<Consumer>, Error> {
        self.list_consumers()
    }

    fn now(&self) -> Result<SystemTime, Error> {
        let (secs, micros): (u64, u64) =
            self.pool.with(|con| redis::cmd("TIME").query(con.like()))?;
        Ok(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
    }

    fn capabilities(&self) -> Capabilities {
        // `wait_finished` blocks on a list that every script ending a
        // waited-for job pushes to
        Capabilities::default()
            .finish_wakeups(true)
            .concurrency_limits(true)
            .rate_limits(true)
            .consumer_registry(true)
    }
}

impl RedisQueue {
    fn by_id(&self, script: &redis::Script, id: JobId) -> Result<bool, Error> {
        let Some((bucket, seq)) = split_id(id) else {
            return Ok(false);
        };
        let mut invocation = self.invocation(script, bucket);
        invocation.arg(seq);
        Ok(self.invoke::<i64>(&invocation)? == 1)
    }
}

/// Runs `f` against a raw connection of this queue: for tests and tools that
/// must reach under the contract (to plant a malformed record, or read
/// `INFO`). Not part of the stable API.
#[doc(hidden)]
pub fn with_connection<T>(
    backend: &RedisQueue,
    f: impl FnOnce(&mut dyn ConnectionLike) -> RedisResult<T>,
) -> Result<T, Error> {
    backend.pool.with(|con: &mut Conn| f(con.like()))
}

/// Deletes every key of `namespace` on the server `queue` reaches (one
/// server, not a whole cluster): all its queues and jobs, in every state,
/// and its pauses. For tests and benchmarks that clean up after themselves.
/// Not part of the stable API.
#[doc(hidden)]
pub fn delete_namespace(backend: &RedisQueue, namespace: &str) -> Result<(), Error> {
    for pattern in [format!("{{{namespace}:*"), format!("{namespace}:*")] {
        with_connection(backend, |con| {
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(con)?;
                if !keys.is_empty() {
                    redis::cmd("UNLINK").arg(&keys).query::<i64>(con)?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        })?;
    }
    Ok(())
}

/// The key prefix of `queue`'s structures and the key of job `id`'s record,
/// as the [crate docs](crate) lay them out. For tests and tools.
#[doc(hidden)]
pub fn keys_of(backend: &RedisQueue, name: &str, id: JobId) -> (String, String) {
    let (bucket, seq) = split_id(id).unwrap_or((0, 0));
    (
        backend.base(name),
        format!("{}:j:{seq}", backend.tag(bucket)),
    )
}

/// The running set and the parked set of concurrency key `key`, as the
/// [crate docs](crate) lay them out. For tests and tools.
#[doc(hidden)]
pub fn limit_keys_of(backend: &RedisQueue, key: &str) -> (String, String) {
    let base = backend.limit_base(key);
    (format!("{base}:r"), format!("{base}:p"))
}

/// The hash of rate key `key`'s theoretical arrival time and the sorted
/// set of the jobs parked on it, as the [crate docs](crate) lay them out.
/// For tests and tools.
#[doc(hidden)]
pub fn rate_keys_of(backend: &RedisQueue, key: &str) -> (String, String) {
    let base = backend.rate_base(key);
    (format!("{base}:t"), format!("{base}:p"))
}

/// The hash that maps the unique key `key` to its holder's id, as the
/// [crate docs](crate) lay it out. For tests and tools.
#[doc(hidden)]
pub fn unique_map_of(backend: &RedisQueue, key: &str) -> String {
    backend.unique_map(bucket_of(key))
}

fn open_url(url: &str) -> Result<Arc<dyn BaseQueue>, Error> {
    Ok(Arc::new(RedisQueue::connect(url)?))
}

outband::register_scheme!("redis", open_url);
outband::register_scheme!("rediss", open_url);
outband::register_scheme!("redis+unix", open_url);
outband::register_scheme!("unix", open_url);
outband::register_scheme!("redis+cluster", open_url);
outband::register_scheme!("rediss+cluster", open_url);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_bucket() {
        let bucket = bucket_of("emails");
        let id = JobId((bucket << SEQ_BITS) | 42);
        assert_eq!(split_id(id), Some((bucket, 42)));
        assert_eq!(split_id(JobId(0)), None);
        assert_eq!(split_id(JobId(u64::MAX)), None);
    }

    #[test]
    fn url_options_are_taken_out() {
        let mut options = RedisOptions::default();
        let address = split_url(
            "redis://:pw@h:1/3?namespace=app&protocol=resp3&retention=0&dead_cap=5",
            &mut options,
        )
        .unwrap();
        assert_eq!(address, "redis://:pw@h:1/3?protocol=resp3");
        assert_eq!(options.namespace, "app");
        assert_eq!(options.retention, None);
        assert_eq!(options.dead_cap, Some(5));
        assert!(split_url("redis://h/?retention=soon", &mut options).is_err());
    }

    #[test]
    fn cluster_urls_name_every_node() {
        assert_eq!(
            cluster_nodes("redis+cluster://u:p@a:1,b:2/?namespace=x").unwrap(),
            vec!["redis://u:p@a:1/", "redis://u:p@b:2/"]
        );
        assert!(cluster_nodes("redis+cluster:///").is_err());
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in [
            "http://h/",
            "redis://h/?namespace=a{b}",
            "redis://:99999999/",
        ] {
            assert!(
                matches!(RedisQueue::connect(url), Err(Error::Config(_))),
                "{url}"
            );
        }
    }
}
