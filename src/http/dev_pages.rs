//! What only `r2-broker dev` serves (`Config::dev_pages`, which it sets): the JS client
//! at `/client/r2-broker.js`, so a page anywhere can `import` it with no bundler, and a demo
//! page at `/` built on it (drag and drop, progress, retry, a gallery of the owner's assets).
//!
//! The files are compiled in (`include_str!`): `clients/js/r2-broker.js` as it is, and the
//! page's own files from `pages/`. The page gets its token from the link the dev banner
//! prints (`/#token=…`): the fragment never reaches a server, and nothing served here carries
//! a secret — with CORS open to any origin in dev mode, a page that embedded the dev token
//! could be read by any site the developer visits.

use actix_web::http::header;
use actix_web::{HttpResponse, guard, web};

/// The client module, byte for byte the file in `clients/js`.
pub const CLIENT_JS: &str = include_str!("../../clients/js/r2-broker.js");

const JS: &str = "text/javascript; charset=utf-8";

/// Path, content type, body.
const FILES: [(&str, &str, &str); 4] = [
    ("/", "text/html; charset=utf-8", include_str!("dev_pages/index.html")),
    ("/demo.js", JS, include_str!("dev_pages/demo.js")),
    ("/demo.css", "text/css; charset=utf-8", include_str!("dev_pages/demo.css")),
    ("/client/r2-broker.js", JS, CLIENT_JS),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, content_type, body) in FILES {
        // HEAD too (actix sends its headers without the body).
        let method = guard::Any(guard::Get()).or(guard::Head());
        cfg.route(path, web::route().guard(method).to(move || async move { file(content_type, body) }));
    }
}

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // Always the running binary's files: a rebuilt broker is seen on the next reload.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Module scripts are fetched in CORS mode: this lets another origin import the client
        // even when BROKER_CORS_ORIGINS is emptied (the CORS middleware sets its own otherwise).
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}
