//! The dedicated `LISTEN` connection that pushes cancel requests to their owner.

use futures::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use super::db;
use crate::OperationId;
use crate::store::codec::from_nanos;
use crate::store::{CancelNotifications, CancelRequest, InstanceId, StoreError};

/// What a cancel notification carries.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Notice {
    pub(super) operation_id: OperationId,
    pub(super) owner: InstanceId,
    pub(super) attempt: u32,
    pub(super) reason: String,
    pub(super) requested_at: i64,
}

/// Opens the connection, `LISTEN`s on `channel` and returns the stream of `instance`'s
/// requests.
pub(super) async fn listen(
    config: &tokio_postgres::Config,
    location: &str,
    channel: &str,
    instance: InstanceId,
) -> Result<CancelNotifications, StoreError> {
    let (client, mut connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Connect {
                location: location.to_owned(),
                cause: Box::new(e),
            })?;
    let (sender, receiver) = tokio::sync::mpsc::channel(256);
    let (hand_over, mut handed) = tokio::sync::oneshot::channel::<tokio_postgres::Client>();
    let location = location.to_owned();
    // Drives the dedicated connection (it only delivers messages while polled),
    // forwards this instance's notices, and keeps the client alive once LISTEN
    // succeeded; ends when the receiver is dropped or the connection fails.
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        let mut client = None;
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(Ok(AsyncMessage::Notification(note))) => {
                        let Ok(notice) = serde_json::from_str::<Notice>(note.payload()) else {
                            continue;
                        };
                        if notice.owner != instance {
                            continue;
                        }
                        let request = CancelRequest {
                            operation_id: notice.operation_id,
                            attempt: notice.attempt,
                            reason: notice.reason,
                            requested_at: from_nanos(notice.requested_at),
                        };
                        if sender.send(request).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(store = %location, error = %e, "cancel listener connection failed");
                        break;
                    }
                    None => break,
                },
                got = &mut handed, if client.is_none() => match got {
                    Ok(c) => client = Some(c),
                    Err(_) => break,
                },
                () = sender.closed() => break,
            }
        }
        drop(client);
    });
    client
        .batch_execute(&format!("LISTEN {}", channel))
        .await
        .map_err(db)?;
    // The task ends (and so does the connection) if it already stopped.
    let _ = hand_over.send(client);
    Ok(CancelNotifications::new(receiver))
}
