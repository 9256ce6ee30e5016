//! Where each dataset comes from. The default manifest is read from the publisher's CKAN
//! catalogue (data.ca.gov) at run time:
//!
//! - the seven SMARTS files are CKAN resources named by id (`ckan:<resource id>`);
//! - eSMR is published as one CSV per sampling year, and every year the catalogue lists under
//!   the eSMR dataset (`package_show`) is synced as its own scope, so a new year arrives without
//!   a code change.
//!
//! A `ckan:` source's download URL is resolved with `resource_show`, because the file names
//! carry the export date; what the catalogue says of the file (URL, `last_modified`, `size`,
//! `hash`) is its [`Resolved::version`], which lets the stager skip a file that has not changed
//! since its last good import before downloading a byte. `file://` sources serve local runs and
//! tests (`file://relative/path` is relative to the working directory).

use super::SyncError;
use regex::Regex;
use serde::Deserialize;
use std::sync::LazyLock;

pub use crate::config::CKAN_API;
pub use crate::import::Source;

/// The eSMR dataset on data.ca.gov ("Water Quality - Effluent - Electronic Self-Monitoring
/// Report (eSMR) Data"), whose resources include one CSV per sampling year.
pub const ESMR_PACKAGE: &str = "203e5d1f-ec9d-4d07-93aa-d8b74d3fe71f";

/// The URL of a catalogue listing that failed, as recorded on the file that stands for it.
pub fn package_url(id: &str) -> String {
    format!("ckan-package:{id}")
}

/// The seven SMARTS resources of the production manifest.
pub fn smarts_sources() -> Vec<Source> {
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
    SMARTS
        .iter()
        .map(|(dataset, id)| Source {
            dataset: (*dataset).into(),
            url: format!("ckan:{id}"),
            scope: None,
        })
        .collect()
}

/// The production manifest: the SMARTS resources, then every eSMR year the catalogue lists
/// (oldest first). When the catalogue cannot be listed, the eSMR part is that error: the
/// SMARTS files are still synced, and the stager records the listing as a failed file.
pub async fn default_sources(
    http: &reqwest::Client,
    ckan_api: &str,
) -> (Vec<Source>, Result<(), SyncError>) {
    let mut sources = smarts_sources();
    match esmr_years(http, ckan_api).await {
        Ok(years) => {
            sources.extend(years);
            (sources, Ok(()))
        }
        Err(e) => (sources, Err(e)),
    }
}

/// Every yearly eSMR CSV the catalogue lists, as `ckan:` sources scoped to their year, oldest
/// first. A year listed twice keeps the resource modified last.
pub async fn esmr_years(http: &reqwest::Client, ckan_api: &str) -> Result<Vec<Source>, SyncError> {
    let package = package_show(http, ckan_api, ESMR_PACKAGE).await?;
    let mut years: std::collections::BTreeMap<u16, CkanResource> = Default::default();
    for resource in package.resources {
        let Some(year) = resource.sampling_year() else {
            continue;
        };
        match years.get(&year) {
            Some(kept) if kept.last_modified >= resource.last_modified => {
                tracing::warn!(year, kept = %kept.id, other = %resource.id,
                               "the catalogue lists an eSMR year twice; the one modified last is synced");
            }
            _ => {
                years.insert(year, resource);
            }
        }
    }
    if years.is_empty() {
        return Err(SyncError::Source {
            url: package_url(ESMR_PACKAGE),
            message: "CKAN package_show lists no yearly eSMR CSV".into(),
        });
    }
    Ok(years
        .into_iter()
        .map(|(year, r)| Source {
            dataset: "esmr".into(),
            url: format!("ckan:{}", r.id),
            scope: Some(year.to_string()),
        })
        .collect())
}

/// Where the bytes of a source are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(std::path::PathBuf),
    Http(String),
}

/// A source resolved: where to read it, and what the catalogue says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub location: Location,
    /// The catalogue's description of the file (download URL, `last_modified`, `size`, `hash`),
    /// the same text for as long as the publisher has not replaced it; `None` for a source
    /// that is not catalogued, or whose entry says nothing that would change with the file.
    pub version: Option<String>,
}

/// The largest catalogue answer read (the eSMR package, with its 25 resources, is ~40 kB).
const CATALOGUE_LIMIT: usize = 4 << 20;

#[derive(Deserialize)]
struct CkanResponse<T> {
    success: bool,
    result: Option<T>,
}

#[derive(Deserialize)]
struct CkanPackage {
    #[serde(default)]
    resources: Vec<CkanResource>,
}

/// The members of a CKAN resource dictionary that are read (CKAN's API documentation,
/// `resource_show` and `package_show`); anything may be null.
#[derive(Deserialize, Debug, Clone)]
struct CkanResource {
    id: String,
    url: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    /// A number in CKAN 2.9+, text in some older portals.
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default)]
    hash: Option<String>,
}

impl CkanResource {
    /// The sampling year of a yearly eSMR CSV: from its file name
    /// (`esmr-analytical-export_year-2025_2025-11-05.csv`), else from a resource name that
    /// names one year. The all-years archive (`…_years-2006-2025_…zip`), the dictionary and
    /// the parquet files are not yearly CSVs.
    fn sampling_year(&self) -> Option<u16> {
        let csv = self
            .format
            .as_deref()
            .is_some_and(|f| f.trim().eq_ignore_ascii_case("csv"))
            || self.url.to_ascii_lowercase().ends_with(".csv");
        if !csv {
            return None;
        }
        static FILE_YEAR: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"(?i)_year-(\d{4})(?:\D|$)").expect("static pattern"));
        static YEAR: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"\b(\d{4})\b").expect("static pattern"));
        let file = self.url.rsplit('/').next().unwrap_or_default();
        let from_file = FILE_YEAR
            .captures(file)
            .and_then(|c| c[1].parse::<u16>().ok());
        let year = from_file.or_else(|| {
            let name = self.name.as_deref().unwrap_or_default();
            let years: Vec<u16> = YEAR
                .captures_iter(name)
                .filter_map(|c| c[1].parse().ok())
                .collect();
            match years.as_slice() {
                [y] if !name.to_ascii_lowercase().contains("years") => Some(*y),
                _ => None,
            }
        })?;
        (1990..=2100).contains(&year).then_some(year)
    }

    /// What would change if the publisher replaced the file.
    fn version(&self) -> Option<String> {
        let size = self.size.as_ref().filter(|s| !s.is_null());
        let hash = self.hash.as_deref().filter(|h| !h.trim().is_empty());
        if self.last_modified.is_none() && size.is_none() && hash.is_none() {
            return None;
        }
        Some(format!(
            "url={} last_modified={} size={} hash={}",
            self.url,
            self.last_modified.as_deref().unwrap_or("-"),
            size.map_or_else(
                || "-".to_owned(),
                |s| s.to_string().trim_matches('"').to_owned()
            ),
            hash.unwrap_or("-")
        ))
    }
}

/// The URL of the CKAN action `name`. `ckan_api` is the action API's base
/// (`https://data.ca.gov/api/3/action`); a base that ends in an action's name
/// (`…/action/resource_show`, the form this setting once took) is read as its base.
fn action(ckan_api: &str, name: &str) -> String {
    let base = ckan_api.trim_end_matches('/');
    let base = base
        .strip_suffix("/resource_show")
        .or_else(|| base.strip_suffix("/package_show"))
        .unwrap_or(base);
    format!("{base}/{name}")
}

/// Calls the CKAN action `name` with `id` and returns its `result`.
async fn call<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    ckan_api: &str,
    name: &str,
    id: &str,
    url: &str,
) -> Result<T, SyncError> {
    let err = |message: String| SyncError::Source {
        url: url.to_owned(),
        message,
    };
    let response = http
        .get(action(ckan_api, name))
        .query(&[("id", id)])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| err(format!("CKAN {name} failed: {e}")))?;
    let body = crate::outbound::read_capped(response, CATALOGUE_LIMIT + 1).await;
    if body.len() > CATALOGUE_LIMIT {
        return Err(err(format!(
            "CKAN {name} answered more than {CATALOGUE_LIMIT} bytes"
        )));
    }
    let answer: CkanResponse<T> = serde_json::from_slice(&body)
        .map_err(|e| err(format!("CKAN {name} answered unreadable JSON: {e}")))?;
    match answer.result {
        Some(r) if answer.success => Ok(r),
        _ => Err(err(format!("CKAN {name} did not return a result for {id}"))),
    }
}

async fn package_show(
    http: &reqwest::Client,
    ckan_api: &str,
    id: &str,
) -> Result<CkanPackage, SyncError> {
    call(http, ckan_api, "package_show", id, &package_url(id)).await
}

/// Resolves a manifest URL to a readable location (asks CKAN's `resource_show` for `ckan:`
/// ids, and keeps what it says of the file).
pub async fn resolve(
    http: &reqwest::Client,
    ckan_api: &str,
    url: &str,
) -> Result<Resolved, SyncError> {
    let plain = |location| {
        Ok(Resolved {
            location,
            version: None,
        })
    };
    if let Some(path) = url.strip_prefix("file://") {
        return plain(Location::File(path.into()));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return plain(Location::Http(url.to_owned()));
    }
    let Some(id) = url.strip_prefix("ckan:") else {
        return Err(SyncError::Source {
            url: url.to_owned(),
            message: "expected file://, http(s):// or ckan:<resource id>".into(),
        });
    };
    let resource: CkanResource = call(http, ckan_api, "resource_show", id, url).await?;
    Ok(Resolved {
        version: resource.version(),
        location: Location::Http(resource.url),
    })
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
            Resolved {
                location: Location::File("../shared/data/x.csv".into()),
                version: None
            }
        );
        assert_eq!(
            resolve(&http, CKAN_API, "https://example.invalid/a.csv")
                .await
                .unwrap()
                .location,
            Location::Http("https://example.invalid/a.csv".into())
        );
        let err = resolve(&http, CKAN_API, "ftp://x").await.unwrap_err();
        assert!(err.to_string().contains("expected file://"));
    }

    #[test]
    fn the_action_url_is_built_from_the_base_or_an_action_url() {
        for base in [
            "https://data.ca.gov/api/3/action",
            "https://data.ca.gov/api/3/action/",
            "https://data.ca.gov/api/3/action/resource_show",
        ] {
            assert_eq!(
                action(base, "package_show"),
                "https://data.ca.gov/api/3/action/package_show"
            );
        }
    }

    fn resource(url: &str, name: &str, format: &str) -> CkanResource {
        CkanResource {
            id: "r".into(),
            url: url.into(),
            name: Some(name.into()),
            format: Some(format.into()),
            last_modified: None,
            size: None,
            hash: None,
        }
    }

    #[test]
    fn a_yearly_csv_is_told_from_the_archive_the_dictionary_and_the_parquet() {
        let d = "https://data.ca.gov/dataset/x/resource/r/download";
        let cases = [
            (
                resource(
                    &format!("{d}/esmr-analytical-export_year-2025_2025-11-05.csv"),
                    "2025 eSMR data",
                    "CSV",
                ),
                Some(2025),
            ),
            // The name alone, when the file name says nothing.
            (
                resource(&format!("{d}/export.csv"), "eSMR Data 2009", "csv"),
                Some(2009),
            ),
            (
                resource(
                    &format!("{d}/esmr-analytical-export_years-2006-2025_2025-11-05.zip"),
                    "All years 2006-2025",
                    "ZIP",
                ),
                None,
            ),
            (
                resource(
                    &format!("{d}/esmr-analytical-export_years-2006-2025.csv"),
                    "eSMR years 2006 to 2025",
                    "CSV",
                ),
                None,
            ),
            (
                resource(
                    &format!("{d}/dictionary.pdf"),
                    "Data Dictionary 2025",
                    "PDF",
                ),
                None,
            ),
            (
                resource(&format!("{d}/esmr.parquet.zip"), "Parquet 2025", "ZIP"),
                None,
            ),
        ];
        for (r, year) in cases {
            assert_eq!(r.sampling_year(), year, "{}", r.url);
        }
    }

    #[test]
    fn the_version_changes_with_the_file_and_is_absent_when_nothing_is_said() {
        let mut r = resource("https://x/a_year-2025.csv", "", "CSV");
        assert_eq!(r.version(), None);
        r.last_modified = Some("2025-11-05T10:00:00".into());
        r.size = Some(serde_json::json!(613_000_000));
        let v1 = r.version().unwrap();
        assert!(v1.contains("size=613000000"), "{v1}");
        r.size = Some(serde_json::json!("613000001"));
        assert_ne!(r.version().unwrap(), v1);
        r.size = Some(serde_json::json!(613_000_000));
        assert_eq!(r.version().unwrap(), v1);
        r.url = "https://x/a_year-2025_2025-12-01.csv".into();
        assert_ne!(r.version().unwrap(), v1, "a new export date is a new file");
    }
}
