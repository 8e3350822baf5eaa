//! Errors at the protocol boundary: the core's errors become JSON-RPC errors with LSP codes.
//!
//! - `-32602` InvalidParams: the request is malformed (wrong argument shape, a URI that is not
//!   a file, a file outside the workspace folders).
//! - `-32803` RequestFailed: the request was well-formed but refused; bad input found by the
//!   core carries `data.errors`, a list of `{file, line, problem, fix}` (file as a URI).
//! - `-32603` InternalError: anything else (a bug or an environment failure).

use std::borrow::Cow;

use serde_json::json;
use tower_lsp_server::jsonrpc::{Error, ErrorCode};

use crate::error::{InputError, InputErrors};
use crate::lsp::tree::uri_string;

/// LSP's RequestFailed.
pub const REQUEST_FAILED: i64 = -32803;

/// Malformed request.
pub fn invalid_params(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: Cow::Owned(message.into()),
        data: None,
    }
}

/// A well-formed request the server refuses.
pub fn request_failed(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::ServerError(REQUEST_FAILED),
        message: Cow::Owned(message.into()),
        data: None,
    }
}

/// Bad input found by the core: RequestFailed with every error listed in `data.errors`.
pub fn from_input_errors(errs: &InputErrors) -> Error {
    let list: Vec<_> = errs.0.iter().map(input_error_json).collect();
    Error {
        code: ErrorCode::ServerError(REQUEST_FAILED),
        message: Cow::Owned(errs.to_string()),
        data: Some(json!({ "errors": list })),
    }
}

fn input_error_json(e: &InputError) -> serde_json::Value {
    json!({
        "file": e.file.as_deref().map(uri_string),
        "line": e.line,
        "problem": e.problem,
        "fix": e.fix,
    })
}

/// Any core error: input errors as RequestFailed, the rest as InternalError.
pub fn from_anyhow(e: anyhow::Error) -> Error {
    if let Some(errs) = e.downcast_ref::<InputErrors>() {
        return from_input_errors(errs);
    }
    if let Some(err) = e.downcast_ref::<InputError>() {
        return from_input_errors(&InputErrors(vec![err.clone()]));
    }
    Error {
        code: ErrorCode::InternalError,
        message: Cow::Owned(format!("internal error: {e:#}")),
        data: None,
    }
}
