-- Collections with their own limits, and retention (issue 16).
--
-- * `collections`: an owner's named group of assets (a photo shoot, a chat room) with
--   optional limits. Its counters work like the owner's (V1): `reserved_*` for pending
--   uploads into it, `used_*` for its assets, changed in the same statements as the
--   owner's. Every statement that changes both locks the owner's row first, then the
--   collection's (the collection's UPDATE reads the owner's UPDATE's output), so two
--   statements can never wait on each other's rows in opposite orders.
-- * `deleting_at`: a purge (`DELETE /v1/collections/{id}?purge=true`) started; no upload
--   may reserve into it any more, and a purge cut short resumes where it stopped.
-- * `uploads.collection_id`, `assets.collection_id`: the collection an upload was made
--   into; null for none.
-- * `assets.expires_at`: when the reaper deletes the asset (its profile's `retention`,
--   counted from when it was recorded); null: kept until deleted.
create table collections (
    owner            text not null,
    id               uuid not null,
    name             text not null,
    description      text,
    visibility       text not null default 'private',
    max_bytes        bigint,
    max_objects      bigint,
    used_bytes       bigint not null default 0,
    used_objects     bigint not null default 0,
    reserved_bytes   bigint not null default 0,
    reserved_objects bigint not null default 0,
    deleting_at      timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    primary key (owner, id),
    constraint collections_row_check check (
        visibility in ('private', 'public')
        and max_bytes >= 0 and max_objects >= 0
        and used_bytes >= 0 and used_objects >= 0
        and reserved_bytes >= 0 and reserved_objects >= 0)
);

create index collections_owner_newest on collections (owner, created_at desc, id desc);

alter table uploads add column collection_id uuid;
alter table assets add column collection_id uuid, add column expires_at timestamptz;

-- Listing a collection's assets, newest first; the reaper's retention work list.
create index assets_owner_collection_newest on assets (owner, collection_id, created_at desc, id desc)
    where collection_id is not null;
create index assets_expiring on assets (expires_at) where expires_at is not null;
-- A purge aborts the collection's pending uploads.
create index uploads_pending_in_collection on uploads (owner, collection_id)
    where status = 'pending' and collection_id is not null;
