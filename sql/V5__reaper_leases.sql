-- The reaper leases the rows it cleans instead of locking them in a transaction.
--
-- Before, the reaper selected a batch of ended intents `FOR UPDATE SKIP LOCKED` and kept
-- that transaction open across its store calls (AbortMultipartUpload, DeleteObject): a
-- stalled store or a reaper that vanished behind a black-holed network held the rows
-- locked, and a connection idle in a transaction, until `idle_in_transaction_session_timeout`
-- ended it. Now a claim is one short statement, as the confirmer's (V4's `next_check_at`):
--
-- * `clean_lease_until`: until when a reaper holds the row for its store cleanup. The claim
--   takes uncleaned ended rows whose lease is null or past and moves it forward; marking
--   the row cleaned clears it. A reaper that dies (or whose store calls fail) leaves the
--   lease to run out, and the next pass after that takes the row again. Replicas never
--   clean the same row at once: the claim skips rows another claim has locked, and
--   re-checks the lease of a row another claim changed meanwhile.
--
-- The claim's work list is still `uploads_to_clean` (V1, by `finished_at`, uncleaned
-- ended rows only); the lease is a filter on that short list, so it needs no index.
-- A nullable column without a default: adding it rewrites nothing.

alter table uploads add column clean_lease_until timestamptz;
