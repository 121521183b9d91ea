//! Kafka principals (`User:alice`) and `ssl.principal.mapping.rules` (Kafka's `SslPrincipalMapper`).
//!
//! A TLS client's principal is `User:` + the mapped RFC 2253 subject DN of its certificate
//! (e.g. `CN=alice,OU=eng,O=acme`); the mapping rules are a comma-separated list of
//! `RULE:pattern/replacement/[LU]` and `DEFAULT` (the DN unchanged). The first rule whose pattern
//! matches the *whole* DN wins; it rewrites the DN with Java's `replaceAll` semantics and optionally
//! lower- (`/L`) or upper-cases (`/U`) the result. When no rule applies, authentication fails.
//!
//! Patterns are compiled with Rust's `regex` crate, not `java.util.regex`: look-around and
//! back-references inside patterns are not supported (rejected when the rules are parsed), and the
//! classes `\w`, `\d`, `\s` and `\b` are Unicode-aware (Java's are ASCII-only by default). Typical rules
//! (`^CN=(.*?),OU=(.*?),O=.*$`) behave identically. Replacements follow Java: `$n` (greedy digits up to
//! the group count), `${name}`, `\x` for a literal `x`; like Kafka, a `$n` beyond the group count is kept
//! literally. Unlike Kafka, a replacement that Java would reject only when applied (e.g. `$1` in a
//! pattern without groups) is rejected when the rules are parsed.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

/// The principal type of every principal Kafka's default principal builder makes.
pub const USER_TYPE: &str = "User";

/// The value of `ssl.principal.mapping.rules` when it is not set.
pub const DEFAULT_SSL_PRINCIPAL_MAPPING_RULES: &str = "DEFAULT";

/// `User:ANONYMOUS`: the principal of PLAINTEXT connections and of TLS clients without a certificate.
pub static ANONYMOUS: LazyLock<KafkaPrincipal> =
    LazyLock::new(|| KafkaPrincipal::user("ANONYMOUS"));

/// A Kafka principal: a type (always [`USER_TYPE`] for Kafka's built-in authentication) and a name.
/// `Display` and [`KafkaPrincipal::parse`] use Kafka's `Type:name` form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    /// The principal type, e.g. `"User"`.
    pub principal_type: String,
    /// The principal name, e.g. `"alice"` or `"CN=alice,O=acme"`.
    pub name: String,
}

impl KafkaPrincipal {
    /// A principal of any type.
    pub fn new(principal_type: impl Into<String>, name: impl Into<String>) -> Self {
        KafkaPrincipal {
            principal_type: principal_type.into(),
            name: name.into(),
        }
    }

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        Self::new(USER_TYPE, name)
    }

    /// Parses `Type:name` as Kafka's `SecurityUtils.parseKafkaPrincipal`: split at the first `:`
    /// (so the name may contain `:`; either part may be empty); no `:` at all is an error.
    pub fn parse(s: &str) -> Result<Self, PrincipalError> {
        let (principal_type, name) = s
            .split_once(':')
            .ok_or_else(|| PrincipalError::InvalidPrincipal(s.to_owned()))?;
        Ok(Self::new(principal_type, name))
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

impl FromStr for KafkaPrincipal {
    type Err = PrincipalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KafkaPrincipal::parse(s)
    }
}

/// Errors of this module (Kafka's texts where Kafka has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// A principal string without `:`.
    #[error("expected a string in format principalType:principalName but got {0}")]
    InvalidPrincipal(String),
    /// A mapping rule with text left over after `DEFAULT` or `RULE:pattern/replacement/[LU]`.
    #[error("Invalid rule: `{rule}`, unmatched substring: `{unmatched}`")]
    InvalidRule {
        /// The rule as split from the list.
        rule: String,
        /// The part that does not belong to it.
        unmatched: String,
    },
    /// A rule whose pattern does not compile or whose replacement refers to a missing group.
    #[error("Invalid rule: `{rule}`: {reason}")]
    InvalidRuleSyntax {
        /// The rule as split from the list.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No rule applies to the DN (Kafka's `NoMatchingRule`); the client fails authentication.
    #[error("No rules apply to {dn}, rules {rules}")]
    NoMatchingRule {
        /// The distinguished name that was mapped.
        dn: String,
        /// The rules, as `[RULE:..., DEFAULT]`.
        rules: String,
    },
}

/// Java's `\s`, and `.` (any character but a line terminator).
const JAVA_SPACE: &str = r"[ \t\n\x0B\f\r]";
const JAVA_DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";

/// Kafka's `RULE_PATTERN`:
/// `(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)`.
fn rule_pattern() -> String {
    format!(r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?){JAVA_DOT}*?|({JAVA_DOT}*?)")
}

/// Kafka's `RULE_SPLITTER`: `\s*(RULE_PATTERN)\s*(,\s*|$)`, used with `find()`.
static RULE_SPLITTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"{JAVA_SPACE}*({}){JAVA_SPACE}*(,{JAVA_SPACE}*|$)",
        rule_pattern()
    ))
    .expect("the rule splitter is a valid regex")
});

/// Kafka's `RULE_PARSER` (`RULE_PATTERN`), used with `lookingAt()`.
static RULE_PARSER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^(?:{})", rule_pattern())).expect("the rule parser is a valid regex")
});

/// One piece of a parsed replacement string.
#[derive(Debug, Clone)]
enum Piece {
    Literal(String),
    Group(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Pattern {
        /// The pattern as written (for `Display`).
        source: String,
        /// The pattern, for `replaceAll`.
        regex: Regex,
        /// `^(?:pattern)$`, for Java's `matches()`.
        whole: Regex,
        /// The replacement as written (for `Display`).
        replacement_source: String,
        replacement: Vec<Piece>,
        case: Case,
    },
}

impl Rule {
    fn parse_pattern(
        rule: &str,
        source: &str,
        replacement_source: &str,
        case: Case,
    ) -> Result<Rule, PrincipalError> {
        let syntax = |reason: String| PrincipalError::InvalidRuleSyntax {
            rule: rule.to_owned(),
            reason,
        };
        let regex = Regex::new(source).map_err(|e| syntax(e.to_string()))?;
        let whole = Regex::new(&format!("^(?:{source})$")).map_err(|e| syntax(e.to_string()))?;
        let groups = regex.captures_len() - 1;
        let names: HashMap<&str, usize> = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, name)| Some((name?, i)))
            .collect();
        let escaped = escape_literal_back_references(replacement_source, groups);
        let replacement = parse_replacement(&escaped, groups, &names).map_err(syntax)?;
        Ok(Rule::Pattern {
            source: source.to_owned(),
            regex,
            whole,
            replacement_source: replacement_source.to_owned(),
            replacement,
            case,
        })
    }

    /// The mapped name, or `None` when the rule does not apply.
    fn apply(&self, dn: &str) -> Option<String> {
        let Rule::Pattern {
            regex,
            whole,
            replacement,
            case,
            ..
        } = self
        else {
            return Some(dn.to_owned());
        };
        if !whole.is_match(dn) {
            return None;
        }
        // Java's replaceAll: every match from left to right; after an empty match the search moves
        // on one character, and an empty match right after a non-empty one counts too.
        let mut out = String::new();
        let mut copied = 0;
        let mut pos = 0;
        while pos <= dn.len() {
            let Some(caps) = regex.captures_at(dn, pos) else {
                break;
            };
            let Some(m) = caps.get(0) else {
                break;
            };
            out.push_str(&dn[copied..m.start()]);
            for piece in replacement {
                match piece {
                    Piece::Literal(text) => out.push_str(text),
                    Piece::Group(i) => {
                        if let Some(g) = caps.get(*i) {
                            out.push_str(g.as_str());
                        }
                    }
                }
            }
            copied = m.end();
            pos = if m.is_empty() {
                dn[m.end()..]
                    .chars()
                    .next()
                    .map_or(dn.len() + 1, |c| m.end() + c.len_utf8())
            } else {
                m.end()
            };
        }
        out.push_str(&dn[copied..]);
        Some(match case {
            Case::Keep => out,
            Case::Lower => out.to_lowercase(),
            Case::Upper => out.to_uppercase(),
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Default => f.write_str("DEFAULT"),
            Rule::Pattern {
                source,
                replacement_source,
                case,
                ..
            } => {
                let flag = match case {
                    Case::Keep => "",
                    Case::Lower => "L",
                    Case::Upper => "U",
                };
                write!(f, "RULE:{source}/{replacement_source}/{flag}")
            }
        }
    }
}

/// Kafka's `escapeLiteralBackReferences` (from Apache NiFi): a `$n` whose number exceeds the group
/// count is shortened digit by digit while it is ≥ 10; if it still exceeds the count, its `$` is
/// escaped so it stays literal. `$0…` is left alone; nothing changes when there are no groups.
fn escape_literal_back_references(replacement: &str, groups: usize) -> String {
    if groups == 0 {
        return replacement.to_owned();
    }
    let mut out = String::with_capacity(replacement.len() + 4);
    let mut rest = replacement;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && !after.starts_with('0') {
            // Compare digit strings without overflowing: shorten while > groups and ≥ 10.
            let mut number = &after[..digits];
            while number.len() > 1 && number.parse::<usize>().map_or(true, |n| n > groups) {
                number = &number[..number.len() - 1];
            }
            if number.parse::<usize>().map_or(true, |n| n > groups) {
                out.push('\\');
            }
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Java's `Matcher.appendReplacement` syntax, checked once up front: `\x` is a literal `x`, `$n`
/// takes digits while the number stays ≤ the group count, `${name}` a named group.
fn parse_replacement(
    replacement: &str,
    groups: usize,
    names: &HashMap<&str, usize>,
) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let escaped = chars
                    .next()
                    .ok_or_else(|| "character to be escaped is missing".to_owned())?;
                literal.push(escaped);
            }
            '$' => {
                let group = match chars.next() {
                    None => {
                        return Err("Illegal group reference: group index is missing".to_owned())
                    }
                    Some('{') => {
                        let mut name = String::new();
                        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_alphanumeric()) {
                            name.push(d);
                            chars.next();
                        }
                        if name.is_empty() {
                            return Err("named capturing group has 0 length name".to_owned());
                        }
                        if chars.next() != Some('}') {
                            return Err("named capturing group is missing trailing '}'".to_owned());
                        }
                        if name.starts_with(|d: char| d.is_ascii_digit()) {
                            return Err(format!(
                                "capturing group name {{{name}}} starts with digit character"
                            ));
                        }
                        *names
                            .get(name.as_str())
                            .ok_or_else(|| format!("No group with name {{{name}}}"))?
                    }
                    Some(d) => {
                        let mut number = d
                            .to_digit(10)
                            .ok_or_else(|| "Illegal group reference".to_owned())?
                            as usize;
                        while let Some(next) = chars.peek().and_then(|d| d.to_digit(10)) {
                            let candidate = number * 10 + next as usize;
                            if candidate > groups {
                                break;
                            }
                            number = candidate;
                            chars.next();
                        }
                        if number > groups {
                            return Err(format!("No group {number}"));
                        }
                        number
                    }
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Group(group));
            }
            other => literal.push(other),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// `ssl.principal.mapping.rules`: maps a certificate's RFC 2253 subject DN to a principal name.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

impl SslPrincipalMapper {
    /// Parses a rules value such as `RULE:^CN=(.*?),OU=(.*?),O=.*$/$1@$2/L,DEFAULT` (Kafka's
    /// `SslPrincipalMapper.fromRules`). Surrounding white space and empty entries are ignored, so an
    /// empty value gives a mapper that applies to nothing.
    pub fn from_rules(rules: &str) -> Result<Self, PrincipalError> {
        let trimmed = rules.trim_matches(|c: char| c <= ' ');
        let mut parsed = Vec::new();
        for caps in RULE_SPLITTER.captures_iter(trimmed) {
            let Some(rule) = caps.get(1).map(|m| m.as_str()) else {
                continue;
            };
            let Some(caps) = RULE_PARSER.captures(rule) else {
                return Err(PrincipalError::InvalidRule {
                    rule: rule.to_owned(),
                    unmatched: rule.to_owned(),
                });
            };
            let end = caps.get(0).map_or(0, |m| m.end());
            if end != rule.len() {
                return Err(PrincipalError::InvalidRule {
                    rule: rule.to_owned(),
                    unmatched: rule[end..].to_owned(),
                });
            }
            if caps.get(1).is_some() {
                parsed.push(Rule::Default);
            } else if let Some(pattern) = caps.get(2) {
                let replacement = caps.get(4).map_or("", |m| m.as_str());
                let case = match caps.get(6).map(|m| m.as_str()) {
                    Some("L") => Case::Lower,
                    Some("U") => Case::Upper,
                    _ => Case::Keep,
                };
                parsed.push(Rule::parse_pattern(
                    rule,
                    pattern.as_str(),
                    replacement,
                    case,
                )?);
            }
            // Anything else is an empty entry: ignored.
        }
        Ok(SslPrincipalMapper { rules: parsed })
    }

    /// The principal name for a DN: the result of the first rule that applies, or
    /// [`PrincipalError::NoMatchingRule`].
    pub fn map(&self, distinguished_name: &str) -> Result<String, PrincipalError> {
        self.rules
            .iter()
            .find_map(|rule| rule.apply(distinguished_name))
            .ok_or_else(|| PrincipalError::NoMatchingRule {
                dn: distinguished_name.to_owned(),
                rules: self.to_string(),
            })
    }
}

impl Default for SslPrincipalMapper {
    /// The `DEFAULT` rule only: the DN itself is the name.
    fn default() -> Self {
        SslPrincipalMapper {
            rules: vec![Rule::Default],
        }
    }
}

impl fmt::Display for SslPrincipalMapper {
    /// The rules as Java prints a list: `[RULE:^CN=(.*?),.*$/$1/L, DEFAULT]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{rule}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_parse_and_display() {
        let alice = KafkaPrincipal::user("alice");
        assert_eq!(alice.to_string(), "User:alice");
        assert_eq!(KafkaPrincipal::parse("User:alice"), Ok(alice.clone()));
        assert_eq!("User:alice".parse::<KafkaPrincipal>(), Ok(alice));
        assert_eq!(ANONYMOUS.to_string(), "User:ANONYMOUS");
        assert_eq!(*ANONYMOUS, KafkaPrincipal::new("User", "ANONYMOUS"));
        assert_eq!(
            KafkaPrincipal::parse("User:CN=a,O=b:c"),
            Ok(KafkaPrincipal::user("CN=a,O=b:c"))
        );
        assert_eq!(
            KafkaPrincipal::parse("Group:"),
            Ok(KafkaPrincipal::new("Group", ""))
        );
        assert_eq!(KafkaPrincipal::parse(":"), Ok(KafkaPrincipal::new("", "")));
        for bad in ["", "alice"] {
            let err = KafkaPrincipal::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("expected a string in format principalType:principalName but got {bad}")
            );
        }
    }

    // The cases of Kafka's SslPrincipalMapperTest.
    #[test]
    fn kafka_valid_rules() {
        for rules in [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
            "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
        ] {
            assert!(SslPrincipalMapper::from_rules(rules).is_ok(), "{rules}");
        }
    }

    #[test]
    fn kafka_invalid_rules() {
        for rules in [
            "default",
            "DEFAUL",
            "DEFAULT/L",
            "DEFAULT/U",
            "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
            "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        ] {
            assert!(
                matches!(
                    SslPrincipalMapper::from_rules(rules),
                    Err(PrincipalError::InvalidRule { .. })
                ),
                "{rules}"
            );
        }
        assert_eq!(
            SslPrincipalMapper::from_rules("DEFAULT/L")
                .unwrap_err()
                .to_string(),
            "Invalid rule: `DEFAULT/L`, unmatched substring: `/L`"
        );
    }

    #[test]
    fn kafka_mapper() {
        let rules = [
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
            "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
            "DEFAULT",
        ]
        .join(", ");
        let mapper = SslPrincipalMapper::from_rules(&rules).unwrap();
        assert_eq!(
            mapper.map("CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(),
            "duke"
        );
        assert_eq!(
            mapper
                .map("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US")
                .unwrap(),
            "duke@sme"
        );
        assert_eq!(
            mapper.map("cn=duke,ou=sme,dc=mycp,dc=com").unwrap(),
            "DUKE@SME"
        );
        assert_eq!(
            mapper
                .map("cN=duke,OU=JavaSoft,O=Sun Microsystems")
                .unwrap(),
            "DUKE"
        );
        assert_eq!(
            mapper.map("OU=JavaSoft,O=Sun Microsystems,C=US").unwrap(),
            "OU=JavaSoft,O=Sun Microsystems,C=US"
        );
    }

    #[test]
    fn kafka_rule_to_string() {
        let rules = [
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
            "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
            "DEFAULT",
        ]
        .join(", ");
        let mapper = SslPrincipalMapper::from_rules(&rules).unwrap();
        assert_eq!(
            mapper.to_string(),
            "[RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, \
             RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/, \
             RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, \
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, \
             DEFAULT]"
        );
    }

    #[test]
    fn kafka_comma_with_whitespace() {
        let mapper =
            SslPrincipalMapper::from_rules(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT").unwrap();
        assert_eq!(
            mapper
                .map(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz")
                .unwrap(),
            r"Tkac\, Adam"
        );
    }

    #[test]
    fn default_and_no_match() {
        let dn = "CN=alice,OU=eng,O=acme";
        assert_eq!(SslPrincipalMapper::default().map(dn).unwrap(), dn);
        assert_eq!(
            SslPrincipalMapper::from_rules(DEFAULT_SSL_PRINCIPAL_MAPPING_RULES)
                .unwrap()
                .map(dn)
                .unwrap(),
            dn
        );
        let mapper = SslPrincipalMapper::from_rules("RULE:^CN=(.*?),OU=ops,.*$/$1/").unwrap();
        let err = mapper.map(dn).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No rules apply to CN=alice,OU=eng,O=acme, rules [RULE:^CN=(.*?),OU=ops,.*$/$1/]"
        );
        // Empty and blank values: no rules at all.
        for empty in ["", "  ", " , ,"] {
            let mapper = SslPrincipalMapper::from_rules(empty).unwrap();
            assert_eq!(mapper.to_string(), "[]");
            assert!(mapper.map(dn).is_err());
        }
    }

    #[test]
    fn notes_example_and_first_rule_wins() {
        let mapper =
            SslPrincipalMapper::from_rules("RULE:^CN=(.*?),OU=(.*?),O=.*$/$1@$2/L,DEFAULT")
                .unwrap();
        assert_eq!(mapper.map("CN=Alice,OU=Eng,O=acme").unwrap(), "alice@eng");
        assert_eq!(mapper.map("CN=alice,O=acme").unwrap(), "CN=alice,O=acme");

        // The pattern must match the whole DN (Java's matches()), not just a part of it.
        let mapper = SslPrincipalMapper::from_rules("RULE:CN=([^,]*)/$1/, RULE:.*/x/").unwrap();
        assert_eq!(mapper.map("CN=bob").unwrap(), "bob");
        // Java's replaceAll with `.*`: the whole DN, then the empty match at the end.
        assert_eq!(mapper.map("O=acme,CN=bob").unwrap(), "xx");
    }

    #[test]
    fn replacement_semantics() {
        let map = |rules: &str, dn: &str| SslPrincipalMapper::from_rules(rules).unwrap().map(dn);
        // Out-of-range back-references stay literal (Kafka's escapeLiteralBackReferences).
        assert_eq!(
            map("RULE:^CN=(.*?),(.*)$/$1@$4/", "CN=a,O=b").unwrap(),
            "a@$4"
        );
        // $12 with two groups is $1 followed by "2".
        assert_eq!(map("RULE:^CN=(.*?),(.*)$/$12/", "CN=a,O=b").unwrap(), "a2");
        assert_eq!(
            map("RULE:^CN=(.*?),(.*)$/$2$1/U", "CN=a,O=b").unwrap(),
            "O=BA"
        );
        // Escapes and named groups.
        assert_eq!(
            map(r"RULE:^CN=(?<user>[^,]*).*$/\$${user}\\/", "CN=a,O=b").unwrap(),
            r"$a\"
        );
        // An escaped '/' in the pattern and replacement.
        assert_eq!(
            map(r"RULE:^CN=([^\/]*)\/.*$/$1\/x/", "CN=a/b").unwrap(),
            "a/x"
        );
        // Non-ASCII case mapping.
        assert_eq!(map("RULE:^CN=(.*)$/$1/L", "CN=ÄRGER").unwrap(), "ärger");
    }

    #[test]
    fn invalid_rule_syntax() {
        for rules in [
            "RULE:^CN=(.*$/$1/",       // unbalanced group
            "RULE:^(?=CN).*$/x/",      // look-ahead: not supported by the regex crate
            "RULE:^CN=.*$/$1/",        // no group 1 (Java fails at apply time)
            "RULE:^CN=(.*)$/${nope}/", // unknown named group
            "RULE:^CN=(.*)$/$x/",      // illegal group reference
            "RULE:^CN=(.*)$/${1a}/",   // group names do not start with a digit
        ] {
            assert!(
                matches!(
                    SslPrincipalMapper::from_rules(rules),
                    Err(PrincipalError::InvalidRuleSyntax { .. })
                ),
                "{rules}"
            );
        }
        // A trailing backslash cannot even be split as a rule: it escapes the closing '/'.
        assert!(SslPrincipalMapper::from_rules(r"RULE:^CN=(.*)$/$1\/").is_err());
    }
}
