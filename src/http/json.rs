//! Our JSON body extractor. actix's `web::Json` (through serde's derive) would accept an
//! array where an object is expected (`[55, 5]` fills a two-field struct); the contract
//! says a body that is not the documented shape is refused whole. So the body is parsed
//! strictly into a `serde_json::Value` first (duplicate keys, `null`, U+0000 and trailing
//! bytes are refused, integer-valued numbers become integers), every struct position is checked to
//! be an object, and only then is it turned into the request type. Errors come out as
//! `400 invalid_request` naming the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;

pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Fields whose array items are request objects (batch items, complete's parts).
const OBJECT_LISTS: [&str; 2] = ["uploads", "parts"];

fn json_content_type(req: &HttpRequest) -> bool {
    match req.headers().get(CONTENT_TYPE).map(|v| v.to_str()) {
        None => true,
        Some(Ok(v)) => {
            let essence = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        }
        Some(Err(_)) => false,
    }
}

/// `field: reason` for a serde error at `path` (`.` is the whole body).
fn named(path: &str, inner: impl std::fmt::Display) -> Error {
    if path == "." || path.is_empty() {
        Error::invalid(format!("request body: {inner}"))
    } else {
        Error::invalid(format!("{path}: {inner}"))
    }
}

/// Parses a body that must be a JSON object of the request type's shape.
pub fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let Strict(value) =
        serde_path_to_error::deserialize(&mut de).map_err(|e| named(&e.path().to_string(), e.inner()))?;
    de.end().map_err(|e| Error::invalid(format!("request body: {e}")))?;
    let Value::Object(map) = &value else {
        return Err(Error::invalid("request body: must be a JSON object"));
    };
    for field in OBJECT_LISTS {
        if let Some(Value::Array(items)) = map.get(field)
            && let Some(i) = items.iter().position(|item| !item.is_object())
        {
            return Err(Error::invalid(format!("{field}[{i}]: must be a JSON object")));
        }
    }
    // serde_path_to_error names the field that failed (`size: invalid type: …`).
    serde_path_to_error::deserialize(value).map_err(|e| named(&e.path().to_string(), e.inner()))
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let type_ok = json_content_type(req);
        let body = Body::from_request(req, payload);
        Box::pin(async move {
            if !type_ok {
                return Err(Error::invalid("request body: Content-Type must be application/json"));
            }
            parse_object(&body.await?.0).map(Json)
        })
    }
}

/// The raw request body, read within `web::PayloadConfig`'s size limit (set in
/// `http::routes`) and within `BROKER_BODY_TIMEOUT`: a client that sends its headers and
/// then stalls or trickles the body would otherwise hold its connection (and a file
/// descriptor) forever. Too slow is `408 request_timeout`, and the connection is closed.
pub struct Body(pub web::Bytes);

impl FromRequest for Body {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<crate::state::AppState>>()
            .map_or(std::time::Duration::from_secs(10), |s| s.config.body_timeout);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            match tokio::time::timeout(limit, body).await {
                Ok(Ok(bytes)) => Ok(Body(bytes)),
                Ok(Err(e)) => Err(Error::invalid(format!("request body: {e}"))),
                Err(_) => Err(Error::RequestTimeout(limit.as_secs())),
            }
        })
    }
}

/// A JSON value parsed strictly: an object with the same key twice is refused (a proxy or
/// WAF in front of us may read the first occurrence while serde_json keeps the last), and
/// a number with no fractional part (`2016.0`, `1e3`) is an integer, as JSON Schema's
/// `integer` says. Integers written as floats only convert while exactly representable
/// (|x| < 2^53); anything else stays a float and is refused where an integer is expected.
struct Strict(Value);

/// PostgreSQL's `text` and `jsonb` cannot hold U+0000; no field of ours needs it.
fn no_nul<E: serde::de::Error>(s: &str) -> Result<(), E> {
    if s.contains('\0') { Err(E::custom("must not contain U+0000 (NUL)")) } else { Ok(()) }
}

/// 2^53: every integer below it has an exact f64.
const EXACT_F64_INTEGERS: f64 = 9_007_199_254_740_992.0;

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        if v.fract() == 0.0 && v.abs() < EXACT_F64_INTEGERS {
            return Ok(Strict((v as i64).into()));
        }
        Ok(Strict(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Strict, E> {
        self.visit_string(v.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Strict, E> {
        no_nul(&v)?;
        Ok(Strict(Value::String(v)))
    }

    // No request field is nullable (openapi.yaml "null"): an optional field is left out.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Strict, E> {
        Err(E::custom("must not be null (leave an optional field out)"))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Strict, E> {
        self.visit_unit()
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.contains('\0') {
                return Err(serde::de::Error::custom("a key must not contain U+0000 (NUL)"));
            }
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Two {
        #[allow(dead_code)]
        a: i64,
        #[allow(dead_code)]
        b: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Batch {
        #[allow(dead_code)]
        uploads: Vec<Two>,
    }

    #[test]
    fn arrays_are_not_accepted_where_objects_are_expected() {
        assert!(parse_object::<Two>(br#"{"a":1,"b":2}"#).is_ok());
        assert!(parse_object::<Two>(b"[1,2]").is_err());
        assert!(parse_object::<Batch>(br#"{"uploads":[[1,2]]}"#).is_err());
        assert!(parse_object::<Batch>(br#"{"uploads":[{"a":1,"b":2}]}"#).is_ok());
        assert!(parse_object::<Two>(br#"{"a":1,"b":2,"c":3}"#).is_err());
        let Err(crate::error::Error::InvalidRequest(m)) = parse_object::<Two>(br#"{"a":1.5,"b":2}"#) else { panic!() };
        assert!(m.starts_with("a: "), "{m}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Meta {
        #[allow(dead_code)]
        metadata: std::collections::BTreeMap<String, String>,
    }

    fn message<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        match parse_object::<T>(body.as_bytes()) {
            Err(crate::error::Error::InvalidRequest(m)) => m.into_owned(),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(message::<Two>(r#"{"a":1,"a":2,"b":3}"#).contains("duplicate key \"a\""));
        let m = message::<Meta>(r#"{"metadata":{"k":"1","k":"2"}}"#);
        assert!(m.starts_with("metadata") && m.contains("duplicate key"), "{m}");
    }

    #[test]
    fn nul_is_refused_naming_the_field() {
        let m = message::<Meta>(r#"{"metadata":{"k":"a\u0000b"}}"#);
        assert!(m.starts_with("metadata.k: must not contain U+0000"), "{m}");
        let m = message::<Meta>(r#"{"metadata":{"k\u0000":"v"}}"#);
        assert!(m.starts_with("metadata") && m.contains("U+0000"), "{m}");
    }

    #[test]
    fn integer_valued_numbers_are_integers() {
        assert!(parse_object::<Two>(br#"{"a":2016.0,"b":1e3}"#).is_ok());
        assert!(parse_object::<Two>(br#"{"a":-0.0,"b":0}"#).is_ok());
        assert!(message::<Two>(r#"{"a":1e300,"b":0}"#).starts_with("a: "));
        assert!(message::<Two>(r#"{"a":1e400,"b":0}"#).starts_with("a: number out of range"));
    }

    #[test]
    fn null_is_refused_naming_the_field() {
        assert!(message::<Two>(r#"{"a":null,"b":1}"#).starts_with("a: must not be null"));
        assert!(message::<Meta>(r#"{"metadata":{"k":null}}"#).starts_with("metadata.k: must not be null"));
        assert!(message::<Two>("null").starts_with("request body: must not be null"));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert!(message::<Two>(r#"{"a":1,"b":2} x"#).starts_with("request body: trailing"));
    }

    /// Arbitrary JSON values (objects nest up to a few levels).
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic.
        #[test]
        fn any_bytes_are_answered(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse_object::<crate::uploads::create::CreateUploadRequest>(&body);
            let _ = parse_object::<crate::uploads::batch::BatchRequest>(&body);
        }

        /// Any JSON value: it parses or is refused naming a place, and a value without
        /// nulls round trips through the strict parser unchanged (modulo integer floats).
        #[test]
        fn any_json_is_answered_and_strict_parsing_keeps_values(v in any_json()) {
            let text = serde_json::to_vec(&v).unwrap();
            if let Err(e) = parse_object::<crate::uploads::create::CreateUploadRequest>(&text) {
                proptest::prop_assert!(matches!(e, crate::error::Error::InvalidRequest(_)));
            }
            let mut de = serde_json::Deserializer::from_slice(&text);
            match <Strict as serde::Deserialize>::deserialize(&mut de) {
                Ok(Strict(parsed)) => {
                    let again: Value = serde_json::from_slice(&text).unwrap();
                    proptest::prop_assert_eq!(serde_json::to_string(&parsed).unwrap().len() <= text.len() + 32, true);
                    proptest::prop_assert_eq!(parsed.is_object(), again.is_object());
                }
                Err(e) => proptest::prop_assert!(e.to_string().contains("null")),
            }
        }

        /// A key written twice anywhere in an object is refused.
        #[test]
        fn a_repeated_key_is_always_refused(key in "[a-z]{1,8}", a in 0i64..9, b in 0i64..9) {
            let body = format!(r#"{{"x":{{"{key}":{a},"{key}":{b}}}}}"#);
            let mut de = serde_json::Deserializer::from_slice(body.as_bytes());
            let err = <Strict as serde::Deserialize>::deserialize(&mut de).err().map(|e| e.to_string());
            proptest::prop_assert!(err.is_some_and(|e| e.contains("duplicate key")));
        }
    }
}
