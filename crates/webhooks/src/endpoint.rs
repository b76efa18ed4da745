use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::WebhookError;

/// The longest endpoint URL accepted, in bytes of the text given.
pub const MAX_URL_LENGTH: usize = 2048;

/// Checks an endpoint URL a user entered before anything is sent to it.
///
/// Only https, no user name or password, and no IP literal that points into a private,
/// link-local, loopback or otherwise non-public range, so that webhooks cannot be aimed
/// at the server's own network. `allow_loopback` (development, tests) lets loopback
/// hosts through, over plain http too. Host names are not resolved here: the
/// [`Deliverer`](crate::Deliverer) refuses a name that resolves to such an address when it
/// connects.
pub fn validate_endpoint_url(raw: &str, allow_loopback: bool) -> Result<Url, WebhookError> {
    if raw.len() > MAX_URL_LENGTH {
        return Err(WebhookError::UrlTooLong {
            max: MAX_URL_LENGTH,
        });
    }
    let url = Url::parse(raw.trim()).map_err(|e| WebhookError::InvalidUrl(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookError::UserInfo);
    }
    let host = url
        .host()
        .ok_or_else(|| WebhookError::InvalidUrl("no host".into()))?;
    let loopback = is_loopback(&host);
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback && loopback => {}
        "http" => return Err(WebhookError::InsecureScheme),
        other => {
            return Err(WebhookError::InvalidUrl(format!(
                "unsupported scheme {other}"
            )));
        }
    }
    if loopback && allow_loopback {
        return Ok(url);
    }
    if loopback || is_non_public_ip(&host) {
        return Err(WebhookError::ForbiddenHost(host.to_string()));
    }
    Ok(url)
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.');
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn is_non_public_ip(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(_) => false,
        Host::Ipv4(ip) => is_non_public_v4(*ip),
        Host::Ipv6(ip) => is_non_public_v6(*ip),
    }
}

/// Whether a resolved address may receive webhooks: public ones, and loopback ones when
/// `allow_loopback`.
pub(crate) fn may_connect_to(ip: std::net::IpAddr, allow_loopback: bool) -> bool {
    let non_public = match ip {
        std::net::IpAddr::V4(v4) => is_non_public_v4(v4),
        std::net::IpAddr::V6(v6) => is_non_public_v6(v6),
    };
    let loopback = match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    !non_public || (allow_loopback && loopback)
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64.0.0/10
}

fn is_non_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_non_public_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str, allow_loopback: bool) -> WebhookError {
        validate_endpoint_url(raw, allow_loopback).unwrap_err()
    }

    #[test]
    fn accepts_public_https() {
        for raw in [
            "https://example.com/hooks?x=1",
            "https://8.8.8.8/",
            "https://[2001:db8::1]:8443/h",
        ] {
            let url = validate_endpoint_url(raw, false).unwrap();
            assert_eq!(url.scheme(), "https");
        }
    }

    #[test]
    fn refuses_plain_http_except_loopback_when_allowed() {
        assert_eq!(
            refused("http://example.com/", false),
            WebhookError::InsecureScheme
        );
        assert_eq!(
            refused("http://example.com/", true),
            WebhookError::InsecureScheme
        );
        assert_eq!(
            refused("http://10.0.0.1/", true),
            WebhookError::InsecureScheme
        );
        assert!(matches!(
            refused("http://127.0.0.1:8080/", false),
            WebhookError::InsecureScheme
        ));
        for raw in [
            "http://127.0.0.1:8080/h",
            "http://[::1]/",
            "http://localhost:3000/",
            "https://localhost/",
        ] {
            assert!(validate_endpoint_url(raw, true).is_ok(), "{raw}");
        }
    }

    #[test]
    fn refuses_non_public_addresses() {
        let cases = [
            "https://127.0.0.1/",
            "https://localhost/",
            "https://[::1]/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://0.0.0.0/",
            "https://100.64.0.1/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://0x7f.1/",
        ];
        for raw in cases {
            assert!(
                matches!(refused(raw, false), WebhookError::ForbiddenHost(_)),
                "{raw}"
            );
        }
        // Loopback is the only exception the flag makes.
        assert!(matches!(
            refused("https://192.168.1.1/", true),
            WebhookError::ForbiddenHost(_)
        ));
        assert!(matches!(
            refused("https://169.254.169.254/", true),
            WebhookError::ForbiddenHost(_)
        ));
    }

    #[test]
    fn refuses_userinfo_length_and_junk() {
        assert_eq!(
            refused("https://user:pw@example.com/", false),
            WebhookError::UserInfo
        );
        assert_eq!(
            refused("https://user@example.com/", false),
            WebhookError::UserInfo
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert_eq!(
            refused(&long, false),
            WebhookError::UrlTooLong {
                max: MAX_URL_LENGTH
            }
        );
        assert!(matches!(
            refused("not a url", false),
            WebhookError::InvalidUrl(_)
        ));
        assert!(matches!(
            refused("ftp://example.com/", false),
            WebhookError::InvalidUrl(_)
        ));
        assert!(matches!(
            refused("file:///etc/passwd", false),
            WebhookError::InvalidUrl(_)
        ));
    }
}
