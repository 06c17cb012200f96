//! Building the service (binding, connecting) and running it until stopped.

use std::sync::Arc;

use actix_web::web;
use anyhow::Context;
use prometheus_client::registry::Registry;
use service_common::admin_auth::AdminAuth;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::config::{Config, RetentionArgs};
use crate::consumer::EventHandler;
use crate::metrics::TrackerMetrics;
use crate::openapi::ApiDoc;
use crate::queues::BrokerProbe;
use crate::routes::{alerts, executions, health, queues, reports};
use crate::state::AppState;
use service_common::openapi::openapi_json;

/// Every route; registering through utoipa's ServiceConfig is what puts each
/// one in the OpenAPI document.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(reports::metrics_report)
        .service(reports::metrics_stages)
        .service(reports::metrics_bottlenecks)
        .service(executions::list_executions)
        .service(executions::job_executions)
        .service(queues::queues)
        .service(alerts::active_alerts)
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
    consumer: broker::Consumer<EventHandler>,
    pool: sqlx::PgPool,
    retention: RetentionArgs,
    metrics: TrackerMetrics,
}

impl Application {
    /// Binds the listener and opens the pool; nothing is consumed or served
    /// until [`Application::run_until_stopped`].
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        config.validate()?;
        let auth = AdminAuth::from_entries(&config.admin_tokens, config.insecure_no_auth)?;
        if config.insecure_no_auth && config.admin_tokens.iter().all(|t| t.trim().is_empty()) {
            tracing::warn!("serving WITHOUT authentication (--insecure-no-auth)");
        }
        let pool = config.database.connect().await?;
        let topology = config.amqp.topology();

        let mut registry = Registry::default();
        let http_metrics =
            service_common::metrics::register_service(&mut registry, "metrics-tracker", env!("CARGO_PKG_VERSION"));
        let metrics = TrackerMetrics::register(&mut registry);
        let queue = topology.metrics_events_queue();
        let handler = Arc::new(EventHandler { pool: pool.clone(), metrics: metrics.clone(), queue: queue.clone() });
        let gauge = metrics.consumer_connected.clone();
        let consumer = broker::Consumer::new(
            broker::ConsumerConfig {
                batch_size: config.consumer.batch_size,
                linger: config.consumer.linger(),
                publish_timeout: config.amqp.publish_timeout(),
                ..broker::ConsumerConfig::new(
                    config.amqp.url(),
                    "metrics-tracker events".into(),
                    topology.clone(),
                    // The prefetch bounds how many events are unacked at
                    // once, so it must cover a whole batch.
                    vec![broker::QueueSpec { name: queue, prefetch: config.consumer.prefetch }],
                )
            },
            handler,
        )
        .on_connection(move |connected| {
            gauge.set(i64::from(connected));
        });
        let connected = consumer.connected();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            topology,
            sla: config.sla.clone(),
            alerts: config.alerts.clone(),
            max_report_hours: config.max_report_hours(),
            metrics: metrics.clone(),
            registry: Arc::new(registry),
            metrics_throttle: config.database.metrics_throttle(),
            probe: BrokerProbe::new(config.amqp.url(), "metrics-tracker queue probe".into()),
            consumer_connected: connected,
        });
        let auth = web::Data::new(Arc::new(auth));
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
        tracing::info!(port, "metrics-tracker listening");
        Ok(Application { port, server, consumer, pool, retention: config.retention.clone(), metrics })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Consumes events, sweeps old rows and serves HTTP until `shutdown` is
    /// cancelled; then stops consuming (the batch in hand is committed and
    /// acked, unacked deliveries return to the queue), drains requests and
    /// returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let consumer = tokio::spawn(self.consumer.run(shutdown.clone()));
        let retention = tokio::spawn(crate::retention::run(self.pool, self.retention, self.metrics, shutdown.clone()));
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown.cancelled().await;
        tracing::info!("stopping: finishing the current batch and draining HTTP requests");
        consumer.await.context("consumer task")?;
        handle.stop(true).await;
        server.await.context("server task")?.context("server")?;
        retention.await.context("retention task")?;
        tracing::info!("stopped");
        Ok(())
    }
}
