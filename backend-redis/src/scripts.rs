//! The Lua scripts: every change of a job's state is one of them.
//!
//! Each script is loaded once per server and called by its SHA1 (`EVALSHA`);
//! `redis`'s [`Script`] reloads it when the server answers `NOSCRIPT` (after a
//! restart or a `SCRIPT FLUSH`).
//!
//! Every script declares the `<tag>:seq` key of the slot it works in as a
//! `KEYS` entry, so Redis Cluster routes it to the node that owns the slot,
//! and derives the names of the queue's other keys from the tag: they share
//! its hash tag, so they live in the same slot. The layout is in the crate
//! docs. Times are milliseconds of the server's `TIME`; no script ever does
//! work in proportion to the backlog: each touches the jobs it moves, and
//! promotions, recoveries, purges and flushes go in bounded steps.

use std::sync::LazyLock;

use redis::Script;

/// Helpers every script starts with. `T` is the hash tag of the slot
/// (`{namespace:bucket}`); a job's number within it is `s`, always a string.
const PRELUDE: &str = r"
local T
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function base(q) return T .. ':' .. #q .. ':' .. q end
local function jkey(s) return T .. ':j:' .. s end
local function ready_list(b, p) return b .. ':r:' .. p end
-- a variadic command over a long list, in chunks Lua's stack can take
local function call_many(cmd, key, items, width)
  local chunk = 1000 * width
  for i = 1, #items, chunk do
    redis.call(cmd, key, unpack(items, i, math.min(i + chunk - 1, #items)))
  end
end
-- a token for a consumer blocked on the queue; the list is trimmed back to
-- 16 only once it passes 32, so a busy queue does not pay a trim per push
local function wake(b)
  if redis.call('RPUSH', b .. ':wake', 1) > 32 then
    redis.call('LTRIM', b .. ':wake', -16, -1)
  end
end
-- onto the ready list of its priority: at the back, or at the front for a
-- job that was claimed before (retried, released, recovered)
local function push_ready(b, s, p, front)
  local len
  if front then
    len = redis.call('LPUSH', ready_list(b, p), s)
  else
    len = redis.call('RPUSH', ready_list(b, p), s)
  end
  if len == 1 then redis.call('ZADD', b .. ':pr', 0 - p, p) end
end
-- a pending job that owns its key (or has none) goes where a claim finds
-- it; true when it is ready now
local function place(b, s, p, run_at, now, front)
  if run_at <= now then
    push_ready(b, s, p, front)
    return true
  end
  redis.call('ZADD', b .. ':sched', run_at, s)
  return false
end
-- a new or revived pending job takes its ordering key if it is free, else
-- waits in the key's line, in enqueue order; a scheduled one goes to the
-- schedule. Returns true when the caller must make it ready now.
local function enter(b, s, key, run_at, now)
  if key then
    local owner = redis.call('HGET', b .. ':kh', key)
    if not owner then
      redis.call('HSET', b .. ':kh', key, s)
    elseif owner ~= s then
      redis.call('ZADD', b .. ':kw:' .. key, tonumber(s), s)
      return false
    end
  end
  if run_at <= now then return true end
  redis.call('ZADD', b .. ':sched', run_at, s)
  return false
end
-- hands an ordering key on from s to the next job in its line, which
-- joins the back of its ready list, or the front when `front` is set
local function release_key(b, key, s, now, front)
  if not key then return false end
  if redis.call('HGET', b .. ':kh', key) ~= s then return false end
  local nxt = redis.call('ZPOPMIN', b .. ':kw:' .. key)
  if #nxt == 0 then
    redis.call('HDEL', b .. ':kh', key)
    return false
  end
  local n = nxt[1]
  redis.call('HSET', b .. ':kh', key, n)
  local f = redis.call('HMGET', jkey(n), 'p', 'r')
  return place(b, n, tonumber(f[1]) or 0, tonumber(f[2]) or 0, now, front or false)
end
-- concurrency limits: a limited job's record names its limit's key prefix
-- `y` (in the slot of the concurrency key's own bucket) and its max `v`;
-- `y:r` is the set of the key's running jobs (`T:s:token`), `y:p` the jobs
-- claims passed over while the key was full, in claim order (score minus
-- the priority, member the enqueue time then `T:s`), and `B:pk` the
-- queue's jobs among them, for flushes. On a cluster (CL) `y`'s keys are on
-- another node: a script leaves their changes to the caller, in LIMITS
-- (triples of prefix, running member to remove, parked member to remove)
local CL = false
local LIMITS = {}
-- the shortest hold of a limited job a cluster claim checks (ms)
local HOLD = 10000
local function slot_member(s, tok) return T .. ':' .. s .. ':' .. tok end
local function park_member(s, e, tok)
  e = e or '0'
  return string.rep('0', 15 - #e) .. e .. ':' .. T .. ':' .. s .. ':' .. tok
end
local function for_caller(y, running, parked)
  LIMITS[#LIMITS + 1] = y
  LIMITS[#LIMITS + 1] = running or ''
  LIMITS[#LIMITS + 1] = parked or ''
end
-- job s of queue base b takes a slot of its key, or is parked on it (on
-- one server)
local function take_slot(b, s, y, max, p, e, tok)
  if redis.call('SCARD', y .. ':r') < (tonumber(max) or 1) then
    redis.call('SADD', y .. ':r', slot_member(s, tok))
    return true
  end
  -- the token of the parking: a give that finds it stale passes it by
  redis.call('HSET', jkey(s), 'l', tok)
  redis.call('ZADD', y .. ':p', 0 - (tonumber(p) or 0), park_member(s, e, tok))
  redis.call('SADD', b .. ':pk', s)
  return false
end
-- rate limits: a rated job's record names its rate key's prefix `i` (in
-- the slot of the rate key's own bucket), its max `iv` and period `iu`
-- (µs); `i:t` is the key's theoretical arrival time (µs of the server's
-- clock), `i:p` the jobs claims passed over while their turn had not come
-- (as `y:p`), and `B:tn` the rate keys the queue has jobs parked on, by the
-- time (ms) of the key's next turn. The rule is `RateLimit::admit`
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- the interval and the tolerance of a rate (µs)
local function rate_of(max, per)
  max = math.max(tonumber(max) or 1, 1)
  local interval = math.floor((tonumber(per) or 0) / max)
  local burst = math.max(math.ceil(max / 10), 1)
  return interval, interval * (burst - 1)
end
-- `RateLimit::admit` for rate key i at `us`: true when a job may start,
-- the start counted in `i:t` (a hash of the tat `t` and, for the steps
-- that only read it, the tolerance `o` and interval `n`, µs); then the
-- time (ms) of the key's next turn
local function admit(i, max, per, us)
  local interval, tolerance = rate_of(max, per)
  local tat = tonumber(redis.call('HGET', i .. ':t', 't'))
  if tat and tat - tolerance > us then return false, math.ceil((tat - tolerance) / 1000) end
  tat = math.max(tat or us, us) + interval
  redis.call('HSET', i .. ':t', 't', tat, 'o', tolerance, 'n', interval)
  -- past its tat an idle key is as one never started: it costs nothing
  redis.call('PEXPIREAT', i .. ':t', math.ceil(tat / 1000) + 1000)
  return true, math.ceil((tat - tolerance) / 1000)
end
-- job s of queue base b starts a turn of rate key i (the start counted), or
-- is parked on it until its turn: false then. `us` is the claim's clock
local function take_turn(b, s, i, max, per, p, e, tok, us)
  local ok, turn = admit(i, max, per, us)
  if not ok then
    redis.call('HSET', jkey(s), 'l', tok)
    redis.call('ZADD', i .. ':p', 0 - (tonumber(p) or 0), park_member(s, e, tok))
    redis.call('SADD', b .. ':pk', s)
    redis.call('ZADD', b .. ':tn', turn, i)
    return false
  end
  if redis.call('EXISTS', i .. ':p') == 1 then redis.call('ZADD', b .. ':tn', turn, i) end
  return true
end
-- on one server, a limited job s of queue base b (record f) starts when
-- its concurrency key has a free slot and its rate key's turn has come,
-- taking both; else it is parked on the one that refused it, and neither
-- is taken
local function take_limits(b, s, f, tok, us)
  if f.y and redis.call('SCARD', f.y .. ':r') >= (tonumber(f.v) or 1) then
    return take_slot(b, s, f.y, f.v, f.p, f.e, tok)
  end
  if f.i and not take_turn(b, s, f.i, f.iv, f.iu, f.p, f.e, tok, us) then return false end
  if f.y then return take_slot(b, s, f.y, f.v, f.p, f.e, tok) end
  return true
end
-- a pending job of queue base b leaves wherever its limits kept it out of
-- the ready lists: a parked set (its concurrency key's `y:p` or its rate
-- key's `i:p`), or on a cluster a claim's hold, whose slot (if the claim
-- took one) goes back
local function unpark(b, s, y, e, tok, i)
  if not y and not i then return end
  tok = tok or '0'
  if redis.call('SREM', b .. ':pk', s) == 1 then
    for _, prefix in ipairs({y or false, i or false}) do
      if not prefix then
      elseif CL then for_caller(prefix, nil, park_member(s, e, tok))
      else redis.call('ZREM', prefix .. ':p', park_member(s, e, tok)) end
    end
  end
  if CL and redis.call('ZREM', b .. ':lh', s) == 1 and y then
    for_caller(y, slot_member(s, tok), nil)
  end
end
-- job s (its record at jk, read as fields f and as the raw list rec)
-- starts under fencing token tok, leased until deadline: its attempt is
-- counted, a new attempt starts with no progress (most records have
-- none), and it joins the claim's lists of running jobs and of what the
-- claim returns
local function start(jk, s, f, rec, tok, now_s, deadline, out, running)
  local n = (tonumber(f.n) or 0) + 1
  redis.call('HSET', jk, 's', 'running', 'n', n, 'b', now_s, 'l', tok, 'd', deadline)
  if f.g or f.t then redis.call('HDEL', jk, 'g', 't') end
  running[#running + 1] = deadline
  running[#running + 1] = s
  out[#out + 1] = s
  out[#out + 1] = rec
  out[#out + 1] = n
  out[#out + 1] = tok
end
-- parked member m goes to the front of its ready list (it was passed over
-- from there) and wakes its queue's consumers; false when it is stale (the
-- job was claimed, cancelled or flushed since). On a cluster a job whose
-- claim parked it on the key's node but has not settled yet is still held
local function ready_parked(m)
  local tag, n, tok = string.match(m, '^%d+:({.*}):(%d+):(%d+)$')
  if not tag then return false end
  local f = redis.call('HMGET', tag .. ':j:' .. n, 's', 'q', 'p', 'l')
  if f[1] ~= 'pending' or not f[2] or f[4] ~= tok then return false end
  local b = tag .. ':' .. #f[2] .. ':' .. f[2]
  if redis.call('SREM', b .. ':pk', n) == 0
    and not (CL and redis.call('ZREM', b .. ':lh', n) == 1) then
    return false
  end
  push_ready(b, n, tonumber(f[3]) or 0, true)
  wake(b)
  return true
end
-- a claim of queue base b at `now` (ms) moves the first job parked on each
-- rate key whose turn has come in `B:tn` back to the front of its ready
-- list, a bounded number of keys per call; the claim checks its turn again
local function promote_turns(b, now)
  local due = redis.call('ZRANGEBYSCORE', b .. ':tn', '-inf', now, 'LIMIT', 0, 16)
  for _, i in ipairs(due) do
    local moved = false
    for _ = 1, 100 do
      local first = redis.call('ZPOPMIN', i .. ':p')
      if #first == 0 then break end
      if ready_parked(first[1]) then
        moved = first[1]
        break
      end
    end
    if moved and redis.call('EXISTS', i .. ':p') == 1 then
      -- the claim of the moved job sets the next turn; should it not come
      -- (the job was of another queue, or is cancelled), the key is looked
      -- at again one interval later
      local tag, n = string.match(moved, '^%d+:({.*}):(%d+):%d+$')
      local f = redis.call('HMGET', tag .. ':j:' .. n, 'iv', 'iu')
      local interval = rate_of(f[1], f[2])
      redis.call('ZADD', b .. ':tn', now + math.max(math.ceil(interval / 1000), 1), i)
    else
      redis.call('ZREM', b .. ':tn', i)
    end
  end
end
-- job s, which held a slot of its key under token tok, has left
-- `running`: the slot goes back, and the first job parked on the key
-- becomes ready
local function give_slot(s, y, tok)
  if not y then return end
  if CL then
    for_caller(y, slot_member(s, tok), nil)
    return
  end
  if redis.call('SREM', y .. ':r', slot_member(s, tok)) == 0 then return end
  for _ = 1, 100 do
    local first = redis.call('ZPOPMIN', y .. ':p')
    if #first == 0 or ready_parked(first[1]) then return end
  end
end
-- a job that someone waits for (its record has `h`) has ended, or is
-- gone: its waiters block in a BLMOVE from `T:wf:s` to the same list, which
-- takes the token and puts it back, so one token wakes every waiter blocked
-- on it and stays for a waiter that registered but has not blocked yet. It
-- expires 10 s later: a waiter that comes after the end finds the record
-- ended and does not block
local function finished(s)
  local wk = T .. ':wf:' .. s
  redis.call('RPUSH', wk, 1)
  redis.call('PEXPIRE', wk, 10000)
  redis.call('HDEL', jkey(s), 'h')
end
-- moves a job to dead with its reason, drops the oldest dead jobs over the
-- cap (only when one is set), and hands the key on
local function bury(b, s, key, reason, now, cap)
  redis.call('HSET', jkey(s), 's', 'dead', 'f', now, 'x', reason)
  redis.call('ZADD', b .. ':dead', now, s)
  if cap > 0 then
    local over = redis.call('ZCARD', b .. ':dead') - cap
    if over > 0 then
      local old = redis.call('ZPOPMIN', b .. ':dead', over)
      for i = 1, #old, 2 do redis.call('DEL', jkey(old[i])) end
    end
  end
  return release_key(b, key, s, now)
end
-- moves a job to cancelled with its reason: kept like a done job, its
-- record expiring after the retention (0: kept until purged) and the
-- cancelled set trimmed of what expired; hands the key on as a finished
-- job does (`front` as for release_key). The caller has taken the job out
-- of where it was.
local function end_cancelled(b, s, key, reason, now, retention, front)
  local jk = jkey(s)
  redis.call('HSET', jk, 's', 'cancelled', 'f', now, 'x', reason)
  if retention > 0 then
    redis.call('PEXPIRE', jk, retention)
    redis.call('ZREMRANGEBYSCORE', b .. ':cancelled', '-inf', now - retention)
  end
  redis.call('ZADD', b .. ':cancelled', now, s)
  return release_key(b, key, s, now, front)
end
";

/// KEYS: the `seq` key of each group. ARGV: group count, then per group its
/// tag, its job count and its run count, then per run (consecutive jobs that
/// differ only in their arguments) 9 fields: queue, command, key (`1<key>` or
/// `0`), priority, max attempts, when (`n`, `a<ms>`, `d<ms>`), timeout (ms,
/// `0` for none), concurrency limit (`<max>:<limit key prefix>` or `0`),
/// rate limit (`<max>:<period µs>:<rate key prefix>` or `0`); then the
/// run's job count and each job's args. Returns the
/// first number of each group.
///
/// A batch is mostly of one command and queue, so it is mostly one run: the
/// shared fields cross the network and enter Lua once, not once per job.
/// Records leave out what equals its default (attempt 0, priority 0, `run_at`
/// equal to the enqueue time, no timeout), to keep a pending job small.
const ENQUEUE: &str = r"
local out = {}
local now = now_ms()
-- numbers handed to redis.call are printed with '%.17g' each time: the
-- clock is printed once
local now_s = tostring(now)
local i = 2
for g = 1, tonumber(ARGV[1]) do
  T = ARGV[i]
  local n, runs = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
  local first = redis.call('INCRBY', KEYS[g], n) - n + 1
  out[g] = first
  local seq = first
  local ready, counts = {}, {}
  -- runs of one job each (one ordering key apiece) share a queue and a
  -- priority: their key names are built once
  local last_q, last_p, b, list
  for _ = 1, runs do
    local q, c, k, p, m, w, to, lim, rate, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
      ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], tonumber(ARGV[i + 9])
    i = i + 10
    if q ~= last_q or p ~= last_p then
      if q ~= last_q then b = base(q) end
      list = ready_list(b, p)
      last_q, last_p = q, p
    end
    local run_at = now
    if w ~= 'n' then
      local wk, wv = string.sub(w, 1, 1), tonumber(string.sub(w, 2))
      if wk == 'a' then run_at = wv elseif wk == 'd' then run_at = now + wv end
    end
    local key = nil
    if k ~= '0' then key = string.sub(k, 2) end
    if not ready[list] then ready[list] = {b = b, p = tonumber(p), items = {}} end
    local items = ready[list].items
    counts[b] = (counts[b] or 0) + count
    if p == '0' and run_at == now and not key and to == '0' and lim == '0'
      and rate == '0' then
      -- the usual job: no table to build and unpack, ready at once
      for j = i, i + count - 1 do
        local s = tostring(seq)
        seq = seq + 1
        redis.call('HSET', jkey(s), 's', 'pending', 'c', c, 'a', ARGV[j], 'q', q, 'm', m, 'e', now_s)
        items[#items + 1] = s
      end
    else
      local fields = {'s', 'pending', 'c', c, 'a', '', 'q', q, 'm', m, 'e', now_s}
      if p ~= '0' then fields[#fields + 1] = 'p'; fields[#fields + 1] = p end
      if run_at ~= now then fields[#fields + 1] = 'r'; fields[#fields + 1] = run_at end
      if key then fields[#fields + 1] = 'k'; fields[#fields + 1] = key end
      if to ~= '0' then fields[#fields + 1] = 'w'; fields[#fields + 1] = to end
      if lim ~= '0' then
        local v, y = string.match(lim, '^(%d+):(.*)$')
        fields[#fields + 1] = 'y'; fields[#fields + 1] = y
        fields[#fields + 1] = 'v'; fields[#fields + 1] = v
      end
      if rate ~= '0' then
        local iv, iu, prefix = string.match(rate, '^(%d+):(%d+):(.*)$')
        fields[#fields + 1] = 'i'; fields[#fields + 1] = prefix
        fields[#fields + 1] = 'iv'; fields[#fields + 1] = iv
        fields[#fields + 1] = 'iu'; fields[#fields + 1] = iu
      end
      for j = i, i + count - 1 do
        local s = tostring(seq)
        seq = seq + 1
        fields[6] = ARGV[j]
        redis.call('HSET', jkey(s), unpack(fields))
        if enter(b, s, key, run_at, now) then items[#items + 1] = s end
      end
    end
    i = i + count
  end
  local woke = {}
  for list, r in pairs(ready) do
    if #r.items > 0 then
      call_many('RPUSH', list, r.items, 1)
      redis.call('ZADD', r.b .. ':pr', 0 - r.p, r.p)
      woke[r.b] = true
    end
  end
  for b, count in pairs(counts) do redis.call('HINCRBY', b .. ':n', 'p', count) end
  for b in pairs(woke) do wake(b) end
end
return out
";

/// One job with no ordering key, ready at once: what a web handler's call
/// enqueues. [`ENQUEUE`] does the same for it, but this script is run alone,
/// without [`PRELUDE`]: for one job, the general script's prelude closures,
/// tables and loops took about a third of its time in Redis (36 µs a call,
/// against 22–25 for this one).
///
/// KEYS: the `seq` key. ARGV: tag, queue, command, args, priority, max
/// attempts, timeout (ms, `0` for none). Returns the job's number.
const ENQUEUE_ONE: &str = r"
local T, q, p, to = ARGV[1], ARGV[2], ARGV[5], ARGV[7]
local t = redis.call('TIME')
-- every value handed to redis.call is a string: a Lua number is printed
-- with '%.17g' on the way, which took a tenth of this script's work
local us = t[2]
local now = t[1] .. string.sub(string.rep('0', 6 - #us) .. us, 1, 3)
local s = tostring(redis.call('INCR', KEYS[1]))
local jk = T .. ':j:' .. s
-- the record leaves out priority 0 and no timeout; only a job with a
-- timeout of its own builds a table
if to ~= '0' then
  local fields = {'s', 'pending', 'c', ARGV[3], 'a', ARGV[4], 'q', q, 'm', ARGV[6], 'e', now, 'w', to}
  if p ~= '0' then fields[#fields + 1] = 'p'; fields[#fields + 1] = p end
  redis.call('HSET', jk, unpack(fields))
elseif p == '0' then
  redis.call('HSET', jk, 's', 'pending', 'c', ARGV[3], 'a', ARGV[4], 'q', q, 'm', ARGV[6], 'e', now)
else
  redis.call('HSET', jk, 's', 'pending', 'c', ARGV[3], 'a', ARGV[4], 'q', q, 'm', ARGV[6], 'e', now, 'p', p)
end
local b = T .. ':' .. #q .. ':' .. q
if redis.call('RPUSH', b .. ':r:' .. p, s) == 1 then
  redis.call('ZADD', b .. ':pr', 0 - tonumber(p), p)
end
redis.call('HINCRBY', b .. ':n', 'p', '1')
if redis.call('RPUSH', b .. ':wake', '1') > 32 then
  redis.call('LTRIM', b .. ':wake', '-16', '-1')
end
return s
";

/// ARGV: tag, queue, max, lease ms, dead cap, `1` on a cluster. Returns
/// nothing when no job was claimed; else the claim's time and lease
/// deadline (ms), then per claimed job its number, its record as it was
/// before the claim (`HGETALL`), its attempt number and its fencing token,
/// flattened. On a cluster a limited job is held instead (`B:lh`, by the
/// hold's end), under a new token, for the caller to check its key and
/// settle ([`LIMIT_TAKE`], [`RATE_TAKE`], [`SETTLE`]): its entry has
/// attempt -1 and, for the record, its concurrency key's prefix and max,
/// its running member, parked score and parked member, and its rate key's
/// prefix, max and period. After the jobs, on a cluster, an entry of
/// attempt -2 per rate key whose turn came for a job of the queue parked
/// on it ([`RATE_PROMOTE`], [`TURN_SET`]): number 0, the key's prefix alone
/// for the record, and the score the script gave it in `B:tn` for the
/// token. The claim's own
/// changes to the record (state `running`, `n`, `b`, `l`, `d`, and the last
/// attempt's progress `g` and `t` removed) are what the caller sets from
/// those. A malformed record goes to dead, waking its waiters. A paused
/// queue (its `paused` key set) gives nothing, and is left as it is.
const CLAIM: &str = r"
T = ARGV[1]
local q, max, lease, cap = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
CL = ARGV[6] == '1'
local b = base(q)
-- the pause is checked here, in the script that hands jobs out, so that it
-- holds for every consumer at once; due scheduled jobs wait for the resume
if redis.call('EXISTS', b .. ':paused') == 1 then return {} end
-- one clock read: µs for rate limits, ms for the rest
local us = now_us()
local now = math.floor(us / 1000)
local now_s = tostring(now)
-- due scheduled jobs become ready, a bounded number per call
local due = redis.call('ZRANGEBYSCORE', b .. ':sched', '-inf', now, 'LIMIT', 0, max + 10)
for _, s in ipairs(due) do
  redis.call('ZREM', b .. ':sched', s)
  push_ready(b, s, tonumber(redis.call('HGET', jkey(s), 'p')) or 0, false)
end
-- jobs parked on rate keys whose turn has come are ready again; on a
-- cluster the rate keys are elsewhere, and the caller does it (below)
if not CL then promote_turns(b, now) end
local deadline = tostring(now + lease)
local out, running = {now_s, deadline}, {}
local budget = max + 100
local taken, parked = 0, 0
while #out < 2 + 4 * max and budget > 0 do
  local level = redis.call('ZRANGE', b .. ':pr', 0, 0)
  if #level == 0 then break end
  local want = math.min(max - (#out - 2) / 4, budget)
  local popped = redis.call('LPOP', ready_list(b, level[1]), want) or {}
  if #popped < want then redis.call('ZREM', b .. ':pr', level[1]) end
  budget = budget - #popped
  for _, s in ipairs(popped) do
    local jk = jkey(s)
    local rec = redis.call('HGETALL', jk)
    local f = {}
    for r = 1, #rec, 2 do f[rec[r]] = rec[r + 1] end
    -- a cancelled (or since purged) job's leftover entry, or a record in
    -- another state: the record says where the job is
    if #rec > 0 and f.s ~= 'running' and f.s ~= 'done' and f.s ~= 'dead'
      and f.s ~= 'cancelled' then
      local problem
      if f.s ~= 'pending' then
        problem = 'state is ' .. tostring(f.s)
      elseif not f.c or f.c == '' or not f.a or not f.q then
        problem = 'no command, arguments or queue'
      elseif not tonumber(f.n or 0) or not tonumber(f.m) then
        problem = 'attempt counts are not numbers'
      end
      if problem then
        taken = taken + 1
        redis.call('HSET', jk, 'q', q)
        if bury(b, s, f.k, 'malformed record: ' .. problem, now, cap) then wake(b) end
        if f.h then finished(s) end
      elseif (f.y or f.i) and CL then
        -- held for the caller's check of its keys on their nodes: it
        -- stays pending, out of the ready lists, under a new token
        local tok = (tonumber(f.l) or 0) + 1
        redis.call('HSET', jk, 'l', tok)
        redis.call('ZADD', b .. ':lh', now + math.max(lease, HOLD), s)
        parked = parked + 1
        out[#out + 1] = s
        out[#out + 1] = {f.y or '', f.v or '1', slot_member(s, tok), 0 - (tonumber(f.p) or 0),
          park_member(s, f.e, tok), f.i or '', f.iv or '1', f.iu or '0'}
        out[#out + 1] = -1
        out[#out + 1] = tok
      elseif (f.y or f.i) and not CL
        and not take_limits(b, s, f, (tonumber(f.l) or 0) + 1, us) then
        -- passed over: its concurrency key is full, or its rate key's turn
        -- has not come; it stays pending
        parked = parked + 1
      else
        taken = taken + 1
        -- the fencing token counts this job's claims: new on every claim
        start(jk, s, f, rec, (tonumber(f.l) or 0) + 1, now_s, deadline, out, running)
      end
    end
  end
end
if #running > 0 then call_many('ZADD', b .. ':run', running, 2) end
if taken > 0 then redis.call('HINCRBY', b .. ':n', 'p', 0 - taken) end
-- the wake-up tokens left were for jobs this claim took or parked: with
-- nothing ready, they would only end a consumer's wait for nothing
if parked > 0 and redis.call('EXISTS', b .. ':pr') == 0 then redis.call('DEL', b .. ':wake') end
-- on a cluster, the rate keys whose turn has come for a job of the queue
-- parked on them go to the caller, which makes such jobs ready in steps;
-- the key is looked at again a second later should the caller not finish
if CL then
  for _, i in ipairs(redis.call('ZRANGEBYSCORE', b .. ':tn', '-inf', now, 'LIMIT', 0, 16)) do
    local again = now + 1000
    redis.call('ZADD', b .. ':tn', again, i)
    out[#out + 1] = '0'
    out[#out + 1] = {i}
    out[#out + 1] = -2
    out[#out + 1] = again
  end
end
if #out == 2 then return {} end
return out
";

/// ARGV: tag, retention ms (0: keep), dead cap (0: none), run-time sample
/// size, count, then 5 fields per lease: number, token, kind (`d` done, `D`
/// done with result, `r` retry, `x` dead, `l` release), number (duration µs or
/// delay ms), text (result or error). Returns 1 (applied) or 0 (lease lost)
/// per lease.
///
/// A job whose cancel was requested while it ran (field `z`, the reason)
/// ends `cancelled` with that reason on a retry or a release; done and dead
/// apply as usual, and the request goes with the attempt. A job that ends
/// wakes its waiters, if it has any (field `h`, read with the others).
const COMPLETE: &str = r"
T = ARGV[1]
local retention, cap, rtcap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
CL = ARGV[6] == '1'
local now = now_ms()
local now_s = tostring(now)
local out = {}
-- per queue name, its key base and its batch of changes
local queues = {}
local i = 7
for j = 1, tonumber(ARGV[5]) do
  -- num, a duration or a delay, stays the text it came as where it is stored
  local s, tok, kind, num, text = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local jk = jkey(s)
  local f = redis.call('HMGET', jk, 's', 'l', 'q', 'k', 'p', 'n', 'z', 'h', 'y')
  if f[1] ~= 'running' or f[2] ~= tok or not f[3] then
    out[j] = 0
  else
    out[j] = 1
    -- every outcome takes the job out of `running`
    give_slot(s, f[9], f[2])
    local batch = queues[f[3]]
    if not batch then
      batch = {b = base(f[3]), run = {}, done = {}, rt = {}, woke = false}
      queues[f[3]] = batch
    end
    local b = batch.b
    batch.run[#batch.run + 1] = s
    local key, cancel = f[4], f[7]
    if cancel then redis.call('HDEL', jk, 'z') end
    local woke
    if cancel and kind ~= 'd' and kind ~= 'D' and kind ~= 'x' then
      -- a retry or a release would run it again
      woke = end_cancelled(b, s, key, cancel, now, retention)
    elseif kind == 'd' or kind == 'D' then
      if kind == 'D' then
        redis.call('HSET', jk, 's', 'done', 'f', now_s, 'u', num, 'o', text)
      else
        redis.call('HSET', jk, 's', 'done', 'f', now_s, 'u', num)
      end
      if retention > 0 then redis.call('PEXPIRE', jk, ARGV[2]) end
      batch.done[#batch.done + 1] = now_s
      batch.done[#batch.done + 1] = s
      batch.rt[#batch.rt + 1] = num
      woke = release_key(b, key, s, now)
    elseif kind == 'x' then
      woke = bury(b, s, key, text, now, cap)
    else
      local run_at = now
      if kind == 'r' then
        run_at = now + tonumber(num)
        redis.call('HSET', jk, 's', 'pending', 'r', run_at, 'x', text)
      else
        redis.call('HSET', jk, 's', 'pending', 'r', run_at, 'n', math.max((tonumber(f[6]) or 1) - 1, 0))
      end
      redis.call('HINCRBY', b .. ':n', 'p', 1)
      woke = place(b, s, tonumber(f[5]) or 0, run_at, now, true)
    end
    if woke then batch.woke = true end
    -- every outcome but a plain retry or release ends the job
    if f[8] and (cancel or kind == 'd' or kind == 'D' or kind == 'x') then finished(s) end
  end
end
for _, batch in pairs(queues) do
  local b = batch.b
  call_many('ZREM', b .. ':run', batch.run, 1)
  if #batch.done > 0 then
    call_many('ZADD', b .. ':done', batch.done, 2)
    -- trims in steps, not on every call: the sample by up to 64 over its
    -- size, the done set about every 16th job
    local sampled = redis.call('LPUSH', b .. ':rt', unpack(batch.rt, 1, math.min(#batch.rt, 1000)))
    if sampled > rtcap + 64 then redis.call('LTRIM', b .. ':rt', 0, rtcap - 1) end
    if retention > 0 and tonumber(batch.done[2]) % 16 < #batch.rt then
      redis.call('ZREMRANGEBYSCORE', b .. ':done', '-inf', now - retention)
    end
  end
  if batch.woke then wake(b) end
end
for _, v in ipairs(LIMITS) do out[#out + 1] = v end
return out
";

/// ARGV: tag, number, token, lease ms. Returns the new deadline and 1 when
/// the job's cancel was requested (else 0), or -1 and 0 when the lease is
/// lost.
const HEARTBEAT: &str = r"
T = ARGV[1]
local s, tok = ARGV[2], ARGV[3]
local jk = jkey(s)
local f = redis.call('HMGET', jk, 's', 'l', 'q', 'z')
if f[1] ~= 'running' or f[2] ~= tok or not f[3] then return {-1, 0} end
local d = now_ms() + tonumber(ARGV[4])
redis.call('HSET', jk, 'd', d)
redis.call('ZADD', base(f[3]) .. ':run', d, s)
if f[4] then return {d, 1} end
return {d, 0}
";

/// ARGV: tag, number, token, fraction, note. Stores the progress of a
/// running job as `g` (the fraction, as the caller wrote it) and `t` (the
/// note, bytes as given); done and dead keep them, the next claim removes
/// them. Returns 1, or 0 when the lease is lost.
const PROGRESS: &str = r"
T = ARGV[1]
local s, tok = ARGV[2], ARGV[3]
local jk = jkey(s)
local f = redis.call('HMGET', jk, 's', 'l')
if f[1] ~= 'running' or f[2] ~= tok then return 0 end
redis.call('HSET', jk, 'g', ARGV[4], 't', ARGV[5])
return 1
";

/// ARGV: tag, queue, dead cap, retention ms (0: keep), limit. Returns
/// requeued, dead, and how many expired leases it looked at (the caller
/// repeats while that is the limit). A job whose cancel was requested ends
/// `cancelled`, counted as neither. A job that ends wakes its waiters.
const RECOVER: &str = r"
T = ARGV[1]
local q, cap, retention, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
CL = ARGV[6] == '1'
local b = base(q)
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', b .. ':run', '-inf', now, 'LIMIT', 0, limit)
local requeued, dead, woke = 0, 0, false
for _, s in ipairs(expired) do
  local jk = jkey(s)
  redis.call('ZREM', b .. ':run', s)
  local f = redis.call('HMGET', jk, 's', 'n', 'm', 'k', 'p', 'z', 'h', 'y', 'l')
  if f[1] == 'running' then give_slot(s, f[8], f[9]) end
  if f[1] == 'running' and f[6] then
    redis.call('HDEL', jk, 'z')
    if end_cancelled(b, s, f[4], f[6], now, retention) then woke = true end
    if f[7] then finished(s) end
  elseif f[1] == 'running' then
    local n, m = tonumber(f[2]) or 0, tonumber(f[3]) or 0
    -- outband::backend::fate::lease_expired, word for word
    local reason = 'lease expired on attempt ' .. n .. ' of ' .. m
    if n < m then
      redis.call('HSET', jk, 's', 'pending', 'r', now, 'x', reason)
      redis.call('HINCRBY', b .. ':n', 'p', 1)
      if place(b, s, tonumber(f[5]) or 0, now, now, true) then woke = true end
      requeued = requeued + 1
    else
      if bury(b, s, f[4], reason, now, cap) then woke = true end
      if f[7] then finished(s) end
      dead = dead + 1
    end
  end
end
-- on a cluster, the limited jobs whose claim died between its steps go
-- back to the front of their ready lists, and the slots they may hold back
local held = {}
if CL then
  held = redis.call('ZRANGEBYSCORE', b .. ':lh', '-inf', now, 'LIMIT', 0, limit)
  for _, s in ipairs(held) do
    redis.call('ZREM', b .. ':lh', s)
    local f = redis.call('HMGET', jkey(s), 's', 'p', 'y', 'l')
    if f[1] == 'pending' then
      push_ready(b, s, tonumber(f[2]) or 0, true)
      woke = true
    end
    if f[3] then for_caller(f[3], slot_member(s, f[4] or '0'), nil) end
  end
end
if woke then wake(b) end
local out = {requeued, dead, math.max(#expired, #held)}
for _, v in ipairs(LIMITS) do out[#out + 1] = v end
return out
";

/// KEYS: a `seq` key of the slot. ARGV: pairs of tag and queue. Returns 0 when
/// a job is ready, else the milliseconds until the first scheduled one is
/// due or the first rate key the queue has jobs parked on has its next turn
/// (at least 1), else -1. A paused queue counts as holding no job, ready or
/// scheduled, and its wake-up tokens are dropped.
const PROBE: &str = r"
local now = now_ms()
local best = -1
for i = 1, #ARGV, 2 do
  T = ARGV[i]
  local b = base(ARGV[i + 1])
  if redis.call('EXISTS', b .. ':paused') == 1 then
    -- no claim takes a job of a paused queue, so its tokens (left by
    -- enqueues before or during the pause) would only end the caller's
    -- blocking pop at once; the resume pushes a new one
    redis.call('DEL', b .. ':wake')
  elseif redis.call('ZCARD', b .. ':pr') > 0 then
    return 0
  else
    local first = redis.call('ZRANGE', b .. ':sched', 0, 0, 'WITHSCORES')
    if #first > 0 then
      local wait = math.max(tonumber(first[2]) - now, 0)
      if best < 0 or wait < best then best = wait end
    end
    -- a job parked on a rate key is claimable at the key's next turn: a
    -- claim then makes it ready (never 0, which would say one is ready)
    local turn = redis.call('ZRANGE', b .. ':tn', 0, 0, 'WITHSCORES')
    if #turn > 0 then
      local wait = math.max(tonumber(turn[2]) - now, 1)
      if best < 0 or wait < best then best = wait end
    end
  end
end
return best
";

/// ARGV: tag, queue, retention ms. Returns pending, running, done, dead,
/// cancelled, done in the last minute, the run-time sample (µs), and 1 when
/// the queue is paused (else 0).
const STATS: &str = r"
T = ARGV[1]
local b = base(ARGV[2])
local retention = tonumber(ARGV[3])
local now = now_ms()
if retention > 0 then
  redis.call('ZREMRANGEBYSCORE', b .. ':done', '-inf', now - retention)
  redis.call('ZREMRANGEBYSCORE', b .. ':cancelled', '-inf', now - retention)
end
return {
  tonumber(redis.call('HGET', b .. ':n', 'p')) or 0,
  redis.call('ZCARD', b .. ':run'),
  redis.call('ZCARD', b .. ':done'),
  redis.call('ZCARD', b .. ':dead'),
  redis.call('ZCARD', b .. ':cancelled'),
  redis.call('ZCOUNT', b .. ':done', now - 60000, '+inf'),
  redis.call('LRANGE', b .. ':rt', 0, -1),
  redis.call('EXISTS', b .. ':paused'),
}
";

/// ARGV: tag, queue, `1` to pause or `0` to resume. Pausing sets the
/// queue's `paused` key, which the claim script reads; resuming deletes it
/// and pushes a wake-up token, as an enqueue does, so that consumers
/// blocked on the queue claim its ready jobs at once. Returns 1 when the
/// queue's state changed, 0 when it already was as asked.
const PAUSE: &str = r"
T = ARGV[1]
local b = base(ARGV[2])
if ARGV[3] == '1' then
  if redis.call('SET', b .. ':paused', '1', 'NX') then return 1 end
  return 0
end
if redis.call('DEL', b .. ':paused') == 0 then return 0 end
wake(b)
return 1
";

/// KEYS: a `seq` key of the slot. ARGV: pairs of tag and queue. Returns the
/// queues among them that are paused.
const PAUSED: &str = r"
local out = {}
for i = 1, #ARGV, 2 do
  T = ARGV[i]
  if redis.call('EXISTS', base(ARGV[i + 1]) .. ':paused') == 1 then
    out[#out + 1] = ARGV[i + 1]
  end
end
return out
";

/// ARGV: tag, number, reason, retention ms (0: keep), the cancel feeds'
/// channel, the job's id. Returns a code and the state the job was found
/// in: 0 no such job; 1 it was pending and is `cancelled` now; 2 it is
/// running and its cancel is requested (field `z`, the reason, and the id
/// published on the channel; a request already there is kept, and not
/// published again); 3 it had finished, nothing changed; 4 it is pending
/// but its record names no queue. A pending job cancelled wakes its
/// waiters.
const CANCEL: &str = r"
T = ARGV[1]
local s, reason, retention = ARGV[2], ARGV[3], tonumber(ARGV[4])
CL = ARGV[7] == '1'
local jk = jkey(s)
local f = redis.call('HMGET', jk, 's', 'q', 'k', 'z', 'h', 'y', 'e', 'l', 'i')
local state = f[1]
if not state then
  if redis.call('EXISTS', jk) == 0 then return {0, ''} end
  return {3, ''}
end
if state == 'running' then
  if not f[4] then
    redis.call('HSET', jk, 'z', reason)
    -- for the processors' cancel feeds: the one that runs the job stops it
    redis.call('PUBLISH', ARGV[5], ARGV[6])
  end
  return {2, state}
end
if state ~= 'pending' then return {3, state} end
if not f[2] then return {4, state} end
local b = base(f[2])
-- an entry in a ready list stays behind; claims skip it (not pending)
local scheduled = redis.call('ZREM', b .. ':sched', s) == 1
if f[3] then redis.call('ZREM', b .. ':kw:' .. f[3], s) end
unpark(b, s, f[6], f[7], f[8], f[9])
redis.call('HINCRBY', b .. ':n', 'p', -1)
-- a ready owner of its key held the line's place among the ready jobs, and
-- no job of the key ran: the next one goes to the front, not the back
if end_cancelled(b, s, f[3], reason, now_ms(), retention, not scheduled) then wake(b) end
if f[5] then finished(s) end
local out = {1, 'cancelled'}
for _, v in ipairs(LIMITS) do out[#out + 1] = v end
return out
";

/// ARGV: tag, queue, limit, cursor. One bounded step of a flush: pending jobs
/// in the ready lists and the schedule first (a key owner hands its key on,
/// so its line follows), then the lines behind running owners, by `HSCAN`.
/// A deleted job's waiters are woken, to find it gone. Returns how many it
/// deleted, the next cursor, and 1 when the flush is complete.
const FLUSH: &str = r"
T = ARGV[1]
local b = base(ARGV[2])
local limit = tonumber(ARGV[3])
CL = ARGV[5] == '1'
local now = now_ms()
local removed, popped = 0, 0
local function drop(s)
  local jk = jkey(s)
  local f = redis.call('HMGET', jk, 's', 'k', 'h', 'y', 'e', 'l', 'i')
  if f[1] == 'pending' then
    unpark(b, s, f[4], f[5], f[6], f[7])
    release_key(b, f[2], s, now)
    -- a waiter for a deleted job looks again and finds it gone
    if f[3] then finished(s) end
    redis.call('DEL', jk)
    removed = removed + 1
  end
end
while popped < limit do
  local level = redis.call('ZRANGE', b .. ':pr', 0, 0)
  if #level == 0 then break end
  local want = limit - popped
  local top = redis.call('LPOP', ready_list(b, level[1]), want) or {}
  if #top < want then redis.call('ZREM', b .. ':pr', level[1]) end
  popped = popped + #top
  for _, s in ipairs(top) do drop(s) end
end
while popped < limit do
  local top = redis.call('ZPOPMIN', b .. ':sched', limit - popped)
  if #top == 0 then break end
  for k = 1, #top, 2 do
    popped = popped + 1
    drop(top[k])
  end
end
-- jobs parked on their concurrency keys, or held by a cluster claim, are
-- in no ready list
while popped < limit do
  local top = redis.call('SRANDMEMBER', b .. ':pk', limit - popped)
  if #top == 0 then break end
  for _, s in ipairs(top) do
    popped = popped + 1
    drop(s)
    -- a record that is not pending (or is gone) leaves no parked entry
    redis.call('SREM', b .. ':pk', s)
  end
end
while popped < limit do
  local top = redis.call('ZRANGE', b .. ':lh', 0, limit - popped - 1)
  if #top == 0 then break end
  for _, s in ipairs(top) do
    popped = popped + 1
    drop(s)
    redis.call('ZREM', b .. ':lh', s)
  end
end
local cursor, complete = ARGV[4], 0
if popped < limit then
  local scan = redis.call('HSCAN', b .. ':kh', cursor, 'COUNT', 100)
  local lines = scan[2]
  local emptied = true
  for k = 1, #lines, 2 do
    local line = b .. ':kw:' .. lines[k]
    local waiting = redis.call('ZPOPMIN', line, math.max(limit - popped, 1))
    for w = 1, #waiting, 2 do
      if redis.call('HEXISTS', jkey(waiting[w]), 'h') == 1 then finished(waiting[w]) end
      redis.call('DEL', jkey(waiting[w]))
      removed = removed + 1
      popped = popped + 1
    end
    if redis.call('EXISTS', line) == 1 then emptied = false end
  end
  if emptied then
    cursor = scan[1]
    if cursor == '0' then complete = 1 end
  end
end
-- (Lua would send 0 as -0, which is not an integer to Redis)
if removed > 0 then redis.call('HINCRBY', b .. ':n', 'p', 0 - removed) end
local out = {removed, cursor, complete}
for _, v in ipairs(LIMITS) do out[#out + 1] = v end
return out
";

/// ARGV: tag, queue, older than ms, limit. Deletes up to `limit` done and
/// cancelled jobs finished before the cutoff, done ones first; returns how
/// many.
const PURGE: &str = r"
T = ARGV[1]
local b = base(ARGV[2])
local cutoff = now_ms() - tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local purged = 0
for _, set in ipairs({b .. ':done', b .. ':cancelled'}) do
  if purged < limit then
    local old = redis.call('ZRANGEBYSCORE', set, '-inf', cutoff, 'LIMIT', 0, limit - purged)
    for _, s in ipairs(old) do
      redis.call('DEL', jkey(s))
      redis.call('ZREM', set, s)
    end
    purged = purged + #old
  end
end
return purged
";

/// ARGV: tag, queue, offset, limit. Returns number and record of each dead
/// job, newest first, flattened.
const DEAD_LIST: &str = r"
T = ARGV[1]
local b = base(ARGV[2])
local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
if limit <= 0 then return out end
for _, s in ipairs(redis.call('ZREVRANGE', b .. ':dead', offset, offset + limit - 1)) do
  out[#out + 1] = s
  out[#out + 1] = redis.call('HGETALL', jkey(s))
end
return out
";

/// ARGV: tag, queue, state, command (`1<command>`, or `0` for any), the
/// number to start at, page size, scan bound. Walks the bucket's job numbers
/// down from the start (or from `seq`, when that is lower), reading each
/// record's queue, state and command, until the page holds its size or
/// `scan` numbers did not match (another queue's, another state's, or no
/// record: purged, expired or deleted). Returns the last number examined,
/// below which the listing goes on (0 when no number below it is left), then
/// number and record of each job that matches, highest first, flattened.
///
/// A record that names no state, or one this crate does not know, is listed
/// as `dead`, as `job` reads it.
const LIST: &str = r"
T = ARGV[1]
local q, state, cmd = ARGV[2], ARGV[3], nil
if ARGV[4] ~= '0' then cmd = string.sub(ARGV[4], 2) end
local limit, scan = tonumber(ARGV[6]), tonumber(ARGV[7])
local n = math.min(tonumber(ARGV[5]), tonumber(redis.call('GET', KEYS[1])) or 0)
local known = {pending = true, running = true, done = true, dead = true, cancelled = true}
local out = {0}
local found, misses = 0, 0
while n > 0 and found < limit and misses < scan do
  local s = tostring(n)
  local jk = jkey(s)
  local f = redis.call('HMGET', jk, 'q', 's', 'c')
  local rec
  if (f[1] or '') == q and (f[2] == state or (state == 'dead' and not known[f[2]]))
    and (not cmd or (f[3] or '') == cmd) then
    -- empty when there is no record, whose fields all read as missing
    rec = redis.call('HGETALL', jk)
  end
  if rec and #rec > 0 then
    found = found + 1
    out[#out + 1] = s
    out[#out + 1] = rec
  else
    misses = misses + 1
  end
  n = n - 1
end
-- the last number examined: the listing goes on below it
if n > 0 then out[1] = n + 1 end
return out
";

/// KEYS: the `seq` key. ARGV: tag, number. Registers a waiter for job
/// `number`'s end, for `wait_finished`: returns 0 when the job has ended or
/// has no record (unknown, purged, expired), else marks the record with `h`,
/// so that the script that ends the job pushes the token the waiter then
/// blocks on (`finished` in [`PRELUDE`]), and returns 1. Run alone, without
/// the prelude, which it does not need.
const WAIT_FINISHED: &str = r"
local T, s = ARGV[1], ARGV[2]
local jk = T .. ':j:' .. s
local state = redis.call('HGET', jk, 's')
if state ~= 'pending' and state ~= 'running' then return 0 end
-- a token left by an end the job came back from (a dead job retried) is
-- stale: the job has not ended now
redis.call('DEL', T .. ':wf:' .. s)
redis.call('HSET', jk, 'h', '1')
return 1
";

/// ARGV: tag, number. Returns 1 when the dead job is pending again.
const RETRY_DEAD: &str = r"
T = ARGV[1]
local s = ARGV[2]
local jk = jkey(s)
local f = redis.call('HMGET', jk, 's', 'q', 'k', 'p')
if f[1] ~= 'dead' or not f[2] then return 0 end
local b = base(f[2])
local now = now_ms()
redis.call('ZREM', b .. ':dead', s)
redis.call('HSET', jk, 's', 'pending', 'n', 0, 'r', now)
redis.call('HDEL', jk, 'f')
redis.call('HINCRBY', b .. ':n', 'p', 1)
if enter(b, s, f[3], now, now) then
  push_ready(b, s, tonumber(f[4]) or 0, false)
  wake(b)
end
return 1
";

/// ARGV: tag, number. Returns 1 when the dead job was deleted.
const DELETE_DEAD: &str = r"
T = ARGV[1]
local s = ARGV[2]
local jk = jkey(s)
local f = redis.call('HMGET', jk, 's', 'q')
if f[1] ~= 'dead' or not f[2] then return 0 end
redis.call('ZREM', base(f[2]) .. ':dead', s)
redis.call('DEL', jk)
return 1
";

/// Whether a job in state `st`, which ended at `f` (ms, or nil), still
/// holds a unique key at `now` under `scope`: `s` (until started), `f`
/// (until finished) or a window in ms after `done`. `UniqueUntil::holds`
/// in Lua, for the one-server unique enqueue; a job with no record (`st`
/// nil: purged, expired, deleted) holds nothing.
const UNIQUE_HOLDS: &str = r"
local function unique_holds(st, f, scope, now)
  if st == 'pending' then return true end
  if st == 'running' then return scope ~= 's' end
  if st == 'done' and scope ~= 's' and scope ~= 'f' then
    return f ~= nil and f + tonumber(scope) > now
  end
  return false
end
";

/// A unique enqueue on one server: the look at the key's holder and the
/// store are one script, so racing producers store one job. It runs
/// [`ENQUEUE`] itself, as a function, so a unique job is stored exactly as
/// any other.
///
/// KEYS: the key bucket's `seq` key, then [`ENQUEUE`]'s. ARGV: the key
/// bucket's tag, the unique key, the scope (as [`UNIQUE_HOLDS`] reads it),
/// the namespace, then [`ENQUEUE`]'s arguments for the one job. Returns
/// `{1, holder id}` for a duplicate, else `{0, number}` of the new job,
/// whose id the script has mapped the key to in `<key tag>:u`.
fn enqueue_unique() -> Script {
    script(&format!(
        "{UNIQUE_HOLDS}\n\
         local function enqueue_batch(KEYS, ARGV)\n{ENQUEUE}\nend\n\
         {ENQUEUE_UNIQUE}"
    ))
}

const ENQUEUE_UNIQUE: &str = r"
local map, key, scope, ns = ARGV[1] .. ':u', ARGV[2], ARGV[3], ARGV[4]
local holder = redis.call('HGET', map, key)
local id = tonumber(holder or '')
if id then
  local b = math.floor(id / 1099511627776)
  local jk = '{' .. ns .. ':' .. string.format('%.0f', b) .. '}:j:'
    .. string.format('%.0f', id - b * 1099511627776)
  local f = redis.call('HMGET', jk, 's', 'f')
  if unique_holds(f[1], tonumber(f[2]), scope, now_ms()) then return {1, holder} end
end
local seq = enqueue_batch({unpack(KEYS, 2)}, {unpack(ARGV, 5)})[1]
local tag = ARGV[6]
local bucket = tonumber(string.match(tag, ':(%d+)}$'))
redis.call('HSET', map, key, string.format('%.0f', bucket * 1099511627776 + seq))
return {0, seq}
";

/// ARGV: the key bucket's tag, unique key, token, ms. The first step of a
/// unique enqueue on a cluster: reserves the key for `ms` under `token`
/// (`<tag>:ur:<key>`, `SET NX PX`) and returns `{1, holder id}` (`''` when
/// no job took the key), or `{0}` while another producer holds the
/// reservation.
const UNIQUE_RESERVE: &str = r"
local T, key = ARGV[1], ARGV[2]
if not redis.call('SET', T .. ':ur:' .. key, ARGV[3], 'NX', 'PX', ARGV[4]) then return {0} end
return {1, redis.call('HGET', T .. ':u', key) or ''}
";

/// ARGV: the key bucket's tag, unique key, token, the new holder's id (`''`
/// for none). The last step of a unique enqueue on a cluster: maps the key
/// to the job just stored, if there is one, and drops the reservation if it
/// is still the caller's.
const UNIQUE_RELEASE: &str = r"
local T, key = ARGV[1], ARGV[2]
if ARGV[4] ~= '' then redis.call('HSET', T .. ':u', key, ARGV[4]) end
local r = T .. ':ur:' .. key
if redis.call('GET', r) == ARGV[3] then redis.call('DEL', r) end
return 1
";

/// ARGV: tag, number. The holder check of a unique enqueue on a cluster,
/// in the holder's slot: returns the job's state and finish time (`''`
/// when absent) and the server's time, in ms.
const UNIQUE_HOLDER: &str = r"
local f = redis.call('HMGET', ARGV[1] .. ':j:' .. ARGV[2], 's', 'f')
local t = redis.call('TIME')
return {f[1] or '', f[2] or '', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
";

/// KEYS: the `seq` key of the records' slot. ARGV: record keys. Returns 1
/// for each that exists, 0 for each that does not: the purge's look at
/// the holders of unique keys.
const UNIQUE_ALIVE: &str = r"
local out = {}
for i = 1, #ARGV do out[i] = redis.call('EXISTS', ARGV[i]) end
return out
";

/// ARGV: the key bucket's tag, then unique key and job id pairs. Forgets
/// each key still mapped to that id (whose job is gone); returns how many.
const UNIQUE_FORGET: &str = r"
local map, forgot = ARGV[1] .. ':u', 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', map, ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', map, ARGV[i])
    forgot = forgot + 1
  end
end
return forgot
";

/// KEYS: a `seq` key of the limits' slot. ARGV: 5 fields per job held by
/// a cluster claim: its limit's prefix, max, running member, parked score
/// and parked member, as [`CLAIM`] returns them. The check of a limited
/// job's key on the key's node: takes a slot when the key has fewer
/// running jobs than the job's max, else parks the job. Returns 1 (took)
/// or 0 (parked) per job.
const LIMIT_TAKE: &str = r"
local out = {}
for i = 1, #ARGV, 5 do
  local y = ARGV[i]
  if redis.call('SCARD', y .. ':r') < tonumber(ARGV[i + 1]) then
    redis.call('SADD', y .. ':r', ARGV[i + 2])
    out[#out + 1] = 1
  else
    redis.call('ZADD', y .. ':p', ARGV[i + 3], ARGV[i + 4])
    out[#out + 1] = 0
  end
end
return out
";

/// KEYS: a `seq` key of the limit's slot. ARGV: a limit's prefix, a
/// running member to remove (`''` for none), a parked member to remove
/// (`''` for none), `1` to look at the first parked job anyway. A cluster's
/// step of giving a slot back: returns the first parked member when the
/// running member was there (a slot was freed) or when asked, else `''`.
const LIMIT_STEP: &str = r"
local y = ARGV[1]
local freed = ARGV[2] ~= '' and redis.call('SREM', y .. ':r', ARGV[2]) == 1
if ARGV[3] ~= '' then redis.call('ZREM', y .. ':p', ARGV[3]) end
if freed or ARGV[4] == '1' then
  return redis.call('ZRANGE', y .. ':p', 0, 0)[1] or ''
end
return ''
";

/// KEYS: a `seq` key of the limit's slot. ARGV: a limit's prefix. The
/// first look of a cluster's sweep of the key (see `sweep_limits`):
/// returns the first parked member (`''` for none), then the running
/// members.
const LIMIT_LOOK: &str = r"
local y = ARGV[1]
local out = {redis.call('ZRANGE', y .. ':p', 0, 0)[1] or ''}
for _, m in ipairs(redis.call('SMEMBERS', y .. ':r')) do out[#out + 1] = m end
return out
";

/// KEYS: a `seq` key of the jobs' slot. ARGV: pairs of a kind and a
/// member of a limit's keys whose jobs are in this slot: `r` and a
/// running member (`T:n:l`), or `p` and a parked member (`e:T:n:l`). The
/// check of a cluster's sweep in the jobs' own slot: per running member,
/// 1 while its job still holds the slot under its token (running under
/// it, or held by a claim whose settle has not run: pending under it and
/// in `B:lh`), else 0; per parked member, the job's max `v` while it is
/// still parked under its token (pending under it), else 0. A member
/// found stale stays stale: tokens only grow.
const LIMIT_CHECK: &str = r"
local out = {}
for i = 1, #ARGV, 2 do
  local kind, m = ARGV[i], ARGV[i + 1]
  local pattern = '^({.*}):(%d+):(%d+)$'
  if kind == 'p' then pattern = '^%d+:({.*}):(%d+):(%d+)$' end
  local tag, n, tok = string.match(m, pattern)
  local answer = 0
  if tag then
    local f = redis.call('HMGET', tag .. ':j:' .. n, 's', 'l', 'q', 'v')
    if f[2] == tok and kind == 'p' then
      if f[1] == 'pending' then answer = tonumber(f[4]) or 1 end
    elseif f[2] == tok then
      if f[1] == 'running' then
        answer = 1
      elseif f[1] == 'pending' and f[3]
        and redis.call('ZSCORE', tag .. ':' .. #f[3] .. ':' .. f[3] .. ':lh', n) then
        answer = 1
      end
    end
  end
  out[#out + 1] = answer
end
return out
";

/// KEYS: `namespace:limits`. ARGV: limits' prefixes. Lists them as
/// claimed now (the server's `TIME`, ms), for the sweep.
const LIMIT_REGISTER: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
return 0
";

/// KEYS: `namespace:limits`. ARGV: an age (ms), then limits' prefixes
/// whose keys the sweep found empty. Drops each listed longer ago than
/// the age; returns how many.
const LIMIT_FORGET: &str = r"
local t = redis.call('TIME')
local before = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local forgot = 0
for i = 2, #ARGV do
  local at = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if at and tonumber(at) <= before then
    forgot = forgot + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return forgot
";

/// KEYS: a `seq` key of the rate keys' slot. ARGV: 5 fields per job held
/// by a cluster claim whose concurrency key (if any) took a slot: its rate
/// key's prefix, max, period (µs), parked score and parked member, as
/// [`CLAIM`] returns them. The check of a rated job's turn on the key's
/// node (`admit` in [`PRELUDE`]): counts the start, else parks the job on
/// the key. Returns per job 1 (started) or 0 (parked), then the key's next
/// turn (ms) when a job is parked on it, else 0.
const RATE_TAKE: &str = r"
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #ARGV, 5 do
  local y = ARGV[i]
  local ok, turn = admit(y, ARGV[i + 1], ARGV[i + 2], us)
  if ok then
    out[#out + 1] = 1
  else
    redis.call('ZADD', y .. ':p', ARGV[i + 3], ARGV[i + 4])
    out[#out + 1] = 0
  end
  if redis.call('EXISTS', y .. ':p') == 0 then turn = 0 end
  out[#out + 1] = turn
end
return out
";

/// KEYS: a `seq` key of the rate key's slot. ARGV: a rate key's prefix.
/// A cluster's step of a rate key's turn: takes the first parked member
/// off `i:p` and returns it (`''` when none is left), then when more are
/// parked the time (ms) the queue is to look again: the key's next turn,
/// or one interval on should the job made ready not start; else 0.
const RATE_PROMOTE: &str = r"
local i = ARGV[1]
local first = redis.call('ZPOPMIN', i .. ':p')
if #first == 0 then return {'', 0} end
if redis.call('EXISTS', i .. ':p') == 0 then return {first[1], 0} end
local f = redis.call('HMGET', i .. ':t', 't', 'o', 'n')
local now = now_ms()
local again = now + math.max(math.ceil((tonumber(f[3]) or 0) / 1000), 1)
local turn = math.ceil(((tonumber(f[1]) or 0) - (tonumber(f[2]) or 0)) / 1000)
return {first[1], math.max(turn, again)}
";

/// ARGV: tag, queue, rate key prefix, the score a cluster claim gave it in
/// `B:tn`, the new score (`0`: remove). Sets the queue's next look at the
/// key's turn, unless another claim has set it since.
const TURN_SET: &str = r"
T = ARGV[1]
local tn = base(ARGV[2]) .. ':tn'
if redis.call('ZSCORE', tn, ARGV[3]) ~= ARGV[4] then return 0 end
if ARGV[5] == '0' then redis.call('ZREM', tn, ARGV[3])
else redis.call('ZADD', tn, ARGV[5], ARGV[3]) end
return 1
";

/// KEYS: the `seq` key of the job's slot. ARGV: a parked member. On a
/// cluster, makes the parked job ready again (`ready_parked` in
/// [`PRELUDE`]); returns 1, or 0 when the member is stale.
const READY_PARKED: &str = r"
CL = true
if ready_parked(ARGV[1]) then return 1 end
return 0
";

/// ARGV: tag, queue, lease ms, then 5 fields per job a cluster claim
/// held: number, token, `1` when [`LIMIT_TAKE`] took a slot for it and
/// [`RATE_TAKE`] a turn, its rate key's prefix (`''` for none) and that
/// key's next turn (ms, `0` when the queue need not look: no job is parked
/// on the key), added to `B:tn`. The
/// last step of a cluster claim of limited jobs: a job still held under
/// its token is claimed (took) or parked (`B:pk`); one that is not (its
/// hold was recovered, or it was cancelled or flushed) is left as it is,
/// and the caller gives back the slot it took. Returns what [`CLAIM`]
/// returns for the jobs it claimed.
const SETTLE: &str = r"
T = ARGV[1]
CL = true
local b = base(ARGV[2])
local now = now_ms()
local now_s = tostring(now)
local deadline = tostring(now + tonumber(ARGV[3]))
local out, running, taken = {now_s, deadline}, {}, 0
for i = 4, #ARGV, 5 do
  local s, tok, took = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1'
  -- the next turn of its rate key, where the queue has jobs parked on it
  if ARGV[i + 3] ~= '' and ARGV[i + 4] ~= '0' then
    redis.call('ZADD', b .. ':tn', ARGV[i + 4], ARGV[i + 3])
  end
  local jk = jkey(s)
  local rec = redis.call('HGETALL', jk)
  local f = {}
  for r = 1, #rec, 2 do f[rec[r]] = rec[r + 1] end
  -- a hold under another token is a later claim's: the token first
  if f.s == 'pending' and f.l == tok and redis.call('ZREM', b .. ':lh', s) == 1 then
    if took then
      taken = taken + 1
      -- the hold's token is the claim's
      start(jk, s, f, rec, tok, now_s, deadline, out, running)
    else
      redis.call('SADD', b .. ':pk', s)
    end
  end
end
if #running > 0 then call_many('ZADD', b .. ':run', running, 2) end
if taken > 0 then redis.call('HINCRBY', b .. ':n', 'p', 0 - taken) end
if #out == 2 then return {} end
return out
";

/// The compiled scripts.
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) enqueue_one: Script,
    pub(crate) claim: Script,
    pub(crate) complete: Script,
    pub(crate) complete_claim: Script,
    pub(crate) heartbeat: Script,
    pub(crate) progress: Script,
    pub(crate) recover: Script,
    pub(crate) probe: Script,
    pub(crate) stats: Script,
    pub(crate) pause: Script,
    pub(crate) paused: Script,
    pub(crate) cancel: Script,
    pub(crate) flush: Script,
    pub(crate) purge: Script,
    pub(crate) dead_list: Script,
    pub(crate) list: Script,
    pub(crate) retry_dead: Script,
    pub(crate) delete_dead: Script,
    pub(crate) wait_finished: Script,
    pub(crate) enqueue_unique: Script,
    pub(crate) unique_reserve: Script,
    pub(crate) unique_release: Script,
    pub(crate) unique_holder: Script,
    pub(crate) unique_forget: Script,
    pub(crate) unique_alive: Script,
    pub(crate) limit_take: Script,
    pub(crate) limit_step: Script,
    pub(crate) limit_look: Script,
    pub(crate) limit_check: Script,
    pub(crate) limit_register: Script,
    pub(crate) limit_forget: Script,
    pub(crate) ready_parked: Script,
    pub(crate) settle: Script,
    pub(crate) rate_take: Script,
    pub(crate) rate_promote: Script,
    pub(crate) turn_set: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// [`COMPLETE`] then [`CLAIM`] in one call, on one slot: a consumer's worker
/// hands back its lease and takes its next job in one round trip. ARGV: the
/// count `n` of [`COMPLETE`]'s arguments, those `n` arguments, then
/// [`CLAIM`]'s. Returns the two replies.
fn complete_claim() -> Script {
    script(&format!(
        "local function complete_batch(ARGV)\n{COMPLETE}\nend\n\
         local function claim_batch(ARGV)\n{CLAIM}\nend\n\
         local n = tonumber(ARGV[1])\n\
         local done = complete_batch({{unpack(ARGV, 2, n + 1)}})\n\
         return {{done, claim_batch({{unpack(ARGV, n + 2)}})}}\n"
    ))
}

/// The scripts, hashed once per process.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: script(ENQUEUE),
    enqueue_one: Script::new(ENQUEUE_ONE),
    claim: script(CLAIM),
    complete: script(COMPLETE),
    complete_claim: complete_claim(),
    heartbeat: script(HEARTBEAT),
    progress: script(PROGRESS),
    recover: script(RECOVER),
    probe: script(PROBE),
    stats: script(STATS),
    pause: script(PAUSE),
    paused: script(PAUSED),
    cancel: script(CANCEL),
    flush: script(FLUSH),
    purge: script(PURGE),
    dead_list: script(DEAD_LIST),
    list: script(LIST),
    retry_dead: script(RETRY_DEAD),
    delete_dead: script(DELETE_DEAD),
    wait_finished: Script::new(WAIT_FINISHED),
    enqueue_unique: enqueue_unique(),
    unique_reserve: Script::new(UNIQUE_RESERVE),
    unique_release: Script::new(UNIQUE_RELEASE),
    unique_holder: Script::new(UNIQUE_HOLDER),
    unique_forget: Script::new(UNIQUE_FORGET),
    unique_alive: Script::new(UNIQUE_ALIVE),
    limit_take: Script::new(LIMIT_TAKE),
    limit_step: Script::new(LIMIT_STEP),
    limit_look: Script::new(LIMIT_LOOK),
    limit_check: Script::new(LIMIT_CHECK),
    limit_register: Script::new(LIMIT_REGISTER),
    limit_forget: Script::new(LIMIT_FORGET),
    ready_parked: script(READY_PARKED),
    settle: script(SETTLE),
    rate_take: script(RATE_TAKE),
    rate_promote: script(RATE_PROMOTE),
    turn_set: script(TURN_SET),
});
