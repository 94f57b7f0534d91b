-- The request path: reserve (authorizer), claim and top up (relay), settle
-- (relay). Each is one function, so each is one round trip and one
-- transaction. Lock order everywhere: the api_keys row, then reservations,
-- then quota_usage rows, so concurrent calls on one key queue, never deadlock.

-- Moves a reservation's tokens out of `tokens_reserved` of the periods it was
-- booked into and charges `charge` tokens to them.
CREATE FUNCTION tg_unreserve(p_key bigint, p_tokens bigint, p_day timestamptz,
                             p_month timestamptz, p_charge bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE quota_usage
       SET tokens_reserved = greatest(tokens_reserved - p_tokens, 0),
           tokens_used = tokens_used + p_charge
     WHERE key_id = p_key
       AND ((period = 'day' AND period_start = p_day)
         OR (period = 'month' AND period_start = p_month))
$$;

-- Expired reservations of one key (the caller holds the key's lock): never
-- claimed means the request never ran, so refund; claimed but never settled
-- means the relay died mid-request, so charge all of it (the most it could
-- have let through) and record the loss.
CREATE FUNCTION tg_reclaim(p_key bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r reservations%ROWTYPE;
    n integer := 0;
BEGIN
    FOR r IN UPDATE reservations SET settled_at = now()
              WHERE key_id = p_key AND settled_at IS NULL AND expires_at < now()
             RETURNING * LOOP
        IF r.claimed_at IS NULL THEN
            PERFORM tg_unreserve(p_key, r.tokens, r.day_start, r.month_start, 0);
        ELSE
            PERFORM tg_unreserve(p_key, r.tokens, r.day_start, r.month_start, r.tokens);
            INSERT INTO usage_events (key_id, reservation_id, endpoint,
                                      completion_tokens, status)
            VALUES (p_key, r.id, r.endpoint, r.tokens, 'lost');
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- The authorizer's one call. Outcomes: ok, unknown, disabled, expired,
-- not_yet_valid, scope, limit. On `limit`, limit_name says which and
-- retry_after when its period ends. The x-ratelimit figures are the tightest
-- request and token limits (NULL when unlimited).
CREATE FUNCTION tg_reserve(p_hash text, p_tz text, p_want bigint, p_ttl integer,
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

    want := CASE WHEN p_metered THEN coalesce(k.reservation_tokens, p_want) ELSE 0 END;
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

-- The relay claims a reservation once: a ticket is good for one request.
-- Claiming extends the expiry, so the relay has the whole TTL from now.
-- Returns the reserved tokens and the key's policy (models, lock, output
-- cap), or no row.
CREATE FUNCTION tg_claim(p_resv bigint, p_key bigint, p_ttl integer)
RETURNS TABLE (tokens bigint, scope text, allowed_models text[],
               force_model text, key_name text, max_output_tokens bigint)
LANGUAGE sql AS $$
    UPDATE reservations r
       SET claimed_at = now(),
           expires_at = greatest(r.expires_at, now() + make_interval(secs => p_ttl))
      FROM api_keys k
     WHERE r.id = p_resv AND r.key_id = p_key AND k.id = r.key_id
       AND r.claimed_at IS NULL AND r.settled_at IS NULL
       AND r.expires_at > now()
    RETURNING r.tokens, k.scope, k.allowed_models, k.force_model, k.name,
              k.max_output_tokens
$$;

-- Raises a claimed reservation towards `p_want` within what remains of the
-- periods it was booked into. Returns the reservation's new size.
CREATE FUNCTION tg_topup(p_resv bigint, p_key bigint, p_want bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    k api_keys%ROWTYPE;
    r reservations%ROWTYPE;
    room bigint;
BEGIN
    SELECT * INTO k FROM api_keys WHERE id = p_key FOR UPDATE;
    SELECT * INTO r FROM reservations WHERE id = p_resv AND key_id = p_key
       AND settled_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF p_want <= r.tokens THEN
        RETURN r.tokens;
    END IF;
    SELECT min(CASE q.period WHEN 'day' THEN k.tokens_day_limit
                             ELSE k.tokens_month_limit END
               - q.tokens_used - q.tokens_reserved)
      INTO room FROM quota_usage q
     WHERE q.key_id = p_key
       AND ((q.period = 'day' AND q.period_start = r.day_start AND k.tokens_day_limit IS NOT NULL)
         OR (q.period = 'month' AND q.period_start = r.month_start AND k.tokens_month_limit IS NOT NULL));
    room := greatest(least(coalesce(room, p_want - r.tokens), p_want - r.tokens), 0);
    IF room > 0 THEN
        UPDATE reservations SET tokens = tokens + room WHERE id = p_resv;
        UPDATE quota_usage q SET tokens_reserved = q.tokens_reserved + room
         WHERE q.key_id = p_key
           AND ((period = 'day' AND period_start = r.day_start)
             OR (period = 'month' AND period_start = r.month_start));
    END IF;
    RETURN r.tokens + room;
END $$;

-- Settles a reservation exactly once: a second call finds settled_at set
-- and changes nothing (returns false).
CREATE FUNCTION tg_settle(p_resv bigint, p_key bigint, p_prompt bigint,
                          p_completion bigint, p_model text, p_endpoint text,
                          p_status text, p_http integer, p_latency integer,
                          p_ttfb integer, p_upstream text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    r reservations%ROWTYPE;
BEGIN
    PERFORM 1 FROM api_keys WHERE id = p_key FOR UPDATE;
    UPDATE reservations SET settled_at = now()
     WHERE id = p_resv AND key_id = p_key AND settled_at IS NULL
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM tg_unreserve(p_key, r.tokens, r.day_start, r.month_start,
                         p_prompt + p_completion);
    INSERT INTO usage_events (key_id, reservation_id, model, endpoint,
                              prompt_tokens, completion_tokens, status,
                              http_status, latency_ms, ttfb_ms, upstream)
    VALUES (p_key, p_resv, p_model, p_endpoint, p_prompt, p_completion,
            p_status, p_http, p_latency, p_ttfb, p_upstream);
    RETURN true;
END $$;
