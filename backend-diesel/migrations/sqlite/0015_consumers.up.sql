-- The consumer registry: a row per registered consumer process. id is the
-- consumer's own id (host, pid and start time); info its ConsumerInfo as
-- JSON; seen_at when it last registered and expires_at when that
-- registration's ttl ends, both in microseconds since the Unix epoch on the
-- database's clock. A consumer is alive until expires_at, and its row is
-- deleted once it has been gone for a while, by the next registration or
-- listing. WITHOUT ROWID: every statement finds rows by id or reads them all.
CREATE TABLE {p}consumers (
    id TEXT NOT NULL PRIMARY KEY,
    info TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) WITHOUT ROWID;
