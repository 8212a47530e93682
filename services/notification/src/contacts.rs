//! Where a mail goes, asked at send time (ARCHITECTURE.md "Data": events carry ids, not
//! addresses). [`ContactDirectory`] is the question; [`GrpcContacts`] asks patron-account's
//! `GetContact`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use kitsuki_platform::grpc_trace::TracedChannel;
use kitsuki_proto::ServiceError;
use kitsuki_proto::patron as pb;
use kitsuki_proto::patron::patron_service_client::PatronServiceClient;
use tonic::transport::Endpoint;

/// A patron's contact as patron-account answers it.
#[derive(Clone, PartialEq, Eq)]
pub struct Contact {
    pub card_number: String,
    pub name: String,
    pub email: String,
}

/// Personal data stays out of logs: a contact prints without name and address.
impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contact")
            .field("card_number", &self.card_number)
            .finish_non_exhaustive()
    }
}

/// Answers where to send a patron's mail now.
#[async_trait]
pub trait ContactDirectory: Send + Sync + fmt::Debug {
    /// With `verification_id`, the address being verified by that request; otherwise the
    /// address in force. `None` when there is none (then nothing can be sent); `Err` when
    /// the directory could not answer (then the mail is tried again later).
    async fn contact(
        &self,
        card_number: &str,
        verification_id: Option<&str>,
    ) -> Result<Option<Contact>, ServiceError>;
}

/// [`ContactDirectory`] over patron-account's gRPC `GetContact`.
#[derive(Debug, Clone)]
pub struct GrpcContacts {
    client: PatronServiceClient<TracedChannel>,
}

impl GrpcContacts {
    pub fn new(client: PatronServiceClient<TracedChannel>) -> GrpcContacts {
        GrpcContacts { client }
    }

    /// A client of the patron service at `url` (`http://host:port`) that connects on first
    /// use, so that the notification service can start before patron-account.
    pub fn connect_lazy(url: &str) -> anyhow::Result<GrpcContacts> {
        let channel: TracedChannel = Endpoint::from_shared(url.to_string())
            .map_err(|e| anyhow::anyhow!("bad patron service URL {url}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .connect_lazy()
            .into();
        Ok(GrpcContacts::new(PatronServiceClient::new(channel)))
    }
}

#[async_trait]
impl ContactDirectory for GrpcContacts {
    #[tracing::instrument(skip_all, fields(card_number = %card_number))]
    async fn contact(
        &self,
        card_number: &str,
        verification_id: Option<&str>,
    ) -> Result<Option<Contact>, ServiceError> {
        let request = pb::GetContactRequest {
            card_number: card_number.to_string(),
            verification_id: verification_id.unwrap_or_default().to_string(),
        };
        match self.client.clone().get_contact(request).await {
            Ok(answer) => {
                let c = answer.into_inner();
                if c.email.trim().is_empty() {
                    return Ok(None);
                }
                Ok(Some(Contact {
                    card_number: c.card_number,
                    name: c.name,
                    email: c.email,
                }))
            }
            // The status code itself, not the error table's reading of it: a peer without
            // GetContact answers UNIMPLEMENTED, which must be retried, not taken as "no
            // address".
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(ServiceError::from_status(&status)),
        }
    }
}
