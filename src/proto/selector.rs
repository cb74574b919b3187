//! Identity selectors and their validation.
//!
//! A selector is system-assigned (no id) or one user-assigned id: client id, object (principal)
//! id or ARM resource id. The type allows exactly one kind, so the SDKs' "more than one id"
//! errors cannot happen. Before anything is sent, [`IdentitySelector::validate`] refuses an
//! empty id and ids with whitespace or control characters; like every SDK it does not check
//! the format (GUID, ARM path), because the values are percent-encoded on the wire and the
//! service is the authority on what exists. Which wire parameter each kind becomes, and which
//! sources refuse which kinds, is in the [`crate::proto::spec`] module docs.
//!
//! System-assigned means "no user-assigned id given": the platform default, which is
//! `DEFAULT_IDENTITY_CLIENT_ID` on Azure ML and `AZURE_CLIENT_ID` for workload identity.

use super::error::Error;

/// Which identity to ask for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdentitySelector {
    /// No user-assigned id: the resource's own identity or the platform default.
    SystemAssigned,
    /// A user-assigned identity by client id.
    ClientId(String),
    /// A user-assigned identity by object (principal) id.
    ObjectId(String),
    /// A user-assigned identity by ARM resource id.
    ResourceId(String),
}

/// The kind of a selector, without its value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SelectorKind {
    /// See [`IdentitySelector::SystemAssigned`].
    SystemAssigned,
    /// See [`IdentitySelector::ClientId`].
    ClientId,
    /// See [`IdentitySelector::ObjectId`].
    ObjectId,
    /// See [`IdentitySelector::ResourceId`].
    ResourceId,
}

impl SelectorKind {
    /// How messages name this kind.
    pub fn describe(self) -> &'static str {
        match self {
            SelectorKind::SystemAssigned => "the system-assigned identity",
            SelectorKind::ClientId => "a user-assigned identity by client id",
            SelectorKind::ObjectId => "a user-assigned identity by object id",
            SelectorKind::ResourceId => "a user-assigned identity by resource id",
        }
    }
}

impl IdentitySelector {
    /// The selector's kind.
    pub fn kind(&self) -> SelectorKind {
        match self {
            IdentitySelector::SystemAssigned => SelectorKind::SystemAssigned,
            IdentitySelector::ClientId(_) => SelectorKind::ClientId,
            IdentitySelector::ObjectId(_) => SelectorKind::ObjectId,
            IdentitySelector::ResourceId(_) => SelectorKind::ResourceId,
        }
    }

    /// The id, or `""` for system-assigned.
    pub fn value(&self) -> &str {
        match self {
            IdentitySelector::SystemAssigned => "",
            IdentitySelector::ClientId(v)
            | IdentitySelector::ObjectId(v)
            | IdentitySelector::ResourceId(v) => v,
        }
    }

    /// Rejects empty ids and ids with whitespace or control characters. No SDK checks more;
    /// the values are percent-encoded on the wire, so any other character is safe.
    pub fn validate(&self) -> Result<(), Error> {
        let kind = self.kind();
        if kind == SelectorKind::SystemAssigned {
            return Ok(());
        }
        let value = self.value();
        if value.is_empty() {
            return Err(Error::invalid_argument(format!(
                "the id for {} is empty; pass the id, or use system-assigned",
                kind.describe()
            )));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid_argument(format!(
                "the id for {} contains whitespace or control characters; pass the id exactly as Azure shows it",
                kind.describe()
            )));
        }
        Ok(())
    }
}
