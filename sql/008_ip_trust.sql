-- Opt-in IP trust (ip_trust_ttl): a client that POSTs its key to /auth is
-- trusted from its address for a while, and a request from there with no
-- key at all is charged to that key. One row per address: the last key
-- that authenticated from it wins.
CREATE TABLE ip_trust (
    addr       inet PRIMARY KEY,
    key_id     bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);

-- POST /auth: checks the key without reserving anything and, when it is
-- active, trusts p_addr for p_ttl seconds. A legacy key (no checksum) can
-- match only a key marked legacy, as in tg_reserve_legacy. outcome is 'ok'
-- or the key's state, worded as tg_reserve words it ('unknown', 'disabled',
-- 'expired', 'not_yet_valid').
CREATE FUNCTION tg_ip_trust(p_hash text, p_legacy boolean, p_addr inet,
                            p_ttl integer)
RETURNS TABLE (outcome text, trusted_until bigint)
LANGUAGE plpgsql AS $$
DECLARE
    k api_keys%ROWTYPE;
    until timestamptz := now() + make_interval(secs => p_ttl);
BEGIN
    SELECT * INTO k FROM api_keys a
     WHERE a.key_hash = p_hash AND (a.legacy OR NOT p_legacy);
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN NEXT;
        RETURN;
    END IF;
    outcome := tg_key_state(k.disabled_at, k.not_before, k.expires_at);
    IF outcome = 'active' THEN
        INSERT INTO ip_trust (addr, key_id, expires_at)
        VALUES (p_addr, k.id, until)
        ON CONFLICT (addr) DO UPDATE
           SET key_id = EXCLUDED.key_id, expires_at = EXCLUDED.expires_at;
        outcome := 'ok';
        trusted_until := floor(extract(epoch FROM until))::bigint;
    END IF;
    RETURN NEXT;
END $$;

-- The authorizer's call for a request with no key: tg_reserve with the key
-- p_addr is trusted for, or with no key ('unknown') when it is trusted for
-- none. Same columns as tg_reserve.
CREATE FUNCTION tg_reserve_trusted(p_addr inet, p_tz text, p_want bigint,
                                   p_ttl integer, p_endpoint text,
                                   p_metered boolean, p_need_admin boolean)
RETURNS TABLE (outcome text, key_id bigint, reservation_id bigint,
               tokens bigint, expires_at bigint, limit_name text,
               retry_after bigint, req_limit bigint, req_remaining bigint,
               tok_limit bigint, tok_remaining bigint)
LANGUAGE sql AS $$
    SELECT * FROM tg_reserve(
        COALESCE((SELECT k.key_hash FROM ip_trust t
                    JOIN api_keys k ON k.id = t.key_id
                   WHERE t.addr = p_addr AND t.expires_at > now()), ''),
        p_tz, p_want, p_ttl, p_endpoint, p_metered, p_need_admin)
$$;

-- `tollgate sweep`: drops the trusts that ran out; returns how many.
CREATE FUNCTION tg_ip_trust_sweep() RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM ip_trust WHERE expires_at <= now() RETURNING 1)
    SELECT count(*) FROM d
$$;
