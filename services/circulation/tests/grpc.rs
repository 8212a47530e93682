//! The gRPC face on a real server (port 0), every body on PostgreSQL and on SQLite: statuses
//! carry the stable codes of the error table, a desk request for another branch is refused
//! (S1), and `GrpcPatronFacts` asks a real patron-account service (`GetPatronFacts`).

mod common;

use std::sync::Arc;

use common::*;
use kitsuki_circulation::{CirculationGrpc, GrpcPatronFacts, PatronFacts};
use kitsuki_patron::PatronAccounts;
use kitsuki_patron::domain::patron::RegistrationForm;
use kitsuki_patron::grpc::PatronGrpc;
use kitsuki_patron::staff::{Role, StaffIdentity};
use kitsuki_proto::Branch::{Kitsuki, Ota};
use kitsuki_proto::circulation as pb;
use kitsuki_proto::circulation::circulation_service_client::CirculationServiceClient;
use kitsuki_proto::{Branch, ErrorCode, ServiceError};
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;

on_both_backends!(
    grpc_answers_with_the_stable_codes,
    grpc_patron_facts_ask_patron_account,
);

async fn serve(c: &kitsuki_circulation::Circulation) -> CirculationServiceClient<Channel> {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let svc = CirculationGrpc::new(c.clone()).into_server();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await
    });
    CirculationServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> ErrorCode {
    ServiceError::from_status(&r.unwrap_err()).code
}

async fn grpc_answers_with_the_stable_codes(backend: Backend) {
    let lib = Library::open(backend).await;
    let title = lib.book(&[("KT-1", Kitsuki)]).await;
    let p = lib.patron(1);
    let mut ota = serve(&lib.ota).await;
    let info = ota.branch_info(pb::BranchInfoRequest {}).await.unwrap();
    assert_eq!(info.into_inner().branch, "ota");

    let checkout = |branch: &str, card: &str, barcode: &str| pb::CheckoutRequest {
        branch: branch.into(),
        card_number: card.into(),
        barcode: barcode.into(),
        actor: "ota-staff".into(),
    };
    assert_eq!(
        code(ota.checkout(checkout("yamaga", p.as_str(), "KT-1")).await),
        ErrorCode::InvalidBranch
    );
    assert_eq!(
        code(ota.checkout(checkout("ota", "12-34", "KT-1")).await),
        ErrorCode::InvalidCardNumber
    );
    assert_eq!(
        code(ota.checkout(checkout("ota", "7654321", "KT-1")).await),
        ErrorCode::PatronNotFound
    );
    assert_eq!(
        code(
            ota.checkout(checkout("ota", p.as_str(), "bad barcode!"))
                .await
        ),
        ErrorCode::InvalidBarcode
    );
    let hold = pb::PlaceHoldRequest {
        card_number: p.as_str().into(),
        title_id: title.as_str().into(),
        pickup_branch: "ota".into(),
        receipt_mail: true,
        counter_branch: String::new(),
        actor: String::new(),
    };
    assert_eq!(
        code(ota.place_hold(hold.clone()).await),
        ErrorCode::HoldAvailableCopy
    );
    // Full-width digits and a hyphen in the card number are normalised (P1).
    let loan = ota
        .checkout(checkout("", "０００-０００１", "kt-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (loan.barcode.as_str(), loan.due_date.as_str()),
        ("KT-1", "2026-04-15")
    );
    assert!(loan.renewable);
    let placed = ota
        .place_hold(pb::PlaceHoldRequest {
            card_number: lib.patron(2).as_str().into(),
            ..hold.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (placed.status.as_str(), placed.queue_position),
        ("confirmed", 1)
    );
    let loans = ota
        .list_loans(pb::PatronRequest {
            card_number: p.as_str().into(),
        })
        .await
        .unwrap()
        .into_inner()
        .loans;
    let block = loans[0].renew_block.clone().unwrap();
    assert_eq!(
        (block.code.as_str(), block.rule.as_str()),
        ("renewal_has_holds", "L2")
    );
    assert_eq!(block.message, ErrorCode::RenewalHasHolds.message_ja());
    let renew = pb::RenewRequest {
        loan_id: loan.loan_id.clone(),
        card_number: p.as_str().into(),
        branch: String::new(),
        actor: String::new(),
    };
    assert_eq!(
        code(ota.renew(renew.clone()).await),
        ErrorCode::RenewalHasHolds
    );
    assert_eq!(
        code(
            ota.renew(pb::RenewRequest {
                loan_id: "nope".into(),
                ..renew.clone()
            })
            .await
        ),
        ErrorCode::LoanNotFound
    );
    let cancel = pb::CancelHoldRequest {
        hold_id: placed.hold_id.clone(),
        card_number: String::new(),
        actor: String::new(),
        branch: String::new(),
        reason: String::new(),
    };
    assert_eq!(
        code(ota.cancel_hold(cancel.clone()).await),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(
            ota.cancel_hold(pb::CancelHoldRequest {
                card_number: p.as_str().into(),
                ..cancel.clone()
            })
            .await
        ),
        ErrorCode::HoldNotFound
    );
    let review = pb::ReviewHoldRequest {
        hold_id: placed.hold_id.clone(),
        branch: "ota".into(),
        actor: "ota-staff".into(),
        reason: String::new(),
    };
    assert_eq!(
        code(ota.confirm_hold(review).await),
        ErrorCode::HoldStateConflict
    );
    let routed = ota
        .checkin(pb::CheckinRequest {
            branch: "ota".into(),
            barcode: "KT-1".into(),
            actor: "ota-staff".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (routed.routing.as_str(), routed.hold_id.as_str()),
        ("hold_shelf", placed.hold_id.as_str())
    );
    let shelf = ota
        .list_hold_shelf(pb::BranchRequest {
            branch: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .holds;
    assert_eq!(shelf.len(), 1);
    assert_eq!(
        code(
            ota.list_pull_list(pb::BranchRequest {
                branch: "kitsuki".into()
            })
            .await
        ),
        ErrorCode::InvalidBranch
    );
    let holdability = ota
        .get_title_holdability(pb::TitleHoldabilityRequest {
            title_ids: vec![title.as_str().into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(holdability.titles[0].holds_waiting, 1);
    let ran = ota.run_due_jobs(pb::RunDueJobsRequest {}).await.unwrap();
    assert_eq!(ran.into_inner().expired_holds, 0);

    // A server built without its instance (a binary not yet wired) only names its branch.
    let bare = CirculationGrpc::new(Branch::Yamaga).into_server();
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(bare)
            .serve_with_incoming(incoming)
            .await
    });
    let mut bare = CirculationServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    assert_eq!(
        bare.branch_info(pb::BranchInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .branch,
        "yamaga"
    );
    let err = bare
        .run_due_jobs(pb::RunDueJobsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}

async fn grpc_patron_facts_ask_patron_account(backend: Backend) {
    let db = fresh_db(backend).await;
    let clock = Arc::new(kitsuki_platform::clock::TestClock::new());
    clock.set(START);
    let accounts = PatronAccounts::open(db, clock, kitsuki_patron::PatronConfig::default())
        .await
        .unwrap();
    let who = StaffIdentity {
        username: "clerk".into(),
        branches: vec![Ota],
        role: Role::Staff,
    };
    accounts
        .staff()
        .create(&who, "counter-password", "test")
        .await
        .unwrap();
    let staff = accounts
        .staff()
        .login("clerk", "counter-password", "10.0.0.1")
        .await
        .unwrap()
        .token;
    let registered_card = accounts
        .register_patron(
            &staff,
            Ota,
            &RegistrationForm {
                name: "大田 花子".into(),
                name_reading: "オオタ ハナコ".into(),
                birth_date: "2000-05-05".into(),
                id_document: "health_insurance".into(),
                email: String::new(),
            },
        )
        .await
        .unwrap();

    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let svc = PatronGrpc::new(accounts.clone()).into_server();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await
    });
    let facts = GrpcPatronFacts::connect_lazy(&format!("http://{addr}")).unwrap();
    assert_eq!(facts.facts(&card(7_777_777)).await.unwrap(), None);
    let registered = facts.facts(&registered_card).await.unwrap().unwrap();
    assert!(!registered.web_enabled && !registered.email_verified && !registered.reading_history);
    accounts
        .enable_web_service(&staff, Ota, registered_card.as_str())
        .await
        .unwrap();
    assert!(
        facts
            .facts(&registered_card)
            .await
            .unwrap()
            .unwrap()
            .web_enabled
    );

    // A patron service that is not there: unavailable, never "no such patron".
    let down = GrpcPatronFacts::connect_lazy("http://127.0.0.1:9").unwrap();
    assert_eq!(
        down.facts(&registered_card).await.unwrap_err().code,
        ErrorCode::Unavailable
    );
}
