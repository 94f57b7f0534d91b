-- A per-key output cap: the lower of it and the client's own limit is what
-- Ollama is asked for.
ALTER TABLE api_keys ADD COLUMN max_output_tokens bigint
    CHECK (max_output_tokens > 0);

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

-- The claim hands the relay the cap with the rest of the key's policy.
DROP FUNCTION tg_claim(bigint, bigint, integer);
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
