//! Refusals of the patron service: a coded [`ServiceError`], or throttling (rule P13),
//! which also says how long to wait. On gRPC the wait travels as `retry-after` metadata
//! (seconds), which the gateway turns into the HTTP `Retry-After` header.

use kitsuki_proto::{ErrorCode, ServiceError};
use tonic::metadata::MetadataValue;

/// Metadata key with the seconds to wait after `too_many_attempts`.
pub const RETRY_AFTER_METADATA_KEY: &str = "retry-after";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatronError {
    #[error(transparent)]
    Refused(#[from] ServiceError),
    /// Rule P13: too many failures; another attempt is possible after this many seconds.
    #[error("too many attempts; retry after {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
}

impl PatronError {
    pub fn new(code: ErrorCode) -> Self {
        PatronError::Refused(ServiceError::new(code))
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            PatronError::Refused(e) => e.code,
            PatronError::Throttled { .. } => ErrorCode::TooManyAttempts,
        }
    }
}

impl From<ErrorCode> for PatronError {
    fn from(code: ErrorCode) -> Self {
        PatronError::new(code)
    }
}

impl From<PatronError> for tonic::Status {
    fn from(err: PatronError) -> tonic::Status {
        match err {
            PatronError::Refused(e) => e.into(),
            PatronError::Throttled { retry_after_secs } => {
                let mut status: tonic::Status =
                    ServiceError::new(ErrorCode::TooManyAttempts).into();
                if let Ok(v) = MetadataValue::try_from(retry_after_secs.to_string()) {
                    status.metadata_mut().insert(RETRY_AFTER_METADATA_KEY, v);
                }
                status
            }
        }
    }
}

/// Logs an internal failure once, where it happened, and answers "internal" (its text never
/// reaches a client).
pub(crate) fn internal(context: &str, err: impl std::fmt::Display) -> ServiceError {
    tracing::error!(error = %err, "patron-account failure while {context}");
    ServiceError::internal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p13_throttling_crosses_grpc_with_code_and_retry_after() {
        let status: tonic::Status = PatronError::Throttled {
            retry_after_secs: 120,
        }
        .into();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            ServiceError::from_status(&status).code,
            ErrorCode::TooManyAttempts
        );
        assert_eq!(
            status
                .metadata()
                .get(RETRY_AFTER_METADATA_KEY)
                .and_then(|v| v.to_str().ok()),
            Some("120")
        );
    }

    #[test]
    fn refusals_keep_their_code() {
        let status: tonic::Status = PatronError::new(ErrorCode::BadCredentials).into();
        assert_eq!(
            ServiceError::from_status(&status).code,
            ErrorCode::BadCredentials
        );
        assert!(status.metadata().get(RETRY_AFTER_METADATA_KEY).is_none());
    }
}
