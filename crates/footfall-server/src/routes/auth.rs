//! Dashboard sign-in (DESIGN §5 users): `POST /api/auth/login` checks an email and password
//! (argon2id) and sets an HttpOnly, SameSite=Strict session cookie, which the Stats API and
//! the site-scoped admin routes then accept; `POST /api/auth/logout` ends the session;
//! `GET /api/auth/me` says who is signed in and their roles.

use crate::admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::json_body;
use crate::state::{AppState, Caller, SESSION_COOKIE, hash_secret};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::RngCore;
use serde_json::{Value, json};

/// How long a sign-in lasts.
const SESSION_DAYS: i64 = 30;
/// Sign-in attempts per email address an hour (then 429).
const LOGINS_PER_HOUR: u32 = 20;

/// The hash an unknown address is checked against (of a random password nobody knows).
static STAND_IN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    admin::hash_password(&format!(
        "{}{}",
        admin::generate_password(),
        admin::generate_password()
    ))
    .unwrap_or_default()
});

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/login", post(post_login))
        .route("/api/auth/logout", post(post_logout))
        .route("/api/auth/me", get(get_me))
}

fn session_cookie(token: &str, max_age_secs: i64) -> HeaderValue {
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn me(user: &footfall_store::User) -> Value {
    json!({"email": user.email, "sites": user.sites})
}

async fn post_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let v = json_body(&headers, body, 16 * 1024).await?;
    let field = |k: &str| {
        v.get(k).and_then(Value::as_str).ok_or_else(|| {
            ApiError::bad_request("invalid_request", format!("`{k}` (string) is required"))
        })
    };
    let (email, password) = (
        field("email")?.trim().to_ascii_lowercase(),
        field("password")?,
    );
    let now = chrono::Utc::now().timestamp_micros();
    if !state
        .storage
        .live
        .take_rate_token(&format!("login:{email}"), LOGINS_PER_HOUR, now)
        .await?
    {
        return Err(ApiError::rate_limited(
            "too many sign-in attempts for this address; try again later",
            3600 / LOGINS_PER_HOUR,
        ));
    }
    let user = state
        .indexes
        .read()
        .users_by_id
        .values()
        .find(|u| u.email == email)
        .cloned();
    // The hash is checked (slowly, on purpose) off the async workers. An unknown address
    // is checked against a stand-in hash, so it is answered like a wrong password and in
    // the same time.
    let (password, hash, known) = (
        password.to_owned(),
        user.as_ref()
            .map_or_else(|| STAND_IN.clone(), |u| u.password_hash.clone()),
        user.is_some(),
    );
    let ok = tokio::task::spawn_blocking(move || admin::verify_password(&password, &hash))
        .await
        .unwrap_or(false)
        && known;
    let Some(user) = user.filter(|_| ok) else {
        return Err(ApiError::unauthorized("wrong email or password"));
    };
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let expires = now + SESSION_DAYS * 86_400 * 1_000_000;
    let token_hash = hex::encode(hash_secret(&token));
    state
        .storage
        .meta
        .add_login_session(&token_hash, user.id, expires)
        .await?;
    state
        .indexes
        .write()
        .logins_by_hash
        .insert(token_hash, (user.id, expires));
    let mut resp = Json(me(&user)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&token, SESSION_DAYS * 86_400),
    );
    Ok(resp)
}

async fn post_logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = crate::cookie::read(&headers, SESSION_COOKIE) {
        let hash = hex::encode(hash_secret(token));
        state.indexes.write().logins_by_hash.remove(&hash);
        state.storage.meta.remove_login_session(&hash).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(resp)
}

async fn get_me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    match state.authenticate_request(&headers)? {
        Caller::User(user) => Ok(Json(me(&user))),
        Caller::Admin => Ok(Json(json!({"admin": true}))),
        Caller::Key(_) => Err(ApiError::forbidden("a key is not a signed-in user")),
    }
}
