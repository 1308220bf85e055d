-- r2-broker schema, version 1. Forward-only: later changes are new files (V2__…).
--
-- Every table is keyed by owner first, so the schema can be distributed by owner
-- (Citus, or a PostgreSQL-compatible distributed database) without changing queries:
-- every statement the broker runs names the owner.

-- One row per owner: the quota and the running totals it is checked against.
-- `reserved_*` counts pending uploads, `used_*` completed assets. A reservation is a
-- conditional UPDATE of this row (see db/uploads.rs), so concurrent requests serialise
-- on the row lock and can never overshoot the quota.
create table owners (
    owner            text primary key,
    quota_bytes      bigint check (quota_bytes >= 0),      -- null: BROKER_DEFAULT_QUOTA_BYTES
    quota_objects    bigint check (quota_objects >= 0),    -- null: BROKER_DEFAULT_QUOTA_OBJECTS
    used_bytes       bigint not null default 0 check (used_bytes >= 0),
    used_objects     bigint not null default 0 check (used_objects >= 0),
    reserved_bytes   bigint not null default 0 check (reserved_bytes >= 0),
    reserved_objects bigint not null default 0 check (reserved_objects >= 0)
);

-- Upload intents. A row exists exactly while its reservation does, or after it ended
-- (status other than pending), so "a reservation without an upload row" cannot happen.
create table uploads (
    owner               text not null references owners (owner),
    id                  uuid not null,
    profile             text not null,
    method              text not null check (method in ('put', 'post', 'multipart')),
    status              text not null default 'pending'
                        check (status in ('pending', 'completed', 'aborted', 'expired', 'failed')),
    key                 text not null,
    filename            text not null,
    content_type        text not null,
    size                bigint not null check (size >= 0),
    checksum_sha256     text,
    metadata            jsonb not null default '{}',
    -- The store's multipart UploadId. It may contain '/', so it never goes into a URL
    -- path, and it never leaves PostgreSQL.
    multipart_upload_id text,
    part_size           bigint,
    part_count          integer,
    expires_at          timestamptz not null,              -- presigned URLs stop working
    complete_by         timestamptz not null,              -- expires_at + the profile's complete_grace
    created_at          timestamptz not null default now(),
    finished_at         timestamptz,
    -- For an intent that ended without an asset (aborted, expired, failed): when its
    -- object / multipart upload was removed from the store. The database changes first
    -- and the store after, so a store failure leaves a row the reaper retries.
    cleaned_at          timestamptz,
    asset_id            uuid,
    primary key (owner, id)
);

-- The reaper's work list: pending intents by deadline.
create index uploads_pending_by_deadline on uploads (complete_by) where status = 'pending';
create index uploads_to_clean on uploads (finished_at)
    where status in ('aborted', 'expired', 'failed') and cleaned_at is null;

-- Verified objects. Written only after HeadObject matched the intent, in the same
-- statement that turns the reservation into usage.
create table assets (
    owner           text not null references owners (owner),
    id              uuid not null,
    upload_id       uuid not null,
    profile         text not null,
    key             text not null,
    filename        text not null,
    content_type    text not null,
    size            bigint not null check (size >= 0),
    checksum_sha256 text,
    etag            text,
    metadata        jsonb not null default '{}',
    visibility      text not null check (visibility in ('private', 'public')),
    created_at      timestamptz not null default now(),
    primary key (owner, id),
    unique (owner, upload_id)
);

-- Keyset pagination, newest first, with and without a profile filter.
create index assets_owner_newest on assets (owner, created_at desc, id desc);
create index assets_owner_profile_newest on assets (owner, profile, created_at desc, id desc);
