-- The consumer registry: a row per registered consumer process. id is the
-- consumer's own id (host, pid and start time); info its ConsumerInfo as
-- JSON; seen_at when it last registered and expires_at when that
-- registration's ttl ends, both in microseconds since the Unix epoch on the
-- database's clock. A consumer is alive until expires_at, and its row is
-- deleted once it has been gone for a while, by the next registration or
-- listing. Ids compare byte for byte (utf8mb4_bin), as queue names do.
CREATE TABLE {p}consumers (
    id VARCHAR(255) NOT NULL PRIMARY KEY,
    info TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
