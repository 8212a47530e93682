//! The one route table: each feature slice adds its routes to a [`Routes`] (method, path
//! and handler in one call), and the application merges the slices (`routes::routes`). The
//! table remembers what it routes, so the OpenAPI test and the router test walk what is
//! really served; there is no second list to keep in step.
//!
//! Rule of the table: every `POST` of a page (a path outside `/api`) is behind the CSRF
//! check (`csrf::verify`), added here, so no slice can forget it.

use axum::Router;
use axum::handler::Handler;
use axum::http::Uri;
use axum::middleware;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::state::AppState;
use crate::web::csrf;

/// Which run serves a route: every run, only the embedded developer's run (its outbox
/// pages), or only a run with test clocks. The application adds the last two slices only
/// to a run that serves them (`routes::routes`); the tag tells the tests which is which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Always,
    DevPages,
    TestClock,
}

/// Routes of one or more slices, and what they are.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    table: Vec<(&'static str, &'static str, Served)>,
    served: Option<Served>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// The routes added after this call are served only by such a run.
    pub fn served_when(mut self, when: Served) -> Routes {
        self.served = Some(when);
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add("GET", path, get(h))
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add("POST", path, post(h))
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add("PUT", path, put(h))
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add("DELETE", path, delete(h))
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        mut route: MethodRouter<AppState>,
    ) -> Routes {
        if method == "POST" && !is_api_path(path) {
            // Every form of every page proves it came from one of our pages.
            route = route.route_layer(middleware::from_fn(csrf::verify));
        }
        self.router = self.router.route(path, route);
        self.table
            .push((method, path, self.served.unwrap_or(Served::Always)));
        self
    }

    /// Both slices' routes (a path served by both, for other methods, is one route).
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Every (method, path) in the table with the run that serves it, in axum's path
    /// syntax (which is also OpenAPI's).
    pub fn table(&self) -> &[(&'static str, &'static str, Served)] {
        &self.table
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// Whether a path is of the JSON API (else it is a page's).
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Whether a request is for the JSON API (else it is for a page).
pub fn is_api(uri: &Uri) -> bool {
    is_api_path(uri.path())
}
