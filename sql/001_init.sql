-- tollgate schema, first migration. Every time is a timestamptz; every
-- count and limit is non-negative; a NULL limit means unlimited.

CREATE TABLE api_keys (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text NOT NULL UNIQUE
                         CHECK (length(name) BETWEEN 1 AND 100
                                AND name !~ '[[:cntrl:]]'),
    key_hash             text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    display_prefix       text NOT NULL CHECK (length(display_prefix) <= 32),
    scope                text NOT NULL DEFAULT 'infer'
                         CHECK (scope IN ('infer', 'admin')),
    allowed_models       text[],          -- NULL: every model
    force_model          text CHECK (force_model <> ''),
    rpm_limit            bigint CHECK (rpm_limit >= 0),
    requests_day_limit   bigint CHECK (requests_day_limit >= 0),
    requests_month_limit bigint CHECK (requests_month_limit >= 0),
    tokens_day_limit     bigint CHECK (tokens_day_limit >= 0),
    tokens_month_limit   bigint CHECK (tokens_month_limit >= 0),
    reservation_tokens   bigint CHECK (reservation_tokens > 0), -- NULL: global
    max_output_tokens    bigint CHECK (max_output_tokens > 0), -- output cap
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    rotated_at           timestamptz,
    not_before           timestamptz,
    expires_at           timestamptz,
    disabled_at          timestamptz,
    CHECK (expires_at IS NULL OR not_before IS NULL OR expires_at > not_before)
);

-- One row per key and period. `tokens_reserved` is what open reservations
-- booked into this period hold; settling moves it to `tokens_used`.
CREATE TABLE quota_usage (
    key_id          bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    period          text NOT NULL CHECK (period IN ('minute', 'day', 'month')),
    period_start    timestamptz NOT NULL,
    tokens_used     bigint NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
    tokens_reserved bigint NOT NULL DEFAULT 0 CHECK (tokens_reserved >= 0),
    requests        bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    PRIMARY KEY (key_id, period, period_start)
);

-- A reservation remembers the periods it was booked into, so settling
-- releases exactly what was reserved even across midnight.
CREATE TABLE reservations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id       bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    tokens       bigint NOT NULL CHECK (tokens >= 0),
    day_start    timestamptz NOT NULL,
    month_start  timestamptz NOT NULL,
    endpoint     text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    claimed_at   timestamptz,
    settled_at   timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX reservations_open ON reservations (key_id, expires_at)
    WHERE settled_at IS NULL;

CREATE TABLE usage_events (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                timestamptz NOT NULL DEFAULT now(),
    key_id            bigint REFERENCES api_keys (id) ON DELETE SET NULL,
    reservation_id    bigint UNIQUE,      -- one event per reservation
    model             text,
    endpoint          text NOT NULL,
    prompt_tokens     bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    status            text NOT NULL,      -- ok, client_gone, upstream_error, lost ...
    http_status       integer CHECK (http_status BETWEEN 100 AND 599),
    latency_ms        integer CHECK (latency_ms >= 0),
    ttfb_ms           integer CHECK (ttfb_ms >= 0),
    upstream          text
);
CREATE INDEX usage_events_key_at ON usage_events (key_id, at);
CREATE INDEX usage_events_at ON usage_events (at);

-- Policy staff change at run time, edited in the admin pages.
CREATE TABLE settings (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z_]{1,64}$'),
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO settings (name, value) VALUES
    ('force_model', ''),
    ('reservation_tokens', '2048'),
    ('upstream_url', '');

CREATE TABLE admin_audit (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    target text,
    detail jsonb
);
CREATE INDEX admin_audit_at ON admin_audit (at);

-- The start of the quota period holding `at`, computed in the configured
-- IANA zone: PostgreSQL's calendar handles DST and month lengths.
CREATE FUNCTION tg_period_start(kind text, tz text, at timestamptz DEFAULT now())
RETURNS timestamptz LANGUAGE sql STABLE STRICT AS $$
    SELECT date_trunc(kind, at AT TIME ZONE tz) AT TIME ZONE tz
$$;

CREATE FUNCTION tg_key_state(disabled_at timestamptz, not_before timestamptz,
                             expires_at timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN disabled_at IS NOT NULL THEN 'disabled'
        WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'
        WHEN not_before IS NOT NULL AND not_before > now() THEN 'not_yet_valid'
        ELSE 'active' END
$$;

-- Each key as the CLI and the admin pages show it: limits, state and the
-- usage of the current periods in zone `tz`.
CREATE FUNCTION tg_key_report(tz text)
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
