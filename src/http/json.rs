//! Our JSON body extractor. actix's `web::Json` (through serde's derive) would accept an
//! array where an object is expected (`[55, 5]` fills a two-field struct); the contract
//! says a body that is not the documented shape is refused whole. So the body is parsed as
//! a `serde_json::Value` first, every struct position is checked to be an object, and only
//! then is it turned into the request type. Errors come out as `400 invalid_request`.

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

/// Parses a body that must be a JSON object of the request type's shape.
pub fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::invalid(format!("request body: {e}")))?;
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
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::invalid(format!("request body: {inner}"))
        } else {
            Error::invalid(format!("{path}: {inner}"))
        }
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let type_ok = json_content_type(req);
        // Reads the body within `web::PayloadConfig`'s limit (set in `http::routes`).
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !type_ok {
                return Err(Error::invalid("request body: Content-Type must be application/json"));
            }
            let bytes = body.await.map_err(|e| Error::invalid(format!("request body: {e}")))?;
            parse_object(&bytes).map(Json)
        })
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
}
