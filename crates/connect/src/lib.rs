//! Connecting third-party apps: which providers exist and how each one authorizes.
//!
//! For now this crate holds the provider catalog ([`catalog`]): the facts about each
//! provider (OAuth endpoints, scopes, API base URL, how to identify the connected account)
//! kept as data under `providers/` and checked when loaded. The OAuth flows and the
//! credential store that use it come next.

pub mod catalog;

pub use catalog::{Catalog, CatalogError, ProviderSpec, RenderError, SpecError, ValidationError};
