//! The reference `TrainingService`: logistic regression by mini-batch SGD on a generated
//! data set, as one managed operation.
//!
//! A run has three named phases: `prepare` (generate [`SAMPLES`] labelled points with
//! [`FEATURES`] features, 0–5 % of the progress), `train` (the epochs, 5–95 %) and
//! `save` (the learnt weights go into the summary, 95–100 %). The number crunching of
//! each epoch runs on Tokio's blocking pool through
//! [`OperationContext::spawn_blocking`], which checks for cancellation before every
//! batch. Every completed epoch appends one metric record
//! (`{"epoch", "loss", "accuracy"}`, see [`EpochMetric`]) and republishes the summary
//! so far; a cancelled run returns the model of its last completed epoch, so the
//! operation ends `CANCELLED` with `Cancelled after N/M epochs` in its summary.
//!
//! Every completed epoch also saves a checkpoint ([`TrainingCheckpoint`]: the epoch
//! and the model), so a run that failed (a crash marks it `interrupted`) or was
//! cancelled can be resumed (`POST /operations/{id}/resume`, `cli ops resume ID`): the
//! next attempt continues after the last saved epoch instead of starting over, and
//! its summary counts the epochs of every attempt.
//!
//! No ML dependency: the model is nine numbers, the data a seeded [`fastrand`] stream,
//! so the same seed gives the same run.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use orchestrator::client::OperationAdapter;
use orchestrator::host::HostService;
use orchestrator::http::{ApiError, ApiJson, ApiResponse, ApiResult, ErrorResponse};
use orchestrator::{
    Cancelled, OperationContext, OperationInfo, OperationStatus, Operations, ServiceOrchestrator,
    StartedOperation, managed_operation,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dummy::whole_number;

/// Features per sample.
pub const FEATURES: usize = 8;
/// Samples in the generated data set.
pub const SAMPLES: usize = 4096;
/// The most epochs a run may ask for (the registry keeps 10 000 metric records per
/// operation by default: one per epoch).
pub const MAX_EPOCHS: u64 = 10_000;
/// The most batches per epoch: one sample per batch.
pub const MAX_BATCHES_PER_EPOCH: u64 = SAMPLES as u64;
/// The largest learning rate a run may ask for.
pub const MAX_LEARNING_RATE: f64 = 100.0;
/// The longest pause between epochs, in milliseconds (a minute).
pub const MAX_EPOCH_DELAY_MS: u64 = 60_000;
/// Share of the generated labels flipped at random, so the data is only nearly
/// separable and the loss does not go to zero.
const LABEL_NOISE: f64 = 0.02;

/// Trains models as managed operations.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use orchestrator::{Operations, Outcome};
/// use orchestrator_examples::training::TrainingService;
///
/// let svc = TrainingService::new(Operations::new());
/// let Outcome::Completed(summary) = svc.run_train(5, 20, 0.5, 42, 0).await else {
///     panic!("the run did not complete");
/// };
/// assert_eq!(summary.epochs_completed, 5);
/// assert!(summary.final_accuracy > 0.8, "{summary:?}");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TrainingService {
    ops: Operations,
    /// Where training runs when it does not run here (see [`Self::with_host`]).
    host: Option<HostService>,
}

impl ServiceOrchestrator for TrainingService {
    fn operations(&self) -> &Operations {
        &self.ops
    }

    fn service_name(&self) -> &str {
        "TrainingService"
    }

    fn host_service(&self) -> Option<&HostService> {
        self.host.as_ref()
    }
}

/// What a run reports when it ends, completed or cancelled: the operation's
/// `result_summary`, also published after every epoch while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Epochs that ran to the end.
    pub epochs_completed: u64,
    /// Epochs asked for.
    pub epochs: u64,
    /// Mean log loss of the model over the data set after the last completed epoch
    /// (of the untrained model, `ln 2`, when none completed).
    pub final_loss: f64,
    /// Share of the samples the model classifies correctly, `0.0..=1.0`.
    pub final_accuracy: f64,
    /// Samples in the data set.
    pub samples: u64,
    /// The learnt weights, one per feature.
    pub weights: Vec<f64>,
    /// The learnt bias.
    pub bias: f64,
    /// Euclidean norm of [`weights`](Self::weights).
    pub weights_norm: f64,
    /// The epoch this attempt continued after, when the run was resumed from a
    /// checkpoint (`0` for a run that started from scratch): epochs up to it were
    /// trained by earlier attempts and not again.
    #[serde(default)]
    pub resumed_after_epoch: u64,
    /// One line for people: `Trained 10 epochs: loss 0.231, accuracy 0.942`, or
    /// `Cancelled after 3/10 epochs`.
    pub message: String,
}

impl fmt::Display for TrainingSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One metric record, appended when an epoch completes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochMetric {
    /// The epoch, from 1.
    pub epoch: u64,
    /// Mean log loss over the data set after the epoch.
    pub loss: f64,
    /// Share of the samples classified correctly after the epoch.
    pub accuracy: f64,
}

/// What a run saves after every epoch, and a resumed run continues from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingCheckpoint {
    /// The last completed epoch.
    pub epoch: u64,
    /// The model after it: one weight per feature.
    pub weights: Vec<f64>,
    /// The model's bias.
    pub bias: f64,
}

impl TrainingCheckpoint {
    fn model(&self) -> Result<Model, TrainingError> {
        let w = <[f64; FEATURES]>::try_from(self.weights.as_slice()).map_err(|_| {
            TrainingError::Checkpoint(format!(
                "the checkpoint has {} weights, the model {FEATURES}",
                self.weights.len()
            ))
        })?;
        Ok(Model { w, b: self.bias })
    }
}

/// Why a run failed.
///
/// # Examples
///
/// ```
/// use orchestrator_examples::training::TrainingError;
///
/// let e = TrainingError::InvalidArguments("epochs must be at least 1, got 0".into());
/// assert_eq!(e.to_string(), "invalid training arguments: epochs must be at least 1, got 0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrainingError {
    /// An argument is out of range (see [`check_arguments`]).
    #[error("invalid training arguments: {0}")]
    InvalidArguments(String),
    /// The runtime shut down before the blocking work could run.
    #[error("cancelled")]
    Cancelled,
    /// A checkpoint could not be saved, or the one to resume from does not fit.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

impl From<Cancelled> for TrainingError {
    fn from(_: Cancelled) -> Self {
        Self::Cancelled
    }
}

/// Checks the arguments of a run: the one rule for the domain fn and the start
/// endpoint, so both refuse the same values with the same words.
///
/// # Errors
///
/// What is wrong, naming the argument: `epochs` not in `1..=`[`MAX_EPOCHS`],
/// `batches_per_epoch` not in `1..=`[`MAX_BATCHES_PER_EPOCH`], `learning_rate` not
/// finite or not in `(0, `[`MAX_LEARNING_RATE`]`]`, `epoch_delay_ms` above
/// [`MAX_EPOCH_DELAY_MS`].
///
/// # Examples
///
/// ```
/// use orchestrator_examples::training::check_arguments;
///
/// assert!(check_arguments(10, 20, 0.1, 0).is_ok());
/// assert_eq!(
///     check_arguments(10, 20, f64::NAN, 0).unwrap_err(),
///     "learning_rate must be a finite number above 0 and at most 100, got NaN"
/// );
/// ```
pub fn check_arguments(
    epochs: u64,
    batches_per_epoch: u64,
    learning_rate: f64,
    epoch_delay_ms: u64,
) -> Result<(), String> {
    if !(1..=MAX_EPOCHS).contains(&epochs) {
        return Err(format!(
            "epochs must be at least 1 and at most {MAX_EPOCHS}, got {epochs}"
        ));
    }
    if !(1..=MAX_BATCHES_PER_EPOCH).contains(&batches_per_epoch) {
        return Err(format!(
            "batches_per_epoch must be at least 1 and at most {MAX_BATCHES_PER_EPOCH} \
             (one sample per batch), got {batches_per_epoch}"
        ));
    }
    if !(learning_rate.is_finite() && learning_rate > 0.0 && learning_rate <= MAX_LEARNING_RATE) {
        return Err(format!(
            "learning_rate must be a finite number above 0 and at most {MAX_LEARNING_RATE}, \
             got {learning_rate}"
        ));
    }
    if epoch_delay_ms > MAX_EPOCH_DELAY_MS {
        return Err(format!(
            "epoch_delay_ms must be at most {MAX_EPOCH_DELAY_MS}, got {epoch_delay_ms}"
        ));
    }
    Ok(())
}

impl TrainingService {
    /// A service whose operations live in `ops`, training here. It registers
    /// [`train`](Self::train) as the fn that resumes `TRAINING` operations of `ops`
    /// (`register_train`, generated by `resumable`; see [`Operations::resumable`]).
    pub fn new(ops: Operations) -> Self {
        Self::register_train(&ops, |ops| Self { ops, host: None });
        Self { ops, host: None }
    }

    /// The same service, training on `host` when it is `Some` (usually
    /// `HostService::from_env("TRAINING")`, read at start-up): `start_train` then
    /// POSTs its arguments to the host's `/training/start` and the operation here is
    /// a proxy of the host's. The domain fn is the same either way.
    #[must_use]
    pub fn with_host(mut self, host: Option<HostService>) -> Self {
        self.host = host;
        self
    }

    /// The domain logic: generate the data (`prepare`), run `epochs` epochs of
    /// mini-batch SGD with `batches_per_epoch` batches each on the blocking pool
    /// (`train`), put the weights in the summary (`save`). `seed` fixes the data and
    /// the batch order; `epoch_delay_ms` pauses after each epoch but the last (0 in
    /// real use: it lets a demo or a test watch, and cancel, a run that would
    /// otherwise end in milliseconds; the pause ends early on cancellation).
    ///
    /// Cancellation stops the run before its next batch; the summary then holds the
    /// model of the last completed epoch and `Cancelled after N/M epochs`.
    ///
    /// `#[managed_operation]` generates `start_train(epochs, batches_per_epoch,
    /// learning_rate, seed, epoch_delay_ms)`, `spawn_train(..)`, `run_train(..)` and
    /// `run_train_sync(..)` next to it, and (`resumable`) `register_train`, which
    /// [`new`](Self::new) calls: a resumed run gets its recorded arguments back and
    /// continues from its last checkpoint.
    ///
    /// # Errors
    ///
    /// [`TrainingError::InvalidArguments`] when [`check_arguments`] refuses them;
    /// [`TrainingError::Cancelled`] when the runtime shuts down under the run.
    #[managed_operation(
        operation_type = "training",
        total_steps = epochs,
        description = "training",
        labels(model = "logistic_regression"),
        host_path = "/training/start",
        resumable
    )]
    pub async fn train(
        &self,
        ctx: OperationContext,
        epochs: u64,
        batches_per_epoch: u64,
        learning_rate: f64,
        seed: u64,
        epoch_delay_ms: u64,
    ) -> Result<TrainingSummary, TrainingError> {
        check_arguments(epochs, batches_per_epoch, learning_rate, epoch_delay_ms)
            .map_err(TrainingError::InvalidArguments)?;
        let prepare = ctx.phase(0.0..5.0).named("prepare").with_total_steps(1);
        let training = ctx.phase(5.0..95.0).named("train").with_total_steps(epochs);
        let save = ctx.phase(95.0..100.0).named("save").with_total_steps(1);
        ctx.set_context("samples", SAMPLES);
        ctx.set_context("features", FEATURES);

        prepare.progress(0, format!("Generating {SAMPLES} samples"));
        let data = prepare
            .spawn_blocking(move |_| Arc::new(Dataset::generate(seed)))
            .await?;
        prepare.progress(1, format!("Generated {SAMPLES} samples"));

        // A resumed run continues after the epoch its last checkpoint saved.
        let resumed = ctx
            .resume_state::<TrainingCheckpoint>()
            .map_err(|e| TrainingError::Checkpoint(e.to_string()))?;
        let (mut model, resumed_after) = match &resumed {
            Some(checkpoint) => (checkpoint.model()?, checkpoint.epoch.min(epochs)),
            None => (Model::default(), 0),
        };
        let mut eval = data.evaluate(&model);
        let mut completed = resumed_after;
        if resumed_after > 0 {
            training.progress(
                resumed_after,
                format!("Resumed after epoch {resumed_after}/{epochs}"),
            );
        }
        let summary = |model: &Model, eval: Eval, completed: u64, cancelled: bool| {
            summary(model, eval, (completed, epochs, resumed_after), cancelled)
        };
        let run = Run {
            epochs,
            batches: batches_per_epoch,
            learning_rate,
            seed,
        };
        for epoch in resumed_after + 1..=epochs {
            if ctx.is_cancelled() {
                break;
            }
            let (data, start) = (data.clone(), model.clone());
            let end = training
                .spawn_blocking(move |ctx| run.epoch(&ctx, &data, start, epoch))
                .await?;
            let Some((trained, after)) = end else {
                break; // cancelled mid-epoch: keep the model of the epoch before
            };
            (model, eval, completed) = (trained, after, epoch);
            training.progress(
                epoch,
                format!(
                    "Epoch {epoch}/{epochs} loss {:.2} acc {:.2}",
                    eval.loss, eval.accuracy
                ),
            );
            // Saved (written through to a store) at this epoch's step, and before its
            // metric record: an epoch that has a record is never trained again by a
            // resume.
            ctx.save_checkpoint(&TrainingCheckpoint {
                epoch,
                weights: model.w.to_vec(),
                bias: model.b,
            })
            .await
            .map_err(|e| TrainingError::Checkpoint(e.to_string()))?;
            ctx.metric(EpochMetric {
                epoch,
                loss: eval.loss,
                accuracy: eval.accuracy,
            });
            ctx.set_partial_result(summary(&model, eval, completed, true));
            if epoch < epochs
                && epoch_delay_ms > 0
                && ctx
                    .sleep(Duration::from_millis(epoch_delay_ms))
                    .await
                    .is_err()
            {
                break;
            }
        }
        if ctx.is_cancelled() {
            return Ok(summary(&model, eval, completed, true));
        }

        save.progress(0, "Saving the weights");
        let summary = summary(&model, eval, completed, false);
        save.progress(1, "Saved the weights");
        Ok(summary)
    }
}

/// The summary of a run that reached `completed` of `epochs` with `model`, resumed
/// after epoch `resumed_after` (0: not resumed).
fn summary(
    model: &Model,
    eval: Eval,
    (completed, epochs, resumed_after): (u64, u64, u64),
    cancelled: bool,
) -> TrainingSummary {
    let resumed = if resumed_after > 0 {
        format!(" (resumed after epoch {resumed_after})")
    } else {
        String::new()
    };
    let message = if cancelled {
        format!("Cancelled after {completed}/{epochs} epochs{resumed}")
    } else {
        format!(
            "Trained {completed} epochs{resumed}: loss {:.3}, accuracy {:.3}",
            eval.loss, eval.accuracy
        )
    };
    TrainingSummary {
        epochs_completed: completed,
        epochs,
        final_loss: eval.loss,
        final_accuracy: eval.accuracy,
        samples: SAMPLES as u64,
        weights: model.w.to_vec(),
        bias: model.b,
        weights_norm: model.w.iter().map(|w| w * w).sum::<f64>().sqrt(),
        resumed_after_epoch: resumed_after,
        message,
    }
}

/// Logistic regression: `P(y = 1 | x) = sigmoid(w · x + b)`.
#[derive(Debug, Clone, Default)]
struct Model {
    w: [f64; FEATURES],
    b: f64,
}

impl Model {
    fn logit(&self, x: &[f64; FEATURES]) -> f64 {
        self.w.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + self.b
    }
}

/// Loss and accuracy of a model over the data set.
#[derive(Debug, Clone, Copy)]
struct Eval {
    loss: f64,
    accuracy: f64,
}

/// Points in `[-1, 1)^FEATURES`, labelled by a random hyperplane, with a few labels
/// flipped.
#[derive(Debug)]
struct Dataset {
    x: Vec<[f64; FEATURES]>,
    /// `0.0` or `1.0`.
    y: Vec<f64>,
}

impl Dataset {
    fn generate(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let truth = Model {
            w: std::array::from_fn(|_| rng.f64().mul_add(4.0, -2.0)),
            b: rng.f64() - 0.5,
        };
        let x: Vec<[f64; FEATURES]> = (0..SAMPLES)
            .map(|_| std::array::from_fn(|_| rng.f64().mul_add(2.0, -1.0)))
            .collect();
        let y = x
            .iter()
            .map(|x| {
                let positive = truth.logit(x) > 0.0;
                if positive != (rng.f64() < LABEL_NOISE) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        Self { x, y }
    }

    /// Mean log loss (computed stably from the logit) and accuracy.
    fn evaluate(&self, model: &Model) -> Eval {
        let (mut loss, mut correct) = (0.0, 0u64);
        for (x, &y) in self.x.iter().zip(&self.y) {
            let z = model.logit(x);
            // -[y ln σ(z) + (1 - y) ln(1 - σ(z))] = softplus(z) - y z
            loss += z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z;
            correct += u64::from((z > 0.0) == (y > 0.5));
        }
        let n = self.x.len() as f64;
        Eval {
            loss: loss / n,
            accuracy: correct as f64 / n,
        }
    }
}

/// The settings every epoch of a run shares.
#[derive(Debug, Clone, Copy)]
struct Run {
    epochs: u64,
    batches: u64,
    learning_rate: f64,
    seed: u64,
}

impl Run {
    /// One epoch on the blocking pool: the samples in a fresh order (seeded by the run
    /// and the epoch), `batches` gradient steps, then an evaluation. `None` when the
    /// operation is cancelled before a batch.
    fn epoch(
        &self,
        ctx: &OperationContext,
        data: &Dataset,
        mut model: Model,
        epoch: u64,
    ) -> Option<(Model, Eval)> {
        let n = data.x.len();
        let mut order: Vec<usize> = (0..n).collect();
        fastrand::Rng::with_seed(self.seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .shuffle(&mut order);
        // `batches` is at most `n` (checked), so every batch has a sample or more.
        let batches = usize::try_from(self.batches).unwrap_or(n).clamp(1, n);
        for b in 0..batches {
            if ctx.is_cancelled() {
                return None;
            }
            let batch = &order[b * n / batches..(b + 1) * n / batches];
            self.step(&mut model, data, batch);
            let done = (epoch - 1) as f64 + (b + 1) as f64 / batches as f64;
            ctx.set_percentage(done * 100.0 / self.epochs as f64);
        }
        let eval = data.evaluate(&model);
        Some((model, eval))
    }

    /// One gradient step on the mean log loss of `batch`.
    fn step(&self, model: &mut Model, data: &Dataset, batch: &[usize]) {
        let mut grad_w = [0.0; FEATURES];
        let mut grad_b = 0.0;
        for &i in batch {
            let x = &data.x[i];
            let error = sigmoid(model.logit(x)) - data.y[i];
            for (g, x) in grad_w.iter_mut().zip(x) {
                *g += error * x;
            }
            grad_b += error;
        }
        let rate = self.learning_rate / batch.len() as f64;
        for (w, g) in model.w.iter_mut().zip(grad_w) {
            *w -= rate * g;
        }
        model.b -= rate * grad_b;
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Body of `POST /api/v1/training/start`: the arguments of
/// [`TrainingService::train`] under their own names (so a proxy can post a call's
/// serialised arguments as they are). Only `epochs` is required; an unknown field is a
/// 422 (a misspelt `learning_rte` must not train with the default).
///
/// # Examples
///
/// ```
/// use orchestrator_examples::training::TrainingRequest;
///
/// let req: TrainingRequest = serde_json::from_str(r#"{"epochs": 5}"#)?;
/// assert_eq!(req, TrainingRequest::new(5));
/// assert_eq!((req.batches_per_epoch, req.learning_rate, req.seed), (20, 0.1, 42));
/// assert!(serde_json::from_str::<TrainingRequest>(r#"{"epochs": 5, "epoch": 1}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingRequest {
    /// Epochs to train (1 to 10,000).
    #[schema(minimum = 1, maximum = 10_000)]
    #[serde(deserialize_with = "whole_number")]
    pub epochs: u64,
    /// Gradient steps per epoch (default 20; 1 to 4096, the samples).
    #[schema(minimum = 1, maximum = 4096, default = 20)]
    #[serde(
        default = "TrainingRequest::default_batches_per_epoch",
        deserialize_with = "whole_number"
    )]
    pub batches_per_epoch: u64,
    /// Step size of SGD (default 0.1; above 0, at most 100).
    #[schema(exclusive_minimum = 0, maximum = 100, default = 0.1)]
    #[serde(default = "TrainingRequest::default_learning_rate")]
    pub learning_rate: f64,
    /// Seed of the data set and the batch order (default 42).
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_u64, default = 42)]
    #[serde(
        default = "TrainingRequest::default_seed",
        deserialize_with = "whole_number"
    )]
    pub seed: u64,
    /// Pause after each epoch in milliseconds (default 0; at most 60,000): for demos
    /// and tests that watch a run.
    #[schema(minimum = 0, maximum = 60_000, default = 0)]
    #[serde(default, deserialize_with = "whole_number")]
    pub epoch_delay_ms: u64,
}

impl TrainingRequest {
    /// `batches_per_epoch` when the body has none.
    pub const DEFAULT_BATCHES_PER_EPOCH: u64 = 20;
    /// `learning_rate` when the body has none.
    pub const DEFAULT_LEARNING_RATE: f64 = 0.1;
    /// `seed` when the body has none.
    pub const DEFAULT_SEED: u64 = 42;
    /// The largest seed a request may give: 2^53 − 1, exact in every JSON reader.
    pub const MAX_SEED: u64 = (1 << 53) - 1;

    /// `epochs` epochs with the defaults for the rest.
    pub const fn new(epochs: u64) -> Self {
        Self {
            epochs,
            batches_per_epoch: Self::DEFAULT_BATCHES_PER_EPOCH,
            learning_rate: Self::DEFAULT_LEARNING_RATE,
            seed: Self::DEFAULT_SEED,
            epoch_delay_ms: 0,
        }
    }

    const fn default_batches_per_epoch() -> u64 {
        Self::DEFAULT_BATCHES_PER_EPOCH
    }

    const fn default_learning_rate() -> f64 {
        Self::DEFAULT_LEARNING_RATE
    }

    const fn default_seed() -> u64 {
        Self::DEFAULT_SEED
    }

    /// Checks the values with [`check_arguments`].
    ///
    /// # Errors
    ///
    /// 422 `INVALID_REQUEST` naming the field out of range.
    pub fn validate(&self) -> Result<(), ApiError> {
        // Integers over the wire stay exact in every JSON reader (as the API's own).
        if self.seed > Self::MAX_SEED {
            return Err(ApiError::invalid_request(format!(
                "seed must be at most {}, got {}",
                Self::MAX_SEED,
                self.seed
            )));
        }
        check_arguments(
            self.epochs,
            self.batches_per_epoch,
            self.learning_rate,
            self.epoch_delay_ms,
        )
        .map_err(ApiError::invalid_request)
    }
}

/// `POST /training/start`: validate, start, answer with the id.
///
/// # Errors
///
/// 415/422 `INVALID_REQUEST` for a body that is not the JSON of a valid
/// [`TrainingRequest`]; 429 `TOO_MANY_OPERATIONS` at the registry's limit.
#[utoipa::path(
    post,
    path = "/training/start",
    tag = "training",
    request_body(content = TrainingRequest, description = "`epochs` is required; the rest have defaults", content_type = "application/json"),
    responses(
        (status = 200, description = "Started; follow it at `/operations/{id}`, its epochs at `/operations/{id}/metrics`", body = ApiResponse<StartedOperation>),
        (status = 408, description = "`REQUEST_TIMEOUT`: the body did not arrive in time", body = ErrorResponse),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorResponse),
        (status = 415, description = "`INVALID_REQUEST`: the content type is not JSON (even with an empty body)", body = ErrorResponse),
        (status = 422, description = "`INVALID_REQUEST`: malformed JSON, a missing `epochs`, an unknown field, or a value out of range", body = ErrorResponse),
        (status = 429, description = "`TOO_MANY_OPERATIONS`", body = ErrorResponse),
    )
)]
pub async fn start_training(
    State(svc): State<TrainingService>,
    ApiJson(req): ApiJson<TrainingRequest>,
) -> ApiResult<StartedOperation> {
    req.validate()?;
    let started = svc
        .start_train(
            req.epochs,
            req.batches_per_epoch,
            req.learning_rate,
            req.seed,
            req.epoch_delay_ms,
        )
        .await?;
    Ok(started.into())
}

/// The service's documented routes (`POST /training/start`), for
/// [`Api::with_routes`](orchestrator::http::Api::with_routes).
pub fn routes(svc: TrainingService) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(start_training))
        .with_state(svc)
}

/// The CLI side of a run: start it at `POST /training/start` with a
/// [`TrainingRequest`]; report `Trained N epochs: loss …, accuracy …`, or
/// `Cancelled after N/M epochs`.
#[derive(Debug, Clone, Copy)]
pub struct TrainingAdapter(pub TrainingRequest);

impl OperationAdapter for TrainingAdapter {
    fn start_path(&self) -> &str {
        "/training/start"
    }

    type Request = TrainingRequest;

    fn request(&self) -> &TrainingRequest {
        &self.0
    }

    fn result_message(&self, info: &OperationInfo) -> Option<String> {
        let summary = info.result_as::<TrainingSummary>();
        match (info.status, summary) {
            (OperationStatus::Completed, Some(s)) => Some(s.message),
            (OperationStatus::Cancelled, s) => {
                let (done, of) = s.map_or((info.progress.steps_completed, self.0.epochs), |s| {
                    (s.epochs_completed, s.epochs)
                });
                Some(format!("Cancelled after {done}/{of} epochs"))
            }
            _ => None, // the default: `Failed: <the server's message>`
        }
    }
}
