-- Bookkeeping that must hold after every test, faults included. Each query
-- returns the rows that break an invariant: all must come back empty.

-- 1. What quota rows hold as reserved is exactly what open reservations hold.
SELECT 'reserved_mismatch' AS broken, q.key_id, q.period, q.period_start,
       q.tokens_reserved, coalesce(sum(r.tokens), 0) AS open_tokens
  FROM quota_usage q
  LEFT JOIN reservations r ON r.key_id = q.key_id AND r.settled_at IS NULL
       AND ((q.period = 'day' AND r.day_start = q.period_start)
         OR (q.period = 'month' AND r.month_start = q.period_start))
 WHERE q.period <> 'minute'
 GROUP BY q.key_id, q.period, q.period_start, q.tokens_reserved
HAVING q.tokens_reserved <> coalesce(sum(r.tokens), 0)
UNION ALL
-- 2. What quota rows hold as used is exactly what the usage events charged.
SELECT 'used_mismatch', q.key_id, q.period, q.period_start, q.tokens_used,
       coalesce(sum(e.prompt_tokens + e.completion_tokens), 0)
  FROM quota_usage q
  LEFT JOIN reservations r ON r.key_id = q.key_id
       AND ((q.period = 'day' AND r.day_start = q.period_start)
         OR (q.period = 'month' AND r.month_start = q.period_start))
  LEFT JOIN usage_events e ON e.reservation_id = r.id
 WHERE q.period <> 'minute'
 GROUP BY q.key_id, q.period, q.period_start, q.tokens_used
HAVING q.tokens_used <> coalesce(sum(e.prompt_tokens + e.completion_tokens), 0)
UNION ALL
-- 3. Every request that reached the relay (claimed) and ended (settled) has
--    exactly one usage event; nothing has two.
SELECT 'events_per_request', r.key_id, 'resv', NULL, r.id, count(e.id)
  FROM reservations r LEFT JOIN usage_events e ON e.reservation_id = r.id
 WHERE r.claimed_at IS NOT NULL AND r.settled_at IS NOT NULL
 GROUP BY r.key_id, r.id HAVING count(e.id) <> 1
UNION ALL
-- 5. What quota rows count as requests is exactly the reservations booked
--    into the period that were not given back (a request that never ran).
SELECT 'requests_mismatch', q.key_id, q.period, q.period_start, q.requests,
       count(r.id)
  FROM quota_usage q
  LEFT JOIN reservations r ON r.key_id = q.key_id AND NOT r.refunded
       AND ((q.period = 'day' AND r.day_start = q.period_start)
         OR (q.period = 'month' AND r.month_start = q.period_start))
 WHERE q.period <> 'minute'
 GROUP BY q.key_id, q.period, q.period_start, q.requests
HAVING q.requests <> count(r.id)
UNION ALL
-- 6. A request given back was never charged.
SELECT 'refund_charged', r.key_id, 'resv', NULL, r.id,
       e.prompt_tokens + e.completion_tokens
  FROM reservations r JOIN usage_events e ON e.reservation_id = r.id
 WHERE r.refunded AND e.prompt_tokens + e.completion_tokens > 0
UNION ALL
-- 4. No counter below zero (the CHECK constraints say so too).
SELECT 'negative', key_id, period, period_start, tokens_used, tokens_reserved
  FROM quota_usage WHERE tokens_used < 0 OR tokens_reserved < 0 OR requests < 0;
