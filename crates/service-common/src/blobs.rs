//! The blob store, from `BLOB_STORE_URL`: a local directory, S3 (or an
//! S3-compatible server), Azure Blob Storage or Google Cloud Storage.
//!
//! Credentials and endpoints come from each provider's usual environment
//! variables, read by object_store's `from_env` builders: `AWS_*` (keys,
//! `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, IRSA's
//! `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), `AZURE_*` (account and
//! key, SAS, client secret, workload identity's `AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_STORAGE_USE_EMULATOR`), `GOOGLE_*` (service account file or key,
//! `GOOGLE_BASE_URL`; with none, the metadata server, as on GKE with workload
//! identity). A setting that does not parse, or a URL that names no store,
//! fails at start; so does a store that answers that the bucket or container
//! is missing or the credentials are refused ([`BlobStoreArgs::open_checked`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreScheme, RetryConfig};

/// The blob store settings of the services that read or write documents.
#[derive(Debug, Clone, Args)]
pub struct BlobStoreArgs {
    /// Where documents and results live: `file://DIR` (relative or
    /// absolute), `s3://BUCKET[/PREFIX]`, `az://CONTAINER[/PREFIX]` (or
    /// `azure://`), `gs://BUCKET[/PREFIX]`. Credentials and endpoints come
    /// from the provider's environment variables (AWS_*, AZURE_STORAGE_*,
    /// GOOGLE_*; see the README).
    #[arg(long, env = "BLOB_STORE_URL", default_value = "file://./data/blobs")]
    pub blob_store_url: String,

    /// How long one request to a cloud store keeps retrying (refused
    /// connections, 5xx, throttling) before it fails, in seconds. The job
    /// then fails as retryable and the queue's backoff takes over; keep it
    /// below WORKER_STAGE_TIMEOUT_SECONDS so that an outage is reported as the
    /// store's error, not as a stage timeout.
    #[arg(long, env = "BLOB_STORE_RETRY_TIMEOUT_SECONDS", default_value_t = 15.0)]
    pub blob_store_retry_timeout_seconds: f64,

    /// Most retries of one request to a cloud store within that time (0: none).
    #[arg(long, env = "BLOB_STORE_MAX_RETRIES", default_value_t = 10)]
    pub blob_store_max_retries: usize,
}

impl BlobStoreArgs {
    /// The settings for `url` with the default retry budget.
    pub fn new(url: impl Into<String>) -> BlobStoreArgs {
        BlobStoreArgs { blob_store_url: url.into(), blob_store_retry_timeout_seconds: 15.0, blob_store_max_retries: 10 }
    }

    fn retry(&self) -> anyhow::Result<RetryConfig> {
        let timeout = Duration::try_from_secs_f64(self.blob_store_retry_timeout_seconds).map_err(|_| {
            anyhow::anyhow!("BLOB_STORE_RETRY_TIMEOUT_SECONDS must be a non-negative number of seconds")
        })?;
        Ok(RetryConfig {
            // object_store's default backoff (100 ms doubling), capped lower
            // so the retries fit a short budget.
            backoff: BackoffConfig { max_backoff: Duration::from_secs(5), ..BackoffConfig::default() },
            max_retries: self.blob_store_max_retries,
            retry_timeout: timeout,
        })
    }

    /// Opens the store the URL names, configured from the environment. No
    /// request is made: see [`BlobStoreArgs::open_checked`].
    pub fn open(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let url = self.blob_store_url.as_str();
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).with_context(|| format!("creating blob directory {dir}"))?;
            let store =
                LocalFileSystem::new_with_prefix(dir).with_context(|| format!("opening blob directory {dir}"))?;
            return Ok(Arc::new(store));
        }
        let parsed = url::Url::parse(url).with_context(|| format!("BLOB_STORE_URL {url:?} is not a URL"))?;
        let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|_| unsupported(url))?;
        let retry = self.retry()?;
        let built: anyhow::Result<Arc<dyn ObjectStore>> = match scheme {
            ObjectStoreScheme::AmazonS3 => {
                let builder = AmazonS3Builder::from_env().with_url(url).with_retry(retry);
                plain_http_allowed(
                    "AWS_ENDPOINT",
                    builder.get_config_value(&AmazonS3ConfigKey::Endpoint),
                    "AWS_ALLOW_HTTP",
                    builder.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)),
                )?;
                builder.build().map(|s| Arc::new(s) as _).map_err(Into::into)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                let builder = MicrosoftAzureBuilder::from_env().with_url(url).with_retry(retry);
                // The emulator setting allows plain http by itself.
                if !truthy(builder.get_config_value(&AzureConfigKey::UseEmulator)) {
                    plain_http_allowed(
                        "AZURE_STORAGE_ENDPOINT",
                        builder.get_config_value(&AzureConfigKey::Endpoint),
                        "AZURE_ALLOW_HTTP",
                        builder.get_config_value(&AzureConfigKey::Client(ClientConfigKey::AllowHttp)),
                    )?;
                }
                builder.build().map(|s| Arc::new(s) as _).map_err(Into::into)
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                let builder = GoogleCloudStorageBuilder::from_env().with_url(url).with_retry(retry);
                plain_http_allowed(
                    "GOOGLE_BASE_URL",
                    builder.get_config_value(&GoogleConfigKey::BaseUrl),
                    "GOOGLE_ALLOW_HTTP",
                    builder.get_config_value(&GoogleConfigKey::Client(ClientConfigKey::AllowHttp)),
                )?;
                builder.build().map(|s| Arc::new(s) as _).map_err(Into::into)
            }
            _ => return Err(unsupported(url)),
        };
        let store = built.with_context(|| {
            format!("BLOB_STORE_URL {url:?}: the store's settings are incomplete or invalid (see the README's blob store section)")
        })?;
        Ok(if prefix.as_ref().is_empty() { store } else { Arc::new(PrefixStore::new(store, prefix)) })
    }

    /// Opens the store and asks it one harmless question (a listing under a
    /// probe prefix), so that a missing bucket or container, or refused
    /// credentials, stop the service at start with a clear message. A store
    /// that cannot be reached at all is only logged: it may be a passing
    /// outage, which the requests' own retries and the jobs' retries ride out.
    pub async fn open_checked(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let store = self.open()?;
        if self.blob_store_url.starts_with("file://") {
            return Ok(store);
        }
        let Err(e) = probe(store.as_ref()).await else {
            tracing::info!(blob_store = %self.blob_store_url, "blob store answers");
            return Ok(store);
        };
        let url = &self.blob_store_url;
        match classify(&e) {
            ProbeFailure::Unreachable => {
                tracing::warn!(blob_store = %url, error = %e, "blob store unreachable at start; going on, requests will retry");
                Ok(store)
            }
            ProbeFailure::Certificate => Err(anyhow::Error::new(e).context(format!(
                "BLOB_STORE_URL {url:?}: the store's TLS certificate is not trusted or does not match its name \
                 (for a private CA, point SSL_CERT_FILE at a bundle that holds it)"
            ))),
            ProbeFailure::Refused => Err(anyhow::Error::new(e).context(format!(
                "BLOB_STORE_URL {url:?}: the store refused a listing (does the bucket or container exist, \
                 and may these credentials list and read it?)"
            ))),
        }
    }
}

/// Opens the store a URL names with the default retry budget (for tools and
/// tests; the services take [`BlobStoreArgs`]).
pub fn open(url: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    BlobStoreArgs::new(url).open()
}

fn unsupported(url: &str) -> anyhow::Error {
    let scheme = url.split_once("://").map_or(url, |(s, _)| s);
    if matches!(scheme, "s3" | "s3a" | "az" | "azure" | "gs") {
        return anyhow::anyhow!(
            "BLOB_STORE_URL {url:?} names no bucket or container: use s3://BUCKET/PREFIX, az://CONTAINER/PREFIX or gs://BUCKET/PREFIX"
        );
    }
    anyhow::anyhow!(
        "BLOB_STORE_URL {url:?}: unsupported store {scheme:?}; use file://DIR, s3://BUCKET/PREFIX, \
         az://CONTAINER/PREFIX (or azure://), gs://BUCKET/PREFIX, or an https URL of S3 or Azure Blob"
    )
}

/// A plain-http endpoint without the provider's allow-http setting would
/// only fail at the first request, with a message that names neither.
fn plain_http_allowed(
    endpoint_var: &str,
    endpoint: Option<String>,
    allow_var: &str,
    allow: Option<String>,
) -> anyhow::Result<()> {
    match endpoint {
        Some(endpoint) if endpoint.starts_with("http://") && !truthy(allow) => {
            bail!(
                "{endpoint_var} {endpoint:?} is plain http: set {allow_var}=true to allow it (for a local or in-cluster server)"
            )
        }
        _ => Ok(()),
    }
}

fn truthy(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

async fn probe(store: &dyn ObjectStore) -> object_store::Result<()> {
    let prefix = Path::from(".docflow-probe");
    // One page is enough: the answer, not the contents, is the point.
    let mut listing = store.list(Some(&prefix));
    listing.try_next().await?;
    Ok(())
}

/// What a failed start-up probe means.
enum ProbeFailure {
    /// The connection itself failed (refused, reset, timed out): maybe a
    /// passing outage.
    Unreachable,
    /// The server's TLS certificate is not trusted or does not match.
    Certificate,
    /// An answer from the store (no such bucket, access denied, ...) or a
    /// request that could not be made at all (a bad URL).
    Refused,
}

fn classify(e: &object_store::Error) -> ProbeFailure {
    let mut transport = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            transport = matches!(
                http.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Timeout | HttpErrorKind::Interrupted
            );
        }
        // rustls says "invalid peer certificate: ..." deep in the chain, under
        // what reqwest calls a connect error; its types are not ours to name.
        if err.to_string().contains("certificate") {
            return ProbeFailure::Certificate;
        }
        source = err.source();
    }
    if transport { ProbeFailure::Unreachable } else { ProbeFailure::Refused }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_and_non_urls_are_refused_with_the_url_named() {
        for url in ["ftp://host/dir", "memory:///", "not a url", "http://example.com/blobs"] {
            let err = format!("{:#}", open(url).err().unwrap_or_else(|| panic!("{url} opened")));
            assert!(err.contains("BLOB_STORE_URL"), "{url}: {err}");
        }
    }

    #[test]
    fn a_url_without_a_bucket_says_so() {
        for url in ["s3://", "gs:///prefix", "az://"] {
            let err = format!("{:#}", open(url).err().unwrap_or_else(|| panic!("{url} opened")));
            assert!(err.contains("names no bucket or container"), "{url}: {err}");
        }
    }

    #[test]
    fn a_plain_http_endpoint_needs_the_allow_setting() {
        let endpoint = Some("http://minio:9000".to_owned());
        let err = plain_http_allowed("AWS_ENDPOINT", endpoint.clone(), "AWS_ALLOW_HTTP", None).unwrap_err();
        assert!(err.to_string().contains("set AWS_ALLOW_HTTP=true"), "{err}");
        plain_http_allowed("AWS_ENDPOINT", endpoint, "AWS_ALLOW_HTTP", Some("TRUE".into())).unwrap();
        plain_http_allowed("AWS_ENDPOINT", Some("https://s3.example".into()), "AWS_ALLOW_HTTP", None).unwrap();
        plain_http_allowed("AWS_ENDPOINT", None, "AWS_ALLOW_HTTP", None).unwrap();
    }

    #[test]
    fn a_negative_retry_timeout_is_refused() {
        let args = BlobStoreArgs { blob_store_retry_timeout_seconds: -1.0, ..BlobStoreArgs::new("s3://bucket") };
        let err = format!("{:#}", args.open().err().unwrap());
        assert!(err.contains("BLOB_STORE_RETRY_TIMEOUT_SECONDS"), "{err}");
    }
}
