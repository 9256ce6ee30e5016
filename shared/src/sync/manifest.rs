//! Where each dataset comes from. The default manifest names data.ca.gov resources by id;
//! their current download URLs are resolved with CKAN `resource_show` at run time, because
//! the file names carry the export date. `file://` sources serve local runs and tests
//! (`file://relative/path` is relative to the working directory).

use super::SyncError;
use serde::Deserialize;

pub use crate::config::CKAN_API;
pub use crate::import::Source;

/// The production manifest: the seven SMARTS resources and the recent eSMR years.
pub fn default_sources() -> Vec<Source> {
    const SMARTS: [(&str, &str); 7] = [
        (
            "smarts_industrial_facilities",
            "33e69394-83ec-4872-b644-b9f494de1824",
        ),
        (
            "smarts_construction_facilities",
            "8a0ed456-ca69-4b29-9c5b-5de3958dc963",
        ),
        (
            "smarts_industrial_monitoring",
            "7871e8fe-576d-4940-acdf-eca0b399c1aa",
        ),
        (
            "smarts_construction_monitoring",
            "0c441948-5bb9-4d50-9f3c-ca7dab256056",
        ),
        ("smarts_violations", "9b69a654-0c9a-4865-8d10-38c55b1b8c58"),
        (
            "smarts_enforcement_actions",
            "9cf197f4-f1d5-4d43-b94b-ccb155ef14cf",
        ),
        ("smarts_inspections", "33047e47-7d44-46aa-9e0f-1a0f1b0cad66"),
    ];
    // eSMR: the current year and the three before it are refreshed monthly by the publisher.
    const ESMR: [(&str, &str); 4] = [
        ("2026", "7f2c5c3b-914a-490c-b85d-ac2dba0737cf"),
        ("2025", "176a58bf-6f5d-4e3f-9ed9-592a509870eb"),
        ("2024", "7adb8aea-62fb-412f-9e67-d13b0729222f"),
        ("2023", "65eb7023-86b6-4960-b714-5f6574d43556"),
    ];
    SMARTS
        .iter()
        .map(|(dataset, id)| Source {
            dataset: (*dataset).into(),
            url: format!("ckan:{id}"),
            scope: None,
        })
        .chain(ESMR.iter().map(|(year, id)| Source {
            dataset: "esmr".into(),
            url: format!("ckan:{id}"),
            scope: Some((*year).into()),
        }))
        .collect()
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
pub async fn resolve(
    http: &reqwest::Client,
    ckan_api: &str,
    url: &str,
) -> Result<Location, SyncError> {
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
        .get(ckan_api)
        .query(&[("id", id)])
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
            resolve(&http, CKAN_API, "file://../shared/data/x.csv")
                .await
                .unwrap(),
            Location::File("../shared/data/x.csv".into())
        );
        assert_eq!(
            resolve(&http, CKAN_API, "https://example.invalid/a.csv")
                .await
                .unwrap(),
            Location::Http("https://example.invalid/a.csv".into())
        );
        let err = resolve(&http, CKAN_API, "ftp://x").await.unwrap_err();
        assert!(err.to_string().contains("expected file://"));
    }
}
