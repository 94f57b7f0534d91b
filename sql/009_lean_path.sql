-- The request path's three calls with less work in each (issue 9's
-- profile, bench/RESULTS.md). Same outcomes, and the key's lock still comes
-- first and guards the rest; what goes is work PostgreSQL redid on every call:
--  - tg_setting_int is a LANGUAGE sql function with a FROM clause, which
--    cannot be inlined, so it was parsed and planned on every call (about
--    60 us, three times per request). The request path now reads the
--    settings table in statements PL/pgSQL keeps the plans of.
--  - Each statement PL/pgSQL runs costs 10-20 us however small it is. The
--    reservation was about a dozen; now four: lock the key, read the
--    three periods at once, pick the tightest limits, insert and count.
--    INSERT ... ON CONFLICT for the quota rows and tg_reclaim ran on every
--    call; now only for a new minute, day or month, or an expired
--    reservation. The settlement is two statements instead of five.
--  - tg_claim read each setting in a subquery of its own, in a statement
--    the relay sent as text and PostgreSQL planned on every call; now one
--    PL/pgSQL function reads the settings table once.

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
    n_rows bigint;
    stale boolean;
    min_req bigint;
    day_req bigint;
    day_spent bigint;
    mon_req bigint;
    mon_spent bigint;
    set_want text;
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

    -- Every writer of a key's quota rows (reserve, reclaim, top-up,
    -- settle) holds the key's lock, which this call holds: plain reads see
    -- the rows as they stand, and one read gets all three periods, whether
    -- an expired reservation needs reclaiming, and the Settings page's
    -- reservation size. Reclaiming, or a new minute, day or month, takes a
    -- second pass.
    FOR pass IN 1..2 LOOP
        SELECT count(*),
               sum(q.requests) FILTER (WHERE q.period = 'minute'),
               sum(q.requests) FILTER (WHERE q.period = 'day'),
               sum(q.tokens_used + q.tokens_reserved) FILTER (WHERE q.period = 'day'),
               sum(q.requests) FILTER (WHERE q.period = 'month'),
               sum(q.tokens_used + q.tokens_reserved) FILTER (WHERE q.period = 'month'),
               EXISTS (SELECT 1 FROM reservations r WHERE r.key_id = k.id
                          AND r.settled_at IS NULL AND r.expires_at < now()),
               (SELECT s.value FROM settings s WHERE s.name = 'reservation_tokens')
          INTO n_rows, min_req, day_req, day_spent, mon_req, mon_spent, stale, set_want
          FROM quota_usage q
         WHERE q.key_id = k.id AND ((q.period = 'minute' AND q.period_start = t_min)
            OR (q.period = 'day' AND q.period_start = t_day)
            OR (q.period = 'month' AND q.period_start = t_mon));
        EXIT WHEN n_rows = 3 AND NOT stale;
        IF stale THEN
            PERFORM tg_reclaim(k.id);
        END IF;
        IF n_rows < 3 THEN
            INSERT INTO quota_usage (key_id, period, period_start)
            VALUES (k.id, 'minute', t_min), (k.id, 'day', t_day), (k.id, 'month', t_mon)
            ON CONFLICT DO NOTHING;
        END IF;
    END LOOP;

    left_day := k.tokens_day_limit - day_spent;
    left_mon := k.tokens_month_limit - mon_spent;
    -- The tightest of each kind, for x-ratelimit-* headers.
    SELECT a.l, a.r, b.l, b.r
      INTO req_limit, req_remaining, tok_limit, tok_remaining
      FROM (SELECT) z
      LEFT JOIN LATERAL (SELECT l, r FROM (VALUES
            (k.rpm_limit, k.rpm_limit - min_req),
            (k.requests_day_limit, k.requests_day_limit - day_req),
            (k.requests_month_limit, k.requests_month_limit - mon_req)) v(l, r)
           WHERE l IS NOT NULL ORDER BY r, l LIMIT 1) a ON true
      LEFT JOIN LATERAL (SELECT l, r FROM (VALUES
            (k.tokens_day_limit, left_day), (k.tokens_month_limit, left_mon)) v(l, r)
           WHERE l IS NOT NULL ORDER BY r, l LIMIT 1) b ON true;

    limit_name := CASE
        WHEN min_req >= k.rpm_limit THEN 'requests per minute'
        WHEN day_req >= k.requests_day_limit THEN 'requests per day'
        WHEN mon_req >= k.requests_month_limit THEN 'requests per month'
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
        CASE WHEN set_want ~ '^[0-9]{1,12}$' THEN set_want::bigint END, p_want) ELSE 0 END;
    want := least(want, coalesce(left_day, want), coalesce(left_mon, want));
    WITH r AS (
        INSERT INTO reservations (key_id, tokens, day_start, month_start, endpoint, expires_at)
        VALUES (k.id, want, t_day, t_mon, p_endpoint, exp)
        RETURNING id),
    u AS (
        UPDATE quota_usage q SET requests = q.requests + 1,
               tokens_reserved = q.tokens_reserved + CASE WHEN period = 'minute' THEN 0 ELSE want END
         WHERE q.key_id = k.id AND ((period = 'minute' AND period_start = t_min)
            OR (period = 'day' AND period_start = t_day)
            OR (period = 'month' AND period_start = t_mon)))
    SELECT r.id INTO reservation_id FROM r;
    outcome := 'ok';
    tokens := want;
    expires_at := floor(extract(epoch FROM exp));
    req_remaining := req_remaining - 1;
    tok_remaining := tok_remaining - want;
    RETURN NEXT;
END $$;

-- The relay's claim, whole: the reservation (once: a ticket is good for
-- one request; claiming extends the expiry so the relay has the whole TTL
-- from now), the key's policy, and the settings staff may change at run
-- time (empty means tollgate.conf's). No row: replayed, expired or gone.
DROP FUNCTION tg_claim(bigint, bigint, integer);
CREATE FUNCTION tg_claim(p_resv bigint, p_key bigint, p_ttl integer)
RETURNS TABLE (tokens bigint, allowed_models json, force_model text,
               setting_force_model text, max_output_tokens bigint,
               setting_output_cap bigint, setting_reservation_tokens bigint,
               capture_bodies boolean, key_name text,
               setting_upstream_url text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH c AS (
        UPDATE reservations r
           SET claimed_at = now(),
               expires_at = greatest(r.expires_at, now() + make_interval(secs => p_ttl))
         WHERE r.id = p_resv AND r.key_id = p_key
           AND r.claimed_at IS NULL AND r.settled_at IS NULL
           AND r.expires_at > now()
        RETURNING r.tokens, r.key_id),
    s AS (
        SELECT max(v.value) FILTER (WHERE v.name = 'force_model') AS force_model,
               max(v.value) FILTER (WHERE v.name = 'output_cap') AS output_cap,
               max(v.value) FILTER (WHERE v.name = 'reservation_tokens') AS resv,
               max(v.value) FILTER (WHERE v.name = 'upstream_url') AS upstream_url
          FROM settings v)
    SELECT c.tokens, array_to_json(k.allowed_models), k.force_model,
           s.force_model, k.max_output_tokens,
           CASE WHEN s.output_cap ~ '^[0-9]{1,12}$' THEN s.output_cap::bigint END,
           CASE WHEN s.resv ~ '^[0-9]{1,12}$' THEN s.resv::bigint END,
           k.capture_bodies, k.name, s.upstream_url
      FROM c JOIN api_keys k ON k.id = c.key_id CROSS JOIN s;
END $$;

CREATE OR REPLACE FUNCTION tg_settle(p_resv bigint, p_key bigint, p_prompt bigint,
                          p_completion bigint, p_model text, p_endpoint text,
                          p_status text, p_http integer, p_latency integer,
                          p_ttfb integer, p_upstream text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    done boolean;
BEGIN
    -- The key's lock first, as everywhere: the quota rows below are locked
    -- in heap order, tg_reserve's in period order; the key's lock keeps
    -- the two from ever waiting on each other.
    PERFORM 1 FROM api_keys WHERE id = p_key FOR UPDATE;
    WITH r AS (
        UPDATE reservations SET settled_at = now()
         WHERE id = p_resv AND key_id = p_key AND settled_at IS NULL
        RETURNING tokens, day_start, month_start),
    u AS (
        UPDATE quota_usage q
           SET tokens_reserved = greatest(q.tokens_reserved - r.tokens, 0),
               tokens_used = q.tokens_used + p_prompt + p_completion
          FROM r
         WHERE q.key_id = p_key
           AND ((q.period = 'day' AND q.period_start = r.day_start)
             OR (q.period = 'month' AND q.period_start = r.month_start))),
    e AS (
        INSERT INTO usage_events (key_id, reservation_id, model, endpoint,
                                  prompt_tokens, completion_tokens, status,
                                  http_status, latency_ms, ttfb_ms, upstream)
        SELECT p_key, p_resv, p_model, p_endpoint, p_prompt, p_completion,
               p_status, p_http, p_latency, p_ttfb, p_upstream FROM r)
    SELECT count(*) = 1 INTO done FROM r;
    RETURN done;
END $$;
