//! The consumer registry: [`BaseQueue::register_consumer`](outband::BaseQueue::register_consumer)
//! and its siblings.
//!
//! Its keys share the hash tag `{namespace:consumers}`, so on a cluster they
//! are in one slot and each call is one script on one node: the hash
//! `:info` maps each consumer's id to its [`ConsumerInfo`] as JSON, and the
//! sorted sets `:seen` and `:expires` hold, for each id, when it last
//! registered and when that registration's ttl ends (µs of the server's
//! `TIME`). Every call is one script, as a cluster connection takes no
//! `MULTI`; each first removes the consumers gone for
//! [`CONSUMER_FORGET_AFTER`], a bounded number per call.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use outband::{CONSUMER_FORGET_AFTER, Consumer, ConsumerInfo, Error};
use redis::{Script, Value};

use crate::{RedisQueue, array, text};

/// Shared by both scripts: the server's time in µs, and the removal of up
/// to 100 consumers whose ttl ended more than `ARGV[1]` µs ago. A Lua
/// number passed to `redis.call` is written with 14 digits, so times go as
/// strings written whole (`us`).
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function us(n) return string.format('%.0f', n) end
local forgotten = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', us(now - tonumber(ARGV[1])), 'LIMIT', 0, 100)
for _, id in ipairs(forgotten) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
";

/// Stores `ARGV[3]` (the info) under id `ARGV[2]`, seen now, alive for
/// `ARGV[4]` µs.
const REGISTER: &str = r"
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], us(now), ARGV[2])
redis.call('ZADD', KEYS[3], us(now + tonumber(ARGV[4])), ARGV[2])
return 1
";

/// Removes id `ARGV[2]`.
const UNREGISTER: &str = r"
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
";

/// The server's time, then each consumer as id, info, seen, expires.
const LIST: &str = r"
local reply = { us(now) }
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, id in ipairs(ids) do
  local info = redis.call('HGET', KEYS[1], id)
  if info then
    reply[#reply + 1] = id
    reply[#reply + 1] = info
    reply[#reply + 1] = redis.call('ZSCORE', KEYS[2], id)
    reply[#reply + 1] = redis.call('ZSCORE', KEYS[3], id)
  end
end
return reply
";

struct Scripts {
    register: Script,
    unregister: Script,
    list: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    register: Script::new(&format!("{PRELUDE}{REGISTER}")),
    unregister: Script::new(&format!("{PRELUDE}{UNREGISTER}")),
    list: Script::new(&format!("{PRELUDE}{LIST}")),
});

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A time in µs as the scripts return it: a whole number, or a score,
/// which Redis writes as a float when it is large.
fn time_of_micros(value: &Value) -> SystemTime {
    let micros = if let Value::Double(float) = value {
        float.round() as u64
    } else {
        let text = text(value);
        text.parse::<u64>()
            .ok()
            .or_else(|| text.parse::<f64>().ok().map(|float| float.round() as u64))
            .unwrap_or(0)
    };
    UNIX_EPOCH + Duration::from_micros(micros)
}

impl RedisQueue {
    /// The registry's keys: info hash, seen and expiry sorted sets.
    fn consumer_keys(&self) -> [String; 3] {
        let tag = format!("{{{}:consumers}}", self.options().namespace);
        [
            format!("{tag}:info"),
            format!("{tag}:seen"),
            format!("{tag}:expires"),
        ]
    }

    fn consumer_script<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in self.consumer_keys() {
            invocation.key(key);
        }
        invocation.arg(micros(CONSUMER_FORGET_AFTER));
        invocation
    }

    pub(crate) fn register(&self, info: &ConsumerInfo, ttl: Duration) -> Result<(), Error> {
        let mut invocation = self.consumer_script(&SCRIPTS.register);
        invocation
            .arg(&info.id)
            .arg(info.to_json()?)
            .arg(micros(ttl).max(1));
        self.pool
            .with(|con| invocation.invoke::<Value>(con.like()))
            .map(drop)
    }

    pub(crate) fn unregister(&self, id: &str) -> Result<(), Error> {
        let mut invocation = self.consumer_script(&SCRIPTS.unregister);
        invocation.arg(id);
        self.pool
            .with(|con| invocation.invoke::<Value>(con.like()))
            .map(drop)
    }

    pub(crate) fn list_consumers(&self) -> Result<Vec<Consumer>, Error> {
        let invocation = self.consumer_script(&SCRIPTS.list);
        let reply = array(
            self.pool
                .with(|con| invocation.invoke::<Value>(con.like()))?,
        );
        let Some((now, rest)) = reply.split_first() else {
            return Err(Error::backend(
                "the consumer listing script returned nothing",
            ));
        };
        let now = time_of_micros(now);
        let mut consumers = Vec::with_capacity(rest.len() / 4);
        for entry in rest.chunks_exact(4) {
            let info = match ConsumerInfo::from_json(&text(&entry[1])) {
                Ok(info) => info,
                Err(error) => {
                    log::warn!("consumer {}: {error}", text(&entry[0]));
                    continue;
                }
            };
            let seen_at = time_of_micros(&entry[2]);
            let expires_at = time_of_micros(&entry[3]);
            consumers.push(Consumer::at(info, seen_at, expires_at, now));
        }
        Consumer::sort(&mut consumers);
        Ok(consumers)
    }
}
