//! The default chain over the one loop: each link is a [`get_token`] call with the link's
//! settings ([`crate::proto::chain`] has the rules); the chain only decides what to try next.

use super::{Io, get_token};
use crate::proto::{AccessToken, DefaultChain, Error, ErrorKind, ManagedIdentity, TokenRequest};

/// One `get-token` through the default chain: the link that answered before (its cache
/// first, reading no environment), else every link `AZURE_TOKEN_CREDENTIALS` selects, in
/// order, moving on only when a link is unavailable.
pub fn get_token_default<T>(
    credential: &mut ManagedIdentity,
    chain: &mut DefaultChain,
    request: &TokenRequest<'_>,
    io: &mut impl Io,
    map: impl FnOnce(&AccessToken) -> T,
) -> Result<T, Error> {
    if let Some((link, links)) = chain.sticky() {
        let (selector, probe) = links.for_link(link, request.selector, request.probe);
        let call = TokenRequest {
            selector,
            probe,
            credential: link,
            ..*request
        };
        return get_token(credential, &call, io, map);
    }
    let links = DefaultChain::links(&io.env())?;
    let mut skipped = Vec::new();
    for link in links.iter() {
        let (selector, probe) = links.for_link(link, request.selector, request.probe);
        let call = TokenRequest {
            selector,
            probe,
            credential: link,
            ..*request
        };
        match get_token(credential, &call, io, AccessToken::clone) {
            Ok(token) => {
                chain.succeeded(link, links.clone());
                return Ok(map(&token));
            }
            Err(error) if error.kind() == ErrorKind::Unavailable => skipped.push((link, error)),
            Err(error) => return Err(error),
        }
    }
    Err(DefaultChain::exhausted(&skipped))
}
