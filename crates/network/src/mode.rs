//! `--network` modes as data for the engine.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModeError {
    #[error("invalid network mode {text:?}: 'container:' needs a container name or ID")]
    EmptyContainer { text: String },
    #[error("invalid network mode: empty")]
    Empty,
}

/// The name of the default network, and of its bridge device.
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "hull0";

/// What `--network` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// The default network (`bridge`, device `hull0`); also `default`.
    Bridge,
    /// A user-defined network, by name.
    Network(String),
    /// A network namespace of its own with only `lo`, up.
    None,
    /// The host's network namespace (nothing to set up; the policy decides whether
    /// it is allowed).
    Host,
    /// Another container's network namespace, by its name or ID.
    Container(String),
}

/// Which network namespace the container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsPlan {
    /// A new namespace, which [`crate::Manager::setup`] then fills in.
    New,
    /// No namespace of its own: the host's.
    Host,
    /// The namespace of this container (the engine resolves it to a path).
    Join(String),
}

impl NetworkMode {
    pub fn netns(&self) -> NetnsPlan {
        match self {
            NetworkMode::Bridge | NetworkMode::Network(_) | NetworkMode::None => NetnsPlan::New,
            NetworkMode::Host => NetnsPlan::Host,
            NetworkMode::Container(c) => NetnsPlan::Join(c.clone()),
        }
    }

    /// The network this mode attaches to, if any.
    pub fn network_name(&self) -> Option<&str> {
        match self {
            NetworkMode::Bridge => Some(DEFAULT_NETWORK),
            NetworkMode::Network(n) => Some(n),
            _ => None,
        }
    }
}

impl FromStr for NetworkMode {
    type Err = ModeError;

    fn from_str(text: &str) -> Result<Self, ModeError> {
        Ok(match text {
            "" => return Err(ModeError::Empty),
            "default" | DEFAULT_NETWORK => NetworkMode::Bridge,
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            _ => match text.strip_prefix("container:") {
                Some("") => {
                    return Err(ModeError::EmptyContainer {
                        text: text.to_owned(),
                    })
                }
                Some(c) => NetworkMode::Container(c.to_owned()),
                None => NetworkMode::Network(text.to_owned()),
            },
        })
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::Bridge => f.write_str(DEFAULT_NETWORK),
            NetworkMode::Network(n) => f.write_str(n),
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::Container(c) => write!(f, "container:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_modes() {
        assert_eq!("default".parse(), Ok(NetworkMode::Bridge));
        assert_eq!("bridge".parse(), Ok(NetworkMode::Bridge));
        assert_eq!("none".parse(), Ok(NetworkMode::None));
        assert_eq!("host".parse(), Ok(NetworkMode::Host));
        assert_eq!(
            "container:abc".parse(),
            Ok(NetworkMode::Container("abc".into()))
        );
        assert_eq!("mynet".parse(), Ok(NetworkMode::Network("mynet".into())));
        assert!("container:".parse::<NetworkMode>().is_err());
        assert_eq!(
            NetworkMode::Container("abc".into()).netns(),
            NetnsPlan::Join("abc".into())
        );
        assert_eq!(NetworkMode::Bridge.network_name(), Some("bridge"));
    }
}
