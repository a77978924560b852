//! Names of workspaces, assets, endpoints, deployments and jobs, checked as Azure ML checks them.

use super::CatalogError;

/// Azure's rule for asset, endpoint and deployment names: starts with a letter, then letters,
/// digits, `-` and `_`, at most 255 characters (endpoints: 3-32, checked by [`check_endpoint`]).
/// No path characters, so a name is always one safe path segment.
pub fn check(kind: &str, name: &str) -> Result<(), CatalogError> {
    let bad = |why: &str| CatalogError::invalid(format!("{kind} name {name:?}"), why.to_string());
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(bad("is empty")),
        Some(c) if !c.is_ascii_alphabetic() => return Err(bad("must start with a letter")),
        _ => {}
    }
    if name.len() > 255 {
        return Err(bad("is longer than 255 characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(bad(&format!("holds {c:?}; use letters, digits, '-' and '_' only")));
    }
    Ok(())
}

/// Batch endpoint names: as [`check`], 3 to 32 characters, no `_` (they are part of a URL).
pub fn check_endpoint(name: &str) -> Result<(), CatalogError> {
    check("batch endpoint", name)?;
    let bad = |why: &str| CatalogError::invalid(format!("batch endpoint name {name:?}"), why.to_string());
    if !(3..=32).contains(&name.len()) {
        return Err(bad("must be 3 to 32 characters long"));
    }
    if name.contains('_') {
        return Err(bad("may not hold '_'; use '-'"));
    }
    Ok(())
}

/// Versions: digits, letters, `.`, `-` and `_`, at most 64 characters, not starting with `.`.
pub fn check_version(kind: &str, version: &str) -> Result<(), CatalogError> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && !version.starts_with('.')
        && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::invalid(
            format!("{kind} version {version:?}"),
            "use digits, letters, '.', '-' and '_' (such as 1 or 2024.1)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_safe_segment() {
        assert!(check("model", "iris-lgbm_2").is_ok());
        for bad in ["", "1abc", "a/b", "..", "a b", "a.b", "ä"] {
            assert!(check("model", bad).is_err(), "{bad:?}");
        }
        assert!(check_endpoint("my-endpoint").is_ok());
        assert!(check_endpoint("ab").is_err());
        assert!(check_endpoint("my_endpoint").is_err());
        assert!(check_version("model", "3").is_ok());
        assert!(check_version("model", "../1").is_err());
    }
}
