//! `--cors-origin`, parsed once: which page origins may read sselab's answers. The HTTP
//! layer's CORS middleware is built from it, and so are the listener's own answers to a
//! connection over a cap ([`super::refusal`]), which are written before any route runs: a
//! cross-origin EventSource that gets an answer without `Access-Control-Allow-Origin` sees a
//! CORS failure, which both Chromium and Firefox treat as final (measured; README).

use http::{HeaderValue, Uri};

/// The origins allowed by CORS: any, or these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    Any,
    List(Vec<HeaderValue>),
}

impl AllowedOrigins {
    /// Parse `--cors-origin`: `*` or a comma-separated list of origins.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim() == "*" {
            return Ok(Self::Any);
        }
        let origins = text
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|origin| {
                let valid = origin.parse::<Uri>().is_ok_and(|uri| {
                    uri.scheme().is_some() && uri.host().is_some() && uri.path() == "/"
                });
                if valid && !origin.ends_with('/') {
                    HeaderValue::from_str(origin).map_err(|e| e.to_string())
                } else {
                    Err(format!(
                        "`{origin}` is not an origin like https://example.com:8443"
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if origins.is_empty() {
            return Err("give `*` or at least one origin".into());
        }
        Ok(Self::List(origins))
    }

    /// The CORS lines of an answer to a request from `origin` (its `Origin` header, if it
    /// sent one), each ending in CRLF: what the HTTP layer's CORS middleware would add.
    pub fn header_lines(&self, origin: Option<&[u8]>) -> String {
        match self {
            Self::Any => "access-control-allow-origin: *\r\n".to_string(),
            Self::List(allowed) => {
                let echoed = origin
                    .filter(|origin| allowed.iter().any(|a| a.as_bytes() == *origin))
                    .and_then(|origin| std::str::from_utf8(origin).ok())
                    .map(|origin| format!("access-control-allow-origin: {origin}\r\n"));
                format!("{}vary: origin\r\n", echoed.unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_allows_everyone_and_a_list_echoes_only_its_own() {
        assert_eq!(
            AllowedOrigins::parse(" * ").map(|o| o.header_lines(None)),
            Ok("access-control-allow-origin: *\r\n".to_string())
        );
        let list = AllowedOrigins::parse("https://a.example, http://b:8080").expect("valid");
        assert_eq!(
            list.header_lines(Some(b"http://b:8080")),
            "access-control-allow-origin: http://b:8080\r\nvary: origin\r\n"
        );
        assert_eq!(
            list.header_lines(Some(b"https://evil.example")),
            "vary: origin\r\n"
        );
        assert_eq!(list.header_lines(None), "vary: origin\r\n");
    }

    #[test]
    fn what_is_not_an_origin_is_named() {
        for bad in [
            "https://a.example/",
            "a.example",
            "https://a.example/path",
            " , ",
        ] {
            let error = AllowedOrigins::parse(bad).expect_err(bad);
            assert!(
                error.contains("is not an origin") || error.contains("at least one"),
                "{bad}: {error}"
            );
        }
    }
}
