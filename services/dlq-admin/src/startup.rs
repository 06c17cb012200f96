//! Building the service (binding, connecting) and running it until stopped:
//! the HTTP API, the outbox relay that publishes retries, the `jobs.dlq`
//! importer and the retention sweep.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use broker::{OutboxRelay, RelayConfig};
use governor::{Quota, RateLimiter};
use prometheus_client::registry::Registry;
use service_common::admin_auth::AdminAuth;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::config::Config;
use crate::console::{ConsoleSettings, OverviewSettings, SessionKeys};
use crate::consumer::DlqImporter;
use crate::metrics::AdminMetrics;
use crate::openapi::ApiDoc;
use crate::routes::{actions, audit, bulk, health, items};
use crate::state::{AppState, BulkLimits};
use service_common::openapi::openapi_json;

/// Every route; registering through utoipa's ServiceConfig is what puts each
/// one in the OpenAPI document. `/api/dlq/groups` comes before
/// `/api/dlq/{job_id}`, which would otherwise take it.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(items::list_dlq)
        .service(items::dlq_groups)
        .service(bulk::bulk_retry)
        .service(bulk::purge)
        .service(items::show_item)
        .service(actions::retry_item)
        .service(actions::delete_item)
        .service(audit::list_audit)
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
    state: Arc<AppState>,
    consumer: broker::Consumer<DlqImporter>,
    sweep_interval: Option<Duration>,
}

impl Application {
    /// Checks the tokens, opens the pool (migrating unless told not to) and
    /// binds the listener; nothing is served or consumed until
    /// [`Application::run_until_stopped`].
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let auth = AdminAuth::from_entries(&config.admin_tokens, config.insecure_no_auth)?;
        if config.insecure_no_auth {
            tracing::warn!("serving WITHOUT admin authentication (--insecure-no-auth)");
        }
        let pool = config.database.connect().await?;
        let topology = config.amqp.topology();
        let relay = OutboxRelay::new(
            pool.clone(),
            RelayConfig {
                amqp_url: config.amqp.url(),
                connection_name: "dlq-admin outbox relay".into(),
                topology: topology.clone(),
                batch_size: config.outbox_batch_size,
                poll_interval: Duration::from_millis(config.outbox_poll_interval_ms),
                publish_timeout: config.amqp.publish_timeout(),
                unroutable: config.amqp.unroutable_policy(),
            },
        );
        let importer_connected = Arc::new(AtomicBool::new(false));
        let mut registry = Registry::default();
        let http_metrics =
            service_common::metrics::register_service(&mut registry, "dlq-admin", env!("CARGO_PKG_VERSION"));
        let metrics = AdminMetrics::register(&mut registry, relay.stats(), importer_connected.clone());
        let bulk = BulkLimits { batch_size: config.bulk_batch_size, max_jobs: config.bulk_retry_max_jobs };
        // Burst = one batch: a batch goes out whole, then the next waits
        // until the rate has paid for it.
        let replay_limiter = NonZeroU32::new(config.bulk_retry_rate_per_second).map(|rate| {
            let burst = NonZeroU32::new(bulk.batch_size).expect("batch size >= 1");
            Arc::new(RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)))
        });
        let state = Arc::new(AppState {
            pool: pool.clone(),
            relay,
            topology: topology.clone(),
            retention_days: config.retention_days,
            bulk,
            replay_limiter,
            payload_preview_bytes: config.payload_preview_bytes,
            max_json_body: config.max_json_body,
            importer_connected: importer_connected.clone(),
            metrics: metrics.clone(),
            registry: Arc::new(registry),
            metrics_throttle: config.database.metrics_throttle(),
        });
        let console_topology = topology.clone();
        let dlq_queue = topology.dlq_queue();
        let queue = broker::QueueSpec { name: dlq_queue.clone(), prefetch: config.consumer_prefetch };
        let consumer = broker::Consumer::new(
            broker::ConsumerConfig {
                publish_timeout: config.amqp.publish_timeout(),
                ..broker::ConsumerConfig::new(config.amqp.url(), "dlq-admin importer".into(), topology, vec![queue])
            },
            Arc::new(DlqImporter { pool, metrics, queue: dlq_queue }),
        )
        .with_connected_flag(importer_connected);

        let data = web::Data::from(state.clone());
        let auth = web::Data::new(Arc::new(auth));
        let c = &config.console;
        let session_keys = web::Data::new(
            SessionKeys::new(c.console_session_key.as_deref(), c.console_secure_cookies, c.console_session_hours)
                .context("CONSOLE_SESSION_KEY")?,
        );
        if c.console_session_key.is_none() {
            tracing::info!(
                "console sessions use a random key: they end when this process stops (set CONSOLE_SESSION_KEY to share them)"
            );
        }
        let login_limiter =
            web::Data::new(crate::console::session::LoginLimiter::new(c.console_login_attempts_per_minute));
        let console_settings = web::Data::new(ConsoleSettings {
            jaeger_ui_url: c.jaeger_ui_url.as_deref().map(|u| u.trim_end_matches('/').to_owned()),
            refresh_seconds: c.console_refresh_seconds,
            overview: OverviewSettings {
                sla: config.sla.clone(),
                alerts: config.alerts.clone(),
                topology: console_topology,
            },
        });
        let (port, server) = service_common::http::serve(service_common::http::Serve {
            listen_addr: config.listen_addr.clone(),
            workers: config.http_workers,
            http_metrics,
            api_doc: ApiDoc::openapi(),
            routes,
            data: move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone());
                cfg.app_data(auth.clone());
                cfg.app_data(session_keys.clone());
                cfg.app_data(login_limiter.clone());
                cfg.app_data(console_settings.clone());
                // The console's pages, outside the OpenAPI document.
                cfg.configure(crate::console::routes);
            },
        })?;
        tracing::info!(port, "dlq-admin listening");
        Ok(Application { port, server, state, consumer, sweep_interval: config.sweep_interval() })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests
    /// and stops the relay, the importer (unacked dead letters return to
    /// the queue) and the sweep.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tasks = CancellationToken::new();
        let relay = tokio::spawn(self.state.relay.clone().run(tasks.clone()));
        let consumer = tokio::spawn(self.consumer.run(tasks.clone()));
        let sweep = self
            .sweep_interval
            .map(|interval| tokio::spawn(crate::sweep::run(self.state.clone(), interval, tasks.clone())));
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown.cancelled().await;
        tracing::info!("stopping: draining HTTP requests");
        handle.stop(true).await;
        server.await.context("server task")?.context("server")?;
        tasks.cancel();
        relay.await.context("relay task")?;
        consumer.await.context("importer task")?;
        if let Some(sweep) = sweep {
            sweep.await.context("sweep task")?;
        }
        tracing::info!("stopped");
        Ok(())
    }
}
