//! The title a hold mail names, asked of the catalog at send time (rule N1: every hold mail
//! says which material it is about). Events carry ids only (ARCHITECTURE.md "Data");
//! [`TitleDirectory`] is the question, [`GrpcTitles`] asks the catalog's `GetTitle`, and
//! [`NoTitles`] is the stand-in of a notifier that was given no catalog.
//!
//! Titles are public data: unlike a contact, a title may be logged.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use kitsuki_platform::grpc_trace::TracedChannel;
use kitsuki_proto::ServiceError;
use kitsuki_proto::catalog as pb;
use kitsuki_proto::catalog::catalog_service_client::CatalogServiceClient;
use tonic::transport::Endpoint;

/// A title as a mail names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleInfo {
    pub title_id: String,
    /// The display title (書名).
    pub title: String,
    /// The creators with their roles as the catalog displays them (「村上春樹 著」); may be
    /// empty.
    pub creators: String,
}

/// Answers what a title is called.
#[async_trait]
pub trait TitleDirectory: Send + Sync + fmt::Debug {
    /// `None` when the catalog does not know the title (then the mail goes without it);
    /// `Err` when the catalog could not answer (then the mail waits a little, see
    /// [`crate::NotifierConfig::title_lookup_attempts`]).
    async fn title(&self, title_id: &str) -> Result<Option<TitleInfo>, ServiceError>;
}

/// A directory that knows no title: the default of [`crate::Notifier::open`] until
/// [`crate::Notifier::with_titles`] gives it the catalog. Hold mails then go without the
/// title line.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTitles;

#[async_trait]
impl TitleDirectory for NoTitles {
    async fn title(&self, _title_id: &str) -> Result<Option<TitleInfo>, ServiceError> {
        Ok(None)
    }
}

/// [`TitleDirectory`] over the catalog's gRPC `GetTitle`.
#[derive(Debug, Clone)]
pub struct GrpcTitles {
    client: CatalogServiceClient<TracedChannel>,
}

impl GrpcTitles {
    pub fn new(client: CatalogServiceClient<TracedChannel>) -> GrpcTitles {
        GrpcTitles { client }
    }

    /// A client of the catalog at `url` (`http://host:port`) that connects on first use,
    /// so that the notification service can start before the catalog.
    pub fn connect_lazy(url: &str) -> anyhow::Result<GrpcTitles> {
        let channel: TracedChannel = Endpoint::from_shared(url.to_string())
            .map_err(|e| anyhow::anyhow!("bad catalog service URL {url}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .connect_lazy()
            .into();
        Ok(GrpcTitles::new(CatalogServiceClient::new(channel)))
    }
}

#[async_trait]
impl TitleDirectory for GrpcTitles {
    #[tracing::instrument(skip(self))]
    async fn title(&self, title_id: &str) -> Result<Option<TitleInfo>, ServiceError> {
        let request = pb::GetTitleRequest {
            title_id: title_id.to_string(),
        };
        match self.client.clone().get_title(request).await {
            Ok(answer) => Ok(answer
                .into_inner()
                .title
                .filter(|t| !t.title.trim().is_empty())
                .map(|t| {
                    // A catalog from before `creators` (field 14) answers none: its heading
                    // then names the author rather than no one.
                    let creators = match t.creators.trim() {
                        "" => t.author.trim(),
                        creators => creators,
                    };
                    TitleInfo {
                        creators: creators.to_string(),
                        title_id: t.title_id,
                        title: t.title.trim().to_string(),
                    }
                })),
            // The status code itself (as for contacts): only the catalog's "no such title"
            // means there is none; anything else is asked again.
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(ServiceError::from_status(&status)),
        }
    }
}
