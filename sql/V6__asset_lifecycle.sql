-- The asset lifecycle (issue 15): content checks, scanning, image variants and signed
-- webhook events after an upload.
--
-- * `assets.state`: `processing` while the profile's jobs (scan, variants) run, then
--   `ready`, or `rejected` (the content failed a check: the object is deleted and its usage
--   released, the record stays so the app can see why) or `quarantined` (a scanner flagged
--   it: the object stays for review, nobody gets a download URL). Every asset before V6,
--   and every asset of a profile without jobs, is `ready`.
-- * `assets.variants`: the image variants made (`[{name, key, content_type, width,
--   height, size}]`), written by the variants job. Variants are not counted in usage.
create table asset_jobs (
    owner      text not null,
    asset_id   uuid not null,
    -- The step to run next: `scan`, then `variants`; the last step's success makes the
    -- asset `ready` in the same transaction that removes the job.
    step       text not null,
    attempts   integer not null default 0,
    -- Due time: a claim moves it forward by the lease (so replicas never run one job at
    -- once and a dead worker's job comes back), a failure by the backoff.
    run_after  timestamptz not null default now(),
    last_error text,
    created_at timestamptz not null default now(),
    primary key (owner, asset_id),
    constraint asset_jobs_row_check check (step in ('scan', 'variants') and attempts >= 0)
);

create index asset_jobs_due on asset_jobs (run_after);

alter table assets
    add column state text not null default 'ready',
    add column state_reason text,
    add column variants jsonb not null default '[]',
    drop constraint assets_row_check,
    add constraint assets_row_check check (
        size >= 0 and visibility in ('private', 'public')
        and state in ('processing', 'ready', 'rejected', 'quarantined'));

-- The webhook outbox: one row per event, inserted in the same transaction as the state
-- change it reports, delivered at least once by the webhook worker (src/webhooks). `id` is
-- the stable event id (the `webhook-id` header) receivers deduplicate on.
create table webhook_events (
    owner           text not null,
    id              uuid not null,
    type            text not null,
    -- The profile whose endpoint (or the global one) receives it, resolved at delivery.
    profile         text not null,
    -- The body as sent, built when the event happened.
    payload         jsonb not null,
    attempts        integer not null default 0,
    -- Null once delivered or given up.
    next_attempt_at timestamptz default now(),
    delivered_at    timestamptz,
    -- Given up after the last attempt: listed by GET /v1/admin/webhooks/failed.
    failed_at       timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz not null default now(),
    primary key (owner, id)
);

create index webhook_events_due on webhook_events (next_attempt_at) where next_attempt_at is not null;
create index webhook_events_failed on webhook_events (failed_at desc, id desc) where failed_at is not null;
create index webhook_events_delivered on webhook_events (delivered_at) where delivered_at is not null;
