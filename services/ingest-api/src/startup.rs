//! Building the service (binding, connecting) and running it until stopped.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use broker::{OutboxRelay, RelayConfig};
use job_store::DedupPolicy;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Auth;
use crate::config::Config;
use crate::domain::Limits;
use crate::metrics::IngestMetrics;
use crate::openapi::ApiDoc;
use crate::routes::{health, jobs, results, status, submit, upload};
use crate::state::AppState;
use crate::uploads::{UploadSettings, UploadSlots};
use service_common::openapi::openapi_json;

/// Every route; registering through utoipa's ServiceConfig is what puts each
/// one in the OpenAPI document.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(submit::process_async)
        .service(upload::upload_document)
        .service(status::job_status)
        .service(jobs::list_jobs)
        .service(results::job_result)
        .service(results::list_tickets)
        .service(results::resolve_ticket)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(openapi_json);
}

/// The OpenAPI document of [`routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    service_common::http::openapi_of(ApiDoc::openapi(), routes)
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    relay: OutboxRelay,
}

impl Application {
    /// Binds the listener and opens the pools; nothing is served until
    /// [`Application::run_until_stopped`].
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        if config.api_keys.iter().all(|k| k.is_empty()) && !config.insecure_no_auth {
            anyhow::bail!(
                "no API keys configured: set INGEST_API_KEYS, or pass --insecure-no-auth for local development"
            );
        }
        let pool = config.database.connect().await?;
        let blobs = config.blob_store.open_checked().await?;
        let topology = config.amqp.topology();
        let relay = OutboxRelay::new(
            pool.clone(),
            RelayConfig {
                amqp_url: config.amqp.url(),
                connection_name: "ingest-api outbox relay".into(),
                topology: topology.clone(),
                batch_size: config.outbox_batch_size,
                poll_interval: Duration::from_millis(config.outbox_poll_interval_ms),
                publish_timeout: config.amqp.publish_timeout(),
                unroutable: config.amqp.unroutable_policy(),
            },
        );

        let mut registry = Registry::default();
        let http_metrics =
            service_common::metrics::register_service(&mut registry, "ingest-api", env!("CARGO_PKG_VERSION"));
        let upload_slots = UploadSlots::new(
            config.max_concurrent_uploads as usize,
            Duration::from_millis(config.upload_queue_timeout_ms),
        );
        let metrics = IngestMetrics::register(&mut registry, relay.stats(), &upload_slots);
        let state = web::Data::new(AppState {
            // As many as the pool can spare: every request slot may submit.
            connections: job_store::ConnectionCache::new(pool.clone(), usize::MAX),
            pool,
            relay: relay.clone(),
            topology,
            blobs,
            limits: Limits { max_file_size: config.max_file_size, max_tags: config.max_tags },
            uploads: UploadSettings {
                part_size: usize::try_from(config.upload_part_size).unwrap_or(usize::MAX),
                idle_timeout: Duration::from_millis(config.upload_idle_timeout_ms),
            },
            upload_slots,
            dedup: DedupPolicy {
                document_window: (config.dedup_window_seconds > 0)
                    .then(|| Duration::from_secs(config.dedup_window_seconds)),
            },
            max_retries: config.max_retries,
            max_json_body: config.max_json_body,
            metrics,
            registry: Arc::new(registry),
            metrics_throttle: config.database.metrics_throttle(),
        });
        let auth = web::Data::new(Arc::new(Auth::new(
            &config.api_keys,
            config.insecure_no_auth,
            config.rate_limit_per_second,
            config.rate_limit_burst,
        )));
        if !auth.has_keys() {
            tracing::warn!("serving WITHOUT authentication (--insecure-no-auth)");
        }
        let (port, server) = service_common::http::serve(service_common::http::Serve {
            listen_addr: config.listen_addr.clone(),
            workers: config.http_workers,
            http_metrics,
            api_doc: ApiDoc::openapi(),
            routes,
            data: move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(state.clone());
                cfg.app_data(auth.clone());
            },
        })?;
        tracing::info!(port, "ingest-api listening");
        Ok(Application { port, server, relay })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests
    /// and stops the outbox relay (whatever it has not published stays in
    /// the outbox for the next relay).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let relay_stop = CancellationToken::new();
        let relay = tokio::spawn(self.relay.run(relay_stop.clone()));
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown.cancelled().await;
        tracing::info!("stopping: draining HTTP requests");
        handle.stop(true).await;
        server.await.context("server task")?.context("server")?;
        relay_stop.cancel();
        relay.await.context("relay task")?;
        tracing::info!("stopped");
        Ok(())
    }
}
