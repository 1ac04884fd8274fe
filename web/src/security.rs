//! What every request goes through before a page: the access token, the
//! read-only refusal, the same-origin and CSRF checks of a POST, the session
//! cookie, and the headers that keep the browser strict.
//!
//! A dashboard draws a random secret when its router is built. A browser
//! gets a random session id in an `HttpOnly`, `SameSite=Strict` cookie; the
//! CSRF token its forms carry is the HMAC-SHA-256 of that id under the
//! secret, so a page of another origin can neither read it nor forge it,
//! and a token is worth nothing with another browser's cookie. The access
//! cookie set by a `?token=` login is an HMAC of the token, so the token
//! itself is never stored in the browser.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, HOST, ORIGIN, REFERER,
    REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Shared;
use std::sync::Arc;

/// The session cookie: a random id the CSRF token is bound to.
pub(crate) const SESSION_COOKIE: &str = "outband_session";
/// The access cookie a `?token=` login sets.
const ACCESS_COOKIE: &str = "outband_access";
/// The form field that carries the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";
/// The largest form body a POST may carry: ticked dead letters are ids.
const MAX_FORM: usize = 256 * 1024;

/// The policy of every response: scripts and styles of this origin only,
/// no inline script, no frames, forms posted here only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The browser's session, as the guard found or made it.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The CSRF token of this session, for the forms of a page.
    pub(crate) csrf: String,
}

/// A fresh random value, hex-encoded: a secret or a session id.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0; bytes];
    if let Err(error) = getrandom::fill(&mut buffer) {
        // the system's random source is missing: nothing safe can be made
        panic!("outband-web needs the system's random source: {error}");
    }
    hex(&buffer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn keyed(secret: &[u8], purpose: &str, value: &str) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    mac
}

/// The HMAC of `value` for `purpose` under `secret`, hex-encoded.
pub(crate) fn sign(secret: &[u8], purpose: &str, value: &str) -> String {
    hex(&keyed(secret, purpose, value).finalize().into_bytes())
}

/// Whether `signature` is the HMAC of `value` for `purpose`, compared in
/// constant time.
fn verify(secret: &[u8], purpose: &str, value: &str, signature: &str) -> bool {
    unhex(signature).is_some_and(|bytes| keyed(secret, purpose, value).verify_slice(&bytes).is_ok())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(shared: &Shared, name: &str, value: &str) -> Option<HeaderValue> {
    let path = if shared.base.is_empty() {
        "/"
    } else {
        &shared.base
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict"
    ))
    .ok()
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, why.to_owned()).into_response()
}

/// The authority (`host[:port]`) of an absolute URL.
fn authority(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Whether the request comes from a page of the dashboard's own origin: its
/// `Origin`, or else its `Referer`, names the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = match headers.get(ORIGIN) {
        Some(origin) => origin.to_str().ok(),
        None => headers.get(REFERER).and_then(|r| r.to_str().ok()),
    };
    from.and_then(authority)
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// The token a request carries in `Authorization: Bearer`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The `token` of a query string, and the query without it.
fn query_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == "token" {
            token = Some(value.into_owned());
        } else {
            rest.append_pair(&key, &value);
        }
    }
    (token, rest.finish())
}

/// Whether `given` is the access token, compared through their HMACs so
/// that the time taken says nothing of the token.
fn token_matches(shared: &Shared, token: &str, given: &str) -> bool {
    verify(
        &shared.secret,
        "token",
        given,
        &sign(&shared.secret, "token", token),
    )
}

/// The guard every route sits behind: see the module's docs.
pub(crate) async fn guard(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut set_cookies = Vec::new();
    if let Some(token) = &shared.token {
        let headers = request.headers();
        let by_header = bearer(headers).is_some_and(|given| token_matches(&shared, token, given));
        let by_cookie = cookie(headers, ACCESS_COOKIE)
            .is_some_and(|value| verify(&shared.secret, "access", token, value));
        if !(by_header || by_cookie) {
            let (given, rest) = query_token(request.uri().query().unwrap_or(""));
            let login = request.method() == Method::GET
                && given.is_some_and(|given| token_matches(&shared, token, &given));
            if !login {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "this dashboard needs its access token: open it once with ?token=TOKEN, \
                     or send Authorization: Bearer TOKEN",
                );
            }
            // the token leaves the address bar and the history at once. A
            // page that moves on, rather than a redirect: a SameSite=Strict
            // cookie set by a navigation from another site (a link in a
            // chat) would not be sent along that navigation's redirect,
            // but it is on a navigation this page starts.
            let mut location = format!("{}{}", shared.base, request.uri().path());
            if !rest.is_empty() {
                location = format!("{location}?{rest}");
            }
            let page = maud::html! {
                (maud::DOCTYPE)
                html lang="en" {
                    head {
                        meta charset="utf-8";
                        meta http-equiv="refresh" content=(format!("0; url={location}"));
                        title { "outband" }
                    }
                    body { p { a href=(location) { "Continue to the dashboard" } } }
                }
            };
            let mut response = page.into_response();
            let access = sign(&shared.secret, "access", token);
            if let Some(value) = set_cookie(&shared, ACCESS_COOKIE, &access) {
                response.headers_mut().append(SET_COOKIE, value);
            }
            return secure(response);
        }
    }

    let session = match cookie(request.headers(), SESSION_COOKIE) {
        Some(id) if id.len() == 32 && unhex(id).is_some() => id.to_owned(),
        _ => {
            let id = random_hex(16);
            set_cookies.extend(set_cookie(&shared, SESSION_COOKIE, &id));
            id
        }
    };

    if request.method() == Method::POST {
        if shared.read_only {
            return secure(refuse(
                StatusCode::FORBIDDEN,
                "this dashboard is read-only: it changes nothing",
            ));
        }
        if !same_origin(request.headers()) {
            return secure(refuse(
                StatusCode::FORBIDDEN,
                "refused: the request does not come from a page of this dashboard \
                 (its Origin or Referer does not match its Host)",
            ));
        }
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return secure(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the form is too large",
            ));
        };
        let csrf = form_urlencoded::parse(&bytes)
            .find(|(key, _)| key == CSRF_FIELD)
            .map(|(_, value)| value.into_owned());
        if !csrf.is_some_and(|csrf| verify(&shared.secret, "csrf", &session, &csrf)) {
            return secure(refuse(
                StatusCode::FORBIDDEN,
                "refused: the form's CSRF token is missing or not this session's; \
                 reload the page and try again",
            ));
        }
        request = Request::from_parts(parts, Body::from(bytes));
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        return secure(refuse(StatusCode::METHOD_NOT_ALLOWED, "GET or POST only"));
    }

    request.extensions_mut().insert(Session {
        csrf: sign(&shared.secret, "csrf", &session),
    });
    let mut response = next.run(request).await;
    for value in set_cookies {
        response.headers_mut().append(SET_COOKIE, value);
    }
    secure(response)
}

/// Adds the headers that keep the browser strict to a response.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_value_and_purpose() {
        let secret = b"secret";
        let signature = sign(secret, "csrf", "session");
        assert!(verify(secret, "csrf", "session", &signature));
        assert!(!verify(secret, "csrf", "other", &signature));
        assert!(!verify(secret, "access", "session", &signature));
        assert!(!verify(b"other", "csrf", "session", &signature));
        assert!(!verify(secret, "csrf", "session", "zz"));
    }

    #[test]
    fn the_origin_must_name_the_host() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:9140"));
        assert!(!same_origin(&headers), "neither Origin nor Referer");
        headers.insert(
            REFERER,
            HeaderValue::from_static("http://127.0.0.1:9140/dead"),
        );
        assert!(same_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&headers), "Origin wins over Referer");
        headers.insert(ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:9140"));
        assert!(same_origin(&headers));
    }

    #[test]
    fn the_token_leaves_the_query() {
        let (token, rest) = query_token("state=dead&token=abc&queue=q");
        assert_eq!(token.as_deref(), Some("abc"));
        assert_eq!(rest, "state=dead&queue=q");
    }
}
