//! The OpenAPI document: the `#[utoipa::path]` items of the handlers plus the schemas
//! of the data model.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::{OperationId, OperationType};

/// The document's fixed parts; the paths are added by `utoipa_axum` from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "orchestrator operations API",
        description = "Long-running operations: list, read, cancel, wait for and follow them. \
                       Every answer is an envelope: `{\"success\": true, \"data\": …}` or \
                       `{\"success\": false, \"error\": {\"code\": …, \"message\": …}}`.",
    ),
    tags(
        (name = "operations", description = "The operations registry"),
        (name = "meta", description = "This document"),
    )
)]
pub(crate) struct ApiDoc;

impl PartialSchema for OperationId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("`op_{type}_{YYYYMMDD}_{HHMMSS}_{8 hex}`"))
            .pattern(Some(r"^op_[a-z0-9_]+_[0-9]{8}_[0-9]{6}_[0-9a-f]{8}$"))
            .max_length(Some(128))
            .examples([serde_json::json!("op_dummy_20261122_160501_9f3a1c2e")])
            .into()
    }
}

impl ToSchema for OperationId {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OperationId")
    }
}

impl PartialSchema for OperationType {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "`DUMMY`, `DATA_LOAD`, `TRAINING`, `BACKTEST`, or a custom upper-case name",
            ))
            .examples([serde_json::json!("DATA_LOAD")])
            .into()
    }
}

impl ToSchema for OperationType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OperationType")
    }
}
