//! `?access_token=`, taken out of the URI before anything can log it.
//!
//! An `EventSource` cannot set headers, so a subscriber may put its token in the query. A
//! URI is what every access log prints, so the outermost layer of the router lifts the token
//! out — into a [`QueryToken`] request extension — and rewrites the URI without it. Tracing
//! spans, handlers and anything else that prints a URI then never see it: redaction by
//! construction rather than by remembering to filter each log line. The rest of the query is
//! kept byte for byte.

use axum::extract::Request;
use axum::http::Uri;
use axum::http::uri::PathAndQuery;
use axum::middleware::Next;
use axum::response::Response;

/// The query parameter a subscriber may carry its token in (RFC 6750 §2.3's name).
pub const ACCESS_TOKEN_QUERY: &str = "access_token";

/// The token that was in the query, for [`super::caller::Caller`].
#[derive(Debug, Clone)]
pub struct QueryToken(pub String);

/// The middleware: lift `access_token` out of the URI into a [`QueryToken`].
pub async fn lift(mut request: Request, next: Next) -> Response {
    if let Some((token, uri)) = take_token(request.uri()) {
        *request.uri_mut() = uri;
        request.extensions_mut().insert(QueryToken(token));
    }
    next.run(request).await
}

/// The first `access_token` value (decoded as `Query` would) and the URI without any
/// `access_token` pair; `None` when the query has none.
pub fn take_token(uri: &Uri) -> Option<(String, Uri)> {
    let query = uri.query()?;
    let mut token = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match form_urlencoded::parse(pair.as_bytes()).next() {
            Some((key, value)) if key == ACCESS_TOKEN_QUERY => {
                token.get_or_insert_with(|| value.into_owned());
            }
            _ => kept.push(pair),
        }
    }
    let token = token?;
    let path_and_query = if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    // The pieces came from a valid URI, so this parses; if it ever did not, a bare path
    // (losing the rest of the query) is still better than a URI that holds the token.
    let rebuilt = PathAndQuery::try_from(path_and_query.as_str())
        .or_else(|_| PathAndQuery::try_from(uri.path()))
        .unwrap_or_else(|_| PathAndQuery::from_static("/"));
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(rebuilt);
    let uri = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
    Some((token, uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(uri: &str) -> Option<(String, String)> {
        let uri: Uri = uri.parse().expect("uri");
        take_token(&uri).map(|(token, uri)| (token, uri.to_string()))
    }

    #[test]
    fn the_token_leaves_and_the_rest_of_the_query_stays() {
        assert_eq!(
            take("/sse/topics/a?access_token=abc.def&lastEventId=3"),
            Some(("abc.def".into(), "/sse/topics/a?lastEventId=3".into()))
        );
        assert_eq!(
            take("/sse/demo?id=x&access_token=t&retry=5"),
            Some(("t".into(), "/sse/demo?id=x&retry=5".into()))
        );
        assert_eq!(take("/p?access_token=t"), Some(("t".into(), "/p".into())));
        assert_eq!(
            take("https://h:1/p?a=%20b&access_token=t"),
            Some(("t".into(), "https://h:1/p?a=%20b".into()))
        );
    }

    #[test]
    fn encoded_names_and_repeats_are_all_taken_out() {
        assert_eq!(
            take("/p?access%5Ftoken=one&x=1&access_token=two"),
            Some(("one".into(), "/p?x=1".into()))
        );
        assert_eq!(
            take("/p?access_token=a%2Bb"),
            Some(("a+b".into(), "/p".into()))
        );
    }

    #[test]
    fn no_token_no_change() {
        assert_eq!(take("/p"), None);
        assert_eq!(take("/p?access_tokens=1&token=2"), None);
    }
}
