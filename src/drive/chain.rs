//! The default chain over the one loop: each link is one ordinary call with the link's
//! settings ([`DefaultChain`] has the rules); the chain only decides what to try next.

use super::Io;
use crate::proto::{DefaultChain, Error, ErrorKind, Link, Links, ManagedIdentity, TokenRequest};

/// One `get-token` through the default chain: the link that answered before (its cache
/// first, reading no environment), else every link `AZURE_TOKEN_CREDENTIALS` selects, in
/// order, moving on only when a link is unavailable. `one` makes one call on one link: the
/// host's usual path ([`super::get_token`], or [`super::get_token_shared`] with a store),
/// mapping the token to what the caller returns (a cache hit is not copied first).
pub fn get_token_default<I: Io, T>(
    credential: &mut ManagedIdentity,
    chain: &mut DefaultChain,
    request: &TokenRequest<'_>,
    io: &mut I,
    mut one: impl FnMut(&mut ManagedIdentity, &TokenRequest<'_>, &mut I) -> Result<T, Error>,
) -> Result<T, Error> {
    if let Some((link, links)) = chain.sticky() {
        return one(credential, &link_call(links, link, request), io);
    }
    let links = DefaultChain::links(&io.env())?;
    let mut skipped = Vec::new();
    for link in links.iter() {
        match one(credential, &link_call(&links, link, request), io) {
            Ok(token) => {
                chain.succeeded(link, links.clone());
                return Ok(token);
            }
            Err(error) if error.kind() == ErrorKind::Unavailable => skipped.push((link, error)),
            Err(error) => return Err(error),
        }
    }
    Err(DefaultChain::exhausted(&skipped))
}

/// `request` as `link` of `links` makes it (its selector and probe flag).
fn link_call<'a>(links: &'a Links, link: Link, request: &TokenRequest<'a>) -> TokenRequest<'a> {
    let (selector, probe) = links.for_link(link, request.selector, request.probe);
    TokenRequest {
        selector,
        probe,
        credential: link,
        ..*request
    }
}
