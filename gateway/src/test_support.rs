//! Hand-built proto values and a state whose services are unreachable, for the crate's own
//! tests (which need no other service; the cross-service tests live in `tests/`).

use kitsuki_proto::catalog::catalog_service_client::CatalogServiceClient;
use kitsuki_proto::catalog::{BranchAvailability, Item, ItemStatus, MaterialType, TitleSummary};
use kitsuki_proto::patron::patron_service_client::PatronServiceClient;
use tonic::transport::Endpoint;

use crate::state::{AppState, Clients};

pub const TITLE_ID: &str = "0192f1c2-7a5e-7c3b-9d1e-0123456789ab";

pub fn summary(title: &str, kind: MaterialType, rows: &[(&str, u32, u32)]) -> TitleSummary {
    TitleSummary {
        title_id: TITLE_ID.into(),
        title: title.into(),
        title_reading: "ボッチャン".into(),
        author: "夏目漱石".into(),
        publisher: "新潮社".into(),
        year: Some(1950),
        isbn: "9784101010038".into(),
        r#type: kind as i32,
        availability: rows
            .iter()
            .map(|(branch, total, available)| BranchAvailability {
                branch: (*branch).into(),
                total: *total,
                available: *available,
            })
            .collect(),
        holds_waiting: 0,
        created_at: "2025-01-01T00:00:00Z".into(),
    }
}

pub fn item(barcode: &str, branch: &str, status: ItemStatus, due_date: &str) -> Item {
    Item {
        barcode: barcode.into(),
        title_id: TITLE_ID.into(),
        branch: branch.into(),
        call_number: "913.6/ナ".into(),
        status: status as i32,
        due_date: due_date.into(),
    }
}

/// A state whose clients point at a port nobody listens on: every call fails at once as
/// `unavailable`, which is what a request needs to reach a handler and no further.
/// Must be called inside a Tokio runtime (lazy channels spawn their worker).
pub fn unreachable_state() -> AppState {
    let channel = Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
    AppState::new(Clients {
        catalog: CatalogServiceClient::new(channel.clone()),
        patron: PatronServiceClient::new(channel),
    })
}

/// A magazine, for H1 refusals.
pub const MAGAZINE_ID: &str = "0192f1c2-7a5e-7c3b-9d1e-0123456789ac";

/// What the fake services were asked, for assertions.
#[derive(Debug, Default)]
pub struct Calls {
    pub searches: Vec<kitsuki_proto::catalog::SearchTitlesRequest>,
    pub new_titles: Vec<kitsuki_proto::catalog::NewTitle>,
    pub new_items: Vec<kitsuki_proto::catalog::CreateItemRequest>,
    pub logins: Vec<(String, String)>,
    pub logouts: Vec<String>,
    pub new_staff: Vec<kitsuki_proto::patron::CreateStaffRequest>,
}

pub type Recorder = std::sync::Arc<std::sync::Mutex<Calls>>;

/// In-process stand-ins for catalog and patron-account, speaking real gRPC on a loopback
/// port: enough to test the gateway's HTTP contract alone. The real services are tested
/// against the gateway by the workspace's cross-service tests.
mod fakes {
    use super::*;
    use kitsuki_proto::catalog::catalog_service_server::{CatalogService, CatalogServiceServer};
    use kitsuki_proto::catalog::{
        CreateItemRequest, CreateTitleRequest, CreateTitleResponse, GetTitleRequest,
        SearchTitlesRequest, SearchTitlesResponse, TitleDetail,
    };
    use kitsuki_proto::patron::patron_service_server::{PatronService, PatronServiceServer};
    use kitsuki_proto::patron::{
        CreateStaffRequest, Empty, SessionGranted, SessionToken, StaffIdentity, StaffLoginRequest,
    };
    use kitsuki_proto::{ErrorCode, ServiceError};
    use tonic::{Request, Response, Status};

    fn refuse(code: ErrorCode) -> Status {
        ServiceError::new(code).into()
    }

    pub struct FakeCatalog(pub Recorder);

    #[tonic::async_trait]
    impl CatalogService for FakeCatalog {
        async fn get_title(
            &self,
            request: Request<GetTitleRequest>,
        ) -> Result<Response<TitleDetail>, Status> {
            let id = request.into_inner().title_id;
            let detail = if id == TITLE_ID {
                TitleDetail {
                    title: Some(summary(
                        "坊っちゃん",
                        MaterialType::Book,
                        &[("kitsuki", 1, 0), ("ota", 1, 0)],
                    )),
                    items: vec![
                        item("KT-0001", "kitsuki", ItemStatus::OnLoan, "2025-02-01"),
                        item("OT-0001", "ota", ItemStatus::InTransit, ""),
                    ],
                }
            } else if id == MAGAZINE_ID {
                let mut s = summary("月刊おおいた", MaterialType::Magazine, &[("yamaga", 1, 1)]);
                s.title_id = MAGAZINE_ID.into();
                TitleDetail {
                    title: Some(s),
                    items: vec![item("YM-0001", "yamaga", ItemStatus::Available, "")],
                }
            } else {
                return Err(refuse(ErrorCode::TitleNotFound));
            };
            Ok(Response::new(detail))
        }

        async fn search_titles(
            &self,
            request: Request<SearchTitlesRequest>,
        ) -> Result<Response<SearchTitlesResponse>, Status> {
            let request = request.into_inner();
            self.0.lock().unwrap().searches.push(request.clone());
            Ok(Response::new(SearchTitlesResponse {
                total: 45,
                page: request.page,
                per_page: request.per_page,
                hits: vec![
                    summary("坊っちゃん", MaterialType::Book, &[("kitsuki", 1, 0)]),
                    summary("こころ", MaterialType::Book, &[("yamaga", 2, 1)]),
                ],
            }))
        }

        async fn create_title(
            &self,
            request: Request<CreateTitleRequest>,
        ) -> Result<Response<CreateTitleResponse>, Status> {
            let title = request.into_inner().title.unwrap_or_default();
            self.0.lock().unwrap().new_titles.push(title);
            Ok(Response::new(CreateTitleResponse {
                title_id: TITLE_ID.into(),
                created: true,
            }))
        }

        async fn create_item(
            &self,
            request: Request<CreateItemRequest>,
        ) -> Result<Response<Item>, Status> {
            let request = request.into_inner();
            if request.barcode == "TAKEN" {
                return Err(refuse(ErrorCode::BarcodeTaken));
            }
            self.0.lock().unwrap().new_items.push(request.clone());
            Ok(Response::new(Item {
                barcode: request.barcode,
                title_id: request.title_id,
                branch: request.branch,
                call_number: request.call_number,
                status: ItemStatus::Available as i32,
                due_date: String::new(),
            }))
        }
    }

    pub struct FakePatron(pub Recorder);

    #[tonic::async_trait]
    impl PatronService for FakePatron {
        async fn staff_login(
            &self,
            request: Request<StaffLoginRequest>,
        ) -> Result<Response<SessionGranted>, Status> {
            let r = request.into_inner();
            self.0
                .lock()
                .unwrap()
                .logins
                .push((r.username.clone(), r.client_address.clone()));
            let token = match (r.username.as_str(), r.password.as_str()) {
                ("admin", "pw") => "admin-token",
                ("clerk", "pw") => "clerk-token",
                ("locked", _) => {
                    let mut status = refuse(ErrorCode::TooManyAttempts);
                    status
                        .metadata_mut()
                        .insert("retry-after", "120".parse().unwrap());
                    return Err(status);
                }
                _ => return Err(refuse(ErrorCode::BadCredentials)),
            };
            Ok(Response::new(SessionGranted {
                token: token.into(),
                expires_at: "2030-01-01T09:00:00Z".into(),
                temporary_password: r.username == "clerk",
            }))
        }

        async fn staff_session(
            &self,
            request: Request<SessionToken>,
        ) -> Result<Response<StaffIdentity>, Status> {
            let identity = match request.into_inner().token.as_str() {
                "admin-token" => StaffIdentity {
                    username: "admin".into(),
                    branches: vec!["kitsuki".into(), "yamaga".into(), "ota".into()],
                    role: "admin".into(),
                },
                "clerk-token" => StaffIdentity {
                    username: "clerk".into(),
                    branches: vec!["yamaga".into()],
                    role: "staff".into(),
                },
                // A service may refuse an unknown token with any 4xx code.
                _ => return Err(refuse(ErrorCode::TokenInvalid)),
            };
            Ok(Response::new(identity))
        }

        async fn staff_logout(
            &self,
            request: Request<SessionToken>,
        ) -> Result<Response<Empty>, Status> {
            self.0
                .lock()
                .unwrap()
                .logouts
                .push(request.into_inner().token);
            Ok(Response::new(Empty {}))
        }

        async fn create_staff(
            &self,
            request: Request<CreateStaffRequest>,
        ) -> Result<Response<Empty>, Status> {
            let request = request.into_inner();
            if request.username == "taken" {
                return Err(refuse(ErrorCode::UsernameTaken));
            }
            self.0.lock().unwrap().new_staff.push(request);
            Ok(Response::new(Empty {}))
        }
    }

    pub fn routes(recorder: Recorder) -> axum::Router {
        tonic::service::Routes::new(CatalogServiceServer::new(FakeCatalog(recorder.clone())))
            .add_service(PatronServiceServer::new(FakePatron(recorder)))
            .into_axum_router()
    }
}

/// Starts the fake services on a loopback port and returns a state whose clients use them.
pub async fn fake_state() -> (AppState, Recorder) {
    let recorder = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = fakes::routes(recorder.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let state = AppState::new(Clients {
        catalog: CatalogServiceClient::new(channel.clone()),
        patron: PatronServiceClient::new(channel),
    });
    (state, recorder)
}
