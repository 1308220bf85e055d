-- Confirmation without `complete` and uploads of undeclared size (issue 12: Uppy).
--
-- Uppy never calls back after a single PUT, and a mobile client may die before calling
-- `complete`: the broker's confirmer (src/confirm.rs) HEADs pending `put`/`post` intents on
-- a schedule that backs off and confirms them through the same path as `complete`.
--
-- * `next_check_at`: when the confirmer looks for the object next. Set at create for
--   `put`/`post` (null for `multipart`: its parts need CompleteMultipartUpload, which only
--   the client's `complete` asks for); moved forward after each check (the wait doubles
--   with the intent's age, up to BROKER_CONFIRM_BACKOFF_MAX) and while a confirmer holds
--   the row (a lease, so replicas don't check the same intent at once); null after the
--   last check before `complete_by`.
-- * `size_declared`: false when the client did not declare the size (Uppy without
--   `metadata[size]`). Then `size` is what was reserved (the profile's max_size, at most
--   5 GiB), the presigned PUT does not sign `content-length`, and confirmation accepts any
--   stored size up to `size`, settling the reservation to the stored size (db/uploads.rs
--   COMPLETE).
--
-- Both columns have constant defaults: adding them rewrites nothing.

alter table uploads
    add column next_check_at timestamptz,
    add column size_declared boolean not null default true;

-- The confirmer's work list: pending intents by when they are due for a check.
create index uploads_due_for_check on uploads (next_check_at)
    where status = 'pending' and next_check_at is not null;
