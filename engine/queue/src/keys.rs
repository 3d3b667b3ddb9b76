//! The names of an installation's keys.
//!
//! Every key is `{prefix}:…`: the braces make the prefix a Redis Cluster hash tag, so all
//! keys of one installation hash to one slot and the multi-key and MULTI/EXEC pipelines of
//! this crate stay on one node. On a single server the braces are just characters.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub jobs: String,
    pub workers: String,
    pub completions: String,
    pub epoch: String,
    /// a glob matching every key of the installation (for SCAN, ACL key patterns)
    pub all: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        let tag = format!("{{{prefix}}}");
        Keys {
            jobs: format!("{tag}:jobs"),
            workers: format!("{tag}:workers"),
            completions: format!("{tag}:completions"),
            epoch: format!("{tag}:epoch"),
            all: format!("{tag}:*"),
        }
    }

    /// Why `prefix` cannot name an installation, if it cannot: a brace would change which
    /// part of the key Redis Cluster hashes, scattering the keys over slots; a glob
    /// character would make [`Keys::all`] match other installations' keys.
    pub fn check_prefix(prefix: &str) -> Result<(), String> {
        if prefix.is_empty() {
            return Err("the Redis key prefix is empty".into());
        }
        match prefix.chars().find(|c| matches!(c, '{' | '}' | '*' | '?' | '[' | ']' | '\\') || c.is_whitespace()) {
            Some(c) => Err(format!(
                "the Redis key prefix {prefix:?} contains {c:?}; use letters, digits, '-', '_', ':' or '.'"
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn every_key_carries_the_prefix_as_its_hash_tag() {
        let keys = Keys::new("crm");
        for key in [&keys.jobs, &keys.workers, &keys.completions, &keys.epoch] {
            assert!(key.starts_with("{crm}:"), "{key}");
        }
        assert_eq!(keys.all, "{crm}:*");
        assert!(Keys::check_prefix("crm-prod.eu").is_ok());
        for bad in ["", "a{b", "a}", "a*", "a b"] {
            assert!(Keys::check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
