//! The credentials Secrets the operator generates when the user names none.
//!
//! Passwords are 32 alphanumeric characters (MySQL refuses replication
//! passwords longer than 32 characters in `CHANGE REPLICATION SOURCE TO`) (no quoting needed anywhere)
//! from rand's thread-local CSPRNG (ChaCha, seeded and reseeded from the
//! operating system). A generated Secret is
//! created once and never regenerated: the controller only creates it when
//! it does not exist, and fills the `password` key only when it is missing.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use rand::RngExt;
use rand::distr::Alphanumeric;

use crate::accounts::PASSWORD_KEY;
use crate::api::{MySQLActiveActive, PvcRetentionPolicy};

use super::meta::{ANNOTATION_GENERATED, Names, object_meta};

/// Length of generated passwords: MySQL's limit for replication
/// credentials (about 190 bits from 62 symbols).
pub const PASSWORD_LEN: usize = 32;

/// Which credentials a Secret holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// The operator's admin account (and local root).
    Admin,
    /// The replication account.
    Replication,
}

impl Credential {
    /// Both credentials.
    pub const ALL: [Credential; 2] = [Credential::Admin, Credential::Replication];

    /// Name of the Secret holding this credential: the user's, or the
    /// generated one's.
    pub fn secret_name(self, pair: &MySQLActiveActive, names: &Names) -> String {
        let creds = &pair.spec.credentials;
        match self {
            Credential::Admin => creds
                .admin_secret_name
                .clone()
                .unwrap_or_else(|| names.admin_secret()),
            Credential::Replication => creds
                .replication_secret_name
                .clone()
                .unwrap_or_else(|| names.replication_secret()),
        }
    }

    /// Whether the operator generates this Secret (the user named none).
    pub fn is_generated(self, pair: &MySQLActiveActive) -> bool {
        let creds = &pair.spec.credentials;
        match self {
            Credential::Admin => creds.admin_secret_name.is_none(),
            Credential::Replication => creds.replication_secret_name.is_none(),
        }
    }
}

/// A new random password from the OS CSPRNG.
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(PASSWORD_LEN)
        .map(char::from)
        .collect()
}

/// Builds a generated credentials Secret. `password` is `None` in a
/// preview (`render`), which shows the Secret without its data.
///
/// The Secret lives as long as the data it opens: under
/// `pvcRetentionPolicy: Retain` the claims outlive the resource, so the
/// Secret carries no ownerReference (it is not garbage-collected with the
/// resource, and a pair created again under the same name finds the
/// passwords its servers were initialized with); under `Delete` it goes
/// with the resource, like the claims.
pub fn build_secret(
    pair: &MySQLActiveActive,
    names: &Names,
    credential: Credential,
    password: Option<&str>,
) -> Secret {
    let mut metadata = object_meta(pair, names, credential.secret_name(pair, names));
    if pair.spec.pvc_retention_policy == PvcRetentionPolicy::Retain {
        metadata.owner_references = None;
    }
    metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_GENERATED.to_string(),
        "true".to_string(),
    )]));
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: password.map(|p| {
            BTreeMap::from([(PASSWORD_KEY.to_string(), ByteString(p.as_bytes().to_vec()))])
        }),
        ..Secret::default()
    }
}
