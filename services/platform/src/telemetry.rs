//! Telemetry of a process: JSON logs on stderr (tracing), OTLP trace export when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, W3C trace-context propagation, and the Prometheus
//! recorder behind `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use; one per process, shared
/// by every service of an all-in-one run).
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = crate::metrics_layer::configure(PrometheusBuilder::new()).build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed (a test process): then metrics go
        // there and this handle renders an empty page, which is harmless.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Keeps the trace exporter alive; flushes spans when dropped.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Sets up logging and tracing for a process running `service` (e.g. "catalog",
/// "circulation-yamaga", "all-in-one"). Safe to call more than once: later calls only
/// return an empty guard.
pub fn init(service: &str, branch: Option<&str>) -> TelemetryGuard {
    static INIT: OnceLock<()> = OnceLock::new();
    if INIT.set(()).is_err() {
        return TelemetryGuard::default();
    }
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    // Named before the recorder is built: its global labels are the process's name.
    crate::metrics_layer::name_process(service, branch);
    let _ = prometheus();
    let filter = EnvFilter::try_from_env("KITSUKI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr (README): stdout carries only what a person or a script reads
    // from it, the `listening on` URL and the one-time admin password.
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(std::io::stderr)
        .with_current_span(false);
    let endpoint_set = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty());
    let provider = if endpoint_set {
        build_provider(service, branch)
    } else {
        None
    };
    // Each layer has its own filter: `KITSUKI_LOG=warn` quiets the logs but must not
    // drop the info-level spans that make up the traces.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("kitsuki"))
            .with_filter(LevelFilter::INFO)
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    TelemetryGuard { provider }
}

fn build_provider(service: &str, branch: Option<&str>) -> Option<SdkTracerProvider> {
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("OTLP exporter not started: {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(format!("kitsuki-{service}"))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ));
    if let Some(b) = branch {
        resource = resource.with_attribute(opentelemetry::KeyValue::new(
            "kitsuki.branch",
            b.to_string(),
        ));
    }
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}
