-- pgbench script for bench/run: the authorizer's one statement, as
-- authz/authz.c sends it, on key 1..:keys (pgbench -D keys=N;
-- bench/run inserts keys whose hashes these are).
\set k random(1, :keys)
SELECT outcome, key_id, reservation_id FROM tg_reserve(encode(sha256(('bench-' || :k)::bytea), 'hex'), 'UTC', 2048, 900, 'chat', true, false);
