-- Housekeeping for `tollgate sweep`: reclaim the expired reservations of
-- every key (each under its key's lock, as tg_reserve does for one key),
-- and drop quota rows of minute windows long past.
CREATE FUNCTION tg_sweep() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    k bigint;
    n integer := 0;
BEGIN
    FOR k IN SELECT DISTINCT key_id FROM reservations
              WHERE settled_at IS NULL AND expires_at < now() LOOP
        PERFORM 1 FROM api_keys WHERE id = k FOR UPDATE;
        n := n + tg_reclaim(k);
    END LOOP;
    DELETE FROM quota_usage WHERE period = 'minute'
       AND period_start < now() - interval '1 hour';
    RETURN n;
END $$;

-- The relay keeps a reservation alive while its stream still flows, so a
-- long answer is not reclaimed as lost under it.
CREATE FUNCTION tg_extend(p_resv bigint, p_key bigint, p_ttl integer)
RETURNS boolean LANGUAGE sql AS $$
    UPDATE reservations SET expires_at = now() + make_interval(secs => p_ttl)
     WHERE id = p_resv AND key_id = p_key AND settled_at IS NULL
    RETURNING true
$$;
