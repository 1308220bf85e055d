//! Collections (openapi.yaml "Collections"): an owner's named groups of assets with their
//! own limits — a photo shoot of 10 GB, a chat room's documents. An upload names one with
//! `collection`; its reservation then holds the owner's quota and the collection's limits in
//! one transaction (db/uploads.rs), and every later change of the upload or asset settles
//! both. Deleting a collection that still holds anything needs `purge`, which removes its
//! assets through the same path as a single delete.

use serde::Deserialize;
use uuid::Uuid;

use crate::db::collections::{CollectionFields, CollectionRow};
use crate::error::Error;
use crate::pages::Page;
use crate::profiles::Visibility;
use crate::state::AppState;

/// `POST /v1/collections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub max_bytes: Option<i64>,
    #[serde(default)]
    pub max_objects: Option<i64>,
    #[serde(default)]
    pub owner: Option<String>,
}

/// `PATCH /v1/collections/{id}`: the fields given change, the others stay; `remove` names
/// optional fields to clear (`description`, `max_bytes`, `max_objects`), since no request
/// field is nullable (openapi.yaml "Conventions").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub max_bytes: Option<i64>,
    #[serde(default)]
    pub max_objects: Option<i64>,
    #[serde(default)]
    pub remove: Vec<Removable>,
}

/// The optional fields a PATCH can clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Removable {
    Description,
    MaxBytes,
    MaxObjects,
}

fn check(f: &CollectionFields<'_>) -> Result<(), Error> {
    if f.name.trim().is_empty() || f.name.len() > 255 {
        return Err(Error::invalid("name: must be 1 to 255 bytes, not only spaces"));
    }
    if f.description.is_some_and(|d| d.len() > 2048) {
        return Err(Error::invalid("description: at most 2048 bytes"));
    }
    if f.max_bytes.is_some_and(|m| m < 0) {
        return Err(Error::invalid("max_bytes: must be >= 0"));
    }
    if f.max_objects.is_some_and(|m| m < 0) {
        return Err(Error::invalid("max_objects: must be >= 0"));
    }
    Ok(())
}

fn visibility(v: Option<&str>, current: Visibility) -> Result<Visibility, Error> {
    match v {
        None => Ok(current),
        Some(v) => Visibility::parse(v).ok_or_else(|| Error::invalid("visibility: must be private or public")),
    }
}

pub async fn create(state: &AppState, owner: &str, req: NewCollection) -> Result<CollectionRow, Error> {
    let fields = CollectionFields {
        name: &req.name,
        description: req.description.as_deref(),
        visibility: visibility(req.visibility.as_deref(), Visibility::Private)?,
        max_bytes: req.max_bytes,
        max_objects: req.max_objects,
    };
    check(&fields)?;
    Ok(crate::db::collections::insert(&state.db, owner, Uuid::now_v7(), &fields).await?)
}

pub async fn get(state: &AppState, owner: &str, id: Uuid) -> Result<CollectionRow, Error> {
    crate::db::collections::get(&state.db, owner, id).await?.ok_or(Error::NotFound)
}

pub async fn list(
    state: &AppState,
    owner: &str,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<CollectionRow>, Error> {
    let limit = crate::pages::limit(limit)?;
    let before = crate::pages::before(cursor)?;
    let rows = crate::db::collections::list(&state.db, owner, before, limit + 1).await?;
    Ok(crate::pages::page(rows, limit, |c| (c.created_at, c.id)))
}

/// Lowering a limit below what the collection holds is allowed: nothing is removed, new
/// uploads are refused until it has room again.
pub async fn update(state: &AppState, owner: &str, id: Uuid, patch: CollectionPatch) -> Result<CollectionRow, Error> {
    let current = get(state, owner, id).await?;
    let cleared = |f: Removable| patch.remove.contains(&f);
    let both = |f: &str, given: bool, removed: bool| {
        if given && removed { Err(Error::invalid(format!("remove: {f} is also given a value"))) } else { Ok(()) }
    };
    both("description", patch.description.is_some(), cleared(Removable::Description))?;
    both("max_bytes", patch.max_bytes.is_some(), cleared(Removable::MaxBytes))?;
    both("max_objects", patch.max_objects.is_some(), cleared(Removable::MaxObjects))?;
    let keep = |given: Option<i64>, removed: bool, now: Option<i64>| if removed { None } else { given.or(now) };
    let description = if cleared(Removable::Description) {
        None
    } else {
        patch.description.as_deref().or(current.description.as_deref())
    };
    let fields = CollectionFields {
        name: patch.name.as_deref().unwrap_or(&current.name),
        description,
        visibility: visibility(patch.visibility.as_deref(), current.visibility)?,
        max_bytes: keep(patch.max_bytes, cleared(Removable::MaxBytes), current.max_bytes),
        max_objects: keep(patch.max_objects, cleared(Removable::MaxObjects), current.max_objects),
    };
    check(&fields)?;
    crate::db::collections::update(&state.db, owner, id, &fields).await?.ok_or(Error::NotFound)
}

/// What a delete did.
#[derive(Debug)]
pub enum Deleted {
    /// Gone (or was never there).
    Done,
    /// A purge that did not finish within one call's bound: the reaper goes on with it (and
    /// so does calling again).
    Purging(CollectionRow),
}

/// Items one call (or one reaper visit) removes at most: a purge of thousands of assets
/// goes on in the background rather than holding a request open.
pub const PURGE_BUDGET: usize = 500;
const PURGE_BATCH: i64 = 100;

/// Deletes an empty collection; with `purge`, first its pending uploads (aborted) and its
/// assets (each object first, then its record and usage, as `DELETE /v1/assets/{id}`). A
/// store failure midway answers 503 and leaves every asset either wholly there or wholly
/// gone; the purge resumes from there on the next call or reaper pass.
pub async fn delete(state: &AppState, owner: &str, id: Uuid, purge: bool) -> Result<Deleted, Error> {
    let Some(c) = crate::db::collections::get(&state.db, owner, id).await? else { return Ok(Deleted::Done) };
    if !purge && c.deleting_at.is_none() {
        let (assets, pending) = (c.usage.used_objects, c.usage.reserved_objects);
        // Rejected assets count in no usage, but their records are in the collection too.
        let records = crate::db::collections::assets_in(&state.db, owner, id, 1).await?;
        if assets > 0 || pending > 0 || !records.is_empty() {
            return Err(Error::invalid_state(format!(
                "the collection holds {assets} assets and {pending} pending uploads; delete them or pass purge=true"
            )));
        }
        if crate::db::collections::delete_empty(&state.db, owner, id).await? {
            return Ok(Deleted::Done);
        }
        return Err(Error::invalid_state("an upload into the collection just started; try again"));
    }
    crate::db::collections::start_purge(&state.db, owner, id).await?;
    purge_some(state, owner, id, PURGE_BUDGET).await
}

/// Up to `budget` items of a purge that started; deletes the collection once it is empty.
pub async fn purge_some(state: &AppState, owner: &str, id: Uuid, budget: usize) -> Result<Deleted, Error> {
    let mut left = budget;
    while left > 0 {
        let batch = PURGE_BATCH.min(left as i64);
        let pending = crate::db::collections::pending_uploads(&state.db, owner, id, batch).await?;
        let assets = if pending.len() < batch as usize {
            crate::db::collections::assets_in(&state.db, owner, id, batch - pending.len() as i64).await?
        } else {
            Vec::new()
        };
        if pending.is_empty() && assets.is_empty() {
            break;
        }
        left = left.saturating_sub(pending.len() + assets.len());
        for upload in pending {
            match crate::uploads::abort::abort(state, owner, upload).await {
                // Completed meanwhile: its asset is deleted with the others (next batch).
                Ok(()) | Err(Error::InvalidState(_)) => {}
                Err(e) => return Err(e),
            }
        }
        for asset in assets {
            crate::assets::delete(state, owner, asset).await?;
        }
    }
    if crate::db::collections::delete_empty(&state.db, owner, id).await? {
        return Ok(Deleted::Done);
    }
    match crate::db::collections::get(&state.db, owner, id).await? {
        None => Ok(Deleted::Done),
        Some(c) => Ok(Deleted::Purging(c)),
    }
}
