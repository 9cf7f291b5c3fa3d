//! `warden serve --print-config`: the effective configuration, every key with its value (the
//! defaults included), as a TOML file `--config` accepts: printed, loaded and printed again, it
//! is the same text.
//!
//! No secret is printed. API keys show as the SHA-256 digests the configuration holds (as
//! `api_key_sha256` takes them): a digest does not let a caller in, since the server hashes what
//! a caller presents, and it cannot be turned back into the key. Key files (TLS, JWT, audit,
//! capability and bundle keys) are named by path only; their contents are never printed.

use crate::server::{Config, ConfigLayer};

impl Config {
    /// Every key, as a configuration layer; no secret in it.
    pub fn effective(&self) -> ConfigLayer {
        ConfigLayer {
            // With a bundle, the policy directory is the bundle cache's, not a setting.
            policies: self.bundle.is_none().then(|| self.policies.clone()),
            listen: Some(self.listen.to_string()),
            admin_listen: self.admin_listen.as_ref().map(ToString::to_string),
            grpc_listen: self.grpc_listen.as_ref().map(ToString::to_string),
            watch: Some(self.watch),
            debounce_ms: Some(millis(self.debounce)),
            body_limit: Some(self.body_limit),
            request_timeout_ms: Some(millis(self.request_timeout)),
            shutdown_timeout_ms: Some(millis(self.shutdown_timeout)),
            header_timeout_ms: Some(millis(self.header_timeout)),
            idle_timeout_ms: Some(millis(self.idle_timeout)),
            max_connections: Some(self.max_connections),
            reload_max_wait_ms: Some(millis(self.reload_max_wait)),
            explain: Some(self.explain),
            require_tests: Some(self.require_tests),
            trust_forwarded: Some(self.trust_forwarded),
            public_url: self.public_url.clone(),
            api_key_sha256: Some(self.api_keys.iter().map(hex).collect()),
            search_page_limit: Some(self.search_page_limit),
            log_format: Some(self.log_format),
            log_level: Some(self.log_level.clone()),
            tls_cert: self.tls.as_ref().map(|tls| tls.cert.clone()),
            tls_key: self.tls.as_ref().map(|tls| tls.key.clone()),
            tls_client_ca: self.tls.as_ref().and_then(|tls| tls.client_ca.clone()),
            tls_client_allow: self
                .tls
                .as_ref()
                .map(|tls| tls.client_allow.iter().map(ToString::to_string).collect()),
            unix_socket_mode: Some(format!("{:04o}", self.unix_socket_mode)),
            gateway_subject_type: Some(self.gateway.subject_type.clone()),
            jwt_keys: Some(
                self.gateway
                    .jwt_keys
                    .iter()
                    .map(|k| k.to_config())
                    .collect(),
            ),
            jwt_issuer: self.gateway.jwt_issuer.clone(),
            jwt_audience: self.gateway.jwt_audience.clone(),
            jwt_leeway_s: Some(self.gateway.jwt_leeway_s),
            jwt_max_lifetime_s: Some(self.gateway.jwt_max_lifetime_s),
            jwt_subject_claim: Some(self.gateway.claims.subject.clone()),
            jwt_roles_claim: Some(self.gateway.claims.roles.clone()),
            jwt_claims: Some(
                self.gateway
                    .claims
                    .attributes
                    .iter()
                    .map(|(claim, attribute)| format!("{claim}={attribute}"))
                    .collect(),
            ),
            jwt_cache: Some(self.gateway.jwt_cache),
            identity_header: self.gateway.identity_header.clone(),
            upstream_headers: Some(
                self.gateway
                    .upstream_headers
                    .iter()
                    .map(|(header, value)| format!("{header}={value}"))
                    .collect(),
            ),
            envoy_path_prefix: Some(self.gateway.envoy_path_prefix.clone()),
            routes_ignore_case: Some(self.gateway.routes_ignore_case),
            authzen_subject_token: Some(self.gateway.authzen_subject_token),
            grpc_strip_authorization: Some(self.gateway.grpc_strip_authorization),
            // Key files are named by path only; their contents are never printed.
            capability_keys: Some(self.capabilities.keys.clone()),
            capability_grace_s: Some(self.capabilities.grace.as_secs()),
            capability_revocations: self.capabilities.revocations.clone(),
            capability_audience: self.capabilities.audience.clone(),
            capability_header: Some(self.capabilities.header.clone()),
            bundle: self.bundle.as_ref().map(|b| b.source.to_string()),
            bundle_public_keys: self.bundle.as_ref().map(|b| b.public_keys.clone()),
            bundle_poll_interval_s: self.bundle.as_ref().map(|b| b.poll_interval.as_secs()),
            bundle_cache_dir: self.bundle.as_ref().map(|b| b.cache_dir.clone()),
            bundle_ca_file: self.bundle.as_ref().map(|b| b.ca_file.clone()),
            rate_limit_redis: self
                .rate_limit_redis
                .as_ref()
                .map(|r| crate::redis_client::masked(&r.url)),
            rate_limit_redis_timeout_ms: self.rate_limit_redis.as_ref().map(|r| millis(r.timeout)),
            rate_limit_redis_failure: self.rate_limit_redis.as_ref().map(|r| r.on_failure),
            revocations_redis: self
                .capabilities
                .revocations_redis
                .as_deref()
                .map(crate::redis_client::masked),
            audit_path: self.audit.as_ref().map(|a| a.path.clone()),
            audit_key_file: self.audit.as_ref().and_then(|a| a.key_file.clone()),
            audit_mode: self.audit.as_ref().map(|a| a.mode),
            audit_sample_allows: self.audit.as_ref().map(|a| a.sample_allows),
            audit_mask: self.audit.as_ref().map(|a| a.masking.names.clone()),
            audit_queue: self.audit.as_ref().map(|a| a.queue),
            audit_when_full: self.audit.as_ref().map(|a| a.when_full),
            audit_fsync: self.audit.as_ref().map(|a| a.fsync),
            audit_fsync_interval_ms: self.audit.as_ref().map(|a| millis(a.fsync_interval)),
            audit_checkpoint_records: self.audit.as_ref().map(|a| a.checkpoint_records),
            audit_checkpoint_interval_ms: self
                .audit
                .as_ref()
                .map(|a| millis(a.checkpoint_interval)),
            audit_rotate_bytes: self.audit.as_ref().map(|a| a.rotate_bytes),
            audit_rotate_interval_ms: self
                .audit
                .as_ref()
                .and_then(|a| a.rotate_interval.map(millis)),
        }
    }

    /// The effective configuration as TOML. Keys without a value (an unset `admin_listen`)
    /// are listed as comments, so every key shows.
    pub fn effective_toml(&self) -> String {
        let layer = self.effective();
        let mut text = toml::to_string(&layer).unwrap_or_else(|error| format!("# {error}\n"));
        for key in unset_keys(&layer) {
            text.push_str(&format!("# {key} = (not set)\n"));
        }
        text
    }
}

/// A digest as `api_key_sha256` writes it: 64 lowercase hexadecimal digits.
fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The optional keys `layer` leaves unset.
fn unset_keys(layer: &ConfigLayer) -> Vec<String> {
    let mut unset = Vec::new();
    let mut note = |key: &str, set: bool| {
        if !set {
            unset.push(key.to_string());
        }
    };
    note("admin_listen", layer.admin_listen.is_some());
    note("grpc_listen", layer.grpc_listen.is_some());
    note("public_url", layer.public_url.is_some());
    note("tls_cert", layer.tls_cert.is_some());
    note("tls_key", layer.tls_key.is_some());
    note("tls_client_ca", layer.tls_client_ca.is_some());
    note("tls_client_allow", layer.tls_client_allow.is_some());
    note("jwt_issuer", layer.jwt_issuer.is_some());
    note("jwt_audience", layer.jwt_audience.is_some());
    note("identity_header", layer.identity_header.is_some());
    note("audit_path", layer.audit_path.is_some());
    note(
        "capability_revocations",
        layer.capability_revocations.is_some(),
    );
    note("capability_audience", layer.capability_audience.is_some());
    note("rate_limit_redis", layer.rate_limit_redis.is_some());
    note("revocations_redis", layer.revocations_redis.is_some());
    unset
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tls::TlsFiles;

    #[test]
    fn prints_every_key_and_reads_back() {
        let config = Config {
            api_keys: vec![[7; 32]],
            tls: Some(TlsFiles {
                cert: "/etc/warden/tls.crt".into(),
                key: "/etc/warden/tls.key".into(),
                client_ca: None,
                client_allow: Vec::new(),
            }),
            ..Config::default()
        };
        let text = config.effective_toml();
        assert!(text.contains("listen = \"127.0.0.1:8181\""), "{text}");
        assert!(text.contains("unix_socket_mode = \"0660\""), "{text}");
        assert!(
            text.contains(&format!("api_key_sha256 = [\"{}\"]", "07".repeat(32))),
            "{text}"
        );
        assert!(text.contains("# admin_listen = (not set)"), "{text}");
        assert!(text.contains("# tls_client_ca = (not set)"), "{text}");
        // The output is a configuration file that loads to the same configuration (without
        // the TLS files, which are read when loaded).
        let plain = Config {
            tls: None,
            ..config
        };
        let layer: ConfigLayer = toml::from_str(&plain.effective_toml()).unwrap();
        let again = Config::resolve(layer).unwrap();
        assert_eq!(again.effective_toml(), plain.effective_toml());
        assert_eq!(again.api_keys, plain.api_keys);
    }
}
