//! Checks on the values people write in manifests. Each returns a sentence saying what is wrong,
//! which the manifest loader prefixes with the file, the object and the field.

/// A GUID in the 8-4-4-4-12 hex form Graph uses for tenant and object ids.
pub fn guid(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = parts.len() == 5 && parts.iter().zip(lens).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok { Ok(()) } else { Err(format!("{value:?} is not a GUID (expected 8-4-4-4-12 hexadecimal digits)")) }
}

/// A DNS domain name such as `fabrikam.com`: at least two labels of letters, digits and inner hyphens.
pub fn domain(value: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{value:?} is not a valid domain: {why}"));
    if value.is_empty() {
        return bad("it is empty");
    }
    if value.len() > 253 {
        return bad("it is longer than 253 characters");
    }
    let labels: Vec<&str> = value.split('.').collect();
    if labels.len() < 2 {
        return bad("it needs at least two labels, like fabrikam.com");
    }
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return bad("each label must have 1 to 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return bad("only letters, digits, hyphens and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label cannot start or end with a hyphen");
        }
    }
    Ok(())
}

/// An invitable email address, with the characters Graph rejects in the user name (graph-contract 1.1).
pub fn email(value: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{value:?} is not a valid email address: {why}"));
    let Some((local, dom)) = value.rsplit_once('@') else { return bad("it has no @") };
    if local.is_empty() {
        return bad("the part before @ is empty");
    }
    if local.len() > 64 {
        return bad("the part before @ is longer than 64 characters");
    }
    // Characters that look like nothing, or like another address: never part of an address.
    if let Some(c) = value.chars().find(|c| invisible(*c)) {
        return bad(&format!("it contains U+{:04X}, an invisible, spacing or text-direction character", c as u32));
    }
    // `+` tags (`first+tag@`) are addresses like any other; the rest of RFC 5322's symbols are refused, as
    // Entra refuses them in user names.
    const FORBIDDEN: &str = "~!#$%^&*()=[]{}\\/|;:\"<>?,@ ";
    if let Some(c) = local.chars().find(|c| FORBIDDEN.contains(*c) || c.is_control()) {
        return bad(&format!("the character {c:?} is not allowed before @"));
    }
    if local.starts_with(['.', '-']) || local.ends_with(['.', '-']) || local.contains("..") {
        return bad("a period or hyphen cannot start or end the part before @, nor two periods follow each other");
    }
    if !unicode_normalization::is_nfc(value) {
        return bad(
            "it is not in Unicode normal form C (a letter followed by a combining accent): write the accented letter itself",
        );
    }
    if let Some(c) = mixed_script(local) {
        return bad(&format!(
            "the part before @ mixes scripts (U+{:04X} {c:?} is not in the script of its other letters), as look-alike addresses do",
            c as u32
        ));
    }
    domain(dom).or_else(|e| bad(&e))
}

/// Format (Cf) characters such as zero-width spaces and joiners, bidi controls and marks, the byte order
/// mark, and every Unicode space other than nothing at all.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00A0}' | '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{2000}'..='\u{200F}' | '\u{2028}'..='\u{202F}' | '\u{205F}'..='\u{206F}'
        | '\u{3000}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
        || c.is_whitespace()
}

/// The first letter whose script differs from the local part's first letter (Common and Inherited
/// characters such as digits, `.` and `_` go with any script).
fn mixed_script(local: &str) -> Option<char> {
    use unicode_script::{Script, UnicodeScript};
    let mut first: Option<Script> = None;
    for c in local.chars() {
        let script = c.script();
        if matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
            continue;
        }
        match first {
            None => first = Some(script),
            Some(s) if s != script => return Some(c),
            Some(_) => {}
        }
    }
    None
}

/// The form in which two addresses are the same address: Unicode normal form C, then lowercase (full
/// Unicode case mapping, so `ÉLODIE@` and `élodie@` are one person).
pub fn address_key(value: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if value.is_ascii() {
        return value.to_ascii_lowercase();
    }
    value.nfc().collect::<String>().to_lowercase()
}

/// Whether two addresses are the same address (`address_key`).
pub fn same_address(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    address_key(a) == address_key(b)
}

/// An absolute http(s) URL, such as an invitation's redirect URL.
pub fn http_url(value: &str) -> Result<(), String> {
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("{value:?} is not an absolute http(s) URL")),
    }
}

/// A Kubernetes object name (RFC 1123 subdomain).
pub fn object_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(format!("{value:?} is not a valid object name (lowercase letters, digits, '-' and '.')")) }
}

/// A duration such as `30s`, `10m`, `1h30m` (units s, m, h, d), at least one second.
pub fn duration(value: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{value:?} is not a duration like 30s, 10m or 1h30m");
    let mut total = 0u64;
    let mut digits = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(guid("3f2504e0-4f89-41d3-9a0c-0305e82c3301").is_ok());
        assert!(guid("3F2504E0-4F89-41D3-9A0C-0305E82C3301").is_ok());
        for bad in [
            "",
            "not-a-guid",
            "3f2504e0-4f89-41d3-9a0c-0305e82c330",
            "3f2504e0a4f89-41d3-9a0c-0305e82c3301",
            "zf2504e0-4f89-41d3-9a0c-0305e82c3301",
        ] {
            assert!(guid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        for ok in [
            "alice@fabrikam.com",
            "a.b-c_d@sub.example.org",
            "x@a.io",
            "first+tag@contoso.com",
            "élodie@fabrikam.com",
            "данил@fabrikam.com",
        ] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        // Look-alikes: each refused naming the code point.
        for (bad, named) in [
            ("ali\u{200B}ce@fabrikam.com", "U+200B"),
            ("ali\u{200D}ce@fabrikam.com", "U+200D"),
            ("ali\u{00A0}ce@fabrikam.com", "U+00A0"),
            ("\u{202E}ecila@fabrikam.com", "U+202E"),
            ("alic\u{0435}@fabrikam.com", "U+0435"),
            ("e\u{0301}lodie@fabrikam.com", "normal form C"),
        ] {
            let e = email(bad).unwrap_err();
            assert!(e.contains(named), "{bad:?}: {e}");
        }
        assert_eq!(address_key("ÉLODIE@Fabrikam.com"), address_key("élodie@fabrikam.com"));
        for bad in [
            "alice",
            "@fabrikam.com",
            "alice@",
            "al!ce@fabrikam.com",
            ".alice@fabrikam.com",
            "alice-@fabrikam.com",
            "alice@localhost",
            "alice@fab_rikam.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains_and_urls() {
        assert!(domain("fabrikam.com").is_ok());
        assert!(domain("-fabrikam.com").is_err());
        assert!(domain("fabrikam").is_err());
        assert!(http_url("https://myapps.microsoft.com").is_ok());
        assert!(http_url("ftp://x").is_err());
        assert!(http_url("https://").is_err());
        assert!(object_name("contoso").is_ok());
        assert!(object_name("Contoso").is_err());
        assert_eq!(duration("1h30m").unwrap().as_secs(), 5400);
        assert!(duration("10").is_err() && duration("0s").is_err() && duration("5x").is_err());
    }
}
