//! Hostname matching between listeners and routes, as the Gateway API specifies it.

/// Whether `name` is a valid hostname for a listener or route: lowercase DNS labels, optionally
/// prefixed by a `*.` wildcard label; no IP addresses, no port.
pub(crate) fn valid(name: &str) -> bool {
    let rest = name.strip_prefix("*.").unwrap_or(name);
    !rest.is_empty()
        && rest.len() <= 253
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !rest
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether the wildcard `pattern` (`*.example.com`) matches `host`: one or more labels before
/// the suffix.
fn wildcard_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => false,
    }
}

/// The hostnames a route serves on a listener: the intersection of the listener's hostname
/// and the route's hostnames. `None` means the route does not match the listener at all;
/// `Some(vec!["*"])` means every host.
pub(crate) fn intersect(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    let Some(l) = listener else {
        return Some(if route.is_empty() {
            vec!["*".to_owned()]
        } else {
            route.to_vec()
        });
    };
    if route.is_empty() {
        return Some(vec![l.to_owned()]);
    }
    let mut out = Vec::new();
    for r in route {
        let hit = if r == l || wildcard_matches(l, r) {
            Some(r.clone())
        } else if wildcard_matches(r, l) {
            Some(l.to_owned())
        } else {
            None
        };
        if let Some(h) = hit
            && !out.contains(&h)
        {
            out.push(h);
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn intersections() {
        assert_eq!(intersect(None, &[]), Some(v(&["*"])));
        assert_eq!(
            intersect(Some("a.example.com"), &[]),
            Some(v(&["a.example.com"]))
        );
        assert_eq!(
            intersect(Some("*.example.com"), &v(&["a.example.com", "b.other.com"])),
            Some(v(&["a.example.com"]))
        );
        assert_eq!(
            intersect(Some("a.example.com"), &v(&["*.example.com"])),
            Some(v(&["a.example.com"]))
        );
        assert_eq!(intersect(Some("*.example.com"), &v(&["example.com"])), None);
        assert_eq!(
            intersect(Some("a.example.com"), &v(&["b.example.com"])),
            None
        );
        assert_eq!(
            intersect(Some("*.example.com"), &v(&["*.a.example.com"])),
            Some(v(&["*.a.example.com"]))
        );
    }

    #[test]
    fn validity() {
        assert!(valid("api.example.com"));
        assert!(valid("*.example.com"));
        assert!(!valid("API.example.com"));
        assert!(!valid("10.0.0.1"));
        assert!(!valid("a..b"));
        assert!(!valid("*"));
        assert!(!valid("example.com:80"));
    }
}
