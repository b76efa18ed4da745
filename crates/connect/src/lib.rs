//! Connecting third-party apps: which providers exist and how each one authorizes.
//!
//! For now this crate holds the provider catalog ([`catalog`]): the facts about each
//! provider (OAuth endpoints, scopes, API base URL, how to identify the connected account)
//! kept as data under `providers/` and checked when loaded. [`vault`] encrypts credentials at rest under the master key.
//! The OAuth flows and the credential store that use them come next.

pub mod catalog;
pub mod vault;

pub use catalog::{Catalog, CatalogError, ProviderSpec, RenderError, SpecError, ValidationError};
