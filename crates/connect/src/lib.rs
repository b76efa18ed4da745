//! Connecting third-party apps: which providers exist and how each one authorizes.
//!
//! - [`catalog`]: the facts about each provider (OAuth endpoints, scopes, API base URL,
//!   how to identify the connected account), kept as data under `providers/` and checked
//!   when loaded;
//! - [`oauth`]: the OAuth 2.0 conversations with providers;
//! - [`credentials`]: what a connection's secrets hold and how they authenticate requests;
//! - [`vault`]: encryption of secrets at rest under the master key.
//!
//! Nothing here touches the database: the service layer stores what these produce.

pub mod catalog;
pub mod credentials;
pub mod oauth;
pub mod vault;

pub use catalog::{Catalog, CatalogError, ProviderSpec, RenderError, SpecError, ValidationError};
