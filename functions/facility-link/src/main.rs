//! `facility-link`: facility linking on its own (incremental, or `{"full": true}`), followed
//! by the violation engine for the relinked facilities.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_invoke(stormwater::sync::finish::facility_link).await
}
