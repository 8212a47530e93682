//! The catalog's gRPC face: proto ⇄ domain, and every refusal as a coded status.

use kitsuki_proto::catalog as pb;
use kitsuki_proto::catalog::catalog_service_server::{CatalogService, CatalogServiceServer};
use kitsuki_proto::{Barcode, Branch, ErrorCode, ServiceError, text};
use tonic::{Request, Response, Status};

use crate::domain::isbn::Isbn;
use crate::index::{SearchFilter, SearchOptions, SortOrder};
use crate::model::MaterialType;
use crate::service::{Catalog, NewTitle};

/// gRPC server of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogGrpc {
    catalog: Catalog,
}

impl CatalogGrpc {
    pub fn new(catalog: Catalog) -> Self {
        CatalogGrpc { catalog }
    }

    pub fn into_server(self) -> CatalogServiceServer<CatalogGrpc> {
        CatalogServiceServer::new(self)
    }
}

/// Checks a proto title into a [`NewTitle`].
pub fn new_title_from_proto(t: pb::NewTitle) -> Result<NewTitle, ServiceError> {
    let material_type = pb::MaterialType::try_from(t.r#type)
        .ok()
        .and_then(MaterialType::from_proto)
        .ok_or_else(|| ServiceError::with_detail(ErrorCode::InvalidInput, "type"))?;
    let isbn = if t.isbn.trim().is_empty() {
        None
    } else {
        Some(Isbn::parse(&t.isbn).map_err(|_| ServiceError::new(ErrorCode::InvalidIsbn))?)
    };
    // The ISBN's raw text before it is parsed; the other fields below, once checked.
    text::check("isbn", &t.isbn, text::limits::SOURCE_ID)?;
    if t.year.is_some_and(|y| !(0..=9999).contains(&y)) {
        return Err(ServiceError::with_detail(ErrorCode::InvalidInput, "year"));
    }
    let new = NewTitle {
        title: t.title,
        title_reading: t.title_reading,
        author: t.author,
        responsibility: t.responsibility,
        ndc: t.ndc,
        publisher: t.publisher,
        year: t.year.map(i64::from),
        isbn,
        material_type,
        aliases: t.search_aliases,
        source_id: (!t.source_id.is_empty()).then_some(t.source_id),
    };
    new.check_text()?;
    Ok(new)
}

#[tonic::async_trait]
impl CatalogService for CatalogGrpc {
    #[tracing::instrument(skip_all)]
    async fn create_title(
        &self,
        req: Request<pb::CreateTitleRequest>,
    ) -> Result<Response<pb::CreateTitleResponse>, Status> {
        let t = req
            .into_inner()
            .title
            .ok_or_else(|| ServiceError::with_detail(ErrorCode::InvalidInput, "title"))?;
        let new = new_title_from_proto(t)?;
        let (title_id, created) = self.catalog.create_title(new, true).await?;
        Ok(Response::new(pb::CreateTitleResponse { title_id, created }))
    }

    #[tracing::instrument(skip_all)]
    async fn set_readings(
        &self,
        req: Request<pb::SetReadingsRequest>,
    ) -> Result<Response<pb::SetReadingsResponse>, Status> {
        let r = req.into_inner();
        let id = kitsuki_proto::TitleId::parse(&r.title_id)?;
        let (title_reading, author_reading, reading_source) = self
            .catalog
            .set_readings(id.as_str(), &r.title_reading, &r.author_reading)
            .await?;
        Ok(Response::new(pb::SetReadingsResponse {
            title_id: id.to_string(),
            title_reading,
            author_reading,
            reading_source,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_title(
        &self,
        req: Request<pb::GetTitleRequest>,
    ) -> Result<Response<pb::TitleDetail>, Status> {
        let id = kitsuki_proto::TitleId::parse(&req.into_inner().title_id)?;
        Ok(Response::new(self.catalog.get_title(id.as_str()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn search_titles(
        &self,
        req: Request<pb::SearchTitlesRequest>,
    ) -> Result<Response<pb::SearchTitlesResponse>, Status> {
        let r = req.into_inner();
        let material_type = match pb::MaterialType::try_from(r.r#type) {
            Ok(pb::MaterialType::Unspecified) => None,
            Ok(t) => MaterialType::from_proto(t).map(|m| m.code().to_string()),
            Err(_) => return Err(ServiceError::with_detail(ErrorCode::InvalidInput, "type").into()),
        };
        let branch = if r.branch.is_empty() {
            None
        } else {
            Some(Branch::parse(&r.branch)?.code().to_string())
        };
        let invalid = |what: &'static str| ServiceError::with_detail(ErrorCode::InvalidInput, what);
        let ndc_class = match r.ndc_class {
            Some(class @ 0..=9) => Some(class as u8),
            Some(_) => return Err(invalid("ndc_class").into()),
            None => None,
        };
        let decade = match r.decade {
            Some(d) if kitsuki_proto::search::is_decade(d) => Some(i64::from(d)),
            Some(_) => return Err(invalid("decade").into()),
            None => None,
        };
        let sort = SortOrder::parse(&r.sort).ok_or_else(|| invalid("sort"))?;
        let filter = SearchFilter {
            material_type,
            branch,
            available_only: r.available_only,
            ndc_class,
            decade,
        };
        let options = SearchOptions {
            sort,
            facets: r.facets,
            group_editions: r.group_editions,
        };
        let per_page = if r.per_page == 0 { 20 } else { r.per_page };
        Ok(Response::new(
            self.catalog
                .search_with(&r.q, &filter, &options, r.page, per_page)
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn create_item(
        &self,
        req: Request<pb::CreateItemRequest>,
    ) -> Result<Response<pb::Item>, Status> {
        let r = req.into_inner();
        let title_id = kitsuki_proto::TitleId::parse(&r.title_id)?;
        let barcode = Barcode::parse(&r.barcode)?;
        text::check("call_number", &r.call_number, text::limits::CALL_NUMBER)?;
        let branch = Branch::parse(&r.branch)?;
        let (item, material) = self
            .catalog
            .create_item_of_type(title_id.as_str(), &barcode, branch, &r.call_number, true)
            .await?;
        Ok(Response::new(pb::Item {
            r#type: material.to_proto() as i32,
            ..item.to_proto()
        }))
    }

    async fn count_titles(
        &self,
        _req: Request<pb::CountTitlesRequest>,
    ) -> Result<Response<pb::CountTitlesResponse>, Status> {
        let (titles, items) = self.catalog.counts().await?;
        Ok(Response::new(pb::CountTitlesResponse { titles, items }))
    }
}
