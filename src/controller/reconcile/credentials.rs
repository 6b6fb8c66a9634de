//! Step `credentials`: the passwords of the operator's accounts, from the
//! Secrets the user named or the ones the operator generates.
//!
//! Secrets are read with GETs (the operator may not list or watch
//! Secrets: least privilege). A generated Secret is created once, and only
//! while no data volume of the pair exists: a claim left by an earlier
//! pair of the same name holds servers initialized with the password the
//! old Secret held, and a new password would lock the operator out of its
//! own data — that is reported (`CredentialsMissing`), never papered over.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::super::MANAGER;
use super::super::context::Context;
use super::super::error::{Error, kube};
use super::super::events::Reason;
use super::validate::Validated;
use crate::accounts::PASSWORD_KEY;
use crate::mysql::{AccountPasswords, Password};
use crate::render::{Credential, Names, secrets};

/// The outcome of the step: the passwords, or why they cannot be had.
pub type Credentials = Result<AccountPasswords, String>;

/// The first data claim of the pair that exists, if any.
async fn existing_claim(ctx: &Context, names: &Names) -> Result<Option<String>, Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &names.namespace);
    for ordinal in 0..2 {
        let claim = names.data_claim(ordinal);
        if api
            .get_opt(&claim)
            .await
            .map_err(kube(
                "credentials",
                format!("PersistentVolumeClaim {claim}"),
            ))?
            .is_some()
        {
            return Ok(Some(claim));
        }
    }
    Ok(None)
}

/// Step `credentials`.
pub async fn credentials(pair: &Validated<'_>, ctx: &Context) -> Result<Credentials, Error> {
    let admin = match password(pair, ctx, Credential::Admin).await? {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    let replication = match password(pair, ctx, Credential::Replication).await? {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    Ok(Ok(AccountPasswords { admin, replication }))
}

/// The password of one credential.
async fn password(
    pair: &Validated<'_>,
    ctx: &Context,
    cred: Credential,
) -> Result<Result<Password, String>, Error> {
    let pair = pair.pair();
    let names = Names::of(pair);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let name = cred.secret_name(pair, &names);
    let object = format!("Secret {}/{name}", names.namespace);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(kube("credentials", object.clone()))?;
    let password = existing
        .as_ref()
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(PASSWORD_KEY))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .filter(|p| !p.is_empty());
    let password = match (password, &existing, cred.is_generated(pair)) {
        (Some(p), Some(secret), true) => {
            keep_owner_as_built(&api, pair, &names, cred, secret).await?;
            p
        }
        (Some(p), _, _) => p,
        (None, None, true) => {
            if let Some(claim) = existing_claim(ctx, &names).await? {
                return Ok(Err(format!(
                    "Secret {name} does not exist, but the data volume {claim} does (left by an earlier pair named {}): its servers were initialized with the password that Secret held. Restore the Secret, or delete the claims to start with empty servers; the operator never replaces a password a server uses",
                    names.pair
                )));
            }
            let p = secrets::generate_password();
            let secret = secrets::build_secret(pair, &names, cred, Some(&p));
            api.create(
                &PostParams {
                    field_manager: Some(MANAGER.into()),
                    ..Default::default()
                },
                &secret,
            )
            .await
            .map_err(kube("credentials", object))?;
            ctx.publish(
                pair,
                Reason::SecretGenerated,
                format!("generated Secret {name}"),
            )
            .await;
            p
        }
        (None, Some(_), true) => {
            // A generated Secret lost its key. Before any data exists it is
            // filled; once a server was initialized with the password it
            // held, a new one would lock the operator and the replicas out:
            // report it and change nothing.
            if let Some(claim) = existing_claim(ctx, &names).await? {
                return Ok(Err(format!(
                    "Secret {name} lost its key {PASSWORD_KEY:?}, and the servers on {claim} were initialized with the password it held: restore it (the operator never replaces a password a server uses)"
                )));
            }
            let p = secrets::generate_password();
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"stringData": {PASSWORD_KEY: p}})),
            )
            .await
            .map_err(kube("credentials", object))?;
            p
        }
        (None, exists, false) => {
            return Ok(Err(if exists.is_some() {
                format!("Secret {name} has no key {PASSWORD_KEY:?}")
            } else {
                format!("Secret {name} (named in spec.credentials) does not exist")
            }));
        }
    };
    if cred == Credential::Replication && password.chars().count() > secrets::PASSWORD_LEN {
        return Ok(Err(format!(
            "the password in Secret {name} is longer than {} characters, MySQL's limit for replication credentials",
            secrets::PASSWORD_LEN
        )));
    }
    Ok(Ok(Password::new(password)))
}

/// A generated Secret's ownerReference follows `pvcRetentionPolicy` (see
/// [`secrets::build_secret`]); Secrets made before that rule, or before
/// the policy changed, are brought in line with one patch.
async fn keep_owner_as_built(
    api: &Api<Secret>,
    pair: &crate::api::MySQLActiveActive,
    names: &Names,
    cred: Credential,
    live: &Secret,
) -> Result<(), Error> {
    let built = secrets::build_secret(pair, names, cred, None);
    let wanted = built.metadata.owner_references.unwrap_or_default();
    let uid = pair.uid();
    let ours = |r: &&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference| {
        Some(&r.uid) == uid.as_ref()
    };
    let owned = live.owner_references().iter().any(|r| ours(&r));
    if owned != wanted.is_empty() {
        return Ok(());
    }
    // Others' references are kept; only the pair's own is added or removed.
    let mut refs: Vec<_> = live
        .owner_references()
        .iter()
        .filter(|r| !ours(r))
        .cloned()
        .collect();
    refs.extend(wanted);
    api.patch(
        &live.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"ownerReferences": refs}})),
    )
    .await
    .map_err(kube(
        "credentials",
        format!("Secret {}/{}", names.namespace, live.name_any()),
    ))?;
    tracing::info!(secret = %live.name_any(), retention = ?pair.spec.pvc_retention_policy, "the generated Secret's ownerReference now follows pvcRetentionPolicy");
    Ok(())
}
