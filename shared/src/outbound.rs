//! Outbound HTTP to URLs that users choose (webhooks): only to public addresses.
//!
//! A URL is checked when it is accepted (a subscription is created) and again on every request:
//! * the scheme is `https` (`http` only for hosts on the allow-list); no user name or password;
//!   at most [`MAX_URL_LEN`] bytes;
//! * an IP address host, after the URL parser's normalization (`2852039166`, `0xa9fea9fe`,
//!   `127.1` and `0177.0.0.1` are the IPv4 addresses they spell, which is what a client would
//!   connect to), must be public: [`classify`] lists what is refused (loopback, private,
//!   link-local and metadata, shared, documentation, multicast and reserved IPv4 ranges;
//!   IPv6 loopback, unique-local, link-local, IPv4-mapped and -compatible, NAT64, 6to4, Teredo,
//!   documentation, multicast, and everything outside global unicast `2000::/3`);
//! * a host name needs a dot and must not be a special-use name (`localhost`, `*.localhost`,
//!   `*.local`, `*.internal` such as `metadata.google.internal`, `*.home.arpa`, …), and every
//!   address it resolves to must be public.
//!
//! [`Client`] connects only to addresses its own resolver has checked: names go through a
//! [`reqwest::dns::Resolve`] that resolves and filters, so the address connected to is the one
//! checked (no second lookup to race with), and IP address hosts are checked before sending.
//! It never uses a proxy, follows no redirect (a 3xx is the answer), bounds the connect and the
//! total time, and [`read_capped`] bounds how much of a response is read.
//!
//! The allow-list (`OUTBOUND_ALLOW_HOSTS`: comma-separated host names, IP addresses or CIDR
//! ranges) exempts the hosts it names from these rules and lets them use `http`. It exists for
//! local tests whose receiver listens on loopback; production never sets it.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use url::Host;

/// Longest accepted URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// How long a name may take to resolve when a URL is accepted.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a TCP (and TLS) connection, within the total timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// User agent of every outbound request.
const USER_AGENT: &str = "stormwater-watch-alerts/0.1";

/// Why a URL or an address was refused, or a name could not be resolved. The messages name the
/// host and the address, never the path or query (webhook URLs often carry tokens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error("{host} is not a public address: {reason}")]
    NotPublic { host: String, reason: &'static str },
    #[error("cannot resolve {host}: {reason}")]
    Unresolved { host: String, reason: String },
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16, len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// IPv4 ranges that are not publicly routable (IANA special-purpose registry, RFC 6890 and
/// successors), each with the reason given when refused.
static V4_SPECIAL: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\" (0.0.0.0/8)"),
    (v4(10, 0, 0, 0, 8), "private (10.0.0.0/8)"),
    (
        v4(100, 64, 0, 0, 10),
        "shared address space (100.64.0.0/10)",
    ),
    (v4(127, 0, 0, 0, 8), "loopback (127.0.0.0/8)"),
    (
        v4(169, 254, 0, 0, 16),
        "link-local (169.254.0.0/16, where cloud metadata services live)",
    ),
    (v4(172, 16, 0, 0, 12), "private (172.16.0.0/12)"),
    (
        v4(192, 0, 0, 0, 24),
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    (v4(192, 0, 2, 0, 24), "documentation (192.0.2.0/24)"),
    (
        v4(192, 88, 99, 0, 24),
        "6to4 relay anycast (192.88.99.0/24)",
    ),
    (v4(192, 168, 0, 0, 16), "private (192.168.0.0/16)"),
    (v4(198, 18, 0, 0, 15), "benchmarking (198.18.0.0/15)"),
    (v4(198, 51, 100, 0, 24), "documentation (198.51.100.0/24)"),
    (v4(203, 0, 113, 0, 24), "documentation (203.0.113.0/24)"),
    (v4(224, 0, 0, 0, 4), "multicast (224.0.0.0/4)"),
    (
        v4(240, 0, 0, 0, 4),
        "reserved (240.0.0.0/4, with the broadcast address)",
    ),
];

/// IPv6 ranges refused inside global unicast, and the special ones outside it named for a
/// clearer reason (everything outside `2000::/3` is refused anyway).
static V6_SPECIAL: &[(Ipv6Net, &str)] = &[
    (v6(0, 0, 0, 0, 0, 0, 0, 0, 128), "unspecified (::)"),
    (v6(0, 0, 0, 0, 0, 0, 0, 1, 128), "loopback (::1)"),
    (
        v6(0, 0, 0, 0, 0, 0xffff, 0, 0, 96),
        "IPv4-mapped IPv6 (::ffff:0:0/96)",
    ),
    (
        v6(0, 0, 0, 0, 0, 0, 0, 0, 96),
        "IPv4-compatible IPv6 (::/96, deprecated)",
    ),
    (
        v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0, 96),
        "NAT64 (64:ff9b::/96)",
    ),
    (
        v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0, 48),
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (
        v6(0x100, 0, 0, 0, 0, 0, 0, 0, 64),
        "discard-only (100::/64)",
    ),
    (
        v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0, 32),
        "documentation (2001:db8::/32)",
    ),
    (
        v6(0x2001, 0, 0, 0, 0, 0, 0, 0, 23),
        "IETF protocol assignments (2001::/23, with Teredo)",
    ),
    (v6(0x2002, 0, 0, 0, 0, 0, 0, 0, 16), "6to4 (2002::/16)"),
    (
        v6(0x3fff, 0, 0, 0, 0, 0, 0, 0, 20),
        "documentation (3fff::/20)",
    ),
    (
        v6(0xfc00, 0, 0, 0, 0, 0, 0, 0, 7),
        "unique local (fc00::/7)",
    ),
    (
        v6(0xfe80, 0, 0, 0, 0, 0, 0, 0, 10),
        "link-local (fe80::/10)",
    ),
    (
        v6(0xfec0, 0, 0, 0, 0, 0, 0, 0, 10),
        "site-local (fec0::/10, deprecated)",
    ),
    (v6(0xff00, 0, 0, 0, 0, 0, 0, 0, 8), "multicast (ff00::/8)"),
];

const GLOBAL_UNICAST: Ipv6Net = v6(0x2000, 0, 0, 0, 0, 0, 0, 0, 3);

/// Special-use and private-use names: the name itself or any name under it is refused.
const SPECIAL_NAMES: &[&str] = &[
    "localhost",
    "local",
    "internal",
    "localdomain",
    "home.arpa",
    "lan",
    "home",
    "corp",
    "intranet",
    "private",
    "test",
    "invalid",
    "onion",
    "alt",
];

/// Why `ip` is not a public address, or `None` when it is one.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => V4_SPECIAL
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, why)| *why),
        IpAddr::V6(ip) => V6_SPECIAL
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, why)| *why)
            .or_else(|| {
                (!GLOBAL_UNICAST.contains(&ip)).then_some("not global unicast (outside 2000::/3)")
            }),
    }
}

/// Why the host name `name` is refused before resolving it, or `None`.
fn special_name(name: &str) -> Option<&'static str> {
    if !name.contains('.') {
        return Some("a single-label name (it would resolve through local search domains)");
    }
    SPECIAL_NAMES
        .iter()
        .any(|s| name == *s || name.strip_suffix(s).is_some_and(|rest| rest.ends_with('.')))
        .then_some("a special-use or private name (localhost, .local, .internal, …)")
}

/// Lowercase, without the trailing dot of a fully qualified name.
fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What outbound requests may reach besides public addresses: the explicit allow-list.
/// The default allows nothing more (production).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    names: Arc<[String]>,
    nets: Arc<[IpNet]>,
}

impl FromStr for Policy {
    type Err = String;

    /// Comma-separated host names, IP addresses and CIDR ranges; blank entries are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mut names, mut nets) = (Vec::new(), Vec::new());
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            if let Ok(net) = bare.parse::<IpNet>() {
                nets.push(net);
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                nets.push(IpNet::from(ip));
            } else if entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                names.push(normalize_name(entry));
            } else {
                return Err(format!(
                    "{entry:?} is not a host name, an IP address or a CIDR range"
                ));
            }
        }
        Ok(Self {
            names: names.into(),
            nets: nets.into(),
        })
    }
}

/// The addresses of a name, being looked up.
type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
/// How a name is turned into addresses (the system resolver, or a fixed table in tests).
type Lookup = Arc<dyn Fn(String) -> LookupFuture + Send + Sync>;

fn system_lookup() -> Lookup {
    Arc::new(|host: String| -> LookupFuture {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

impl Policy {
    /// True when nothing is allowed beyond public addresses (production).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    fn allows_name(&self, name: &str) -> bool {
        let name = normalize_name(name);
        self.names.contains(&name)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    fn check_ip(&self, ip: IpAddr, host: impl FnOnce() -> String) -> Result<(), OutboundError> {
        match classify(ip) {
            Some(reason) if !self.allows_ip(ip) => Err(OutboundError::NotPublic {
                host: host(),
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// Parses `raw` and checks everything that needs no lookup: scheme, user info, length,
    /// an IP address host, a special-use name. Returns the parsed URL (what is then sent).
    pub fn check_url(&self, raw: &str) -> Result<Url, OutboundError> {
        let invalid = |m: &str| Err(OutboundError::InvalidUrl(m.to_owned()));
        let raw = raw.trim();
        if raw.len() > MAX_URL_LEN {
            return invalid(&format!("longer than {MAX_URL_LEN} bytes"));
        }
        let url = match Url::parse(raw) {
            Ok(u) => u,
            Err(e) => return Err(OutboundError::InvalidUrl(format!("not a URL: {e}"))),
        };
        if !matches!(url.scheme(), "https" | "http") {
            return invalid("the scheme must be https");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return invalid("must not contain a user name or password");
        }
        let allowed = match url.host() {
            None => return invalid("has no host"),
            Some(Host::Ipv4(ip)) => {
                self.check_ip(ip.into(), || ip.to_string())?;
                self.allows_ip(ip.into())
            }
            Some(Host::Ipv6(ip)) => {
                self.check_ip(ip.into(), || format!("[{ip}]"))?;
                self.allows_ip(ip.into())
            }
            Some(Host::Domain(name)) => {
                let allowed = self.allows_name(name);
                if !allowed && let Some(reason) = special_name(&normalize_name(name)) {
                    return Err(OutboundError::NotPublic {
                        host: name.to_owned(),
                        reason,
                    });
                }
                allowed
            }
        };
        if url.scheme() == "http" && !allowed {
            return invalid("must use https");
        }
        Ok(url)
    }

    /// [`Self::check_url`], then resolves a host name and checks every address it has (when
    /// a URL is accepted; requests are checked again by [`Client`]'s resolver).
    pub async fn check_url_resolving(&self, raw: &str) -> Result<Url, OutboundError> {
        let url = self.check_url(raw)?;
        if let Some(Host::Domain(name)) = url.host() {
            self.resolve(name, &system_lookup(), RESOLVE_TIMEOUT)
                .await?;
        }
        Ok(url)
    }

    /// The addresses of `name`, all public (or allowed); an error naming the first that is not.
    async fn resolve(
        &self,
        name: &str,
        lookup: &Lookup,
        timeout: Duration,
    ) -> Result<Vec<IpAddr>, OutboundError> {
        let normalized = normalize_name(name);
        let allowed = self.allows_name(&normalized);
        if !allowed && let Some(reason) = special_name(&normalized) {
            return Err(OutboundError::NotPublic {
                host: normalized,
                reason,
            });
        }
        let unresolved = |reason: String| OutboundError::Unresolved {
            host: normalized.clone(),
            reason,
        };
        let addrs = match tokio::time::timeout(timeout, lookup(normalized.clone())).await {
            Err(_) => return Err(unresolved(format!("no answer within {timeout:?}"))),
            Ok(Err(e)) => return Err(unresolved(e.to_string())),
            Ok(Ok(addrs)) if addrs.is_empty() => return Err(unresolved("no addresses".into())),
            Ok(Ok(addrs)) => addrs,
        };
        if !allowed {
            for ip in &addrs {
                self.check_ip(*ip, || format!("{normalized} ({ip})"))?;
            }
        }
        Ok(addrs)
    }
}

/// reqwest's resolver for [`Client`]: resolves, then refuses the whole name if any address is
/// not public, so the connection can only go to checked addresses.
struct Resolver {
    policy: Policy,
    lookup: Lookup,
    timeout: Duration,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, lookup, timeout) = (self.policy.clone(), self.lookup.clone(), self.timeout);
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&name, &lookup, timeout).await?;
            let addrs: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// An HTTP client for user-chosen URLs (see the module docs).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    policy: Policy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client under `policy` whose requests take at most `timeout` in all.
    pub fn new(policy: Policy, timeout: Duration) -> Result<Self, reqwest::Error> {
        Self::with_lookup(policy, timeout, system_lookup())
    }

    fn with_lookup(
        policy: Policy,
        timeout: Duration,
        lookup: Lookup,
    ) -> Result<Self, reqwest::Error> {
        let connect = timeout.min(CONNECT_TIMEOUT);
        let resolver = Resolver {
            policy: policy.clone(),
            lookup,
            timeout: connect,
        };
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(connect)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .build()?;
        Ok(Self { http, policy })
    }

    /// What this client may reach besides public addresses.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A `POST` to `url`, after [`Policy::check_url`].
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, OutboundError> {
        let url = self.policy.check_url(url)?;
        Ok(self.http.post(url))
    }
}

/// The refusal behind a failed request, when the resolver refused the name.
pub fn refusal(e: &reqwest::Error) -> Option<&OutboundError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<OutboundError>() {
            return Some(refused);
        }
        source = s.source();
    }
    None
}

/// At most `limit` bytes of `response`'s body (what was read before an error, if any).
pub async fn read_capped(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &Policy, url: &str) -> OutboundError {
        match policy.check_url(url) {
            Err(e) => e,
            Ok(u) => panic!("{url} was accepted as {u}"),
        }
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        let p = Policy::default();
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://2852039166/",
            "https://0xa9fea9fe/",
            "https://0251.0376.0251.0376/",
            "https://169.254.43518/",
            "https://127.1/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://127.0.0.1:8443/",
            "https://0.0.0.0/",
            "https://0/",
            "https://10.0.0.1/",
            "https://172.31.255.255/",
            "https://192.168.0.10/",
            "https://100.100.100.200/",
            "https://192.0.0.192/",
            "https://198.19.1.1/",
            "https://224.0.0.251/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:8.8.8.8]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[64:ff9b:1::1]/",
            "https://[fe80::1]/",
            "https://[fd00:ec2::254]/",
            "https://[fc00::1]/",
            "https://[fec0::1]/",
            "https://[ff02::1]/",
            "https://[2001:db8::1]/",
            "https://[2001::1]/",
            "https://[2002:a9fe:a9fe::]/",
            "https://[100::1]/",
            "https://[4000::1]/",
        ] {
            assert!(
                matches!(refused(&p, url), OutboundError::NotPublic { .. }),
                "{url}: {:?}",
                p.check_url(url)
            );
        }
    }

    #[test]
    fn special_names_are_refused_before_any_lookup() {
        let p = Policy::default();
        for url in [
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://metadata/",
            "https://instance-data/",
            "https://printer.local/",
            "https://nas.home.arpa/",
            "https://router.lan/",
        ] {
            assert!(
                matches!(refused(&p, url), OutboundError::NotPublic { .. }),
                "{url}"
            );
        }
    }

    #[test]
    fn url_rules_scheme_userinfo_length() {
        let p = Policy::default();
        assert!(p.check_url("https://hooks.example.com/a?b=c").is_ok());
        assert!(p.check_url("https://93.184.215.14/hook").is_ok());
        assert!(p.check_url("https://[2606:2800:220:1::1]/hook").is_ok());
        let message = |url: &str| refused(&p, url).to_string();
        assert!(message("http://hooks.example.com/x").contains("https"));
        assert!(message("ftp://hooks.example.com/x").contains("scheme"));
        assert!(message("file:///etc/passwd").contains("scheme"));
        assert!(message("https://user:pw@hooks.example.com/x").contains("user name"));
        assert!(message("not a url").contains("not a URL"));
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(message(&long).contains("longer"));
        // Errors name the host, never the path or query.
        let m = message("https://127.0.0.1/hook?token=s3cret");
        assert!(m.contains("127.0.0.1") && !m.contains("s3cret"), "{m}");
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in [
            "8.8.8.8",
            "93.184.215.14",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:81b::200e",
        ] {
            assert_eq!(classify(ip.parse().unwrap()), None, "{ip}");
        }
        assert!(
            classify("169.254.169.254".parse().unwrap())
                .unwrap()
                .contains("metadata")
        );
    }

    #[test]
    fn the_allow_list_exempts_exactly_what_it_names() {
        let p: Policy = " 127.0.0.1, localhost ,10.1.0.0/16,[::1]".parse().unwrap();
        assert!(!p.is_empty());
        assert!(p.check_url("http://127.0.0.1:9/x").is_ok());
        assert!(p.check_url("http://localhost:8080/x").is_ok());
        assert!(p.check_url("https://10.1.2.3/x").is_ok());
        assert!(p.check_url("http://[::1]/x").is_ok());
        assert!(p.check_url("http://127.0.0.2/x").is_err());
        assert!(p.check_url("https://10.2.0.1/x").is_err());
        assert!(p.check_url("http://hooks.example.com/x").is_err());
        assert!("a b".parse::<Policy>().is_err());
        assert!("".parse::<Policy>().unwrap().is_empty());
    }

    #[test]
    fn the_deployed_template_never_sets_an_allow_list() {
        let template = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
        )
        .unwrap();
        assert!(
            template.contains("AlertDispatchFunction"),
            "the SAM template"
        );
        assert!(!template.contains("OUTBOUND_ALLOW_HOSTS"));
    }

    fn table(entries: &[(&'static str, &'static [&'static str])]) -> Lookup {
        let map: std::collections::HashMap<&'static str, Vec<IpAddr>> = entries
            .iter()
            .map(|(k, v)| (*k, v.iter().map(|a| a.parse().unwrap()).collect()))
            .collect();
        let map = Arc::new(map);
        Arc::new(move |host: String| -> LookupFuture {
            let found = map.get(host.as_str()).cloned();
            Box::pin(async move { found.ok_or_else(|| std::io::Error::other("no such host")) })
        })
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let lookup = table(&[
            ("rebind.example.com", &["10.0.0.7"]),
            ("mixed.example.com", &["93.184.215.14", "127.0.0.1"]),
            (
                "public.example.com",
                &["93.184.215.14", "2606:2800:220:1::1"],
            ),
            ("v6.example.com", &["::ffff:169.254.169.254"]),
        ]);
        let p = Policy::default();
        let t = Duration::from_secs(1);
        let err = p
            .resolve("rebind.example.com", &lookup, t)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rebind.example.com (10.0.0.7) is not a public address: private (10.0.0.0/8)"
        );
        assert!(p.resolve("mixed.example.com", &lookup, t).await.is_err());
        assert!(p.resolve("v6.example.com", &lookup, t).await.is_err());
        assert_eq!(
            p.resolve("Public.Example.com.", &lookup, t)
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            p.resolve("nowhere.example.com", &lookup, t).await,
            Err(OutboundError::Unresolved { .. })
        ));
        let slow: Lookup = Arc::new(|_| -> LookupFuture {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(vec![])
            })
        });
        let err = p
            .resolve("slow.example.com", &slow, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no answer"), "{err}");
        let allowed: Policy = "10.0.0.7".parse().unwrap();
        assert!(
            allowed
                .resolve("rebind.example.com", &lookup, t)
                .await
                .is_ok()
        );
    }

    /// The client's own resolver is what the connection uses: a name that resolves to the
    /// loopback listener is refused, and nothing connects to it.
    #[tokio::test]
    async fn the_client_never_connects_to_a_name_resolving_inside() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(500), listener.accept())
                .await
                .is_ok()
        });
        let lookup = table(&[("hooks.example.com", &["127.0.0.1"])]);
        let client =
            Client::with_lookup(Policy::default(), Duration::from_secs(2), lookup).unwrap();
        let err = client
            .post(&format!("https://hooks.example.com:{port}/hook?token=t"))
            .unwrap()
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            refusal(&err),
            Some(&OutboundError::NotPublic {
                host: "hooks.example.com (127.0.0.1)".into(),
                reason: "loopback (127.0.0.0/8)",
            })
        );
        assert!(
            !accepted.await.unwrap(),
            "no connection reached the listener"
        );
    }
}
