//! `violations-compute`: the violation engine on its own (incremental, or `{"full": true}`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stormwater::lambda::serve_invoke(stormwater::sync::finish::violations_compute).await
}
