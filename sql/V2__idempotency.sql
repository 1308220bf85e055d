-- Idempotency-Key support (API.md "Idempotency"). One row per (owner, key): the hash of
-- the first request and, once it finished, its answer. A retry with the same key and
-- body gets that answer again; a different body is refused. The reaper forgets rows
-- after 24 hours.
create table idempotency_keys (
    owner        text not null,
    key          text not null,
    request_hash bytea not null,
    status       smallint,               -- null while the first request is in flight
    response     jsonb,                  -- the first answer's body (null when it had none)
    created_at   timestamptz not null default now(),
    primary key (owner, key)
);

create index idempotency_keys_by_age on idempotency_keys (created_at);
