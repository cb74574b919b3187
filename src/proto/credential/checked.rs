//! The last scope and selector [`super::ManagedIdentity::cached`] checked. Checking a scope
//! (no control characters or whitespace, a resource before `/.default`) and a selector (a
//! non-empty id without whitespace) depends on nothing but the two strings, so a call that
//! repeats the last pair — what every host does on its hot path — skips both checks and the
//! resource derivation and compares two strings instead. Buffers are reused, so after the
//! first call of a given length nothing is allocated, even when a host alternates scopes.

use crate::proto::error::Error;
use crate::proto::scope::resource_from_scope;
use crate::proto::selector::{IdentitySelector, SelectorKind};
use crate::proto::text_eq::same_text;

/// A scope and selector that passed the checks, and the length of the scope's resource.
#[derive(Debug, Default)]
pub(super) struct LastChecked {
    scope: String,
    kind: Option<SelectorKind>,
    id: String,
    resource_len: usize,
}

impl LastChecked {
    /// The resource `scope` names, after checking `scope` and `selector` unless they are the
    /// pair checked last time.
    pub(super) fn resource<'s>(
        &mut self,
        scope: &'s str,
        selector: &IdentitySelector,
    ) -> Result<&'s str, Error> {
        let kind = selector.kind();
        if self.kind == Some(kind)
            && same_text(&self.scope, scope)
            && same_text(&self.id, selector.value())
        {
            return Ok(&scope[..self.resource_len]);
        }
        let resource = resource_from_scope(scope)?;
        selector.validate()?;
        self.kind = Some(kind);
        self.scope.clear();
        self.scope.push_str(scope);
        self.id.clear();
        self.id.push_str(selector.value());
        self.resource_len = resource.len();
        Ok(resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAULT: &str = "https://vault.azure.net/.default";

    /// The remembered pair never lets a different scope or selector skip its checks: a bad
    /// scope after a good one, a bad id after a good one, each is refused.
    #[test]
    fn a_remembered_pair_never_lets_another_scope_or_selector_skip_its_checks() {
        let mut last = LastChecked::default();
        let system = IdentitySelector::SystemAssigned;
        assert_eq!(
            last.resource(VAULT, &system).unwrap(),
            "https://vault.azure.net"
        );
        assert_eq!(
            last.resource(VAULT, &system).unwrap(),
            "https://vault.azure.net"
        );
        assert!(
            last.resource("https://vault.azure.net/.default x", &system)
                .is_err()
        );
        let good = IdentitySelector::ClientId("2222".into());
        assert!(last.resource(VAULT, &good).is_ok());
        let bad = IdentitySelector::ClientId("22 22".into());
        assert!(last.resource(VAULT, &bad).is_err());
        let other_kind = IdentitySelector::ObjectId("2222".into());
        assert!(last.resource(VAULT, &other_kind).is_ok());
        assert!(last.resource("", &system).is_err());
        // The error path did not overwrite the last good pair.
        assert_eq!(
            last.resource(VAULT, &other_kind).unwrap(),
            "https://vault.azure.net"
        );
    }

    /// Alternating scopes reuses the buffers: after the first round nothing grows.
    #[test]
    fn alternating_scopes_reuses_the_same_buffers() {
        let mut last = LastChecked::default();
        let system = IdentitySelector::SystemAssigned;
        let storage = "https://storage.azure.com/.default";
        for _ in 0..2 {
            last.resource(VAULT, &system).unwrap();
            last.resource(storage, &system).unwrap();
        }
        let capacity = last.scope.capacity();
        for _ in 0..100 {
            last.resource(VAULT, &system).unwrap();
            last.resource(storage, &system).unwrap();
        }
        assert_eq!(last.scope.capacity(), capacity);
        assert_eq!(
            last.resource(storage, &system).unwrap(),
            "https://storage.azure.com"
        );
    }
}
