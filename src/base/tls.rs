//! The process-wide rustls crypto provider.
//!
//! With the `fcm` cargo feature (on by default) two rustls providers are
//! linked: `ring` (ours, reqwest 0.12, rumqttc) and `aws-lc-rs` (through
//! fcm-push-listener's reqwest 0.13). rustls then cannot pick a default by
//! itself, and everything that asks for the default — webrtc-rs' DTLS
//! certificate verifier, tokio-tungstenite's `wss://` connector — would
//! panic. [`install_default_provider`] makes `ring` the default; every place
//! that may build such a TLS context calls it first (`base::rtc`, the Ring
//! live call's websocket, the push listener, `main`).

/// Makes rustls' `ring` provider the process default. Idempotent and cheap;
/// a no-op without the `fcm` feature (rustls then has one provider only).
pub fn install_default_provider() {
    #[cfg(feature = "fcm")]
    {
        // Err only means a provider is installed already, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    /// With two providers linked, a default client config builds once a
    /// default is installed (it panicked before).
    #[cfg(feature = "fcm")]
    #[test]
    fn a_default_client_config_builds() {
        super::install_default_provider();
        super::install_default_provider();
        let roots = rustls::RootCertStore::empty();
        let _ = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
    }
}
