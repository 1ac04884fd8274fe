//! The directory, under its lock: every file operation of the backend.
//!
//! A [`Store`] exists only while the directory's lock is held (it is made by
//! `FileQueue::lock`), so every method here runs alone among all the threads
//! and processes that share the directory. The type makes that rule hold:
//! there is no way to reach the job files without the lock.
//!
//! Three rules keep the files consistent even if a process dies at any
//! instant:
//!
//! 1. **A file is never written in place.** New content goes to a file in
//!    `tmp/`, is flushed to disk, and is renamed over the old name: a reader
//!    sees the old record or the new one, never half of one.
//! 2. **A state change is one rename** from one state directory to another:
//!    the job is in exactly one state at every instant. When a change also
//!    rewrites the record (a claim counts the attempt and writes the lease),
//!    the record is rewritten first, in its old directory, and moved second;
//!    a crash between the two leaves the job in its old state with the new
//!    fields, which every operation reads correctly (see the crate docs).
//! 3. **A batch is committed by one rename of a directory**: `enqueue_many`
//!    writes its jobs into `tmp/batch-…/`, then renames that directory into
//!    `incoming/`. Whoever takes the lock next files the jobs of committed
//!    batches into their queues, and clears `tmp/`, which holds nothing but
//!    the leftovers of a lock holder that died.
//!
//! Enqueues are flushed to disk (`fsync` of the files and directories) before
//! they return. Other changes are not: a process crash loses nothing (the
//! kernel still has every write), but a power loss may forget the latest
//! claims and outcomes, and those jobs run again.
//!
//! To keep a claim from reading every pending file, the store remembers what
//! never changes about a job once it is written — its queue, priority and
//! ordering key and concurrency limit — in [`Facts`], kept in this process's memory across lock
//! holds. Facts cannot go stale (no operation changes them, and ids are
//! never reused), so the cache needs no invalidation across processes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use outband::{Error, JobId, JobState};
use serde::{Deserialize, Serialize};

use crate::record::Record;

/// The directories, relative to the root.
pub(crate) const TMP: &str = "tmp";
pub(crate) const INCOMING: &str = "incoming";
pub(crate) const QUEUES: &str = "queues";
pub(crate) const TICKS: &str = "ticks";
/// One empty file per paused queue, named by the queue's escaped name.
pub(crate) const PAUSED: &str = "paused";
pub(crate) const MALFORMED: &str = "malformed";
const COUNTERS: &str = "counters.json";
/// Each unique key and the last job stored with it.
const UNIQUE: &str = "unique.json";
/// Each rate key's theoretical arrival time.
const RATES: &str = "rates.json";
/// The consumer registry: each registered consumer by id.
const CONSUMERS: &str = "consumers.json";

/// The longest file name this backend makes from a queue or command name
/// (most filesystems allow 255 bytes).
const MAX_NAME: usize = 240;

/// The directory of each state, inside a queue's directory.
pub(crate) fn state_dir(state: JobState) -> &'static str {
    state.as_str()
}

/// An I/O error on `path`, as a backend error that names the file.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |error| Error::backend(format!("{}: {error}", path.display()))
}

/// A queue or command name as one safe file name: ASCII letters, digits,
/// `_`, `-` and (not first) `.` stay, every other byte becomes `%XX`.
pub(crate) fn escape(name: &str) -> Result<String, Error> {
    use std::fmt::Write as _;
    let mut escaped = String::with_capacity(name.len());
    for (at, byte) in name.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
        if plain || (byte == b'.' && at > 0) {
            escaped.push(char::from(byte));
        } else {
            let _ = write!(escaped, "%{byte:02X}");
        }
    }
    if escaped.is_empty() || escaped.len() > MAX_NAME {
        return Err(Error::InvalidJob(format!(
            "the name `{name}` does not fit a file name of at most {MAX_NAME} bytes once escaped"
        )));
    }
    Ok(escaped)
}

/// A name written by [`escape`], back; `None` for names it did not write.
pub(crate) fn unescape(escaped: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// A job's file name: the id, zero-padded so `ls` lists in enqueue order.
fn file_name(id: u64) -> String {
    format!("{id:020}.json")
}

/// The id in a job's file name; `None` for any other file.
fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".json")?.parse().ok()
}

/// Flushes a directory, so that the renames into and out of it survive a
/// power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// A registered consumer: what it said of itself, when it was seen and
/// when its registration's ttl ends (nanoseconds since the Unix epoch).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ConsumerRecord {
    pub(crate) info: outband::ConsumerInfo,
    pub(crate) seen_at: u64,
    pub(crate) expires_at: u64,
}

/// The counters every lock holder bumps: ids and fencing tokens are never
/// reused, across processes and restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counters {
    next_id: u64,
    next_token: u64,
}

/// What never changes about a job once it is stored.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    pub(crate) queue: String,
    pub(crate) priority: i16,
    pub(crate) key: Option<String>,
    /// The concurrency limit's key and maximum.
    pub(crate) concurrency: Option<(String, u32)>,
    /// The rate limit.
    pub(crate) rate: Option<outband::RateLimit>,
}

impl Facts {
    fn of(record: &Record) -> Self {
        Self {
            queue: record.queue.clone(),
            priority: record.priority,
            key: record.key.clone(),
            concurrency: record.concurrency.clone(),
            rate: record.rate_limit(),
        }
    }
}

/// What a `FileQueue` keeps behind its mutex: the open lock file (a `flock`
/// is held per open file, so this process's threads are kept apart by the
/// mutex, and processes by the `flock`), and the facts it has read.
#[derive(Debug)]
pub(crate) struct Inner {
    lock: File,
    facts: HashMap<JobId, Facts>,
}

impl Inner {
    /// Opens (or creates) the lock file of the directory `root`.
    pub(crate) fn open(root: &Path) -> Result<Mutex<Self>, Error> {
        let path = root.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok(Mutex::new(Self {
            lock,
            facts: HashMap::new(),
        }))
    }
}

/// The job directory while its lock is held; unlocks when dropped.
#[derive(Debug)]
pub(crate) struct Store<'a> {
    root: &'a Path,
    inner: MutexGuard<'a, Inner>,
}

impl Drop for Store<'_> {
    fn drop(&mut self) {
        // Closing the file would unlock it too, but it stays open for reuse.
        let _ = self.inner.lock.unlock();
    }
}

impl<'a> Store<'a> {
    /// Takes the lock of the directory `root` (waiting for the other threads
    /// and processes that hold it) and repairs what a dead holder left.
    pub(crate) fn lock(root: &'a Path, inner: &'a Mutex<Inner>) -> Result<Self, Error> {
        let inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
        File::lock(&inner.lock).map_err(io_error(&root.join("lock")))?;
        let store = Self { root, inner };
        store.repair()?;
        Ok(store)
    }
}

impl Store<'_> {
    /// The directory.
    pub(crate) fn root(&self) -> &Path {
        self.root
    }

    /// Makes sure a job's queue, priority and key are known, reading its file
    /// the first time; `false` when there is no such file (or it was
    /// malformed, and is now set aside in `malformed/`).
    fn learn(&mut self, queue: &str, state: JobState, id: JobId) -> Result<bool, Error> {
        if self.inner.facts.contains_key(&id) {
            return Ok(true);
        }
        let path = self.path(queue, state, id)?;
        let record = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Record>(&bytes) {
                Ok(record) => record,
                Err(error) => {
                    self.quarantine(&path, &error.to_string())?;
                    return Ok(false);
                }
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(io_error(&path)(error)),
        };
        self.inner.facts.insert(id, Facts::of(&record));
        Ok(true)
    }

    /// The ids of the pending and of the running jobs of `queue`, with their
    /// facts known (see [`facts`](Self::facts)).
    pub(crate) fn live_ids(&mut self, queue: &str) -> Result<(Vec<JobId>, Vec<JobId>), Error> {
        let mut lists = [Vec::new(), Vec::new()];
        for (list, state) in lists.iter_mut().zip([JobState::Pending, JobState::Running]) {
            for id in self.ids(queue, state)? {
                if self.learn(queue, state, id)? {
                    list.push(id);
                }
            }
        }
        let [pending, running] = lists;
        Ok((pending, running))
    }

    /// How many jobs of each concurrency key are running, in every queue.
    pub(crate) fn running_by_limit(&mut self) -> Result<HashMap<String, u32>, Error> {
        let mut running = HashMap::new();
        for queue in self.queue_names()? {
            for id in self.ids(&queue, JobState::Running)? {
                if self.learn(&queue, JobState::Running, id)?
                    && let Some((key, _)) = self.facts(id).and_then(|f| f.concurrency.as_ref())
                {
                    *running.entry(key.clone()).or_insert(0) += 1;
                }
            }
        }
        Ok(running)
    }

    /// The facts of a job that [`live_ids`](Self::live_ids) returned.
    pub(crate) fn facts(&self, id: JobId) -> Option<&Facts> {
        self.inner.facts.get(&id)
    }

    /// Forgets the facts of a job that is done, dead, cancelled or deleted:
    /// only a claim needs them, so the cache holds no more than the live
    /// jobs.
    pub(crate) fn forget(&mut self, id: JobId) {
        self.inner.facts.remove(&id);
    }

    /// Forgets the facts of every job not in `live`: the jobs that other
    /// processes finished.
    pub(crate) fn forget_all_but(&mut self, live: &std::collections::HashSet<JobId>) {
        self.inner.facts.retain(|id, _| live.contains(id));
    }

    /// Brings the directory to a clean state after a lock holder died: drops
    /// what it left half-written in `tmp/` and files the jobs of batches it
    /// had committed to `incoming/`. Cheap when there is nothing to do (two
    /// directory listings), so every lock holder runs it first.
    pub(crate) fn repair(&self) -> Result<(), Error> {
        let tmp = self.root.join(TMP);
        for entry in fs::read_dir(&tmp).map_err(io_error(&tmp))? {
            let path = entry.map_err(io_error(&tmp))?.path();
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(io_error(&path))?;
        }
        let incoming = self.root.join(INCOMING);
        for entry in fs::read_dir(&incoming).map_err(io_error(&incoming))? {
            let batch = entry.map_err(io_error(&incoming))?.path();
            self.file_batch(&batch)?;
        }
        Ok(())
    }

    /// Moves every job of a committed batch into its queue's `pending/`.
    /// Each move is one rename, so a crash half way leaves the rest of the
    /// batch for the next lock holder.
    pub(crate) fn file_batch(&self, batch: &Path) -> Result<(), Error> {
        let mut filed_into = std::collections::BTreeSet::new();
        for entry in fs::read_dir(batch).map_err(io_error(batch))? {
            let path = entry.map_err(io_error(batch))?.path();
            match self.read_path(&path) {
                Ok(record) => {
                    let to = self.path(&record.queue, JobState::Pending, JobId(record.id))?;
                    let dir = to.parent().unwrap_or(self.root).to_path_buf();
                    if !filed_into.contains(&dir) {
                        self.create_dir(&dir)?;
                        filed_into.insert(dir);
                    }
                    fs::rename(&path, &to).map_err(io_error(&path))?;
                }
                Err(error) => self.quarantine(&path, &error)?,
            }
        }
        // The batch directory goes only once its jobs are safely filed.
        for dir in &filed_into {
            sync_dir(dir)?;
        }
        fs::remove_dir(batch).map_err(io_error(batch))?;
        sync_dir(&self.root.join(INCOMING))
    }

    /// Takes `count` consecutive values of a counter and returns the first.
    fn take(
        &self,
        count: u64,
        pick: fn(&mut Counters) -> &mut u64,
        durable: bool,
    ) -> Result<u64, Error> {
        let path = self.root.join(COUNTERS);
        let mut counters: Counters = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::backend(format!("{}: {e}", path.display())))?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => Counters::default(),
            Err(error) => return Err(io_error(&path)(error)),
        };
        let counter = pick(&mut counters);
        let first = *counter + 1;
        *counter += count;
        let bytes = serde_json::to_vec(&counters).map_err(Error::backend)?;
        self.write_atomically(&path, &bytes, durable)?;
        Ok(first)
    }

    /// Each unique key and the id of the last job stored with it.
    pub(crate) fn unique_keys(&self) -> Result<HashMap<String, u64>, Error> {
        self.read_map(UNIQUE)
    }

    /// Replaces the unique keys, flushed to disk.
    pub(crate) fn write_unique_keys(&self, keys: &HashMap<String, u64>) -> Result<(), Error> {
        self.write_map(UNIQUE, keys, true)
    }

    /// Each rate key's theoretical arrival time, in nanoseconds (see
    /// `outband::RateLimit::admit`).
    pub(crate) fn rates(&self) -> Result<HashMap<String, u64>, Error> {
        self.read_map(RATES)
    }

    /// Replaces the rate keys' times. Not flushed: a power loss that
    /// forgets a claim forgets the starts it counted with it.
    pub(crate) fn write_rates(&self, rates: &HashMap<String, u64>) -> Result<(), Error> {
        self.write_map(RATES, rates, false)
    }

    /// The registered consumers, by id.
    pub(crate) fn consumers(&self) -> Result<HashMap<String, ConsumerRecord>, Error> {
        let path = self.root.join(CONSUMERS);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::backend(format!("{}: {e}", path.display()))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    /// Replaces the registered consumers. Not flushed: a registration lost
    /// to a power loss comes back with the consumer's next heartbeat.
    pub(crate) fn write_consumers(
        &self,
        consumers: &HashMap<String, ConsumerRecord>,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(consumers).map_err(Error::backend)?;
        self.write_atomically(&self.root.join(CONSUMERS), &bytes, false)
    }

    /// The map of JSON file `name`; empty when there is no file.
    fn read_map(&self, name: &str) -> Result<HashMap<String, u64>, Error> {
        let path = self.root.join(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::backend(format!("{}: {e}", path.display()))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    fn write_map(
        &self,
        name: &str,
        map: &HashMap<String, u64>,
        durable: bool,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(map).map_err(Error::backend)?;
        self.write_atomically(&self.root.join(name), &bytes, durable)
    }

    /// Takes `count` new job ids and returns the first. Flushed to disk: an
    /// id is never given twice, even across a power loss.
    pub(crate) fn take_ids(&self, count: u64) -> Result<u64, Error> {
        self.take(count, |c| &mut c.next_id, true)
    }

    /// Takes `count` new fencing tokens and returns the first. Not flushed:
    /// a power loss that forgets tokens also ends every lease they fenced.
    pub(crate) fn take_tokens(&self, count: u64) -> Result<u64, Error> {
        self.take(count, |c| &mut c.next_token, false)
    }

    /// A queue's directory.
    fn queue_dir(&self, queue: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join(QUEUES).join(escape(queue)?))
    }

    /// Where a job of `queue` in `state` lives.
    pub(crate) fn path(&self, queue: &str, state: JobState, id: JobId) -> Result<PathBuf, Error> {
        Ok(self
            .queue_dir(queue)?
            .join(state_dir(state))
            .join(file_name(id.0)))
    }

    fn create_dir(&self, dir: &Path) -> Result<(), Error> {
        fs::create_dir_all(dir).map_err(io_error(dir))
    }

    /// Writes `bytes` to `path` by way of a file in `tmp/` and one rename
    /// (rule 1); with `durable`, flushed to disk first and after.
    fn write_atomically(&self, path: &Path, bytes: &[u8], durable: bool) -> Result<(), Error> {
        let tmp = self.root.join(TMP).join(format!(
            "write-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
        ));
        let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
        file.write_all(bytes)
            .and_then(|()| if durable { file.sync_all() } else { Ok(()) })
            .map_err(io_error(&tmp))?;
        fs::rename(&tmp, path).map_err(io_error(path))?;
        if durable {
            sync_dir(path.parent().unwrap_or(self.root))?;
        }
        Ok(())
    }

    /// Rewrites a record's file as a whole (rule 1).
    pub(crate) fn write(&self, path: &Path, record: &Record) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(record).map_err(Error::backend)?;
        self.write_atomically(path, &bytes, false)
    }

    /// Writes the files of a new batch into `tmp/` and commits them with one
    /// rename of their directory into `incoming/` (rule 3). Returns the
    /// committed batch's directory, for [`file_batch`](Self::file_batch).
    pub(crate) fn commit_batch(&mut self, records: &[Record]) -> Result<PathBuf, Error> {
        let name = format!("batch-{}", records.first().map_or(0, |r| r.id));
        let staging = self.root.join(TMP).join(&name);
        self.create_dir(&staging)?;
        for record in records {
            let path = staging.join(file_name(record.id));
            let bytes = serde_json::to_vec_pretty(record).map_err(Error::backend)?;
            let mut file = File::create(&path).map_err(io_error(&path))?;
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .map_err(io_error(&path))?;
        }
        sync_dir(&staging)?;
        let committed = self.root.join(INCOMING).join(&name);
        // The commit: before this rename no job of the batch exists, after
        // it all of them do.
        fs::rename(&staging, &committed).map_err(io_error(&committed))?;
        sync_dir(&self.root.join(INCOMING))?;
        for record in records {
            self.inner.facts.insert(JobId(record.id), Facts::of(record));
        }
        Ok(committed)
    }

    /// Moves a job's file from one state's directory to another's (rule 2).
    pub(crate) fn move_to(
        &self,
        queue: &str,
        id: JobId,
        from: JobState,
        to: JobState,
    ) -> Result<(), Error> {
        let (source, target) = (self.path(queue, from, id)?, self.path(queue, to, id)?);
        match fs::rename(&source, &target) {
            // the first job of the queue to reach this state makes its directory
            Err(error) if error.kind() == io::ErrorKind::NotFound && source.exists() => {
                self.create_dir(target.parent().unwrap_or(self.root))?;
                fs::rename(&source, &target).map_err(io_error(&source))
            }
            moved => moved.map_err(io_error(&source)),
        }
    }

    /// Deletes a job's file.
    pub(crate) fn remove(&self, queue: &str, state: JobState, id: JobId) -> Result<(), Error> {
        let path = self.path(queue, state, id)?;
        fs::remove_file(&path).map_err(io_error(&path))
    }

    /// Reads and parses one job file.
    fn read_path(&self, path: &Path) -> Result<Record, String> {
        let bytes = fs::read(path).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    /// Moves a file that is not a job record out of the way, into
    /// `malformed/`, so that it never blocks a claim and is kept for an
    /// operator to look at.
    fn quarantine(&self, path: &Path, error: &str) -> Result<(), Error> {
        let dir = self.root.join(MALFORMED);
        self.create_dir(&dir)?;
        let name = format!(
            "{}-{}",
            crate::record::from_time(std::time::SystemTime::now()),
            path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
        );
        log::warn!(
            "malformed job file {} moved to {}: {error}",
            path.display(),
            dir.display()
        );
        fs::rename(path, dir.join(name)).map_err(io_error(path))
    }

    /// The ids of the jobs of `queue` in `state`, in id order. `O(n)`: one
    /// directory listing.
    pub(crate) fn ids(&self, queue: &str, state: JobState) -> Result<Vec<JobId>, Error> {
        let dir = self.queue_dir(queue)?.join(state_dir(state));
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error(&dir)(error)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&dir))?;
            if let Some(id) = entry.file_name().to_str().and_then(parse_file_name) {
                ids.push(JobId(id));
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The records of the jobs of `queue` in `state`, in id order. `O(n)`:
    /// every file is read. A file that does not parse is quarantined.
    pub(crate) fn records(&self, queue: &str, state: JobState) -> Result<Vec<Record>, Error> {
        let mut records = Vec::new();
        for id in self.ids(queue, state)? {
            let path = self.path(queue, state, id)?;
            match self.read_path(&path) {
                Ok(record) => records.push(record),
                Err(error) => self.quarantine(&path, &error)?,
            }
        }
        Ok(records)
    }

    /// Reads one job's record, if it is in `state`.
    pub(crate) fn read(
        &self,
        queue: &str,
        state: JobState,
        id: JobId,
    ) -> Result<Option<Record>, Error> {
        let path = self.path(queue, state, id)?;
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::backend(format!("malformed record {}: {e}", path.display()))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    /// Finds a job by id alone: its record and state. A job whose facts are
    /// known is looked for in its queue's state directories; any other in
    /// every queue's, `O(queues)`, as an id does not say its queue.
    pub(crate) fn find(&self, id: JobId) -> Result<Option<(Record, JobState)>, Error> {
        if let Some(facts) = self.inner.facts.get(&id) {
            for state in JobState::ALL {
                if let Some(record) = self.read(&facts.queue, state, id)? {
                    return Ok(Some((record, state)));
                }
            }
            return Ok(None);
        }
        for queue in self.queue_names()? {
            for state in JobState::ALL {
                if let Some(record) = self.read(&queue, state, id)? {
                    return Ok(Some((record, state)));
                }
            }
        }
        Ok(None)
    }

    /// The name of every queue that ever had a directory, sorted.
    pub(crate) fn queue_names(&self) -> Result<Vec<String>, Error> {
        escaped_names(&self.root.join(QUEUES))
    }
}

/// The names escaped into the file names of `dir`, sorted; other files are
/// skipped.
pub(crate) fn escaped_names(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        if let Some(name) = entry.file_name().to_str().and_then(unescape) {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_to_safe_file_names_and_back() {
        for name in [
            "default",
            "emails.v2",
            "a/b",
            "..",
            ".hidden",
            "50%",
            "é",
            "a b",
        ] {
            let escaped = escape(name).unwrap();
            assert!(
                escaped
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.%".contains(&b)),
                "{escaped}"
            );
            assert!(!escaped.starts_with('.'), "{escaped}");
            assert_eq!(unescape(&escaped).as_deref(), Some(name));
        }
        assert!(escape("").is_err());
        assert!(escape(&"x".repeat(300)).is_err());
        assert_eq!(unescape("%zz"), None);
    }

    #[test]
    fn job_file_names_sort_in_id_order() {
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.json.swp"), None);
    }
}
