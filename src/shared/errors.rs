//! What an admin server function answers when it fails: the console shows
//! it, and the web edge answers with it before a function runs.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// One field's problem, shown beside that field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// What an admin server function answers when it does not succeed. It
/// travels to the browser as JSON, so pages can show each case properly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AdminError {
    #[error("Please sign in again.")]
    SignIn,
    #[error("Only admins can do this.")]
    Forbidden,
    /// A sensitive action: sign in again at this address, then retry.
    #[error("This needs a recent sign-in: you are being sent to sign in again.")]
    Reauth { url: String },
    #[error("Some fields need attention.")]
    Invalid(Vec<FieldProblem>),
    #[error("{0}")]
    Refused(String),
    #[error("The dashboard cannot reach its database right now. Please try again in a moment.")]
    Unavailable,
    #[error("The request failed: {0}")]
    Transport(String),
}

impl FromServerFnError for AdminError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AdminError::Transport(value.to_string())
    }
}

impl AdminError {
    /// The message for one field, if it has a problem.
    pub fn field(&self, name: &str) -> Option<String> {
        match self {
            AdminError::Invalid(problems) => problems
                .iter()
                .find(|p| p.field == name)
                .map(|p| p.message.clone()),
            _ => None,
        }
    }

    /// The HTTP status this answer carries.
    pub fn status(&self) -> u16 {
        match self {
            AdminError::SignIn | AdminError::Reauth { .. } => 401,
            AdminError::Forbidden => 403,
            AdminError::Invalid(_) => 422,
            AdminError::Refused(_) => 409,
            AdminError::Unavailable => 503,
            AdminError::Transport(_) => 400,
        }
    }
}
