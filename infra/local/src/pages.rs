//! The demo pages of the browser client (`web/`), served by the local stack only: nothing
//! here is deployed, and `template.yaml` has no such routes.
//!
//! The files are read from the repository on every request rather than compiled in: the
//! pages are an integration example that a team edits while `make dev` runs, and a reload
//! then shows the change without a rebuild. The local stack only ever runs from a checkout
//! (`make dev`, the tests), so the repository is always there.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use std::path::PathBuf;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Path → file under `web/` and its content type. A fixed list: no request path is ever
/// joined to a file system path.
pub const PAGES: &[(&str, &str, &str)] = &[
    ("/", "demo/index.html", HTML),
    ("/billing/pricing", "demo/pricing.html", HTML),
    ("/billing/success", "demo/success.html", HTML),
    ("/billing/cancel", "demo/cancel.html", HTML),
    ("/billing/account", "demo/account.html", HTML),
    ("/billing/features", "demo/features.html", HTML),
    // The portal's default return path (docs/decisions.md, "Checkout").
    ("/billing", "demo/account.html", HTML),
    ("/web/billing.js", "billing.js", JS),
    ("/web/demo/demo.js", "demo/demo.js", JS),
    ("/web/demo/style.css", "demo/style.css", CSS),
    // The operator console (web/admin/): its page refers to its files relatively, so the
    // team can host the directory anywhere.
    ("/admin/billing", "admin/index.html", HTML),
    ("/admin/console.js", "admin/console.js", JS),
    ("/admin/console.css", "admin/console.css", CSS),
];

/// Where `web/` is in this checkout.
pub fn web_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web"))
}

pub fn is_page(path: &str) -> bool {
    PAGES.iter().any(|p| p.0 == path)
}

/// The page at `path` for a GET or HEAD; `None` when `path` is not a demo page.
pub async fn serve(method: &str, path: &str) -> Option<Response<Full<Bytes>>> {
    let &(_, file, content_type) = PAGES.iter().find(|p| p.0 == path)?;
    if method != "GET" && method != "HEAD" {
        return Some(plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"));
    }
    let bytes = match tokio::fs::read(web_dir().join(file)).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(file, error = %e, "demo page missing");
            return Some(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("web/{file} cannot be read: {e}\n"),
            ));
        }
    };
    let body = if method == "HEAD" {
        Bytes::new()
    } else {
        Bytes::from(bytes)
    };
    let mut resp = Response::new(Full::new(body));
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    // Like every answer of the stack, and so an edited page shows on the next reload.
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // The pages call the API of their own origin only; another origin's page may not
    // frame them.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    Some(resp)
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(text.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_page_is_a_file_of_the_repository() {
        for (path, file, _) in PAGES {
            assert!(
                web_dir().join(file).is_file(),
                "{path} → web/{file} is missing"
            );
        }
    }
}
