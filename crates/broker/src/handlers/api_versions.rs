//! ApiVersions (key 18), v0–v4. KIP-511: the response header is always v0; a request for a
//! version we do not know gets a v0 body with UNSUPPORTED_VERSION and the full key list, so the
//! client can pick a version and retry.
//!
//! v3+ also carries the KIP-584 feature flags (see [`FEATURES`]): what this broker supports and
//! the cluster's finalized levels, which Java clients read (e.g. `transaction.version`, whose
//! level 2 would switch producers to KIP-890's implicit partition registration).

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use gregor_protocol::messages::ApiKey;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 4);

/// A KIP-584 feature flag: the supported level range and the finalized level (0: not
/// finalized, so not listed among the finalized features, as Kafka does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Feature name.
    pub name: &'static str,
    /// Lowest supported level.
    pub min: i16,
    /// Highest supported level.
    pub max: i16,
    /// Finalized level.
    pub finalized: i16,
}

/// The features advertised in ApiVersions v3+, by name. Levels as Apache Kafka 4.1:
/// `metadata.version` 7 (3.3-IV3) to 27 (4.1-IV1), finalized 27; `group.version` 1 (the
/// KIP-848 consumer protocol); `transaction.version` supported 0–2 but finalized at 1, so
/// clients keep registering partitions with AddPartitionsToTxn (no KIP-890 part 2).
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "group.version",
        min: 0,
        max: 1,
        finalized: 1,
    },
    Feature {
        name: "metadata.version",
        min: 7,
        max: 27,
        finalized: 27,
    },
    Feature {
        name: "transaction.version",
        min: 0,
        max: 2,
        finalized: 1,
    },
];

/// Epoch of the finalized features. Kafka uses the metadata offset of the last feature
/// change; Gregor's levels are fixed, so it is constant (non-negative: Java clients only
/// take features with an epoch above the last one they saw, starting from -1).
pub const FINALIZED_FEATURES_EPOCH: i64 = 0;

fn add_features(resp: &mut ApiVersionsResponse) {
    resp.supported_features = FEATURES
        .iter()
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect();
    resp.finalized_features = FEATURES
        .iter()
        .filter(|f| f.finalized > 0)
        .map(|f| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version_level(f.finalized)
                .with_max_version_level(f.finalized)
        })
        .collect();
    resp.finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
}

fn api_keys(ctx: &Ctx<'_>) -> Vec<ApiVersion> {
    let mut keys: Vec<ApiVersion> = ctx
        .plane
        .apis()
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min)
                .with_max_version(a.max)
        })
        .collect();
    keys.sort_by_key(|k| k.api_key);
    keys
}

/// Handles ApiVersions.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    if ctx.version < VERSIONS.0 || ctx.version > VERSIONS.1 {
        let resp = ApiVersionsResponse::default()
            .with_error_code(ErrorCode::UnsupportedVersion.code())
            .with_api_keys(api_keys(ctx));
        let frame = gregor_protocol::response::encode_response(
            ApiKey::ApiVersions,
            0,
            ctx.header.correlation_id,
            &resp,
        )?;
        return Ok(Response::Frame(frame));
    }
    let _req: ApiVersionsRequest = ctx.decode(body)?;
    let mut resp = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_keys(ctx))
        .with_throttle_time_ms(0)
        .with_finalized_features_epoch(-1);
    if ctx.version >= 3 {
        add_features(&mut resp);
    }
    ctx.respond(&resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_sorted_and_finalized_within_their_range() {
        let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for f in FEATURES {
            assert!(f.min <= f.finalized && f.finalized <= f.max, "{f:?}");
        }
        let mut resp = ApiVersionsResponse::default();
        add_features(&mut resp);
        let tv = resp
            .finalized_features
            .iter()
            .find(|f| f.name.as_str() == "transaction.version")
            .expect("transaction.version finalized");
        assert_eq!((tv.min_version_level, tv.max_version_level), (1, 1));
        assert_eq!(resp.supported_features.len(), FEATURES.len());
        assert_eq!(resp.finalized_features_epoch, 0);
    }
}
