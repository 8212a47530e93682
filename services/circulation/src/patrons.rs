//! What circulation asks patron-account about a patron (each service owns its data): does
//! the card exist, is the web service enabled (P3), is an address verified (H3), does the
//! patron keep a reading history (V1). [`PatronFacts`] is the question; [`GrpcPatronFacts`]
//! asks patron-account's `GetPatronFacts`, [`InMemoryPatrons`] answers from a table (tests,
//! tools).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use kitsuki_platform::grpc_trace::TracedChannel;
use kitsuki_proto::patron as pb;
use kitsuki_proto::patron::patron_service_client::PatronServiceClient;
use kitsuki_proto::{CardNumber, ErrorCode, ServiceError};
use tonic::transport::Endpoint;

/// What circulation needs to know of an existing patron.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatronRecord {
    /// Rules P3, P4: may use the web service.
    pub web_enabled: bool,
    /// Rule H3: a verified email address is in force.
    pub email_verified: bool,
    /// Rule V1: opted in to a reading history only they can see.
    pub reading_history: bool,
}

/// Answers what circulation needs to know of a patron.
#[async_trait]
pub trait PatronFacts: Send + Sync + fmt::Debug {
    /// `Ok(None)` for a card no patron has; `Err` (`unavailable`) when the answer cannot be
    /// had now.
    async fn facts(&self, card: &CardNumber) -> Result<Option<PatronRecord>, ServiceError>;
}

/// [`PatronFacts`] over patron-account's gRPC `GetPatronFacts`.
#[derive(Debug, Clone)]
pub struct GrpcPatronFacts {
    client: PatronServiceClient<TracedChannel>,
}

impl GrpcPatronFacts {
    pub fn new(client: PatronServiceClient<TracedChannel>) -> GrpcPatronFacts {
        GrpcPatronFacts { client }
    }

    /// A client of the patron service at `url` (`http://host:port`) that connects on first
    /// use, so that circulation can start before patron-account.
    pub fn connect_lazy(url: &str) -> anyhow::Result<GrpcPatronFacts> {
        let channel: TracedChannel = Endpoint::from_shared(url.to_string())
            .map_err(|e| anyhow::anyhow!("bad patron service URL {url}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy()
            .into();
        Ok(GrpcPatronFacts::new(PatronServiceClient::new(channel)))
    }
}

#[async_trait]
impl PatronFacts for GrpcPatronFacts {
    #[tracing::instrument(skip_all, fields(card_number = %card))]
    async fn facts(&self, card: &CardNumber) -> Result<Option<PatronRecord>, ServiceError> {
        let request = pb::GetPatronFactsRequest {
            card_number: card.as_str().to_string(),
        };
        match self.client.clone().get_patron_facts(request).await {
            Ok(answer) => {
                let f = answer.into_inner();
                Ok(f.exists.then_some(PatronRecord {
                    web_enabled: f.web_enabled,
                    email_verified: f.email_verified,
                    reading_history: f.reading_history,
                }))
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), "patron facts unavailable");
                // Whatever went wrong over there (a peer down, an old peer without the
                // method), the patron's standing is unknown: answer as unavailable.
                Err(ServiceError::new(ErrorCode::Unavailable))
            }
        }
    }
}

/// [`PatronFacts`] from a table in memory, for tests and tools. Can be made to fail as a
/// patron service that is down does.
#[derive(Debug, Default)]
pub struct InMemoryPatrons {
    patrons: Mutex<HashMap<CardNumber, PatronRecord>>,
    down: AtomicBool,
}

impl InMemoryPatrons {
    pub fn new() -> InMemoryPatrons {
        InMemoryPatrons::default()
    }

    /// Adds or replaces a patron.
    pub fn set(&self, card: &CardNumber, record: PatronRecord) {
        self.lock().insert(card.clone(), record);
    }

    /// A patron with the web service and a verified address, without a reading history.
    pub fn add_web_patron(&self, card: &CardNumber) {
        self.set(
            card,
            PatronRecord {
                web_enabled: true,
                email_verified: true,
                reading_history: false,
            },
        );
    }

    /// While down, every question fails with `unavailable`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CardNumber, PatronRecord>> {
        self.patrons.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PatronFacts for InMemoryPatrons {
    async fn facts(&self, card: &CardNumber) -> Result<Option<PatronRecord>, ServiceError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ServiceError::new(ErrorCode::Unavailable));
        }
        Ok(self.lock().get(card).copied())
    }
}
