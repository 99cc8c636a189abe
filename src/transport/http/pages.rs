//! The connect pages' HTML: plain server-rendered pages that work without JavaScript, with no
//! asset from anywhere (one small stylesheet, inline, allowed by its hash), a strict Content
//! Security Policy, and nothing kept by caches or leaked to other sites through `Referer`
//! (their addresses carry link tokens; `same-origin`, not `no-referrer`, which makes browsers
//! send `Origin: null` with a form, and the Origin guard refuses that). Every value from outside goes through [`escape`].

use std::sync::OnceLock;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use base64::Engine;
use sha2::{Digest, Sha256};

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;\
padding:0 1rem;color:#1d1d1f}h1{font-size:1.5rem}table{border-collapse:collapse;width:100%}\
td,th{text-align:left;padding:.5rem;border-bottom:1px solid #ddd}form{display:inline}\
button,.button{font:inherit;padding:.3rem .9rem;border:1px solid #555;border-radius:4px;\
background:#f4f4f4;color:#1d1d1f;text-decoration:none;cursor:pointer}\
.connected{color:#0a7d24}.not-connected{color:#666}.needs-reconnect{color:#b25000}\
.error{border-left:4px solid #b00020;padding:.2rem 1rem}.ok{border-left:4px solid #0a7d24;\
padding:.2rem 1rem}input[type=password]{font:inherit;width:100%;padding:.3rem}\
footer{margin-top:2rem;color:#666;font-size:.9rem}";

/// The Content-Security-Policy of every page: nothing but the page's own stylesheet, forms
/// posting back here, no frames, no scripts.
fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

/// Text made safe to place in HTML, in element content or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A whole page: `title` (text) and `body` (HTML, already escaped where it must be).
pub fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"same-origin\">\
         <title>{title} · gumcp-actors</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1>{body}<footer>gumcp-actors</footer></body></html>",
        title = escape(title),
    );
    secured(&mut HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .body(html)
}

/// A page that says what went wrong and what to do, nothing else.
pub fn problem(status: StatusCode, title: &str, what: &str, retry: &str) -> HttpResponse {
    page(
        status,
        title,
        &format!(
            "<p class=\"error\">{}</p><p>{}</p>",
            escape(what),
            escape(retry)
        ),
    )
}

/// The headers every connect response carries, pages and redirects alike.
pub fn secured(
    builder: &mut actix_web::HttpResponseBuilder,
) -> &mut actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, content_security_policy()))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_shown_as_text() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
