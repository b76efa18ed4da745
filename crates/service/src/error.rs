use plugboard_core::{IdError, MetadataError, TokenError};
use plugboard_store::StoreError;

/// Every failure a service reports. The API maps each variant to a status and code in
/// one place.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("this user is suspended")]
    UserSuspended,
    #[error("a valid secret key or admin token is required")]
    InvalidCredentials,
    #[error("this secret key belongs to another project")]
    WrongProject,
    #[error("no project with this id")]
    ProjectNotFound,
    #[error("no user with this id in this project")]
    UserNotFound,
    #[error("a user with this id already exists")]
    UserExists,
    #[error("no active key with this id in this project")]
    KeyNotFound,
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    InvalidId(#[from] IdError),
    #[error("invalid cursor: pass back the `nextCursor` of a previous page unchanged")]
    InvalidCursor,
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    #[error("`{0}` is not in the provider catalog")]
    UnknownIntegration(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("`{0}` is not an integration of this project")]
    IntegrationNotFound(String),
    #[error("`{0}` is turned off for this project")]
    IntegrationInactive(String),
    #[error("{0}")]
    WrongAuthKind(String),
    #[error("no workflow `{0}` in this project")]
    WorkflowNotFound(String),
    #[error("`{0}` is not enabled for this user")]
    WorkflowNotEnabled(String),
    #[error("no such execution in this project")]
    ExecutionNotFound,
    #[error("no such credential for this user")]
    CredentialNotFound,
    #[error("the user has not connected `{0}`")]
    NotConnected(String),
    #[error("the connection to `{0}` is no longer valid: the user must connect it again")]
    CredentialInvalid(String),
    #[error("the provider refused these credentials: {0}")]
    CredentialRejected(String),
    #[error("{0}")]
    Connect(#[from] crate::connect::ConnectError),
    #[error(transparent)]
    Upstream(#[from] crate::connect::UpstreamError),
    #[error("the user's plan does not include `{0}`")]
    EntitlementRequired(String),
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    #[error("invalid webhook URL: {0}")]
    InvalidWebhookUrl(String),
    #[error("no webhook endpoint with this id in this project")]
    WebhookEndpointNotFound,
    #[error("no event with this id in this project")]
    EventNotFound,
    #[error("a project has at most {0} webhook endpoints")]
    TooManyEndpoints(usize),
    #[error("the user kept changing concurrently; try again")]
    ConcurrentUpdate,
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
