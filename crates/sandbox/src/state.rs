//! The in-memory state: clients, codes, tokens, accounts, contacts and counters.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::SandboxClient;

/// Counters of what clients did, as returned by [`crate::Sandbox::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful `authorization_code` grants.
    pub authorization_code_grants: u64,
    /// Successful `refresh_token` grants.
    pub refresh_grants: u64,
    /// Successful `client_credentials` grants.
    pub client_credentials_grants: u64,
    /// Revocation requests from an authenticated client, whether or not the token was known.
    pub revocations: u64,
    /// The token strings of those requests, in order.
    pub revoked_tokens: Vec<String>,
    /// Requests to `/api/*` routes, faulted or refused ones included.
    pub api_requests: u64,
    /// Requests to `/oauth/token`, faulted or refused ones included.
    pub token_requests_total: u64,
}

/// Whom a token acts for: a user account, or the client itself (client credentials).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Account {
    pub id: String,
    pub name: String,
}

pub(crate) struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: Option<String>,
    pub scope: String,
    pub account: Account,
    pub expires_at: Instant,
}

pub(crate) struct AccessToken {
    pub client_id: String,
    pub account: Account,
    pub expires_at: Instant,
    /// The authorization this token came from; revoking its refresh token revokes it too.
    pub family: Option<u64>,
}

pub(crate) struct RefreshToken {
    pub client_id: String,
    pub account: Account,
    pub scope: String,
    pub family: u64,
}

#[derive(Clone, Serialize)]
pub(crate) struct Contact {
    pub id: String,
    pub name: String,
    pub email: String,
}

pub(crate) struct State {
    pub clients: HashMap<String, SandboxClient>,
    pub codes: HashMap<String, Code>,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    accounts: Vec<Account>,
    contacts: HashMap<String, Vec<Contact>>,
    next_family: u64,
    next_contact: u64,
    pub stats: Stats,
}

impl State {
    pub fn new(clients: Vec<SandboxClient>) -> Self {
        Self {
            clients: clients.into_iter().map(|c| (c.id.clone(), c)).collect(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            accounts: Vec::new(),
            contacts: HashMap::new(),
            next_family: 0,
            next_contact: 0,
            stats: Stats::default(),
        }
    }

    /// The account with this name, created on first use with the next `acct_<n>` id.
    pub fn account_named(&mut self, name: &str) -> Account {
        if let Some(found) = self.accounts.iter().find(|a| a.name == name) {
            return found.clone();
        }
        let account = Account {
            id: format!("acct_{}", self.accounts.len() + 1),
            name: name.to_owned(),
        };
        self.accounts.push(account.clone());
        account
    }

    pub fn new_code(&mut self, code: Code) -> String {
        let now = Instant::now();
        self.codes.retain(|_, c| c.expires_at > now);
        let value = random_token("sbx_code_");
        self.codes.insert(value.clone(), code);
        value
    }

    pub fn new_family(&mut self) -> u64 {
        self.next_family += 1;
        self.next_family
    }

    pub fn issue_access(
        &mut self,
        client_id: &str,
        account: &Account,
        family: Option<u64>,
        ttl: Duration,
    ) -> String {
        let token = random_token("sbx_at_");
        let grant = AccessToken {
            client_id: client_id.to_owned(),
            account: account.clone(),
            expires_at: Instant::now() + ttl,
            family,
        };
        self.access.insert(token.clone(), grant);
        token
    }

    pub fn issue_refresh(&mut self, grant: RefreshToken) -> String {
        let token = random_token("sbx_rt_");
        self.refresh.insert(token.clone(), grant);
        token
    }

    /// The account behind a live access token.
    pub fn access_account(&self, token: &str) -> Option<Account> {
        let grant = self.access.get(token)?;
        (Instant::now() < grant.expires_at).then(|| grant.account.clone())
    }

    /// Revokes `token` if it was issued to `client_id`; a refresh token takes its
    /// authorization's access tokens with it.
    pub fn revoke(&mut self, client_id: &str, token: &str) {
        if let Some(refresh) = self.refresh.get(token)
            && refresh.client_id == client_id
        {
            let family = Some(refresh.family);
            self.refresh.remove(token);
            self.access.retain(|_, a| a.family != family);
        } else if self
            .access
            .get(token)
            .is_some_and(|a| a.client_id == client_id)
        {
            self.access.remove(token);
        }
    }

    pub fn contacts(&self, account_id: &str) -> Vec<Contact> {
        self.contacts.get(account_id).cloned().unwrap_or_default()
    }

    pub fn add_contact(&mut self, account_id: &str, name: String, email: String) -> Contact {
        self.next_contact += 1;
        let contact = Contact {
            id: format!("ct_{}", self.next_contact),
            name,
            email,
        };
        let list = self.contacts.entry(account_id.to_owned()).or_default();
        list.push(contact.clone());
        contact
    }
}

/// `prefix` followed by 256 random bits, base64url.
fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}
