//! AWS SDK clients, built once per execution environment. Locally `AWS_ENDPOINT_URL` points
//! them at the S3/SQS emulator.

use crate::config::Config;
use aws_smithy_http_client::{Builder, tls};

/// Loads the shared SDK configuration with a rustls (ring) HTTPS client.
pub async fn sdk_config(cfg: &Config) -> aws_config::SdkConfig {
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(endpoint) = &cfg.aws_endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// S3 client (path style when configured, as emulators on `localhost` need).
pub fn s3(sdk: &aws_config::SdkConfig, cfg: &Config) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(cfg.s3_force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// SQS client.
pub fn sqs(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}
