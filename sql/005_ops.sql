-- What an operator needs: keys imported from other proxies (legacy keys,
-- found by hash without tollgate's checksum), time bounds for exports,
-- and pruning by age for `tollgate sweep --retain`.

-- A legacy key was imported as its plaintext's HMAC like every key, but
-- its text has no checksum; the authorizer looks such keys up only when
-- they are marked here, so a made-up string matches nothing else.
ALTER TABLE api_keys ADD COLUMN legacy boolean NOT NULL DEFAULT false;

-- Opt-in per key: the relay stores each request body here, for Recent
-- requests. Not gzip: PostgreSQL compresses a text value itself once it
-- passes the TOAST threshold (about 2 kB; pglz, or lz4 where the server
-- was built with it and default_toast_compression says so), which keeps
-- zlib out of tollgate and the bodies inside the database's backups and
-- retention. STORAGE EXTENDED (the default for text, stated here) allows
-- both compression and out-of-line storage.
ALTER TABLE api_keys ADD COLUMN capture_bodies boolean NOT NULL DEFAULT false;
CREATE TABLE request_bodies (
    reservation_id bigint PRIMARY KEY,
    key_id         bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    at             timestamptz NOT NULL DEFAULT now(),
    body           text NOT NULL
);
ALTER TABLE request_bodies ALTER COLUMN body SET STORAGE EXTENDED;
CREATE INDEX request_bodies_at ON request_bodies (at);

-- The instant an operator means by `p` in zone `tz`: '7d' and '24h' count
-- back from now; '2027-01-31' is that day's start (its end when p_end, so
-- an --until date includes the day); a time with an offset is taken as
-- given; one without is local to tz. Bad text raises 22007/22008.
CREATE FUNCTION tg_parse_time(p text, tz text, p_end boolean DEFAULT false)
RETURNS timestamptz LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
    IF p ~ '^[0-9]{1,6}[dh]$' THEN
        RETURN now() - make_interval(
            days => CASE WHEN right(p, 1) = 'd' THEN left(p, -1)::int ELSE 0 END,
            hours => CASE WHEN right(p, 1) = 'h' THEN left(p, -1)::int ELSE 0 END);
    ELSIF p ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
        RETURN ((p::date + CASE WHEN p_end THEN 1 ELSE 0 END)::timestamp)
               AT TIME ZONE tz;
    ELSIF p ~ '[0-9]:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$' THEN
        RETURN p::timestamptz;
    ELSE
        RETURN p::timestamp AT TIME ZONE tz;
    END IF;
END $$;

-- Everything with a retention, older than p_keep: usage events, quota rows
-- of periods that ended before it, spent admin sessions and login attempts.
CREATE FUNCTION tg_prune(p_keep interval)
RETURNS TABLE (what text, removed bigint) LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := now() - p_keep;
BEGIN
    what := 'usage event(s)';
    WITH d AS (DELETE FROM usage_events WHERE at < cutoff RETURNING 1)
    SELECT count(*) INTO removed FROM d;
    RETURN NEXT;
    what := 'quota row(s)';
    WITH d AS (DELETE FROM quota_usage
                WHERE period_start + CASE period WHEN 'minute' THEN interval '1 minute'
                      WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END < cutoff
                  AND tokens_reserved = 0
               RETURNING 1)
    SELECT count(*) INTO removed FROM d;
    RETURN NEXT;
    what := 'request body(ies)';
    WITH d AS (DELETE FROM request_bodies WHERE at < cutoff RETURNING 1)
    SELECT count(*) INTO removed FROM d;
    RETURN NEXT;
    what := 'admin session(s)';
    WITH d AS (DELETE FROM admin_sessions WHERE expires_at < cutoff RETURNING 1)
    SELECT count(*) INTO removed FROM d;
    RETURN NEXT;
    what := 'login attempt(s)';
    WITH d AS (DELETE FROM admin_login_attempts WHERE at < cutoff RETURNING 1)
    SELECT count(*) INTO removed FROM d;
    RETURN NEXT;
END $$;

-- The authorizer's call for a key without tollgate's checksum: as
-- tg_reserve, but only a key marked legacy can match.
CREATE FUNCTION tg_reserve_legacy(p_hash text, p_tz text, p_want bigint,
                                  p_ttl integer, p_endpoint text,
                                  p_metered boolean, p_need_admin boolean)
RETURNS TABLE (outcome text, key_id bigint, reservation_id bigint,
               tokens bigint, expires_at bigint, limit_name text,
               retry_after bigint, req_limit bigint, req_remaining bigint,
               tok_limit bigint, tok_remaining bigint)
LANGUAGE sql AS $$
    SELECT * FROM tg_reserve(
        CASE WHEN EXISTS (SELECT 1 FROM api_keys k
                           WHERE k.key_hash = p_hash AND k.legacy)
             THEN p_hash ELSE '' END,
        p_tz, p_want, p_ttl, p_endpoint, p_metered, p_need_admin)
$$;

-- The key report of 001, with the two new columns.
CREATE OR REPLACE FUNCTION tg_key_report(tz text)
RETURNS TABLE (id bigint, name text, report json) LANGUAGE sql STABLE AS $$
    SELECT k.id, k.name, json_build_object(
        'id', k.id, 'name', k.name, 'display_prefix', k.display_prefix,
        'scope', k.scope,
        'state', tg_key_state(k.disabled_at, k.not_before, k.expires_at),
        'allowed_models', k.allowed_models, 'force_model', k.force_model,
        'rpm_limit', k.rpm_limit,
        'requests_day_limit', k.requests_day_limit,
        'requests_month_limit', k.requests_month_limit,
        'tokens_day_limit', k.tokens_day_limit,
        'tokens_month_limit', k.tokens_month_limit,
        'reservation_tokens', k.reservation_tokens,
        'max_output_tokens', k.max_output_tokens,
        'capture_bodies', k.capture_bodies, 'legacy', k.legacy,
        'created_at', k.created_at, 'updated_at', k.updated_at,
        'rotated_at', k.rotated_at, 'not_before', k.not_before,
        'expires_at', k.expires_at, 'disabled_at', k.disabled_at,
        'tokens_today', COALESCE(d.tokens_used, 0),
        'tokens_month', COALESCE(m.tokens_used, 0),
        'requests_today', COALESCE(d.requests, 0),
        'requests_month', COALESCE(m.requests, 0),
        'reserved_tokens', COALESCE((SELECT sum(r.tokens) FROM reservations r
                                     WHERE r.key_id = k.id
                                       AND r.settled_at IS NULL), 0),
        'open_reservations', (SELECT count(*) FROM reservations r
                              WHERE r.key_id = k.id AND r.settled_at IS NULL))
    FROM api_keys k
    LEFT JOIN quota_usage d ON d.key_id = k.id AND d.period = 'day'
         AND d.period_start = tg_period_start('day', tz)
    LEFT JOIN quota_usage m ON m.key_id = k.id AND m.period = 'month'
         AND m.period_start = tg_period_start('month', tz)
$$;
