//! The crypto of the daemon's str0m peers (the Ring call, every WHEP viewer):
//! aws-lc-rs for SRTP, HMAC and hashes (its assembly AES-GCM,
//! `docs/design/0018-srtp-aws-lc.md`), OpenSSL for DTLS. str0m's own DTLS
//! (dimpl) verifies ECDSA certificates only, so a peer that presents an RSA
//! certificate — GStreamer's `webrtcbin`, the stack of GStreamer-based players —
//! could not connect; OpenSSL takes both (`docs/design/0020-dtls-openssl.md`).

use std::sync::{Arc, OnceLock};

use str0m::crypto::CryptoProvider;

/// The provider every str0m instance of the daemon is built with.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut p = str0m_aws_lc_rs::default_provider();
            p.dtls_provider = str0m_openssl::default_provider().dtls_provider;
            Arc::new(p)
        })
        .clone()
}
