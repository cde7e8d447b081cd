//! Account and device endpoints: session, profile, `ring_devices`, locations,
//! health, floodlight and siren, doorbot and device settings, active dings, push
//! registration and push subscriptions (ring-api.md §1.5, §2, §7.1, §7.3).
//!
//! Every handler first calls [`SimState::gate`] (request counting and faults),
//! then checks the Bearer token.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::clock;
use super::data;
use super::data::cameras::SimCamera;
use super::error::{SimError, SimResult, form_value, is_form, merge_json, parse_id, parse_object};
use super::render;
use super::state::{ACTIVE_DING_SECS, SimState};

type St = State<Arc<SimState>>;

/// `POST /clients_api/session`: needs `device.hardware_id`; answers `profile{...}`.
pub(crate) async fn session(
    State(st): St,
    headers: HeaderMap,
    body: Bytes,
) -> SimResult<Json<Value>> {
    st.gate("session", &headers).await?;
    st.authorize(&headers)?;
    let hid = if is_form(&headers) {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| SimError::bad_request(format!("invalid form body: {e}")))?;
        form.into_iter()
            .find(|(k, _)| k == "device[hardware_id]")
            .map(|(_, v)| v)
    } else {
        let obj = parse_object(&body)?;
        obj.get("device")
            .and_then(|d| d.get("hardware_id"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let hid = hid
        .filter(|h| !h.trim().is_empty())
        .ok_or_else(|| SimError::bad_request("device.hardware_id is required"))?;
    {
        let mut inner = st.lock();
        inner.sessions_created += 1;
        inner.hardware_ids.insert(hid.clone());
        inner.sessions.insert(hid.clone());
    }
    let mut profile = render::profile();
    profile["hardware_id"] = json!(hid);
    profile["authentication_token"] = json!(super::state::random_token(15));
    Ok(Json(json!({ "profile": profile })))
}

/// `GET /clients_api/profile`.
pub(crate) async fn profile(State(st): St, headers: HeaderMap) -> SimResult<Json<Value>> {
    st.gate("profile", &headers).await?;
    st.authorize_client(&headers)?;
    Ok(Json(json!({ "profile": render::profile() })))
}

/// `GET /clients_api/ring_devices`.
pub(crate) async fn ring_devices(State(st): St, headers: HeaderMap) -> SimResult<Json<Value>> {
    st.gate("ring_devices", &headers).await?;
    st.authorize_client(&headers)?;
    let inner = st.lock();
    let mut out = json!({
        "doorbots": [], "authorized_doorbots": [], "stickup_cams": [],
        "chimes": [data::home::chime_json()], "base_stations": [], "beams_bridges": [], "other": [],
    });
    for cam in inner.cameras.values() {
        let key = match cam.array {
            data::cameras::DeviceArray::Doorbots => "doorbots",
            data::cameras::DeviceArray::AuthorizedDoorbots => "authorized_doorbots",
            data::cameras::DeviceArray::StickupCams => "stickup_cams",
        };
        if let Some(arr) = out[key].as_array_mut() {
            arr.push(render::camera(cam));
        }
    }
    Ok(Json(out))
}

/// `GET /devices/v1/locations`.
pub(crate) async fn locations(State(st): St, headers: HeaderMap) -> SimResult<Json<Value>> {
    st.gate("locations", &headers).await?;
    st.authorize(&headers)?;
    let locs: Vec<Value> = data::home::locations()
        .iter()
        .map(|(id, name, addr)| render::location(id, name, addr))
        .collect();
    Ok(Json(json!({ "user_locations": locs })))
}

/// `GET /groups/v1/locations/{loc}/groups`: light groups of a location
/// (python-ring-doorbell calls it on every update). The demo account has none:
/// `{"device_groups": []}`; an unknown location is 404.
pub(crate) async fn location_groups(
    State(st): St,
    Path(loc): Path<String>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    st.gate("groups", &headers).await?;
    st.authorize(&headers)?;
    if !data::home::locations().iter().any(|(id, _, _)| *id == loc) {
        return Err(SimError::not_found(format!("location {loc} not found")));
    }
    Ok(Json(json!({ "device_groups": [] })))
}

/// `GET /clients_api/doorbots/{id}/{action}`: `health` and `history`.
pub(crate) async fn doorbot_get(
    st: St,
    Path((id, action)): Path<(String, String)>,
    query: Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let res = match action.as_str() {
        "health" => health(&st.0, &id, &headers)
            .await
            .map(IntoResponse::into_response),
        "history" => super::history::legacy(&st.0, &id, &query.0, &headers)
            .await
            .map(IntoResponse::into_response),
        _ => Err(SimError::not_found(format!(
            "unknown doorbot resource {action:?}"
        ))),
    };
    res.unwrap_or_else(IntoResponse::into_response)
}

async fn health(st: &SimState, id: &str, headers: &HeaderMap) -> SimResult<Json<Value>> {
    st.gate("health", headers).await?;
    st.authorize_client(headers)?;
    let id = parse_id("doorbot", id)?;
    let inner = st.lock();
    Ok(Json(
        json!({ "device_health": render::device_health(inner.camera(id)?) }),
    ))
}

/// `PUT /clients_api/doorbots/{id}/{action}`: floodlight and siren commands.
pub(crate) async fn doorbot_put(
    State(st): St,
    Path((id, action)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    let endpoint = match action.as_str() {
        "floodlight_light_on" | "floodlight_light_off" => "light",
        "siren_on" | "siren_off" => "siren",
        _ => {
            return Err(SimError::not_found(format!(
                "unknown doorbot command {action:?}"
            )));
        }
    };
    st.gate(endpoint, &headers).await?;
    st.authorize_client(&headers)?;
    let id = parse_id("doorbot", &id)?;
    let duration = match query.iter().find(|(k, _)| k == "duration") {
        Some((_, v)) => v
            .parse::<u64>()
            .ok()
            .filter(|d| *d <= 120)
            .ok_or_else(|| SimError::bad_request("duration must be 0..=120 seconds"))?,
        None => 30,
    };
    let mut inner = st.lock();
    let cam = inner.camera_mut(id)?;
    if !cam.has_light_siren {
        let what = if endpoint == "light" {
            "floodlight"
        } else {
            "siren"
        };
        return Err(SimError::bad_request(format!("device {id} has no {what}")));
    }
    if !cam.online() {
        return Err(SimError::camera_offline(id));
    }
    match action.as_str() {
        "floodlight_light_on" => cam.light_on = true,
        "floodlight_light_off" => cam.light_on = false,
        "siren_on" => {
            cam.siren_until =
                Some(tokio::time::Instant::now() + std::time::Duration::from_secs(duration))
        }
        _ => cam.siren_until = None,
    }
    Ok(Json(json!({})))
}

/// `POST /clients_api/doorbots/{id}/{action}`: (motions_)(un)subscribe.
pub(crate) async fn doorbot_post(
    State(st): St,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    st.gate("subscribe", &headers).await?;
    st.authorize_client(&headers)?;
    let id = parse_id("doorbot", &id)?;
    let mut inner = st.lock();
    let cam = inner.camera_mut(id)?;
    match action.as_str() {
        "subscribe" => cam.subscribed = true,
        "unsubscribe" => cam.subscribed = false,
        "motions_subscribe" => cam.subscribed_motions = true,
        "motions_unsubscribe" => cam.subscribed_motions = false,
        _ => {
            return Err(SimError::not_found(format!(
                "unknown doorbot action {action:?}"
            )));
        }
    }
    Ok(Json(json!({})))
}

/// `PUT /clients_api/doorbots/{id}`: `doorbot.settings{...}` as JSON, or python's
/// `doorbot[settings][key]=value` form/query parameters.
pub(crate) async fn doorbot_settings(
    State(st): St,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> SimResult<Json<Value>> {
    st.gate("doorbot_settings", &headers).await?;
    st.authorize_client(&headers)?;
    let id = parse_id("doorbot", &id)?;
    let mut patch = json!({});
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|e| SimError::bad_request(format!("invalid query: {e}")))?;
    if is_form(&headers) {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| SimError::bad_request(format!("invalid form body: {e}")))?;
        pairs.extend(form);
    } else if let Some(doorbot) = parse_object(&body)?.get("doorbot") {
        if !doorbot.is_object() {
            return Err(SimError::bad_request("doorbot must be an object"));
        }
        patch = doorbot.clone();
    }
    for (k, v) in pairs {
        if let Some(rest) = k
            .strip_prefix("doorbot[settings][")
            .and_then(|r| r.strip_suffix(']'))
        {
            patch["settings"][rest] = form_value(&v);
        } else if k == "doorbot[description]" {
            patch["description"] = json!(v);
        }
    }
    let mut inner = st.lock();
    let cam = inner.camera_mut(id)?;
    if let Some(settings) = patch.get("settings") {
        if !settings.is_object() {
            return Err(SimError::bad_request("doorbot.settings must be an object"));
        }
        merge_json(&mut cam.settings, settings);
    }
    if let Some(name) = patch.get("description").and_then(Value::as_str) {
        cam.name = name.to_string();
    }
    Ok(Json(json!({})))
}

/// `GET /devices/v1/devices/{id}/settings`.
pub(crate) async fn device_settings_get(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    st.gate("device_settings", &headers).await?;
    st.authorize(&headers)?;
    let id = parse_id("device", &id)?;
    let inner = st.lock();
    Ok(Json(render::device_settings(inner.camera(id)?)))
}

/// `PATCH /devices/v1/devices/{id}/settings` (e.g. `motion_settings.motion_detection_enabled`).
pub(crate) async fn device_settings_patch(
    State(st): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> SimResult<Json<Value>> {
    st.gate("device_settings", &headers).await?;
    st.authorize(&headers)?;
    let id = parse_id("device", &id)?;
    let patch = Value::Object(parse_object(&body)?);
    let mut inner = st.lock();
    let cam = inner.camera_mut(id)?;
    let md = patch.pointer("/motion_settings/motion_detection_enabled");
    if let Some(md) = md {
        let on = md
            .as_bool()
            .ok_or_else(|| SimError::bad_request("motion_detection_enabled must be a boolean"))?;
        cam.settings["motion_detection_enabled"] = json!(on);
    }
    merge_json(&mut cam.device_settings, &patch);
    Ok(Json(render::device_settings(cam)))
}

/// `GET /clients_api/dings/active`: events of the last 180 s.
pub(crate) async fn dings_active(State(st): St, headers: HeaderMap) -> SimResult<Json<Value>> {
    st.gate("dings_active", &headers).await?;
    st.authorize_client(&headers)?;
    let now = clock::now_ms();
    let inner = st.lock();
    let mut active: Vec<_> = inner
        .events
        .iter()
        .filter(|e| now - e.created_ms < ACTIVE_DING_SECS * 1000 && e.created_ms <= now)
        .collect();
    active.sort_by_key(|e| std::cmp::Reverse(e.id));
    let out: Vec<Value> = active
        .into_iter()
        .filter_map(|e| {
            let cam: &SimCamera = inner.cameras.get(&e.camera_id)?;
            Some(render::active_ding(e, cam, now))
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

/// `PATCH /clients_api/device`: registers a push token (`device.push_notification_token`); 204.
pub(crate) async fn push_register(
    State(st): St,
    headers: HeaderMap,
    body: Bytes,
) -> SimResult<Response> {
    st.gate("push_register", &headers).await?;
    st.authorize_client(&headers)?;
    let obj = parse_object(&body)?;
    let token = obj
        .get("device")
        .and_then(|d| d.get("push_notification_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| SimError::bad_request("device.push_notification_token is required"))?;
    let hid = headers
        .get("hardware_id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    st.lock().push_tokens.insert(hid, token.to_string());
    Ok(StatusCode::NO_CONTENT.into_response())
}
