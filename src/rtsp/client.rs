//! Facts about an RTSP client's connection that the gst-rtsp-server bindings
//! do not expose (they do not wrap `GstRTSPConnection`): its peer address and
//! whether the peer has gone. The small `unsafe` blocks here are the only FFI
//! of the RTSP server.

use std::net::IpAddr;

use gst_rtsp_server::gio;
use gst_rtsp_server::gio::prelude::*;
use gst_rtsp_server::glib;
use gstreamer_rtsp_server as gst_rtsp_server;

/// The client's RTSP connection, or NULL.
fn connection(
    client: &gst_rtsp_server::RTSPClient,
) -> *mut gst_rtsp_server::gst_rtsp::ffi::GstRTSPConnection {
    use glib::translate::ToGlibPtr;
    let client_ptr: *mut gst_rtsp_server::ffi::GstRTSPClient = client.to_glib_none().0;
    // SAFETY: `client` is a live GstRTSPClient for the duration of this call;
    // `gst_rtsp_client_get_connection` returns its connection (transfer none),
    // valid while the client holds it, or NULL.
    unsafe { gst_rtsp_server::ffi::gst_rtsp_client_get_connection(client_ptr) }
}

/// The client's address, IPv4-mapped IPv6 folded to IPv4.
pub(super) fn peer_ip(client: &gst_rtsp_server::RTSPClient) -> Option<IpAddr> {
    let conn = connection(client);
    if conn.is_null() {
        return None;
    }
    // SAFETY: `conn` is the client's live connection (checked non-NULL);
    // `gst_rtsp_connection_get_ip` returns a NUL-terminated string owned by it,
    // or NULL. It is not kept beyond this function.
    let ip: *const std::ffi::c_char =
        unsafe { gst_rtsp_server::gst_rtsp::ffi::gst_rtsp_connection_get_ip(conn) };
    if ip.is_null() {
        return None;
    }
    // SAFETY: checked non-NULL above; the string outlives this statement (owned
    // by the connection, which the client holds while it handles the request).
    let text = unsafe { std::ffi::CStr::from_ptr(ip) };
    let ip: IpAddr = text.to_str().ok()?.parse().ok()?;
    Some(ip.to_canonical())
}

/// Whether the client closed its connection (or it failed). Never blocks: the
/// socket is only read (peeked) when it is readable, and pipelined request
/// bytes are left where they are.
pub(super) fn gone(client: &gst_rtsp_server::RTSPClient) -> bool {
    use glib::translate::FromGlibPtrNone;
    let conn = connection(client);
    if conn.is_null() {
        return true;
    }
    // SAFETY: `conn` is the client's live connection (checked non-NULL); its read
    // socket is returned transfer none and `from_glib_none` takes our own ref.
    let socket: Option<gio::Socket> = unsafe {
        let s = gst_rtsp_server::gst_rtsp::ffi::gst_rtsp_connection_get_read_socket(conn);
        (!s.is_null()).then(|| gio::Socket::from_glib_none(s))
    };
    let Some(socket) = socket else { return true };
    let cond = SocketExt::condition_check(
        &socket,
        glib::IOCondition::IN | glib::IOCondition::HUP | glib::IOCondition::ERR,
    );
    if cond.intersects(glib::IOCondition::HUP | glib::IOCondition::ERR) {
        return true;
    }
    if !cond.contains(glib::IOCondition::IN) {
        return false;
    }
    let mut byte = [0u8; 1];
    let mut vectors = [gio::InputVector::new(&mut byte)];
    // Readable: a peek answers at once, 0 bytes meaning the peer closed.
    match socket.receive_message(
        None,
        &mut vectors,
        None,
        gio::ffi::G_SOCKET_MSG_PEEK,
        gio::Cancellable::NONE,
    ) {
        Ok((n, _)) => n == 0,
        Err(_) => true,
    }
}
