//! `/api/admin/*`: sites and keys, for the CLI while the server runs. Admin token only.

use crate::admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::bearer;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use axum::{Json, Router};
use footfall_store::{KeyScope, Role};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/sites", get(get_sites).post(post_site))
        .route(
            "/api/admin/sites/{domain}",
            delete(delete_site).patch(patch_site),
        )
        .route(
            "/api/admin/sites/{domain}/goals",
            get(get_goals).post(post_goal),
        )
        .route("/api/admin/sites/{domain}/goals/{id}", delete(delete_goal))
        .route(
            "/api/admin/sites/{domain}/shared-links",
            axum::routing::post(post_shared_link),
        )
        .route("/api/admin/users", get(get_users).post(post_user))
        .route("/api/admin/users/{email}", delete(delete_user))
        .route(
            "/api/admin/users/{email}/password",
            axum::routing::put(put_password),
        )
        .route(
            "/api/admin/users/{email}/sites/{domain}",
            axum::routing::put(put_role).delete(delete_role),
        )
        .route("/api/admin/keys", get(get_keys).post(post_key))
        .route("/api/admin/keys/{id}", delete(delete_key))
}

/// The site a site-scoped admin route names, once the caller holds at least `role` on it
/// (the admin token, or a signed-in user with that role).
fn site_with_role(
    state: &AppState,
    headers: &HeaderMap,
    domain: &str,
    role: Role,
) -> ApiResult<std::sync::Arc<footfall_store::Site>> {
    let caller = state.authenticate_request(headers)?;
    let site = state.existing_site(domain)?;
    state.require_role(&caller, &site, role)?;
    Ok(site)
}

fn admin_only(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let caller = state.authenticate(bearer(headers))?;
    state.require_admin(&caller)
}

/// A JSON body (415 for another content type, 413 over 64 KiB, 400 when not JSON).
async fn json_body(headers: &HeaderMap, body: Body) -> ApiResult<Value> {
    crate::extract::json_body(headers, body, 64 * 1024).await
}

fn str_field<'a>(v: &'a Value, key: &str) -> ApiResult<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("invalid_request", format!("`{key}` (string) is required"))
    })
}

/// An optional string field: absent or `null` is `None`; another type is a 400 rather
/// than the default (a numeric `password` silently generated one, a numeric `timezone`
/// made the site UTC).
fn opt_str_field<'a>(v: &'a Value, key: &str) -> ApiResult<Option<&'a str>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(
            "invalid_request",
            format!("`{key}` must be a string"),
        )),
    }
}

async fn get_sites(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin_only(&state, &headers)?;
    Ok(Json(json!({"sites": state.storage.meta.sites().await?})))
}

async fn post_site(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin_only(&state, &headers)?;
    let v = json_body(&headers, body).await?;
    let tz = opt_str_field(&v, "timezone")?.unwrap_or("UTC");
    let changes = site_changes(&v)?;
    let site = admin::add_site_with(
        state.storage.meta.as_ref(),
        str_field(&v, "domain")?,
        tz,
        &changes,
    )
    .await?;
    state.reload().await?;
    Ok((StatusCode::CREATED, Json(json!(site))))
}

/// The site settings a body names (`timezone`, `identity_mode`, `session_timeout_secs`,
/// `allowed_hostnames`); a field of the wrong type is a 400, not ignored.
fn site_changes(v: &Value) -> ApiResult<admin::SiteChanges> {
    let wrong = |key: &str, what: &str| {
        ApiError::bad_request("invalid_request", format!("`{key}` must be {what}"))
    };
    let string = |key: &str| -> ApiResult<Option<String>> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong(key, "a string")),
        }
    };
    let session_timeout_secs = match v.get("session_timeout_secs") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| wrong("session_timeout_secs", "a number of seconds"))?,
        ),
    };
    let allowed_hostnames = match v.get("allowed_hostnames") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|h| h.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| wrong("allowed_hostnames", "a list of hostnames"))?,
        ),
        Some(_) => return Err(wrong("allowed_hostnames", "a list of hostnames")),
    };
    Ok(admin::SiteChanges {
        timezone: string("timezone")?,
        identity_mode: string("identity_mode")?,
        session_timeout_secs,
        allowed_hostnames,
    })
}

async fn patch_site(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let site = site_with_role(&state, &headers, &domain, Role::Admin)?;
    let changes = site_changes(&json_body(&headers, body).await?)?;
    let site = admin::update_site(state.storage.meta.as_ref(), &site.domain, &changes).await?;
    state.reload().await?;
    Ok(Json(json!(site)))
}

async fn get_goals(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let site = site_with_role(&state, &headers, &domain, Role::Admin)?;
    let goals = state.storage.meta.goal_records(site.id).await?;
    Ok(Json(json!({"site": site.domain, "goals": goals})))
}

/// `{"page": "/blog*"}` or `{"event": "Signup"}`.
async fn post_goal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let site = site_with_role(&state, &headers, &domain, Role::Admin)?;
    let v = json_body(&headers, body).await?;
    let spec = match (opt_str_field(&v, "page")?, opt_str_field(&v, "event")?) {
        (Some(page), None) => admin::GoalSpec::Page(page.to_owned()),
        (None, Some(event)) => admin::GoalSpec::Event(event.to_owned()),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "a goal is {\"page\": \"/path*\"} or {\"event\": \"Name\"}",
            ));
        }
    };
    let goal = admin::add_goal(state.storage.meta.as_ref(), &site, spec).await?;
    Ok((StatusCode::CREATED, Json(json!(goal))))
}

async fn delete_goal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((domain, id)): Path<(String, u32)>,
) -> ApiResult<StatusCode> {
    let site = site_with_role(&state, &headers, &domain, Role::Admin)?;
    state.storage.meta.remove_goal(site.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_site(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> ApiResult<StatusCode> {
    let site = site_with_role(&state, &headers, &domain, Role::Owner)?;
    state.storage.meta.remove_site(&site.domain).await?;
    state.storage.events.delete_site_events(site.id).await?;
    state.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_keys(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin_only(&state, &headers)?;
    Ok(Json(json!({"keys": state.storage.meta.keys().await?})))
}

async fn post_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin_only(&state, &headers)?;
    let v = json_body(&headers, body).await?;
    let scope_name = str_field(&v, "scope")?;
    let scope = KeyScope::parse(scope_name).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            format!("scope {scope_name:?} must be `ingest` or `stats`"),
        )
    })?;
    let site = admin::find_site(state.storage.meta.as_ref(), str_field(&v, "site")?).await?;
    let name = opt_str_field(&v, "name")?.unwrap_or("");
    let (record, key) = admin::create_key(state.storage.meta.as_ref(), &site, scope, name).await?;
    state.reload().await?;
    let mut out = json!(record);
    out["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn delete_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<u32>,
) -> ApiResult<StatusCode> {
    admin_only(&state, &headers)?;
    state.storage.meta.revoke_key(id).await?;
    state.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A read-only link to the site's dashboard: a new stats key (named "shared link", listed
/// and revoked like any key) in the link's fragment, which browsers do not send to
/// servers.
async fn post_shared_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let site = site_with_role(&state, &headers, &domain, Role::Admin)?;
    let (record, path) = admin::create_shared_link(state.storage.meta.as_ref(), &site).await?;
    state.reload().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"site": site.domain, "key_id": record.id, "path": path})),
    ))
}

fn role_field(v: &Value) -> ApiResult<Role> {
    let name = str_field(v, "role")?;
    Role::parse(name).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            format!("role {name:?} must be viewer, admin or owner"),
        )
    })
}

async fn get_users(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin_only(&state, &headers)?;
    Ok(Json(json!({"users": state.storage.meta.users().await?})))
}

/// `{"email", "password"?, "site"?, "role"?}`: without a password one is generated and
/// answered once (`password`).
async fn post_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin_only(&state, &headers)?;
    let v = json_body(&headers, body).await?;
    let meta = state.storage.meta.as_ref();
    let site = match opt_str_field(&v, "site")? {
        Some(domain) => Some((admin::find_site(meta, domain).await?, role_field(&v)?)),
        None => None,
    };
    let (password, generated) = match opt_str_field(&v, "password")? {
        Some(p) => (p.to_owned(), false),
        None => (admin::generate_password(), true),
    };
    let user = admin::add_user(
        meta,
        str_field(&v, "email")?,
        &password,
        site.as_ref().map(|(s, r)| (s, *r)),
    )
    .await?;
    state.reload().await?;
    let mut out = json!(user);
    if generated {
        out["password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(out)))
}

async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(email): Path<String>,
) -> ApiResult<StatusCode> {
    admin_only(&state, &headers)?;
    let user = admin::find_user(state.storage.meta.as_ref(), &email).await?;
    state.storage.meta.remove_user(user.id).await?;
    state.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"password"}`; signs the user out everywhere.
async fn put_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(email): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    admin_only(&state, &headers)?;
    let v = json_body(&headers, body).await?;
    let meta = state.storage.meta.as_ref();
    let user = admin::find_user(meta, &email).await?;
    let hash = admin::hash_password(str_field(&v, "password")?)?;
    meta.set_password(user.id, &hash).await?;
    state.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"role": "viewer" | "admin" | "owner"}` on the site.
async fn put_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((email, domain)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    admin_only(&state, &headers)?;
    let role = role_field(&json_body(&headers, body).await?)?;
    let meta = state.storage.meta.as_ref();
    let (user, site) = (
        admin::find_user(meta, &email).await?,
        admin::find_site(meta, &domain).await?,
    );
    meta.set_role(user.id, site.id, Some(role)).await?;
    state.reload().await?;
    Ok(Json(json!(admin::find_user(meta, &email).await?)))
}

async fn delete_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((email, domain)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    admin_only(&state, &headers)?;
    let meta = state.storage.meta.as_ref();
    let (user, site) = (
        admin::find_user(meta, &email).await?,
        admin::find_site(meta, &domain).await?,
    );
    meta.set_role(user.id, site.id, None).await?;
    state.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}
