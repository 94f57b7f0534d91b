-- Issue 19, points 5 and 6 and two of point 7: what a key's holder, or
-- anyone, could do to the quota books and to the admin's sign-in.
--  - A request that never reached the upstream gives its request slot back
--    (requests per minute, day and month), not only its tokens. The slot is
--    taken at reservation time, so `admitted <= limit` holds exactly under
--    any concurrency; the refund lowers the counters of the periods the
--    reservation was booked into (minute_start, new here, for the minute).
--  - A ticket is good for claim_ttl seconds (tollgate.conf, short), and so
--    is its reservation until the relay claims it: a reservation nobody
--    claimed by then can never be claimed, so tg_reserve and tg_sweep
--    reclaim it as a refund at once instead of after reservation_ttl.
--  - A 429's Retry-After is when the request could succeed: the earliest
--    moment a held reservation can come back, when that would free room,
--    else the period's end; the latest of these over every limit reached.
--  - The relay sizes its output allowance from the reservation size the
--    authorizer used: the key's own, else the Settings page's.
--  - Admin sign-in attempts are counted per address in one atomic upsert
--    before the password is checked.

ALTER TABLE reservations ADD COLUMN minute_start timestamptz;
-- True once a settlement or a reclaim gave the request slot back (the
-- request never ran); tests/invariants.sql counts requests by it.
ALTER TABLE reservations ADD COLUMN refunded boolean NOT NULL DEFAULT false;

-- Releases a reservation from the quota rows it was booked into: its
-- tokens leave tokens_reserved, `p_charge` is charged, and a refund gives
-- the request back to the minute, day and month. The caller holds the
-- key's lock and has marked the reservation settled (and refunded).
-- tg_settle does the same inline, in the statement it already runs.
CREATE FUNCTION tg_release(p_key bigint, p_tokens bigint, p_minute timestamptz,
                           p_day timestamptz, p_month timestamptz,
                           p_charge bigint, p_refund boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE quota_usage q
       SET tokens_reserved = CASE WHEN q.period = 'minute' THEN q.tokens_reserved
                                  ELSE greatest(q.tokens_reserved - p_tokens, 0) END,
           tokens_used = CASE WHEN q.period = 'minute' THEN q.tokens_used
                              ELSE q.tokens_used + p_charge END,
           requests = CASE WHEN p_refund THEN greatest(q.requests - 1, 0)
                           ELSE q.requests END
     WHERE q.key_id = p_key
       AND ((q.period = 'minute' AND p_refund AND q.period_start = p_minute)
         OR (q.period = 'day' AND q.period_start = p_day)
         OR (q.period = 'month' AND q.period_start = p_month));
END $$;

-- Expired reservations of one key (the caller holds the key's lock): never
-- claimed means the request never ran, so refund it, request included;
-- claimed but never settled means the relay died mid-request, so charge
-- all of it (the most it could have let through) and record the loss.
CREATE OR REPLACE FUNCTION tg_reclaim(p_key bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r reservations%ROWTYPE;
    n integer := 0;
BEGIN
    FOR r IN UPDATE reservations SET settled_at = now(), refunded = claimed_at IS NULL
              WHERE key_id = p_key AND settled_at IS NULL AND expires_at < now()
             RETURNING * LOOP
        PERFORM tg_release(p_key, r.tokens, r.minute_start, r.day_start, r.month_start,
                           CASE WHEN r.refunded THEN 0 ELSE r.tokens END, r.refunded);
        IF NOT r.refunded THEN
            INSERT INTO usage_events (key_id, reservation_id, endpoint,
                                      completion_tokens, status)
            VALUES (p_key, r.id, r.endpoint, r.tokens, 'lost');
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- As in 009; p_ttl is now the claim window (claim_ttl), the reservation
-- records its minute, and a limit's retry_after is when the request could
-- succeed (see the top of this file).
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

    -- As in 009: the key's lock guards every writer of its quota rows.
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

    IF min_req >= k.rpm_limit OR day_req >= k.requests_day_limit
       OR mon_req >= k.requests_month_limit
       OR (p_metered AND (left_day <= 0 OR left_mon <= 0)) THEN
        -- Each limit reached clears when its period ends or, if what the
        -- open reservations booked into that period hold is what fills it,
        -- when the first of them can come back (its expiry: a refund, or
        -- a settlement before). The request can succeed once every limit
        -- reached has cleared: the latest of those, named by its limit.
        SELECT v.name, greatest(ceil(extract(epoch FROM w.at - now())), 1)
          INTO limit_name, retry_after
          FROM (SELECT count(*) FILTER (WHERE o.minute_start = t_min) AS n_min,
                       min(o.expires_at) FILTER (WHERE o.minute_start = t_min) AS x_min,
                       count(*) FILTER (WHERE o.day_start = t_day) AS n_day,
                       coalesce(sum(o.tokens) FILTER (WHERE o.day_start = t_day), 0) AS h_day,
                       min(o.expires_at) FILTER (WHERE o.day_start = t_day) AS x_day,
                       count(*) FILTER (WHERE o.month_start = t_mon) AS n_mon,
                       coalesce(sum(o.tokens) FILTER (WHERE o.month_start = t_mon), 0) AS h_mon,
                       min(o.expires_at) FILTER (WHERE o.month_start = t_mon) AS x_mon
                  FROM reservations o
                 WHERE o.key_id = k.id AND o.settled_at IS NULL) h
         CROSS JOIN LATERAL (VALUES
            (1, 'requests per minute', min_req >= k.rpm_limit,
             min_req - h.n_min < k.rpm_limit, h.x_min, t_min + interval '1 minute'),
            (2, 'requests per day', day_req >= k.requests_day_limit,
             day_req - h.n_day < k.requests_day_limit, h.x_day,
             tg_period_start('day', p_tz, t_day + interval '36 hours')),
            (3, 'requests per month', mon_req >= k.requests_month_limit,
             mon_req - h.n_mon < k.requests_month_limit, h.x_mon,
             tg_period_start('month', p_tz, t_mon + interval '45 days')),
            (4, 'tokens per day', p_metered AND left_day <= 0,
             day_spent - h.h_day < k.tokens_day_limit AND h.h_day > 0, h.x_day,
             tg_period_start('day', p_tz, t_day + interval '36 hours')),
            (5, 'tokens per month', p_metered AND left_mon <= 0,
             mon_spent - h.h_mon < k.tokens_month_limit AND h.h_mon > 0, h.x_mon,
             tg_period_start('month', p_tz, t_mon + interval '45 days'))
            ) v(i, name, hit, held, held_until, period_end)
         CROSS JOIN LATERAL (SELECT CASE WHEN v.held AND v.held_until IS NOT NULL
                                         THEN least(v.held_until, v.period_end)
                                         ELSE v.period_end END AS at) w
         WHERE v.hit
         ORDER BY w.at DESC, v.i
         LIMIT 1;
        outcome := 'limit';
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
        INSERT INTO reservations (key_id, tokens, minute_start, day_start, month_start,
                                  endpoint, expires_at)
        VALUES (k.id, want, t_min, t_day, t_mon, p_endpoint, exp)
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

-- As in 009, but the reservation size the relay sizes its output allowance
-- from is the one the authorizer used: the key's own, else the Settings
-- page's (NULL: tollgate.conf's); and a claimed reservation lives p_ttl
-- (reservation_ttl) from the claim, even where the claim window was longer,
-- so a relay that dies mid-request loses it after reservation_ttl.
DROP FUNCTION tg_claim(bigint, bigint, integer);
CREATE FUNCTION tg_claim(p_resv bigint, p_key bigint, p_ttl integer)
RETURNS TABLE (tokens bigint, allowed_models json, force_model text,
               setting_force_model text, max_output_tokens bigint,
               setting_output_cap bigint, reservation_tokens bigint,
               capture_bodies boolean, key_name text,
               setting_upstream_url text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH c AS (
        UPDATE reservations r
           SET claimed_at = now(),
               expires_at = now() + make_interval(secs => p_ttl)
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
           coalesce(k.reservation_tokens,
                    CASE WHEN s.resv ~ '^[0-9]{1,12}$' THEN s.resv::bigint END),
           k.capture_bodies, k.name, s.upstream_url
      FROM c JOIN api_keys k ON k.id = c.key_id CROSS JOIN s;
END $$;

-- As in 009, and a settlement with no upstream (the relay refused the
-- request, or no upstream took it) is a request that never ran: its
-- request is given back as well as its tokens (tg_release's rule, inline
-- here because this is the request path's hot statement).
CREATE OR REPLACE FUNCTION tg_settle(p_resv bigint, p_key bigint, p_prompt bigint,
                          p_completion bigint, p_model text, p_endpoint text,
                          p_status text, p_http integer, p_latency integer,
                          p_ttfb integer, p_upstream text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    done boolean;
    refund boolean := p_upstream IS NULL;
BEGIN
    PERFORM 1 FROM api_keys WHERE id = p_key FOR UPDATE;
    WITH r AS (
        UPDATE reservations SET settled_at = now(), refunded = refund
         WHERE id = p_resv AND key_id = p_key AND settled_at IS NULL
        RETURNING tokens, minute_start, day_start, month_start),
    u AS (
        UPDATE quota_usage q
           SET tokens_reserved = CASE WHEN q.period = 'minute' THEN q.tokens_reserved
                                      ELSE greatest(q.tokens_reserved - r.tokens, 0) END,
               tokens_used = CASE WHEN q.period = 'minute' THEN q.tokens_used
                                  ELSE q.tokens_used + p_prompt + p_completion END,
               requests = CASE WHEN refund THEN greatest(q.requests - 1, 0)
                               ELSE q.requests END
          FROM r
         WHERE q.key_id = p_key
           AND ((q.period = 'minute' AND refund AND q.period_start = r.minute_start)
             OR (q.period = 'day' AND q.period_start = r.day_start)
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

-- Sign-in attempts, one row per address (an IPv6 client by its /64, which
-- one host can own whole), counted before the password is checked: the
-- upsert is one atomic step, so of any number of concurrent attempts at
-- most p_max are allowed to check a password within a window of p_window
-- seconds that starts at the first. A successful sign-in and
-- `tollgate admin unlock` delete the row; so does the next attempt of any
-- address once the window is over. admin_login_attempts stays the record
-- of the attempts that were checked.
CREATE TABLE admin_login_counts (
    addr         text PRIMARY KEY,
    attempts     bigint NOT NULL,
    window_start timestamptz NOT NULL
);

CREATE FUNCTION tg_login_bucket(p_addr text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN CASE WHEN family(p_addr::inet) = 6
                THEN host(network(set_masklen(p_addr::inet, 64))) || '/64'
                ELSE host(p_addr::inet) END;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN coalesce(p_addr, '');
END $$;

-- allowed: this attempt may check the password; retry_after: seconds
-- until the address's window ends (when it is not allowed).
CREATE FUNCTION tg_login_attempt(p_addr text, p_max integer, p_window integer)
RETURNS TABLE (allowed boolean, retry_after bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- Windows long over, of any address, so the table stays small.
    DELETE FROM admin_login_counts
     WHERE window_start < now() - make_interval(secs => p_window);
    RETURN QUERY
    INSERT INTO admin_login_counts AS c (addr, attempts, window_start)
    VALUES (tg_login_bucket(p_addr), 1, now())
    ON CONFLICT (addr) DO UPDATE
       SET attempts = CASE WHEN c.window_start > now() - make_interval(secs => p_window)
                           THEN c.attempts + 1 ELSE 1 END,
           window_start = CASE WHEN c.window_start > now() - make_interval(secs => p_window)
                               THEN c.window_start ELSE now() END
    RETURNING c.attempts <= p_max,
              greatest(ceil(extract(epoch FROM c.window_start
                        + make_interval(secs => p_window) - now())), 1)::bigint;
END $$;

-- Ends an address's lock-out (NULL: every address's); returns how many
-- addresses were locked out or counting.
CREATE FUNCTION tg_login_unlock(p_addr text) RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM admin_login_counts
                WHERE p_addr IS NULL OR addr = tg_login_bucket(p_addr) RETURNING 1)
    SELECT count(*) FROM d
$$;
