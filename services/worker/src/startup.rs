//! Building the worker (connecting, binding) and running it until stopped.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use broker::{Consumer, ConsumerConfig, OutboxRelay, QueueSpec, RelayConfig};
use job_model::JobPriority;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::executor::Executor;
use crate::http::{self, HttpState};
use crate::metrics::WorkerMetrics;
use crate::reaper;

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    consumer: Consumer<Executor>,
    relay: OutboxRelay,
    reaper: ReaperTask,
    pool: sqlx::PgPool,
}

struct ReaperTask {
    pool: sqlx::PgPool,
    topology: job_model::Topology,
    metrics: WorkerMetrics,
    every: Duration,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let pool = config.database.connect().await?;
        let blobs = config.blob_store.open_checked().await?;
        let topology = config.amqp.topology();
        let worker_id = config.worker_id();
        let relay = OutboxRelay::new(
            pool.clone(),
            RelayConfig {
                amqp_url: config.amqp.url(),
                connection_name: format!("worker {worker_id} outbox relay"),
                topology: topology.clone(),
                batch_size: config.batch_size,
                poll_interval: Duration::from_millis(500),
                publish_timeout: config.amqp.publish_timeout(),
                unroutable: config.amqp.unroutable_policy(),
            },
        );

        let mut registry = Registry::default();
        let http_metrics =
            service_common::metrics::register_service(&mut registry, "worker", env!("CARGO_PKG_VERSION"));
        let metrics = WorkerMetrics::register(&mut registry);
        registry.register_collector(Box::new(service_common::metrics::RelayCollector(relay.stats())));

        let pipeline_config = pipeline::PipelineConfig {
            default_stage_timeout: Duration::from_secs_f64(config.stage_timeout_seconds),
            document_cpu_budget: Duration::from_secs_f64(config.document_cpu_seconds),
            rules_path: config.criteria_rules_path.clone(),
            ..Default::default()
        };
        let pipeline = Arc::new(if config.pipeline_noop {
            tracing::warn!("PIPELINE_NOOP: every stage is a no-op (benchmarks only)");
            crate::noop::pipeline(pipeline_config)
        } else {
            pipeline::Pipeline::standard(pipeline_config).context("building the pipeline")?
        });

        // Enough for every job slot and outcome write to keep one.
        let connections = job_store::ConnectionCache::new(
            pool.clone(),
            config.worker_count.max(1) + crate::outcomes::WRITES_IN_FLIGHT,
        );
        let executor = Arc::new(Executor {
            pool: pool.clone(),
            connections: connections.clone(),
            earlier: Arc::new(crate::earlier::StoredResults { connections: connections.clone() }),
            blobs,
            pipeline,
            topology: topology.clone(),
            retry_policy: config.retry_policy(),
            relay: relay.clone(),
            worker_id: worker_id.clone(),
            lease: config.lease(),
            max_crashes: config.max_crashes,
            outcomes: crate::outcomes::OutcomeWriter::start(
                connections,
                worker_id.clone(),
                config.worker_count.max(1),
                relay.claim(),
                metrics.outcome_group_size.clone(),
            ),
            metrics: metrics.clone(),
        });
        let consumer = Consumer::new(
            ConsumerConfig {
                amqp_url: config.amqp.url(),
                connection_name: format!("worker {worker_id}"),
                topology: topology.clone(),
                retry_tiers: Some(config.retry_policy()),
                queues: JobPriority::ALL
                    .into_iter()
                    .map(|p| QueueSpec { name: topology.job_queue(p), prefetch: config.prefetch.max(1) })
                    .collect(),
                concurrency: config.worker_count.max(1),
                batch_size: 1,
                linger: Duration::ZERO,
                starvation_limit: config.starvation_limit,
                shutdown_grace: Duration::from_secs_f64(config.shutdown_grace_seconds),
                publish_timeout: config.amqp.publish_timeout(),
            },
            executor,
        );
        let consuming = consumer.connected();

        let state = web::Data::new(HttpState { pool: pool.clone(), consuming, registry: Arc::new(registry) });
        let (port, server) = service_common::http::serve(service_common::http::Serve {
            listen_addr: config.listen_addr.clone(),
            // Probes and scrapes only: one thread is plenty.
            workers: Some(1),
            http_metrics,
            api_doc: <http::ApiDoc as utoipa::OpenApi>::openapi(),
            routes: http::routes,
            data: move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(state.clone());
            },
        })?;
        tracing::info!(port, worker_id, "worker started");
        let reaper = ReaperTask {
            pool: pool.clone(),
            topology,
            metrics,
            every: Duration::from_secs_f64(config.reaper_interval_seconds),
        };
        Ok(Application { port, server, consumer, relay, reaper, pool })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until `shutdown`: the consumer finishes in-flight jobs within its
    /// grace period, then the relay flushes what they committed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = CancellationToken::new();
        let relay = tokio::spawn(self.relay.clone().run(background.clone()));
        let r = self.reaper;
        let reaper =
            tokio::spawn(reaper::run(r.pool, r.topology, self.relay.clone(), r.metrics, r.every, background.clone()));
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);

        self.consumer.run(shutdown).await;

        // Let the relay publish what the last jobs committed; anything it
        // cannot send in time stays in the outbox for the next relay.
        self.relay.wake();
        if !job_store::outbox::wait_until_empty(&self.pool, Duration::from_secs(5)).await {
            tracing::warn!("outbox not empty at exit; another relay will publish it");
        }
        background.cancel();
        let _ = tokio::join!(relay, reaper);
        handle.stop(true).await;
        server.await.context("server task")?.context("server")?;
        tracing::info!("worker stopped");
        Ok(())
    }
}
