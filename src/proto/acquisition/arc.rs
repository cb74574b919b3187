//! The Azure Arc leg: the first request is answered with a 401 whose `WWW-Authenticate:
//! Basic realm=<path>` names a key file; the path is validated and rebuilt *before* the host
//! is asked to read it ([`crate::proto::arc::key_path`]); the key authorizes a second request,
//! and a second 401 is a failure (exactly one challenge round trip). A user-assigned identity
//! must be echoed back in the token response, or the token is refused (fail closed).

use super::{Acquisition, Stage};
use crate::proto::arc::{ARC_KEY_MAX_BYTES, authorization, key_path};
use crate::proto::files::FileRead;
use crate::proto::http::{Header, HttpResponse};
use crate::proto::response::Echo;
use crate::proto::secret::Secret;
use crate::proto::selector::SelectorKind;
use crate::proto::source::Source;

impl Acquisition {
    /// The 401 challenge: ask to read the key file it names, once validated.
    pub(super) fn on_arc_challenge(&mut self, response: &HttpResponse) {
        match key_path(response.header("www-authenticate")) {
            Ok(path) => self.read(
                FileRead {
                    path,
                    max_len: ARC_KEY_MAX_BYTES,
                    follow_symlinks: false,
                },
                Stage::ArcKey,
            ),
            Err(error) => self.finish(Err(error)),
        }
    }

    /// The key file's contents: send the authorized request.
    pub(super) fn on_arc_key(&mut self, contents: &[u8]) {
        match authorization(contents) {
            Ok(value) => {
                // The key itself: an agent may echo it without the `Basic ` prefix.
                let key = value.strip_prefix("Basic ").unwrap_or(&value);
                self.secrets.push(Secret(key.to_string()));
                let mut request = self.request.clone();
                request.headers.push(Header {
                    name: "Authorization",
                    value,
                    sensitive: true,
                });
                self.send(request, Stage::ArcAuthorized);
            }
            Err(error) => self.finish(Err(error)),
        }
    }

    /// The identity an Arc token response must name: a user-assigned selector's value, in
    /// the field the agent uses for that kind.
    pub(super) fn arc_echo(&self) -> Option<Echo<'_>> {
        if self.key.source != Source::AzureArc {
            return None;
        }
        let fields: &'static [&'static str] = match self.selector.kind() {
            SelectorKind::SystemAssigned => return None,
            SelectorKind::ClientId => &["client_id"],
            SelectorKind::ObjectId => &["object_id"],
            SelectorKind::ResourceId => &["msi_res_id", "mi_res_id"],
        };
        Some(Echo {
            fields,
            expected: self.selector.value(),
        })
    }
}
