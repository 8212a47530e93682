//! The one table of error codes, shared by gRPC and HTTP (STYLE.md "One error-code table").
//! A service refuses with a [`ServiceError`]; it crosses gRPC as a `tonic::Status` whose
//! metadata carries the stable code, and the gateway turns it back into the HTTP status and
//! the Japanese (or English) message of API.md. Internals never travel: a 5xx says only
//! "internal".

use tonic::metadata::MetadataValue;

/// Metadata key that carries the stable code across a gRPC hop.
pub const CODE_METADATA_KEY: &str = "kitsuki-error-code";

macro_rules! error_codes {
    ($( $variant:ident => $code:literal, $http:literal, $grpc:ident, $rule:expr, $ja:literal, $en:literal; )*) => {
        /// Stable error codes (API.md "Errors"). Never rename one: clients match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$( ErrorCode::$variant, )*];

            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }
            pub fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $http, )* }
            }
            pub fn grpc_code(self) -> tonic::Code {
                match self { $( ErrorCode::$variant => tonic::Code::$grpc, )* }
            }
            /// The rule of RULES.md that makes this refusal, if any.
            pub fn rule(self) -> Option<&'static str> {
                match self { $( ErrorCode::$variant => $rule, )* }
            }
            pub fn message_ja(self) -> &'static str {
                match self { $( ErrorCode::$variant => $ja, )* }
            }
            pub fn message_en(self) -> &'static str {
                match self { $( ErrorCode::$variant => $en, )* }
            }
            pub fn from_code(code: &str) -> Option<ErrorCode> {
                match code { $( $code => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

error_codes! {
    InvalidInput => "invalid_input", 400, InvalidArgument, None,
        "入力内容に誤りがあります。", "The input is not valid.";
    InvalidCardNumber => "invalid_card_number", 400, InvalidArgument, Some("P1"),
        "利用者カードの番号は、ハイフンを除く7桁の数字で入力してください。", "A card number is 7 digits, without the hyphen.";
    InvalidBarcode => "invalid_barcode", 400, InvalidArgument, Some("M1"),
        "資料番号は32文字以内の英数字とハイフンで入力してください。", "A barcode is 1-32 letters, digits or hyphens.";
    InvalidBranch => "invalid_branch", 400, InvalidArgument, Some("B1"),
        "館の指定に誤りがあります（杵築市立図書館・山香図書室・大田図書室）。", "Unknown branch (kitsuki, yamaga, ota).";
    InvalidIsbn => "invalid_isbn", 400, InvalidArgument, None,
        "ISBNが正しくありません。", "The ISBN is not valid.";
    InvalidEmail => "invalid_email", 400, InvalidArgument, Some("P7"),
        "メールアドレスの形式が正しくありません。", "The email address is not valid.";
    FreeMailDomain => "free_mail_domain", 422, FailedPrecondition, Some("P7"),
        "Hotmail、Yahoo!メールなどのフリーメールアドレスはご登録いただけません。", "Free webmail addresses cannot be registered.";
    WeakPassword => "weak_password", 422, InvalidArgument, Some("P10"),
        "パスワードは8文字以上で、利用者カードの番号や生年月日以外のものにしてください。", "A password has at least 8 characters and is neither the card number nor the birth date.";
    PasswordTooLong => "password_too_long", 400, InvalidArgument, Some("P10"),
        "パスワードが長すぎます。1024バイト（半角1024文字）以内で入力してください。", "A password is at most 1024 bytes.";
    BadCredentials => "bad_credentials", 401, Unauthenticated, Some("P13"),
        "利用者カードの番号またはパスワードが正しくありません。", "The card number or password is wrong.";
    NotLoggedIn => "not_logged_in", 401, Unauthenticated, None,
        "ログインしてください。", "Please log in.";
    Forbidden => "forbidden", 403, PermissionDenied, Some("S3"),
        "この操作は許可されていません。", "This account may not do this.";
    TooManyAttempts => "too_many_attempts", 429, ResourceExhausted, Some("P13"),
        "ログインの失敗が続いたため、しばらくお待ちください。", "Too many failed attempts; please wait.";
    NotEligibleAge => "not_eligible_age", 422, FailedPrecondition, Some("P4"),
        "Webサービスの利用対象者は中学生以上です。", "The web service is for junior-high-school students and older.";
    WebServiceNotEnabled => "web_service_not_enabled", 422, FailedPrecondition, Some("P3"),
        "Webサービスの利用登録がされていません。カウンターでお申し込みください。", "Web service is not enabled for this card.";
    EmailNotVerified => "email_not_verified", 422, FailedPrecondition, Some("H3"),
        "メールアドレスの登録を完了してください。", "Please register and verify an email address first.";
    TokenInvalid => "token_invalid", 400, InvalidArgument, None,
        "このリンクは無効です。", "This link is not valid.";
    TokenExpired => "token_expired", 410, FailedPrecondition, None,
        "このリンクは有効期限が切れています。", "This link has expired.";
    HoldAvailableCopy => "hold_available_copy", 422, FailedPrecondition, Some("H1"),
        "貸出可能な資料があるため、予約できません。書架でお探しください。", "A copy is on the shelf now; no hold is needed.";
    HoldMaterialType => "hold_material_type", 422, FailedPrecondition, Some("H1"),
        "インターネット予約ができるのは図書のみです。", "Only books can be held on the web.";
    HoldNotHeldHere => "hold_not_held_here", 422, FailedPrecondition, Some("H1"),
        "この資料は当館で所蔵していないため予約できません。", "No branch holds this title.";
    HoldOverdueBlock => "hold_overdue_block", 422, FailedPrecondition, Some("H2"),
        "返却期限を過ぎた資料があるため、予約できません。", "You have an overdue loan.";
    HoldLimit => "hold_limit", 422, FailedPrecondition, Some("H11"),
        "予約できる件数の上限に達しています。", "You have reached the hold limit.";
    HoldDuplicate => "hold_duplicate", 409, AlreadyExists, Some("H11"),
        "この資料はすでに予約しています。", "You already hold this title.";
    RenewalAlreadyRenewed => "renewal_already_renewed", 422, FailedPrecondition, Some("L2"),
        "延長は1回のみです。", "A loan can be renewed only once.";
    RenewalOverdueLoan => "renewal_overdue_loan", 422, FailedPrecondition, Some("L2"),
        "返却期限を過ぎているため延長できません。", "This loan is overdue.";
    RenewalPatronOverdue => "renewal_patron_overdue", 422, FailedPrecondition, Some("L2"),
        "返却期限を過ぎた資料があるため延長できません。", "You have an overdue loan.";
    RenewalHasHolds => "renewal_has_holds", 422, FailedPrecondition, Some("L2"),
        "この資料には予約が入っているため延長できません。", "Another patron is waiting for this title.";
    LoanLimit => "loan_limit", 422, FailedPrecondition, Some("L3"),
        "貸出できる冊数の上限に達しています。", "The loan limit is reached.";
    ItemHeldForOther => "item_held_for_other", 422, FailedPrecondition, Some("L4"),
        "この資料は他の方の予約資料です。", "This item is held for another patron.";
    ItemNotFound => "item_not_found", 404, NotFound, None,
        "資料が見つかりません。", "No such item.";
    TitleNotFound => "title_not_found", 404, NotFound, None,
        "資料が見つかりません。", "No such title.";
    NotFound => "not_found", 404, NotFound, None,
        "ページが見つかりません。", "Not found.";
    BarcodeTaken => "barcode_taken", 409, AlreadyExists, Some("M1"),
        "この資料番号はすでに使われています。", "This barcode is already in use.";
    UsernameTaken => "username_taken", 409, AlreadyExists, None,
        "このユーザー名はすでに使われています。", "This username is already in use.";
    ItemNotOnLoan => "item_not_on_loan", 409, FailedPrecondition, None,
        "この資料は貸出中ではありません。", "This item is not on loan.";
    HoldNotReady => "hold_not_ready", 409, FailedPrecondition, Some("H8"),
        "予約資料の用意ができたお知らせの送信前のため、まだ貸出できません。", "The ready mail has not been sent yet.";
    HoldStateConflict => "hold_state_conflict", 409, FailedPrecondition, None,
        "この予約は現在の状態ではこの操作ができません。画面を更新してご確認ください。", "The hold's current state does not allow this.";
    HoldNotFound => "hold_not_found", 404, NotFound, None,
        "予約が見つかりません。", "No such hold.";
    LoanNotFound => "loan_not_found", 404, NotFound, None,
        "貸出が見つかりません。", "No such loan.";
    ItemOnLoan => "item_on_loan", 409, FailedPrecondition, Some("L5"),
        "この資料は貸出中です。先に返却の処理をしてください。", "This item is on loan; check it in first.";
    MethodNotAllowed => "method_not_allowed", 405, Unimplemented, None,
        "この操作はできません。", "Method not allowed.";
    CsrfFailed => "csrf_failed", 403, PermissionDenied, None,
        "画面の有効期限が切れました。もう一度操作してください。", "The form has expired; please try again.";
    InvalidBirthDate => "invalid_birth_date", 400, InvalidArgument, Some("P4"),
        "生年月日は西暦の年月日（例: 2010-04-02）で入力してください。", "Enter the birth date as YYYY-MM-DD.";
    InvalidIdDocument => "invalid_id_document", 400, InvalidArgument, Some("P2"),
        "本人確認書類の種類を選んでください。", "Choose the kind of identity document.";
    PatronNotFound => "patron_not_found", 404, NotFound, None,
        "この利用者カードの番号は登録されていません。", "No patron has this card number.";
    InvalidText => "invalid_text", 400, InvalidArgument, None,
        "使用できない文字（制御文字など）が含まれています。", "The text contains a character that is not allowed (a control character).";
    TextTooLong => "text_too_long", 400, InvalidArgument, None,
        "入力が長すぎます。", "The text is too long.";
    PayloadTooLarge => "payload_too_large", 413, InvalidArgument, None,
        "送信された内容が大きすぎます。", "The request body is too large.";
    UriTooLong => "uri_too_long", 414, InvalidArgument, None,
        "URLが長すぎます。", "The URI is too long.";
    HeadersTooLarge => "headers_too_large", 431, InvalidArgument, None,
        "リクエストのヘッダーが大きすぎます。", "The request headers are too large.";
    Unavailable => "unavailable", 503, Unavailable, None,
        "ただいま混み合っているか、一時的に利用できません。しばらくしてからお試しください。", "Temporarily unavailable; please try again.";
    Internal => "internal", 500, Internal, None,
        "システムエラーが発生しました。時間をおいてお試しください。", "Internal error.";
}

/// A refusal or failure of a service, with its stable code. `detail` is for logs and for
/// 4xx answers where it helps the reader (which field was wrong); it is never set from a
/// database or I/O error's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct ServiceError {
    pub code: ErrorCode,
    pub detail: Option<String>,
}

impl ServiceError {
    pub fn new(code: ErrorCode) -> Self {
        ServiceError { code, detail: None }
    }

    pub fn with_detail(code: ErrorCode, detail: impl Into<String>) -> Self {
        ServiceError {
            code,
            detail: Some(detail.into()),
        }
    }

    /// An internal failure: logged where it happened, answered as "internal".
    pub fn internal() -> Self {
        ServiceError::new(ErrorCode::Internal)
    }

    /// Reads the code back from a gRPC status. A status without our metadata (a transport
    /// failure, a peer down) becomes `unavailable` or `internal`.
    pub fn from_status(status: &tonic::Status) -> Self {
        let code = status
            .metadata()
            .get(CODE_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorCode::from_code);
        match code {
            Some(code) => {
                let detail = (!status.message().is_empty() && code.http_status() < 500)
                    .then(|| status.message().to_string());
                ServiceError { code, detail }
            }
            None => match status.code() {
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled => ServiceError::new(ErrorCode::Unavailable),
                tonic::Code::Unimplemented => ServiceError::new(ErrorCode::NotFound),
                _ => ServiceError::internal(),
            },
        }
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(err: ServiceError) -> tonic::Status {
        let message = err.detail.clone().unwrap_or_default();
        let mut status = tonic::Status::new(err.code.grpc_code(), message);
        status.metadata_mut().insert(
            CODE_METADATA_KEY,
            MetadataValue::from_static(err.code.as_str()),
        );
        status
    }
}

impl From<crate::ids::IdError> for ServiceError {
    fn from(err: crate::ids::IdError) -> Self {
        use crate::ids::IdError;
        let code = match err {
            IdError::UnknownBranch(_) => ErrorCode::InvalidBranch,
            IdError::InvalidCardNumber => ErrorCode::InvalidCardNumber,
            IdError::InvalidBarcode => ErrorCode::InvalidBarcode,
            IdError::InvalidTitleId => ErrorCode::TitleNotFound,
        };
        ServiceError::new(code)
    }
}

impl From<crate::ids::IdError> for tonic::Status {
    fn from(err: crate::ids::IdError) -> tonic::Status {
        ServiceError::from(err).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {}", code.as_str());
            assert_eq!(ErrorCode::from_code(code.as_str()), Some(*code));
            assert!(!code.message_ja().is_empty() && !code.message_en().is_empty());
        }
    }

    #[test]
    fn refusals_are_never_5xx_except_unavailable_and_internal() {
        for code in ErrorCode::ALL {
            let s = code.http_status();
            let server_side = matches!(code, ErrorCode::Internal | ErrorCode::Unavailable);
            assert_eq!(s >= 500, server_side, "{}", code.as_str());
        }
    }

    #[test]
    fn api_md_codes_exist() {
        let api = "invalid_card_number invalid_email free_mail_domain weak_password bad_credentials \
            too_many_attempts not_eligible_age web_service_not_enabled email_not_verified token_invalid \
            token_expired hold_available_copy hold_material_type hold_not_held_here hold_overdue_block \
            hold_limit hold_duplicate renewal_already_renewed renewal_overdue_loan renewal_patron_overdue \
            renewal_has_holds loan_limit item_held_for_other item_not_found item_not_on_loan hold_not_ready";
        for c in api.split_whitespace() {
            assert!(ErrorCode::from_code(c).is_some(), "{c} missing");
        }
    }

    #[test]
    fn code_survives_a_grpc_hop() {
        for code in ErrorCode::ALL {
            let status: tonic::Status = ServiceError::with_detail(*code, "field x").into();
            let back = ServiceError::from_status(&status);
            assert_eq!(back.code, *code);
        }
    }

    #[test]
    fn a_foreign_status_becomes_unavailable_or_internal() {
        let s = tonic::Status::unavailable("connection refused to 10.0.0.1");
        assert_eq!(ServiceError::from_status(&s).code, ErrorCode::Unavailable);
        let s = tonic::Status::internal("duplicate key value violates unique constraint");
        let e = ServiceError::from_status(&s);
        assert_eq!(e.code, ErrorCode::Internal);
        assert_eq!(e.detail, None, "internals never travel");
    }
}
