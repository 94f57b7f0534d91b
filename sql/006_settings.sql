-- Settings staff change on the admin pages take effect on the next request:
-- the request path reads them in the calls it already makes (tg_reserve
-- here; the relay's claim query for output_cap), never in a round trip of
-- its own. A non-empty value in the table wins over tollgate.conf, whose
-- value is the default.

-- A numeric setting, or NULL when it is empty (or, defensively, not a
-- number: the admin pages accept only numbers).
CREATE FUNCTION tg_setting_int(p_name text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN value ~ '^[0-9]{1,12}$' THEN value::bigint END
      FROM settings WHERE name = p_name
$$;

-- 001 seeded reservation_tokens with 2048, tollgate.conf's own default; kept,
-- it would now override every tollgate.conf. Empty means "tollgate.conf's";
-- a value staff chose (anything but the seed) stays.
UPDATE settings SET value = ''
 WHERE name = 'reservation_tokens' AND value = '2048';

-- As in 002, but the reservation's size comes from the key, else the
-- settings table, else the caller (tollgate.conf).
CREATE OR REPLACE FUNCTION tg_reserve(p_hash text, p_tz text, p_want bigint, p_ttl integer,
                           p_endpoint text, p_metered boolean, p_need_admin boolean)
RETURNS TABLE (outcome text, key_id bigint, reservation_id bigint,
               tokens bigint, expires_at bigint, limit_name text,
               retry_after bigint, req_limit bigint, req_remaining bigint,
               tok_limit bigint, tok_remaining bigint)
LANGUAGE plpgsql AS $$
DECLARE
    k api_keys%ROWTYPE;
    t_min timestamptz := tg_period_start('minute', p_tz);
    t_day timestamptz := tg_period_start('day', p_tz);
    t_mon timestamptz := tg_period_start('month', p_tz);
    q_min quota_usage%ROWTYPE;
    q_day quota_usage%ROWTYPE;
    q_mon quota_usage%ROWTYPE;
    left_day bigint;
    left_mon bigint;
    want bigint;
    state text;
    exp timestamptz := now() + make_interval(secs => p_ttl);
BEGIN
    SELECT * INTO k FROM api_keys WHERE key_hash = p_hash FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN NEXT;
        RETURN;
    END IF;
    key_id := k.id;
    state := tg_key_state(k.disabled_at, k.not_before, k.expires_at);
    IF state <> 'active' THEN
        outcome := state;
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_need_admin AND k.scope <> 'admin' THEN
        outcome := 'scope';
        RETURN NEXT;
        RETURN;
    END IF;

    INSERT INTO quota_usage (key_id, period, period_start)
    VALUES (k.id, 'minute', t_min), (k.id, 'day', t_day), (k.id, 'month', t_mon)
    ON CONFLICT DO NOTHING;
    PERFORM tg_reclaim(k.id);
    SELECT * INTO q_min FROM quota_usage q WHERE q.key_id = k.id
       AND period = 'minute' AND period_start = t_min FOR UPDATE;
    SELECT * INTO q_day FROM quota_usage q WHERE q.key_id = k.id
       AND period = 'day' AND period_start = t_day FOR UPDATE;
    SELECT * INTO q_mon FROM quota_usage q WHERE q.key_id = k.id
       AND period = 'month' AND period_start = t_mon FOR UPDATE;

    left_day := k.tokens_day_limit - q_day.tokens_used - q_day.tokens_reserved;
    left_mon := k.tokens_month_limit - q_mon.tokens_used - q_mon.tokens_reserved;
    -- The tightest of each kind, for x-ratelimit-* headers.
    SELECT l, r INTO req_limit, req_remaining FROM (VALUES
        (k.rpm_limit, k.rpm_limit - q_min.requests),
        (k.requests_day_limit, k.requests_day_limit - q_day.requests),
        (k.requests_month_limit, k.requests_month_limit - q_mon.requests)) v(l, r)
     WHERE l IS NOT NULL ORDER BY r, l LIMIT 1;
    SELECT l, r INTO tok_limit, tok_remaining FROM (VALUES
        (k.tokens_day_limit, left_day), (k.tokens_month_limit, left_mon)) v(l, r)
     WHERE l IS NOT NULL ORDER BY r, l LIMIT 1;

    limit_name := CASE
        WHEN q_min.requests >= k.rpm_limit THEN 'requests per minute'
        WHEN q_day.requests >= k.requests_day_limit THEN 'requests per day'
        WHEN q_mon.requests >= k.requests_month_limit THEN 'requests per month'
        WHEN p_metered AND left_day <= 0 THEN 'tokens per day'
        WHEN p_metered AND left_mon <= 0 THEN 'tokens per month'
    END;
    IF limit_name IS NOT NULL THEN
        outcome := 'limit';
        retry_after := ceil(extract(epoch FROM CASE split_part(limit_name, ' ', 3)
            WHEN 'minute' THEN t_min + interval '1 minute'
            WHEN 'day' THEN tg_period_start('day', p_tz, t_day + interval '36 hours')
            ELSE tg_period_start('month', p_tz, t_mon + interval '45 days')
        END - now()));
        req_remaining := greatest(req_remaining, 0);
        tok_remaining := greatest(tok_remaining, 0);
        RETURN NEXT;
        RETURN;
    END IF;

    -- The key's own size, else the Settings page's, else tollgate.conf's.
    want := CASE WHEN p_metered THEN coalesce(k.reservation_tokens,
        tg_setting_int('reservation_tokens'), p_want) ELSE 0 END;
    want := least(want, coalesce(left_day, want), coalesce(left_mon, want));
    INSERT INTO reservations (key_id, tokens, day_start, month_start, endpoint, expires_at)
    VALUES (k.id, want, t_day, t_mon, p_endpoint, exp)
    RETURNING id INTO reservation_id;
    UPDATE quota_usage q SET requests = q.requests + 1,
           tokens_reserved = q.tokens_reserved + CASE WHEN period = 'minute' THEN 0 ELSE want END
     WHERE q.key_id = k.id AND ((period = 'minute' AND period_start = t_min)
        OR (period = 'day' AND period_start = t_day)
        OR (period = 'month' AND period_start = t_mon));
    outcome := 'ok';
    tokens := want;
    expires_at := floor(extract(epoch FROM exp));
    req_remaining := req_remaining - 1;
    tok_remaining := tok_remaining - want;
    RETURN NEXT;
END $$;
