//! Tracing set-up: the Lambda runtime's subscriber (reads `AWS_LAMBDA_LOG_LEVEL`/`RUST_LOG`,
//! JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`).

/// Call first in every `main`.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
