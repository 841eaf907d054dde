//! API errors in the Data Plane API's shape: `{"code": N, "message": "..."}`, where `code` is the
//! HTTP status except for schema errors (422 with go-openapi's 6xx codes).

use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// The request was not received in time; the connection is closed after the answer.
    #[error("{0}")]
    Timeout(String),
    /// Schema validation: go-openapi's codes (602 required, 605 pattern, 606 enum, 608/609 range).
    #[error("{message}")]
    Schema { code: u16, message: String },
    #[error("{0}")]
    TooManyTransactions(String),
    /// Too many password checks already running (see `auth::MAX_HASH_CHECKS`): retry later.
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::Conflict(_) => 409,
            ApiError::Timeout(_) => 408,
            ApiError::TooLarge(_) => 413,
            ApiError::Schema { .. } => 422,
            ApiError::TooManyTransactions(_) | ApiError::TooManyRequests(_) => 429,
            ApiError::Internal(_) => 500,
        }
    }
    pub fn code(&self) -> u16 {
        match self {
            ApiError::Schema { code, .. } => *code,
            e => e.status(),
        }
    }
    pub fn body(&self) -> serde_json::Value {
        json!({ "code": self.code(), "message": self.to_string() })
    }

    pub fn missing_object(what: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("missing object: Object {what} does not exist"))
    }
    pub fn exists(what: impl std::fmt::Display) -> Self {
        ApiError::Conflict(format!("object already exists: Object {what} already exists"))
    }
    pub fn missing_parent(kind: &str, name: &str) -> Self {
        ApiError::BadRequest(format!("missing parent: {kind} {name} does not exist"))
    }
    pub fn required(field: &str, place: &str) -> Self {
        ApiError::Schema { code: 602, message: format!("{field} in {place} is required") }
    }
    pub fn pattern(field: &str, pattern: &str) -> Self {
        ApiError::Schema { code: 605, message: format!("{field} in body should match '{pattern}'") }
    }
    pub fn range(field: &str, min: i64, max: i64, got: i64) -> Self {
        ApiError::Schema {
            code: if got > max { 608 } else { 609 },
            message: if got > max {
                format!("{field} in body should be less than or equal to {max}")
            } else {
                format!("{field} in body should be greater than or equal to {min}")
            },
        }
    }
    pub fn unsupported(field: &str, why: &str) -> Self {
        ApiError::BadRequest(format!("{field}: not supported by lbha ({why})"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
