//! The gRPC face on a real server (port 0): statuses carry the stable codes, throttling
//! carries `retry-after`, and failed logins are byte-for-byte the same answer (P13).
//! Against PostgreSQL and SQLite.

mod common;

use common::{ADULT_BIRTH, Backend, Env, STAFF_PASSWORD, env, on_both_backends};
use kitsuki_patron::grpc::PatronGrpc;
use kitsuki_proto::ErrorCode;
use kitsuki_proto::ServiceError;
use kitsuki_proto::patron as pb;
use kitsuki_proto::patron::patron_service_client::PatronServiceClient;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;

async fn serve(e: &Env) -> PatronServiceClient<Channel> {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let svc = PatronGrpc::new(e.accounts.clone()).into_server();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await
    });
    PatronServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn code(s: &tonic::Status) -> ErrorCode {
    ServiceError::from_status(s).code
}

async fn staff_token(c: &mut PatronServiceClient<Channel>, e: &Env) -> String {
    let _ = e.clerk().await;
    c.staff_login(pb::StaffLoginRequest {
        username: "kitsuki_clerk".into(),
        password: STAFF_PASSWORD.into(),
        client_address: "10.0.0.1".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .token
}

async fn grpc_counter_and_web_flow(backend: Backend) {
    let e = env(backend).await;
    let mut c = serve(&e).await;
    let staff = staff_token(&mut c, &e).await;
    let card = c
        .register_patron(pb::RegisterPatronRequest {
            branch: "kitsuki".into(),
            name: "杵築 花子".into(),
            name_reading: "キツキ ハナコ".into(),
            birth_date: ADULT_BIRTH.into(),
            email: String::new(),
            id_document: "student_card".into(),
            staff_token: staff.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .card_number;
    let refused = c
        .register_patron(pb::RegisterPatronRequest {
            branch: "ota".into(),
            staff_token: staff.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&refused), ErrorCode::Forbidden);
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let refused = c
        .register_patron(pb::RegisterPatronRequest {
            branch: "kitsuki".into(),
            staff_token: "bogus".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&refused), ErrorCode::NotLoggedIn);
    let refused = c
        .register_patron(pb::RegisterPatronRequest {
            branch: "kitsuki".into(),
            name: "杵築 花子".into(),
            name_reading: "キツキ ハナコ".into(),
            birth_date: "2010-02-30".into(),
            id_document: "student_card".into(),
            staff_token: staff.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&refused), ErrorCode::InvalidBirthDate);

    let enabled = c
        .enable_web_service(pb::EnableWebServiceRequest {
            branch: "kitsuki".into(),
            card_number: card.clone(),
            staff_token: staff.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enabled.card_number, card);
    assert_eq!(enabled.name, "杵築 花子");
    let granted = c
        .patron_login(pb::PatronLoginRequest {
            card_number: card.clone(),
            password: enabled.temporary_password.clone(),
            client_address: "192.0.2.1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(granted.temporary_password);
    let token = pb::SessionToken {
        token: granted.token.clone(),
    };
    let profile = c.patron_session(token.clone()).await.unwrap().into_inner();
    assert_eq!(profile.card_number, card);
    assert!(profile.temporary_password);
    assert_eq!(profile.email, "");

    let email = c
        .request_email_change(pb::RequestEmailChangeRequest {
            token: granted.token.clone(),
            email: "hanako@ezweb.ne.jp".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(email.carrier_notice);
    assert_eq!(email.sender_address, "library@city.kitsuki.lg.jp");
    let v = e.last_verification().await;
    let contact = c
        .get_contact(pb::GetContactRequest {
            card_number: card.clone(),
            verification_id: v.verification_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contact.email, "hanako@ezweb.ne.jp");
    let none = c
        .get_contact(pb::GetContactRequest {
            card_number: card.clone(),
            verification_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&none), ErrorCode::PatronNotFound);
    assert_eq!(none.code(), tonic::Code::NotFound);
    c.verify_email(pb::VerifyEmailRequest {
        verification_token: v.token.clone(),
    })
    .await
    .unwrap();
    let again = c
        .verify_email(pb::VerifyEmailRequest {
            verification_token: v.token,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&again), ErrorCode::TokenInvalid);

    let weak = c
        .change_password(pb::ChangePasswordRequest {
            token: granted.token.clone(),
            current_password: enabled.temporary_password.clone(),
            new_password: card.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&weak), ErrorCode::WeakPassword);
    c.change_password(pb::ChangePasswordRequest {
        token: granted.token.clone(),
        current_password: enabled.temporary_password.clone(),
        new_password: "kitsuki-castle-town".into(),
    })
    .await
    .unwrap();
    c.request_password_reset(pb::RequestPasswordResetRequest {
        card_number: card.clone(),
        email: "HANAKO@ezweb.ne.jp".into(),
        client_address: "192.0.2.1".into(),
    })
    .await
    .unwrap();
    let reset: kitsuki_proto::events::PasswordResetRequested =
        e.last("patron.password.reset_requested").await;
    c.confirm_password_reset(pb::ConfirmPasswordResetRequest {
        reset_token: reset.token,
        new_password: "yet-another-password".into(),
    })
    .await
    .unwrap();
    let gone = c.patron_session(token.clone()).await.unwrap_err();
    assert_eq!(code(&gone), ErrorCode::NotLoggedIn);
    c.patron_logout(token).await.unwrap();
}

async fn grpc_p13_failed_logins_are_the_same_answer_and_throttling_says_when(backend: Backend) {
    let e = env(backend).await;
    let mut c = serve(&e).await;
    let clerk = e.clerk().await;
    let (card, _) = e.web_patron(&clerk, ADULT_BIRTH).await;
    let not_enabled = e.register(&clerk, "山香 太郎", ADULT_BIRTH).await;
    let mut answers = Vec::new();
    for (i, (card, password)) in [
        (card.as_str(), "wrong-password"),
        ("7777777", "whatever-password"),
        (not_enabled.as_str(), "whatever-password"),
        ("12-345", "whatever-password"),
    ]
    .into_iter()
    .enumerate()
    {
        let s = c
            .patron_login(pb::PatronLoginRequest {
                card_number: card.into(),
                password: password.into(),
                client_address: format!("198.51.100.{i}"),
            })
            .await
            .unwrap_err();
        answers.push((
            s.code(),
            s.message().to_string(),
            s.metadata()
                .get(kitsuki_proto::error::CODE_METADATA_KEY)
                .map(|v| v.to_str().unwrap().to_string()),
        ));
    }
    assert_eq!(answers[0].2.as_deref(), Some("bad_credentials"));
    assert_eq!(answers[0].0, tonic::Code::Unauthenticated);
    for a in &answers {
        assert_eq!(a, &answers[0], "identical code, message and metadata");
    }

    for i in 0..5 {
        let _ = c
            .patron_login(pb::PatronLoginRequest {
                card_number: "7654321".into(),
                password: "guess".into(),
                client_address: format!("203.0.113.{i}"),
            })
            .await;
    }
    let s = c
        .patron_login(pb::PatronLoginRequest {
            card_number: "7654321".into(),
            password: "guess".into(),
            client_address: "203.0.113.99".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&s), ErrorCode::TooManyAttempts);
    assert_eq!(s.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        s.metadata().get("retry-after").map(|v| v.to_str().unwrap()),
        Some("900")
    );
    // The staff login too.
    for i in 0..5 {
        let _ = c
            .staff_login(pb::StaffLoginRequest {
                username: "kitsuki_clerk".into(),
                password: "guess".into(),
                client_address: format!("10.9.0.{i}"),
            })
            .await;
    }
    let s = c
        .staff_login(pb::StaffLoginRequest {
            username: "kitsuki_clerk".into(),
            password: STAFF_PASSWORD.into(),
            client_address: "10.9.0.99".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&s), ErrorCode::TooManyAttempts);
    assert_eq!(
        s.metadata().get("retry-after").map(|v| v.to_str().unwrap()),
        Some("900")
    );
}

async fn grpc_p4_p11_refusals_have_their_codes(backend: Backend) {
    let e = env(backend).await;
    let mut c = serve(&e).await;
    let staff = staff_token(&mut c, &e).await;
    let young = e.register(&staff, "大田 三郎", "2015-06-01").await;
    let s = c
        .enable_web_service(pb::EnableWebServiceRequest {
            branch: "kitsuki".into(),
            card_number: young.to_string(),
            staff_token: staff.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&s), ErrorCode::NotEligibleAge);
    let s = c
        .enable_web_service(pb::EnableWebServiceRequest {
            branch: "oita".into(),
            card_number: young.to_string(),
            staff_token: staff.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&s), ErrorCode::InvalidBranch);
    let s = c
        .get_contact(pb::GetContactRequest {
            card_number: "abc".into(),
            verification_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&s), ErrorCode::InvalidCardNumber);
    // P11: the same empty answer for a card that does not exist.
    c.request_password_reset(pb::RequestPasswordResetRequest {
        card_number: "7777777".into(),
        email: "someone@example.jp".into(),
        client_address: String::new(),
    })
    .await
    .unwrap();
    let s = c
        .confirm_password_reset(pb::ConfirmPasswordResetRequest {
            reset_token: "nope".into(),
            new_password: "long-enough-password".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&s), ErrorCode::TokenInvalid);
    let s = c
        .patron_session(pb::SessionToken {
            token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&s), ErrorCode::NotLoggedIn);
}

on_both_backends!(
    grpc_counter_and_web_flow,
    grpc_p13_failed_logins_are_the_same_answer_and_throttling_says_when,
    grpc_p4_p11_refusals_have_their_codes,
);
