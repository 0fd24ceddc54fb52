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

/// The id pattern of the schema.
pub(crate) const ID_PATTERN: &str = "^op_[a-z0-9_]+_[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])_([01][0-9]|2[0-3])[0-5][0-9]([0-5][0-9]|60)_[0-9a-f]{8}$";

impl PartialSchema for OperationId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("`op_{type}_{YYYYMMDD}_{HHMMSS}_{8 hex}`"))
            // Exactly what `OperationId::from_str` accepts (months 01-12, days 01-31,
            // hours 00-23, seconds up to a leap second 60), so every id valid by the
            // schema gets past the 400 check.
            .pattern(Some(ID_PATTERN))
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

/// The schema of one event of `GET /operations/{id}/events`, as a Server-Sent Events
/// parser sees it: the event name, its sequence id, and the `OperationInfo` JSON as
/// the data.
pub(crate) struct OperationEvent;

impl PartialSchema for OperationEvent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "One event: `progress` while the operation runs, then one `done`; on the \
                 multiplexed stream also `gone` (data `{\"operation_id\": …}`) for an unknown id",
            ))
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["progress", "done", "gone"])),
            )
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The event's sequence number")),
            )
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/json")
                    .description(Some("The `OperationInfo` record as JSON")),
            )
            .required("event")
            .required("data")
            .into()
    }
}

impl ToSchema for OperationEvent {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OperationEvent")
    }
}

/// Adds to every operation of `doc` the answers [`Server`](super::Server) gives any
/// request before it reaches a route: 414 `URI_TOO_LONG` and 431 `HEADERS_TOO_LARGE`,
/// so that a client (or a fuzzer) reading the document is told of them; and to every
/// route but `/health` and `/openapi.json`, the 503 `STORE_UNAVAILABLE` of a durable
/// registry whose store is down.
pub(crate) fn document_server_limits(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::{Ref, ResponseBuilder};

    let limits = [
        (
            "414",
            "`URI_TOO_LONG`: the path and query are longer than the server accepts",
        ),
        (
            "431",
            "`HEADERS_TOO_LARGE`: the request headers are larger than the server accepts",
        ),
    ];
    const STORE: &str = "`STORE_UNAVAILABLE`: the registry's operation store cannot be reached (a durable registry only); retry after `Retry-After`";
    for (path, item) in &mut doc.paths.paths {
        let needs_store = !path.ends_with("/health") && !path.ends_with("/openapi.json");
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in limits {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| {
                        let content = ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorResponse")))
                            .build();
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content("application/json", content)
                                .build(),
                        )
                    });
            }
            if !needs_store {
                continue;
            }
            match operation.responses.responses.get_mut("503") {
                Some(RefOr::T(response)) => {
                    response.description = format!("{}; or {STORE}", response.description);
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    let content = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorResponse")))
                        .build();
                    operation.responses.responses.insert(
                        "503".to_owned(),
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(STORE)
                                .content("application/json", content)
                                .build(),
                        ),
                    );
                }
            }
        }
    }
}
