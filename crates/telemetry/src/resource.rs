//! The resource every exported span carries, by the OpenTelemetry resource
//! conventions and precedence: what the operator set wins over what the
//! binary would default to.
//!
//! - `service.name`: `OTEL_SERVICE_NAME` (or `--otel-service-name`), else
//!   `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else the binary's name;
//! - `service.version`: from `OTEL_RESOURCE_ATTRIBUTES` if it says, else
//!   the crate version;
//! - `deployment.environment.name` (semantic conventions 1.27; the older
//!   `deployment.environment` is deprecated): `DEPLOYMENT_ENVIRONMENT` if
//!   set, else `OTEL_RESOURCE_ATTRIBUTES`'s, else the deprecated key's value
//!   if that is all it gives, else none. No default: a span without an
//!   environment is better than one that says "development" in production;
//! - everything else in `OTEL_RESOURCE_ATTRIBUTES` as given.

use opentelemetry::{Key, KeyValue};
use opentelemetry_sdk::Resource;

use crate::LogArgs;

pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_VERSION: &str = "service.version";
pub const DEPLOYMENT_ENVIRONMENT_NAME: &str = "deployment.environment.name";
const DEPLOYMENT_ENVIRONMENT_DEPRECATED: &str = "deployment.environment";

/// The SDK's detectors (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, the
/// SDK's own attributes) plus what [`additions`] adds.
pub fn build(service_name: &str, version: &str, args: &LogArgs) -> Resource {
    let detected = Resource::builder().build();
    let extra = additions(&detected, service_name, version, args);
    Resource::builder().with_attributes(extra).build()
}

/// What to add to (or set on) the detected resource.
pub fn additions(detected: &Resource, service_name: &str, version: &str, args: &LogArgs) -> Vec<KeyValue> {
    let get = |key: &'static str| detected.get(&Key::from_static_str(key)).map(|v| v.to_string());
    let mut out = Vec::new();
    // The SDK names a service it knows nothing of "unknown_service[:exe]".
    let named = get(SERVICE_NAME).is_some_and(|n| !n.starts_with("unknown_service"));
    match &args.otel_service_name {
        Some(name) => out.push(KeyValue::new(SERVICE_NAME, name.clone())),
        None if !named => out.push(KeyValue::new(SERVICE_NAME, service_name.to_owned())),
        None => {}
    }
    if get(SERVICE_VERSION).is_none() {
        out.push(KeyValue::new(SERVICE_VERSION, version.to_owned()));
    }
    let environment = args.deployment_environment.clone().filter(|e| !e.trim().is_empty()).or_else(|| {
        get(DEPLOYMENT_ENVIRONMENT_NAME).is_none().then(|| get(DEPLOYMENT_ENVIRONMENT_DEPRECATED)).flatten()
    });
    if let Some(environment) = environment {
        out.push(KeyValue::new(DEPLOYMENT_ENVIRONMENT_NAME, environment));
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    fn args(flags: &[&str]) -> LogArgs {
        Cli::parse_from(std::iter::once("test").chain(flags.iter().copied())).log
    }

    fn detected(attrs: &[(&'static str, &'static str)]) -> Resource {
        Resource::builder_empty().with_attributes(attrs.iter().map(|(k, v)| KeyValue::new(*k, *v))).build()
    }

    fn added(resource: &Resource, flags: &[&str]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = additions(resource, "worker", "1.2.3", &args(flags))
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        out.sort();
        out
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn nothing_set_gives_the_binary_name_and_version_and_no_environment() {
        let r = detected(&[("service.name", "unknown_service:worker")]);
        assert_eq!(added(&r, &[]), [pair("service.name", "worker"), pair("service.version", "1.2.3")]);
    }

    #[test]
    fn otel_resource_attributes_are_not_overridden_by_defaults() {
        let r = detected(&[
            ("service.name", "billing-worker"),
            ("service.version", "2024.11"),
            ("deployment.environment.name", "staging"),
        ]);
        assert_eq!(added(&r, &[]), Vec::<(String, String)>::new());
    }

    #[test]
    fn explicit_settings_win_over_otel_resource_attributes() {
        let r = detected(&[("service.name", "billing-worker"), ("deployment.environment.name", "staging")]);
        assert_eq!(
            added(&r, &["--otel-service-name", "w2", "--deployment-environment", "production"]),
            [
                pair("deployment.environment.name", "production"),
                pair("service.name", "w2"),
                pair("service.version", "1.2.3")
            ]
        );
    }

    #[test]
    fn the_deprecated_key_is_carried_over_to_the_new_one() {
        let r = detected(&[("service.name", "x"), ("deployment.environment", "qa")]);
        assert_eq!(added(&r, &[]), [pair("deployment.environment.name", "qa"), pair("service.version", "1.2.3")]);
    }
}
