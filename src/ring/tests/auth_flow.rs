//! Token life: rotation persisted, renewal, 401 → refresh once, rejected refresh
//! → ReauthRequired without a retry loop, password login with 2FA, drop safety.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::base::{ErrorKind, ResultExt};
use crate::ring::state::TOKEN_FILE;
use crate::ring::{AuthFailure, AuthState, ErrorInner, RingApi};

const OAUTH: &str = "/oauth/token";
const DEVICES_PATH: &str = "/clients_api/ring_devices";

fn auth_err(e: &crate::ring::Error) -> &AuthFailure {
    match e.inner() {
        ErrorInner::Auth(a) => a,
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn rotation_is_persisted_before_use_and_headers_are_right() {
    let mock = Mock::start().await;
    mock.sign_in_with([Reply::token("at-1", "rt-1", 3600)]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    assert_eq!(*c.auth_state().borrow(), AuthState::Unknown);

    let cams = c.cameras().await.unwrap();
    assert_eq!(cams.len(), 7);
    assert_eq!(*c.auth_state().borrow(), AuthState::Authenticated);

    // The rotated token is on disk, 0600, with no temp file left behind.
    assert_eq!(saved(dir.path()), "rt-1");
    let meta = std::fs::metadata(dir.path().join(TOKEN_FILE)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");

    // OAuth request per ring-api.md §1.1/§1.3.
    let oauth = &mock.seen_at(OAUTH)[0];
    let b = oauth.json();
    assert_eq!(b["client_id"], "ring_official_android");
    assert_eq!(b["scope"], "client");
    assert_eq!(b["grant_type"], "refresh_token");
    assert_eq!(b["refresh_token"], "rt-0");
    assert_eq!(oauth.header("hardware_id"), Some(c.hardware_id()));
    assert_eq!(oauth.header("user-agent"), Some("android:com.ringapp"));
    assert_eq!(oauth.header("2fa-support"), Some("true"));

    // Session first, then the call, both with the common headers.
    let seen = mock.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, [OAUTH, "/clients_api/session", DEVICES_PATH]);
    let session = seen[1].json();
    assert_eq!(session["device"]["hardware_id"], c.hardware_id());
    assert_eq!(session["device"]["metadata"]["api_version"], 11);
    assert_eq!(
        session["device"]["metadata"]["device_model"],
        "ring-bridge-test"
    );
    assert_eq!(session["device"]["os"], "android");
    for s in &seen[1..] {
        assert_eq!(s.header("authorization"), Some("Bearer at-1"));
        assert_eq!(s.header("hardware_id"), Some(c.hardware_id()));
        assert_eq!(s.header("user-agent"), Some("android:com.ringapp"));
        assert_eq!(s.header("accept"), Some("application/json"));
    }

    // A second call reuses the access token and the session.
    c.cameras().await.unwrap();
    assert_eq!(mock.count(OAUTH), 1);
    assert_eq!(mock.count("/clients_api/session"), 1);
}

#[tokio::test]
async fn renews_sixty_seconds_before_expiry() {
    let mock = Mock::start().await;
    mock.script(
        &format!("POST {OAUTH}"),
        [
            Reply::token("at-1", "rt-1", 60),
            Reply::token("at-2", "rt-2", 3600),
        ],
    );
    mock.script(&format!("GET {DEVICES_PATH}"), [Reply::ok(DEVICES)]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    c.cameras().await.unwrap();
    c.cameras().await.unwrap();
    let oauth = mock.seen_at(OAUTH);
    assert_eq!(oauth.len(), 2, "expires_in 60 is inside the 60 s margin");
    assert_eq!(
        oauth[1].json()["refresh_token"],
        "rt-1",
        "uses the rotated token"
    );
    assert_eq!(saved(dir.path()), "rt-2");
    let last = mock.seen_at(DEVICES_PATH).pop().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer at-2"));
}

#[tokio::test]
async fn api_401_refreshes_once_and_retries_once() {
    let mock = Mock::start().await;
    mock.script(
        &format!("POST {OAUTH}"),
        [
            Reply::token("at-1", "rt-1", 3600),
            Reply::token("at-2", "rt-2", 3600),
        ],
    );
    mock.script(
        &format!("GET {DEVICES_PATH}"),
        [
            Reply::json(401, r#"{"error":"unauthorized"}"#),
            Reply::ok(DEVICES),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    c.cameras().await.unwrap();
    assert_eq!(mock.count(OAUTH), 2);
    let calls = mock.seen_at(DEVICES_PATH);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].header("authorization"), Some("Bearer at-2"));
    assert_eq!(saved(dir.path()), "rt-2");

    // Always 401: one refresh, one retry, then a typed error; no loop.
    mock.script(&format!("GET {DEVICES_PATH}"), [Reply::json(401, "{}")]);
    mock.script(
        &format!("POST {OAUTH}"),
        [Reply::token("at-3", "rt-3", 3600)],
    );
    let e = c.cameras().await.unwrap_err();
    assert!(
        matches!(auth_err(&e), AuthFailure::AccessRejected { .. }),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(mock.count(OAUTH), 3);
    assert_eq!(mock.count(DEVICES_PATH), 4);
}

#[tokio::test]
async fn rejected_refresh_requires_reauth_without_hammering() {
    let mock = Mock::start().await;
    mock.script(
        &format!("POST {OAUTH}"),
        [Reply::json(
            401,
            r#"{"error":"invalid_grant","error_description":"token is invalid or does not exists"}"#,
        )],
    );
    mock.script(&format!("GET {DEVICES_PATH}"), [Reply::ok(DEVICES)]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let mut state = c.auth_state();

    let e = c.cameras().await.unwrap_err();
    assert_eq!(*auth_err(&e), AuthFailure::RefreshRejected);
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(state.has_changed().unwrap());
    assert!(matches!(
        *state.borrow_and_update(),
        AuthState::ReauthRequired { .. }
    ));

    // Later calls fail fast without contacting Ring at all.
    for _ in 0..20 {
        let e = c.cameras().await.unwrap_err();
        assert_eq!(*auth_err(&e), AuthFailure::RefreshRejected);
    }
    assert_eq!(mock.count(OAUTH), 1, "no retry loop against OAuth");
    assert_eq!(mock.count(DEVICES_PATH), 0);
    assert_eq!(
        saved(dir.path()),
        "rt-0",
        "the rejected token is kept on disk"
    );

    // `ring-bridge auth` in another process saves a new token: picked up once.
    mock.script(
        &format!("POST {OAUTH}"),
        [Reply::token("at-9", "rt-10", 3600)],
    );
    let store = TokenStore::open(dir.path()).unwrap();
    let old = store.load_token().unwrap().unwrap();
    store
        .save_token(&old.successor(Secret::new("rt-9".into())))
        .unwrap();
    c.cameras().await.unwrap();
    assert_eq!(*state.borrow_and_update(), AuthState::Authenticated);
    assert_eq!(saved(dir.path()), "rt-10");
}

#[tokio::test]
async fn password_login_with_two_factor() {
    let mock = Mock::start().await;
    mock.script(
        &format!("POST {OAUTH}"),
        [
            Reply::json(
                412,
                r#"{"next_time_in_secs":60,"phone":"+xxxxxxx12","tsv_state":"sms"}"#,
            ),
            Reply::json(
                400,
                r#"{"error":"Verification Code is invalid or expired"}"#,
            ),
            Reply::json(400, r#"{"error":"invalid_request"}"#).header(
                "www-authenticate",
                r#"Bearer error="Verification Code is invalid""#,
            ),
            Reply::token("at-1", "rt-1", 3600),
        ],
    );
    mock.script(&format!("GET {DEVICES_PATH}"), [Reply::ok(DEVICES)]);
    let dir = tempfile::tempdir().unwrap();
    let c = RingClient::new(options(&mock, dir.path())).unwrap();
    assert!(matches!(
        *c.auth_state().borrow(),
        AuthState::ReauthRequired { .. }
    ));

    // Not logged in: fails fast, no network.
    let e = c.cameras().await.unwrap_err();
    assert_eq!(*auth_err(&e), AuthFailure::NotLoggedIn);
    assert!(mock.seen().is_empty());

    let e = c
        .login_password("a@example.com", "pw", None)
        .await
        .unwrap_err();
    match e.inner() {
        ErrorInner::TwoFactorRequired { tsv_state, phone } => {
            assert_eq!(tsv_state, "sms");
            assert_eq!(phone.as_deref(), Some("+xxxxxxx12"));
        }
        other => panic!("{other:?}"),
    }
    let e = c
        .login_password("a@example.com", "pw", Some("000000"))
        .await
        .unwrap_err();
    assert_eq!(*auth_err(&e), AuthFailure::WrongCode, "body error");
    let e = c
        .login_password("a@example.com", "pw", Some("000001"))
        .await
        .unwrap_err();
    assert_eq!(*auth_err(&e), AuthFailure::WrongCode, "WWW-Authenticate");
    c.login_password("a@example.com", "pw", Some(" 123456 "))
        .await
        .unwrap();
    assert_eq!(saved(dir.path()), "rt-1");
    assert_eq!(*c.auth_state().borrow(), AuthState::Authenticated);

    let oauth = mock.seen_at(OAUTH);
    let b = oauth[3].json();
    assert_eq!(b["grant_type"], "password");
    assert_eq!(b["username"], "a@example.com");
    assert_eq!(b["password"], "pw");
    assert_eq!(b["client_id"], "ring_official_android");
    assert_eq!(oauth[0].header("2fa-code"), Some(""));
    assert_eq!(oauth[3].header("2fa-code"), Some("123456"));
    assert_eq!(oauth[3].header("2fa-support"), Some("true"));

    // The login's access token is used directly.
    c.cameras().await.unwrap();
    assert_eq!(mock.count(OAUTH), 4);
    let call = mock.seen_at(DEVICES_PATH).pop().unwrap();
    assert_eq!(call.header("authorization"), Some("Bearer at-1"));
}

#[tokio::test]
async fn password_login_errors() {
    let mock = Mock::start().await;
    mock.script(
        &format!("POST {OAUTH}"),
        [
            Reply::json(401, r#"{"error":"access_denied","error_description":"invalid user credentials"}"#),
            Reply::json(
                400,
                r#"{"error":"invalid_request","error_description":"too many requests from dependency service"}"#,
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = RingClient::new(options(&mock, dir.path())).unwrap();
    let e = c
        .login_password("a@example.com", "bad", None)
        .await
        .unwrap_err();
    assert_eq!(*auth_err(&e), AuthFailure::BadCredentials);
    let e = c
        .login_password("a@example.com", "pw", Some("1"))
        .await
        .unwrap_err();
    assert_eq!(*auth_err(&e), AuthFailure::TooManyCodeRequests);
    assert_eq!(e.kind(), ErrorKind::ResourceExhausted);
    assert!(
        TokenStore::open(dir.path())
            .unwrap()
            .load_token()
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn login_replaces_corrupt_file_and_keeps_it_aside() {
    let mock = Mock::start().await;
    mock.script(
        &format!("POST {OAUTH}"),
        [Reply::token("at-1", "rt-1", 3600)],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(TOKEN_FILE), "{ torn").unwrap();
    let c = RingClient::new(options(&mock, dir.path())).unwrap();
    let e = c.cameras().await.unwrap_err();
    assert!(matches!(e.inner(), ErrorInner::StateCorrupt { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(mock.seen().is_empty());
    c.login_password("a@example.com", "pw", Some("1"))
        .await
        .unwrap();
    assert_eq!(saved(dir.path()), "rt-1");
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".corrupt-"))
        .unwrap();
    assert_eq!(std::fs::read_to_string(aside).unwrap(), "{ torn");
}

/// The caller gives up while Ring is rotating the token: the rotation still
/// completes and is saved (the refresh runs in its own task).
#[tokio::test]
async fn dropped_caller_cannot_lose_a_rotated_token() {
    let mock = Mock::start().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    mock.sign_in_with([Reply::token("at-1", "rt-1", 3600).gated(&gate)]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let c2 = c.clone();
    let caller = tokio::spawn(async move { c2.cameras().await });
    wait_until("the refresh reached Ring", || mock.count(OAUTH) == 1).await;
    caller.abort(); // the caller gives up while Ring is answering
    assert!(caller.await.unwrap_err().is_cancelled());
    assert_eq!(saved(dir.path()), "rt-0");
    gate.add_permits(100); // Ring answers now
    let d = dir.path().to_owned();
    wait_until("rotated token saved", || saved(&d) == "rt-1").await;
    // And the next call uses it without another refresh.
    c.cameras().await.unwrap();
    assert_eq!(mock.count(OAUTH), 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let mock = Mock::start().await;
    mock.sign_in_with([Reply::token("at-1", "rt-1", 3600).delay(Duration::from_millis(30))]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&mock, dir.path(), "rt-0");
    let (a, b, d) = tokio::join!(c.cameras(), c.cameras(), c.cameras());
    a.unwrap();
    b.unwrap();
    d.unwrap();
    assert_eq!(
        mock.count(OAUTH),
        1,
        "a single-use refresh token is sent once"
    );
    assert_eq!(mock.count("/clients_api/session"), 1);
}

#[tokio::test]
async fn env_token_seeds_then_state_dir_wins() {
    let mock = Mock::start().await;
    mock.sign_in_with([Reply::token("at-1", "rt-1", 3600)]);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&mock, dir.path());
    opts.refresh_token_override = Some(Secret::new("env-rt".into()));
    let c = RingClient::new(opts.clone()).unwrap();
    c.cameras().await.unwrap();
    assert_eq!(mock.seen_at(OAUTH)[0].json()["refresh_token"], "env-rt");
    assert_eq!(saved(dir.path()), "rt-1");
    // Restart with the same env value: the rotated token wins.
    let hid = c.hardware_id().to_owned();
    drop(c);
    let c = RingClient::new(opts).unwrap();
    assert_eq!(saved(dir.path()), "rt-1");
    assert_eq!(
        c.hardware_id(),
        hid,
        "hardware id is stable across restarts"
    );
}

#[tokio::test]
async fn session_is_recreated_when_old() {
    let mock = Mock::start().await;
    mock.sign_in_with([Reply::token("at-1", "rt-1", 3600)]);
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "rt-0");
    let mut opts = options(&mock, dir.path());
    opts.retry.session_max_age = Duration::ZERO; // every session is "12 h old"
    let c = RingClient::new(opts).unwrap();
    c.cameras().await.unwrap();
    c.cameras().await.unwrap();
    assert_eq!(mock.count("/clients_api/session"), 2);
    c.refresh_session().await.unwrap();
    assert_eq!(mock.count("/clients_api/session"), 3);
    assert_eq!(mock.count(OAUTH), 1);
}

#[tokio::test]
async fn pasted_refresh_token_is_checked_and_rotated() {
    use base64::Engine as _;
    let mock = Mock::start().await;
    mock.script(
        &format!("POST {OAUTH}"),
        [Reply::token("at-1", "rt-1", 3600)],
    );
    let dir = tempfile::tempdir().unwrap();
    let c = RingClient::new(options(&mock, dir.path())).unwrap();
    let wrapped = base64::engine::general_purpose::STANDARD.encode(br#"{"rt":"pasted","hid":"x"}"#);
    c.login_refresh_token(Secret::new(wrapped)).await.unwrap();
    assert_eq!(mock.seen_at(OAUTH)[0].json()["refresh_token"], "pasted");
    assert_eq!(saved(dir.path()), "rt-1");
    assert_eq!(*c.auth_state().borrow(), AuthState::Authenticated);
}
