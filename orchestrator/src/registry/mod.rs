//! The registry: where an operation is created (`operations`), run (`driver`),
//! recorded (`entry`, `ledger`), cancelled (`cancel`), ended and cleaned up
//! (`retention`, `sweeper`, `shutdown`).

pub(crate) mod cancel;
pub(crate) mod cluster;
pub(crate) mod driver;
pub(crate) mod durable;
pub(crate) mod entry;
pub(crate) mod ledger;
pub(crate) mod operations;
pub(crate) mod resume;
pub(crate) mod retention;
pub(crate) mod shard;
pub(crate) mod shutdown;
pub(crate) mod sweeper;
pub(crate) mod sync_run;
