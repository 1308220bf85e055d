//! Tokens already verified. Clients send the same bearer token on every request until it
//! expires, and checking it again costs far more than looking it up: ~8 µs for HS256
//! through jsonwebtoken (decode, HMAC, two JSON parses), ~55 µs for ES256, more for RSA.
//!
//! Keyed by the whole token: the same bytes verify the same way every time except for the
//! clock, so an entry keeps the token's `exp` and is only used strictly before it (`nbf`
//! was already in the past when the token verified). Only successes are kept. Bounded:
//! when full it is emptied, so a flood of distinct tokens costs what it cost without a
//! cache and memory stays at most `CAPACITY` entries.
//!
//! A token verified with a JWKS key carries a tag, (provider, key-set generation): the
//! verifier uses the entry only while that provider's set is the one it was checked with,
//! so a key the provider removed stops working at the next refresh, not at `exp`.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Caller;

/// ~1.5 MiB at most with 300-byte tokens.
const CAPACITY: usize = 4096;

/// (index of the JWKS provider, generation of its key set).
pub type Tag = (usize, u64);

/// The caller, the token's `exp` and its tag.
type Entry = (Caller, u64, Option<Tag>);

#[derive(Default)]
pub struct TokenCache {
    map: Mutex<HashMap<Box<str>, Entry>>,
}

impl TokenCache {
    /// The caller of a token verified earlier, if it has not expired at `now` (Unix s).
    pub fn get(&self, token: &str, now: u64) -> Option<(Caller, Option<Tag>)> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(token).filter(|(_, exp, _)| now < *exp).map(|(caller, _, tag)| (caller.clone(), *tag))
    }

    pub fn insert(&self, token: &str, caller: &Caller, exp: u64, tag: Option<Tag>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(token.into(), (caller.clone(), exp, tag));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(owner: &str) -> Caller {
        Caller { owner: owner.into(), admin: false }
    }

    #[test]
    fn an_entry_is_used_only_before_its_exp() {
        let cache = TokenCache::default();
        cache.insert("t1", &caller("alice"), 100, Some((0, 7)));
        let (hit, tag) = cache.get("t1", 99).unwrap();
        assert_eq!((hit.owner.as_str(), tag), ("alice", Some((0, 7))));
        assert!(cache.get("t1", 100).is_none());
        assert!(cache.get("t2", 50).is_none());
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY * 2 + 1 {
            cache.insert(&format!("t{i}"), &caller("o"), u64::MAX, None);
            assert!(cache.map.lock().unwrap().len() <= CAPACITY);
        }
        assert!(cache.get(&format!("t{}", CAPACITY * 2), 0).is_some());
    }
}
