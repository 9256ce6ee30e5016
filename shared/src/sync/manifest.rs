//! Where each dataset comes from. The default manifest names data.ca.gov resources by id;
//! their current download URLs are resolved with CKAN `resource_show` at run time, because
//! the file names carry the export date. `file://` sources serve local runs and tests
//! (`file://relative/path` is relative to the working directory).

use super::SyncError;
use serde::{Deserialize, Serialize};

/// One source of one dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Registry name of the dataset (see `import::registry`).
    pub dataset: String,
    /// `file://…`, `http(s)://…`, or `ckan:<resource id>`.
    pub url: String,
}

const CKAN_API: &str = "https://data.ca.gov/api/3/action/resource_show?id=";

/// The production manifest: the published SMARTS industrial facilities resource.
pub fn default_sources() -> Vec<Source> {
    vec![Source {
        dataset: "smarts_industrial_facilities".into(),
        url: "ckan:33e69394-83ec-4872-b644-b9f494de1824".into(),
    }]
}

/// Where the bytes of a source are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(std::path::PathBuf),
    Http(String),
}

#[derive(Deserialize)]
struct CkanResponse {
    success: bool,
    result: Option<CkanResource>,
}

#[derive(Deserialize)]
struct CkanResource {
    url: String,
}

/// Resolves a manifest URL to a readable location (asks CKAN for `ckan:` ids).
pub async fn resolve(http: &reqwest::Client, url: &str) -> Result<Location, SyncError> {
    let err = |message: String| SyncError::Source {
        url: url.to_owned(),
        message,
    };
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Location::File(path.into()));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Location::Http(url.to_owned()));
    }
    let Some(id) = url.strip_prefix("ckan:") else {
        return Err(err(
            "expected file://, http(s):// or ckan:<resource id>".into()
        ));
    };
    let resp: CkanResponse = http
        .get(format!("{CKAN_API}{id}"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| err(format!("CKAN resource_show failed: {e}")))?
        .json()
        .await
        .map_err(|e| err(format!("CKAN resource_show answered unreadable JSON: {e}")))?;
    match resp.result {
        Some(r) if resp.success => Ok(Location::Http(r.url)),
        _ => Err(err("CKAN resource_show did not return a resource".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_and_http_urls_resolve_without_network() {
        let http = reqwest::Client::new();
        assert_eq!(
            resolve(&http, "file://../shared/data/x.csv").await.unwrap(),
            Location::File("../shared/data/x.csv".into())
        );
        assert_eq!(
            resolve(&http, "https://example.invalid/a.csv")
                .await
                .unwrap(),
            Location::Http("https://example.invalid/a.csv".into())
        );
        let err = resolve(&http, "ftp://x").await.unwrap_err();
        assert!(err.to_string().contains("expected file://"));
    }
}
