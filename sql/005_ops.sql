-- What an operator needs: keys imported from other proxies (legacy keys,
-- found by hash without tollgate's checksum), time bounds for exports,
-- and pruning by age for `tollgate sweep --retain`.

-- A legacy key was imported as its plaintext's HMAC like every key, but
-- its text has no checksum; the authorizer looks such keys up only when
-- they are marked here, so a made-up string matches nothing else.
ALTER TABLE api_keys ADD COLUMN legacy boolean NOT NULL DEFAULT false;

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
